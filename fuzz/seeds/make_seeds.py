#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/
from the project's own files. Run from anywhere; existing seeds are kept.

    python3 fuzz/seeds/make_seeds.py
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    # libFuzzer names its inputs by SHA-1: the same seed is never kept twice.
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def yaml_files(*dirs):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.yaml"))


def is_scenario(p):
    return "scenarios" in p.parts


for p in yaml_files("workflows", "tests/fixtures"):
    data = p.read_bytes()
    if p.name == "platform.yaml":
        put("platform_files", data)
    elif is_scenario(p):
        put("scenario_files", data)
    else:
        put("workflow_files", data)

# Expressions: guards (`when:`) and the holes of `${…}` texts.
exprs = set()
for p in yaml_files("workflows", "tests/fixtures"):
    text = p.read_text(errors="replace")
    for m in re.finditer(r"^\s*-?\s*(?:when|if|until|while|foreach|items|guard):\s*(.+?)\s*$", text, re.M):
        v = m.group(1)
        if v and v[0] in "\"'" and v[-1] == v[0]:
            v = v[1:-1]
        exprs.add(v)
    for m in re.finditer(r"\$\{([^}\n]*)\}", text):
        exprs.add(m.group(1))
    for m in re.finditer(r"^\s*[a-z_]+:\s*(\"[^\"\n]*\$\{[^\n]*\")\s*$", text, re.M):
        exprs.add(m.group(1)[1:-1])  # whole templates too
for e in sorted(exprs):
    if e.strip():
        put("expression", e)
for e in [
    "1 + 2 * 3 == 7",
    "'a' + 'b' in ['ab']",
    "request.channels.exists(c, c == 'voice')",
    "session.channels.filter(c, c.active).map(c, c.id)",
    "size(request.reason) > 0 ? request.reason : 'none'",
    "vars.count / 0",
    "9223372036854775807 + 1",
    "-9223372036854775808 / -1",
    "int('12') + uint(3)",
    "double(1) / 0.0",
    "has(request.nested.a) && request.nested.a[2].b == null",
    "item.media == request.channel",
    "Hello ${request.agent}, ${size(session.channels)} channels",
    "matches(request.reason, '^L.*')",
    "string(vars.list)",
    "dyn(1) == 1.0",
    "[1,2,3].all(x, [4,5].exists(y, x < y))",
    "{'a': 1}['a']",
    "'x'.repeat(3)",
    "math.greatest(1, 2, 3)",
]:
    put("expression", e)

# Client frames: one request per line; `#reconnect` / `#wait` are the
# client's doing; `$token` becomes the last token HIS gave.
def req(i, name, params=None):
    import json
    p = "" if params is None else ',"params":' + json.dumps(params, separators=(",", ":"))
    return '{"type":"request","id":"%s","name":"%s"%s}' % (i, name, p)

LOGIN = req(1, "session.request.login", {"agent": "agent-1", "channels": ["voice", "email"]})
LOGIN_ALL = req(1, "session.request.login", {"agent": "agent-1", "channels": ["voice", "email", "chat"]})
frames = [
    [LOGIN, req(2, "channel.request.ready", {"channel": "voice"}), req(3, "session.request.logout", {}), req(4, "session.request.logout", {"reason": "Lunch"})],
    [LOGIN, req(2, "channel.request.notReady", {"channel": "email", "reason": "Break"}), req(3, "channel.request.ready", {"channel": "email"}), req(4, "session.request.logout", {"reason": "End of shift"})],
    [LOGIN_ALL, req(2, "channel.request.deactivate", {"channel": "chat"}), req(3, "channel.request.activate", {"channel": "chat"}), req(4, "channel.request.ready", {"channel": "chat"})],
    [LOGIN, "#reconnect", req(2, "session.request.resume", {"token": "$token"}), req(3, "channel.request.ready", {"channel": "voice"})],
    [LOGIN, "#reconnect", "#wait", "#wait", req(2, "session.request.resume", {"token": "$token"}), req(3, "session.request.logout", {"reason": "Lunch"})],
    [LOGIN, req(2, "channel.request.ready", {"channel": "voice"}), req(3, "sim.request.startInteraction", {"channel": "voice"}), req(4, "sim.request.setState", {"channel": "voice", "state": "Talking"}), req(5, "session.request.logout", {"reason": "Lunch"}), req(6, "sim.request.endInteraction", {"channel": "voice"})],
    [LOGIN, req(2, "sim.request.fault", {"op": "agent.set_not_ready", "call": 1, "effect": {"error": {"code": "InvalidState", "message": "the switch refused Not Ready"}}}), req(3, "channel.request.ready", {"channel": "voice"}), req(4, "session.request.logout", {"reason": "Lunch"}), req(5, "sim.request.faults"), req(6, "sim.request.clearFaults")],
    [LOGIN, req(2, "sim.request.forceLogout", {"reason": "Shift over"}), req(3, "channel.request.ready", {"channel": "voice"})],
    [LOGIN, req(2, "sim.request.linkDown", {"reason": "maintenance"}), req(3, "channel.request.ready", {"channel": "voice"}), req(4, "sim.request.linkUp", {}), req(5, "channel.request.ready", {"channel": "voice"})],
    [LOGIN, req(2, "sim.request.latency", {"op": "agent.logout", "delay": "2s"}), req(3, "sim.request.confirm", {"op": "agent.set_ready", "delay": "1s"}), req(4, "channel.request.ready", {"channel": "voice"}), req(5, "session.request.logout", {"reason": "Lunch"})],
    [LOGIN, req(2, "sim.request.fault", {"op": "channel.deactivate", "call": 1, "effect": {"error": {"code": "InvalidState", "message": "the switch refused to deactivate"}}}), req(3, "channel.request.deactivate", {"channel": "email"}), req(4, "sim.request.setActive", {"channel": "email", "active": False})],
    [LOGIN, LOGIN, req(2, "session.request.login", {"agent": "agent-2", "channels": []}), req(3, "channel.request.ready", {"channel": "fax"})],
    # malformed
    ["", "{", "[]", "null", '{"type":"request"}', '{"type":"request","id":1,"name":"x"}', '{"type":"request","id":"1"}', '{"type":"request","id":"1","name":"channel.request.ready","params":[]}', '{"type":"event","id":"1","name":"session.request.login"}', '{"type":"request","id":"1","name":"session.request.login","params":{"agent":5,"channels":"voice"}}'],
    [req(1, "channel.request.ready", {"channel": "voice"}), req(2, "session.request.resume", {"token": "nope"}), req(3, "unknown.request.x"), req(4, "sim.request.linkDown")],
    [LOGIN, req(2, "session.request.logout", {"reason": "x" * 300}), req(3, "channel.request.notReady", {"channel": "voice", "reason": None})],
]
for f in frames:
    put("client_frames", "\n".join(f) + "\n")
