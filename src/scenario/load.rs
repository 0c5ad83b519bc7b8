//! Scenario files: loaded with spans like workflow files, checked against
//! the platform they run on.

use std::path::{Path, PathBuf};

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::Error;
use crate::platform::sim::{CONTROLS, Fault, SwitchState};
use crate::platform::{SwitchEvent, catalog, events};
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::load::{self, Ctx, from_node, key_span, known_keys};
use crate::workflow::model::Platform;
use crate::workflow::raw::Sp;
use crate::workflow::source::Sources;
use crate::workflow::vocab::{self, MEDIA};

/// A scenario file, for the JSON Schema.
#[derive(JsonSchema)]
#[schemars(title = "hisflow scenario", deny_unknown_fields)]
#[allow(dead_code)]
pub struct ScenarioFile {
    /// What the scenario shows, e.g. `EF2: Not Ready fails on the second channel`.
    scenario: String,
    description: Option<String>,
    /// The platforms that extend this one run it too (against their own
    /// workflows and settings), unless they have a scenario file of the same
    /// name; `false` by default.
    inherit: Option<bool>,
    /// The agent the requests are for; `agent-1` by default.
    agent: Option<String>,
    /// The simulated switch before the first step.
    switch: Option<SwitchState>,
    /// HIS's settings for the scenario, as `hisflow serve`'s configuration
    /// has them.
    his: Option<HisFile>,
    /// What happens, in order.
    steps: Vec<StepFile>,
}

/// HIS's settings a scenario may change.
#[derive(JsonSchema, Deserialize)]
#[serde(deny_unknown_fields)]
struct HisFile {
    /// How long a session lives without a connection before HIS logs the
    /// agent out (`120s` by default).
    detach_grace: Option<String>,
    /// The logout reason HIS gives when it does.
    expiry_reason: Option<String>,
}

/// One step, for the JSON Schema: exactly one of `request`, `workflow`,
/// `burst`, `drop`, `receive`, `fault`, `latency`, `interaction`,
/// `end_interaction`, `sim`, `switch_event`, `advance`.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct StepFile {
    /// A client request, handled by the platform's workflow for it.
    request: Option<String>,
    /// A workflow run directly (sub-workflows such as `go_not_ready`).
    workflow: Option<String>,
    /// Requests sent back to back on one connection before any answer (a
    /// double click): `[{ request: session.request.logout, params: … }, …]`.
    burst: Option<Vec<BurstFile>>,
    /// The connection a `request`, `workflow` or `burst` goes on: a name of
    /// the scenario's own (`main` by default). Each name is one MediaBar
    /// connection, opened when first used.
    connection: Option<String>,
    /// The named connection goes away (a reload, a dropped network): its
    /// session is detached.
    drop: Option<String>,
    /// What the named connection received since it was last used, checked
    /// with `expect` (`events`, `closed`).
    receive: Option<String>,
    /// A control of the simulated switch (`forceLogout`, `setState`, …), for
    /// the scenario's agent, as `sim.request.<control>` over the protocol.
    sim: Option<String>,
    /// The parameters of the request, workflow or control.
    params: Option<serde_json::Map<String, Json>>,
    /// A switch event, delivered as if the switch sent it (the switch itself
    /// does not change): `{ name: agent.event.loggedOut, data: { cause: supervisor } }`.
    switch_event: Option<SwitchEventFile>,
    /// Simulated time passes (`3s`): waits time out, delayed confirmations
    /// arrive.
    advance: Option<String>,
    /// Makes the switch fail an operation.
    fault: Option<Fault>,
    /// Makes the switch slow: `{ op: agent.logout, delay: 2s }`.
    latency: Option<LatencyFile>,
    /// Starts an interaction on a channel: `{ channel: email, id: mail-1 }`.
    interaction: Option<InteractionFile>,
    /// Ends the interactions of a channel: `{ channel: email }`.
    end_interaction: Option<InteractionFile>,
    /// What the step must produce (requests and workflows only).
    expect: Option<ExpectFile>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct BurstFile {
    request: String,
    params: Option<serde_json::Map<String, Json>>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyFile {
    op: String,
    delay: String,
}

#[derive(JsonSchema, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionFile {
    channel: String,
    id: Option<String>,
}

#[derive(JsonSchema, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchEventFile {
    /// An event of the catalog (`hisflow events`).
    #[allow(dead_code)] // read from its node instead, for its span
    name: String,
    /// Its fields; all text.
    #[serde(default)]
    data: Option<serde_json::Map<String, Json>>,
}

/// Expectations; each is checked only when given.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct ExpectFile {
    /// The response in the protocol's shape, matched as a subset:
    /// `{ ok: true }`, `{ error: { code: NotReadyFailed } }`.
    response: Option<Json>,
    /// A `burst`'s responses, in the order its requests were sent.
    responses: Option<Vec<Json>>,
    /// Every event, in order; each `{ name, data? }` (data matched as a subset).
    events: Option<Vec<Json>>,
    /// The simulated switch afterwards, matched as a subset.
    switch: Option<Json>,
    /// The session afterwards, matched as a subset (`null`: no session).
    session: Option<Json>,
    /// The connection was closed with this reason (`false`: it was not).
    closed: Option<Json>,
}

const SCENARIO_KEYS: &[&str] = &[
    "scenario",
    "description",
    "inherit",
    "agent",
    "switch",
    "his",
    "steps",
];
/// The keys that make a step one kind or another.
const STEP_KINDS: &[&str] = &[
    "request",
    "workflow",
    "burst",
    "drop",
    "receive",
    "sim",
    "switch_event",
    "advance",
    "fault",
    "latency",
    "interaction",
    "end_interaction",
];
const STEP_KEYS: &[&str] = &[
    "request",
    "workflow",
    "burst",
    "drop",
    "receive",
    "connection",
    "sim",
    "switch_event",
    "advance",
    "params",
    "fault",
    "latency",
    "interaction",
    "end_interaction",
    "expect",
];
const EXPECT_KEYS: &[&str] = &[
    "response",
    "responses",
    "events",
    "switch",
    "session",
    "closed",
];

/// The connection of a step that names none.
pub const MAIN: &str = "main";

/// A loaded scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub path: PathBuf,
    pub agent: String,
    pub switch: SwitchState,
    pub his: HisSettings,
    pub steps: Vec<Step>,
}

/// HIS's settings for a scenario; `None` keeps HIS's default.
#[derive(Debug, Clone, Default)]
pub struct HisSettings {
    pub detach_grace: Option<std::time::Duration>,
    pub expiry_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub expect: Expect,
    /// Where the step is written, for reports: `file:line`.
    pub line: usize,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// A request on a connection; a parameter written `$token` is the token
    /// HIS gave last.
    Request {
        name: String,
        params: Json,
        connection: String,
    },
    Workflow {
        name: String,
        params: Json,
        connection: String,
    },
    /// Requests sent back to back on one connection.
    Burst {
        requests: Vec<(String, Json)>,
        connection: String,
    },
    /// A connection goes away.
    Drop(String),
    /// What a connection received meanwhile.
    Receive(String),
    /// A control of the simulated switch, by its full request name
    /// (`sim.request.forceLogout`); `interaction` and `end_interaction`
    /// steps are controls too.
    Control {
        name: String,
        params: Json,
    },
    SwitchEvent(SwitchEvent),
    Advance(std::time::Duration),
    Fault(Fault),
    Latency {
        op: String,
        delay: std::time::Duration,
    },
}

/// What a step must produce; each is checked only when given.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub response: Option<Json>,
    pub responses: Option<Vec<Json>>,
    pub events: Option<Vec<Json>>,
    pub switch: Option<Json>,
    pub session: Option<Json>,
    pub closed: Option<Json>,
}

/// Loads and checks a scenario file for `platform`. Problems are diagnostics;
/// only unreadable paths are errors.
pub fn load_scenario(
    sources: &mut Sources,
    programs: &crate::workflow::expr::Programs,
    path: &Path,
    platform: &Platform,
    diags: &mut Diagnostics,
) -> Result<Option<Scenario>, Error> {
    let Some(file) = load::read(sources, path, diags)? else {
        return Ok(None);
    };
    let cx = Ctx {
        sources,
        file,
        programs,
    };
    let before = diags.count(crate::Severity::Error);
    let scenario = scenario(cx, path, platform, diags);
    Ok(scenario.filter(|_| diags.count(crate::Severity::Error) == before))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    scenario: Sp<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<Sp<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    inherit: Option<Sp<bool>>,
    #[serde(default)]
    agent: Option<Sp<String>>,
}

fn scenario(
    cx: Ctx<'_>,
    path: &Path,
    platform: &Platform,
    diags: &mut Diagnostics,
) -> Option<Scenario> {
    let top = load::parse(cx, diags)?;
    let mut top = known_keys(cx, top, SCENARIO_KEYS, "a scenario", diags);
    let anchor = top
        .keys()
        .next()
        .map_or_else(|| cx.span_bytes(0, 0), |k| key_span(cx, k));
    let switch_node = top.remove_entry("switch");
    let his_node = top.remove_entry("his");
    let steps_node = top.remove_entry("steps");
    let header: Header = from_node(
        cx,
        &Node::Mapping(top),
        anchor.clone(),
        "the scenario",
        diags,
    )?;
    // The platform's simulated switch, with what the scenario says over it.
    let switch = match switch_node {
        None => platform
            .switch
            .as_ref()
            .and_then(|s| serde_json::from_value::<SwitchState>(s.clone()).ok())
            .unwrap_or_default(),
        Some((k, node)) => match serde_json::from_value::<SwitchState>(
            crate::platform::sim::layered(platform.switch.as_ref(), load::to_json(&node)),
        ) {
            Ok(s) => {
                check_confirm(cx, &node, &s, diags);
                s
            }
            Err(e) => {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        key_span(cx, &k),
                        format!("invalid `switch`: {e}"),
                    )
                    .label("not a switch state")
                    .help("see schemas/scenario.schema.json: agents, reason_codes, connected, confirm, pending_logout, strict_not_ready, free_logout_reasons"),
                );
                return None;
            }
        },
    };
    let his = match his_node {
        None => HisSettings::default(),
        // A problem is reported; the steps are checked all the same.
        Some((k, node)) => his_settings(cx, &k, &node, diags).unwrap_or_default(),
    };
    let Some((steps_key, Node::Sequence(seq))) = steps_node else {
        diags.push(
            Diagnostic::new(Rule::MissingKey, anchor, "the scenario has no `steps` list")
                .label("`steps` is required")
                .help("add `steps:` with at least one `- request: …`"),
        );
        return None;
    };
    let agent = header
        .agent
        .as_ref()
        .map_or_else(|| "agent-1".to_string(), |a| a.to_string());
    let mut steps = Vec::new();
    let mut connections = std::collections::BTreeSet::from([MAIN.to_string()]);
    for node in seq.iter() {
        let Node::Mapping(m) = node else {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    cx.span(node.span().start().copied()),
                    "a step must be a mapping",
                )
                .label(format!("expected one of: {}", STEP_KINDS.join(", "))),
            );
            continue;
        };
        if let Some(s) = step(cx, m.clone(), platform, &agent, &mut connections, diags) {
            steps.push(s);
        }
    }
    if steps.is_empty() && seq.is_empty() {
        diags.push(
            Diagnostic::new(
                Rule::MissingKey,
                key_span(cx, &steps_key),
                "the scenario has no steps",
            )
            .label("empty"),
        );
    }
    Some(Scenario {
        name: header.scenario.to_string(),
        path: path.to_path_buf(),
        agent,
        switch,
        his,
        steps,
    })
}

/// The scenario's `his:` settings, with its durations read.
fn his_settings(
    cx: Ctx<'_>,
    key: &marked_yaml::types::MarkedScalarNode,
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<HisSettings> {
    let file: HisFile = from_node(cx, node, key_span(cx, key), "`his`", diags)?;
    let detach_grace = match &file.detach_grace {
        None => None,
        Some(text) => match crate::workflow::validate::parse_duration(text) {
            Some(d) => Some(d),
            None => {
                let at = node
                    .as_mapping()
                    .and_then(|m| m.get_node("detach_grace"))
                    .map_or_else(|| key_span(cx, key), |n| cx.span(n.span().start().copied()));
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        at,
                        format!("`{text}` is not a duration"),
                    )
                    .label("expected e.g. `30s` or `2m`"),
                );
                return None;
            }
        },
    };
    Some(HisSettings {
        detach_grace,
        expiry_reason: file.expiry_reason,
    })
}

fn scalar(node: Option<&Node>) -> Option<Sp<String>> {
    node.and_then(load::scalar)
}

/// The text a step's kind key holds (`request: <name>`), or a diagnostic.
fn named(
    cx: Ctx<'_>,
    m: &MarkedMappingNode,
    kind: &str,
    diags: &mut Diagnostics,
) -> Option<Sp<String>> {
    let node = m.get_node(kind)?;
    let name = load::scalar(node);
    if name.is_none() {
        diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                cx.span(node.span().start().copied()),
                format!("`{kind}` must be a single value"),
            )
            .label("not a name")
            .help(match kind {
                "advance" => "write e.g. `advance: 3s`".to_string(),
                _ => format!("write `{kind}: <name>`; parameters go under `params:`"),
            }),
        );
    }
    name
}

fn step(
    cx: Ctx<'_>,
    m: MarkedMappingNode,
    platform: &Platform,
    agent: &str,
    connections: &mut std::collections::BTreeSet<String>,
    diags: &mut Diagnostics,
) -> Option<Step> {
    let line = m.span().start().map_or(0, |s| s.line());
    let at = cx.span(m.span().start().copied());
    let mut m = known_keys(cx, m, STEP_KEYS, "a step", diags);
    let kinds: Vec<&str> = STEP_KINDS
        .iter()
        .copied()
        .filter(|k| m.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        diags.push(
            Diagnostic::new(
                Rule::StateKind,
                at,
                if kinds.is_empty() {
                    "a step does nothing".to_string()
                } else {
                    format!("a step is both `{}` and `{}`", kinds[0], kinds[1])
                },
            )
            .label(STEP_KINDS.join(", "))
            .help("give every step exactly one of them"),
        );
        return None;
    }
    let params = m
        .remove("params")
        .map(|n| load::to_json(&n))
        .unwrap_or_else(|| Json::Object(Default::default()));
    let connection = match m.get_node("connection") {
        None => MAIN.to_string(),
        Some(_) => {
            let name = named(cx, &m, "connection", diags)?;
            if !matches!(kinds[0], "request" | "workflow" | "burst") {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span_of(&name),
                        format!("a `{}` step goes on no connection", kinds[0]),
                    )
                    .label("not for this step")
                    .help(
                        "`connection` names the connection of a `request`, `workflow` or `burst`",
                    ),
                );
                return None;
            }
            connections.insert(name.to_string());
            name.to_string()
        }
    };
    let expect = match m.remove_entry("expect") {
        None => Expect::default(),
        Some((_, Node::Mapping(e))) => {
            let e = known_keys(cx, e, EXPECT_KEYS, "`expect`", diags);
            Expect {
                response: e.get_node("response").map(load::to_json),
                responses: match e.get_node("responses") {
                    None => None,
                    Some(Node::Sequence(l)) => Some(l.iter().map(load::to_json).collect()),
                    Some(other) => {
                        diags.push(
                            Diagnostic::new(
                                Rule::InvalidValue,
                                cx.span(other.span().start().copied()),
                                "`responses` must be a list",
                            )
                            .label("not a list")
                            .help("list a burst's responses in the order its requests were sent"),
                        );
                        return None;
                    }
                },
                events: match e.get_node("events") {
                    None => None,
                    Some(Node::Sequence(l)) => Some(l.iter().map(load::to_json).collect()),
                    Some(other) => {
                        diags.push(
                            Diagnostic::new(
                                Rule::InvalidValue,
                                cx.span(other.span().start().copied()),
                                "`events` must be a list",
                            )
                            .label("not a list")
                            .help("list the events in order: `events: [channel.event.disposed, …]`, or `[]` for none"),
                        );
                        return None;
                    }
                },
                switch: e.get_node("switch").map(load::to_json),
                session: e.get_node("session").map(load::to_json),
                closed: e.get_node("closed").map(load::to_json),
            }
        }
        Some((k, _)) => {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    key_span(cx, &k),
                    "`expect` must be a mapping",
                )
                .label("not a mapping"),
            );
            return None;
        }
    };
    let kind = kinds[0];
    let step_kind = match kind {
        "request" => {
            let name = named(cx, &m, "request", diags)?;
            check_request(cx, &name, platform, diags)?;
            StepKind::Request {
                name: name.to_string(),
                params,
                connection,
            }
        }
        "burst" => {
            let node = m.get_node("burst")?;
            let Node::Sequence(items) = node else {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span(node.span().start().copied()),
                        "`burst` must be a list of requests",
                    )
                    .label("not a list")
                    .help("write `burst: [{ request: session.request.logout, params: { reason: Lunch } }, …]`"),
                );
                return None;
            };
            let mut requests = Vec::new();
            for item in items.iter() {
                let Some(im) = item.as_mapping() else {
                    diags.push(
                        Diagnostic::new(
                            Rule::InvalidValue,
                            cx.span(item.span().start().copied()),
                            "a burst's item must be a mapping",
                        )
                        .label("expected `{ request, params? }`"),
                    );
                    return None;
                };
                let im = known_keys(
                    cx,
                    im.clone(),
                    &["request", "params"],
                    "a burst's request",
                    diags,
                );
                let name = named(cx, &im, "request", diags)?;
                check_request(cx, &name, platform, diags)?;
                let params = im
                    .get_node("params")
                    .map(load::to_json)
                    .unwrap_or_else(|| Json::Object(Default::default()));
                requests.push((name.to_string(), params));
            }
            StepKind::Burst {
                requests,
                connection,
            }
        }
        "drop" | "receive" => {
            let name = named(cx, &m, kind, diags)?;
            if !connections.contains(name.as_str()) {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span_of(&name),
                        format!(
                            "no step before this one used connection `{}`",
                            name.as_str()
                        ),
                    )
                    .label("unknown connection")
                    .help(
                        did_you_mean(&name, connections.iter().map(String::as_str)).unwrap_or_else(
                            || {
                                format!(
                                    "connections so far: {}",
                                    connections.iter().cloned().collect::<Vec<_>>().join(", ")
                                )
                            },
                        ),
                    ),
                );
                return None;
            }
            if kind == "drop" {
                StepKind::Drop(name.to_string())
            } else {
                StepKind::Receive(name.to_string())
            }
        }
        "workflow" => {
            let name = named(cx, &m, "workflow", diags)?;
            if platform.workflow(&name).is_none() {
                diags.push(
                    Diagnostic::new(
                        Rule::UnknownWorkflow,
                        cx.span_of(&name),
                        format!(
                            "platform `{}` has no workflow `{}`",
                            platform.name,
                            name.as_str()
                        ),
                    )
                    .label("unknown workflow")
                    .help(
                        did_you_mean(&name, platform.workflows.keys().map(String::as_str))
                            .unwrap_or_else(|| {
                                format!(
                                    "workflows: {}",
                                    platform
                                        .workflows
                                        .keys()
                                        .cloned()
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }),
                    ),
                );
                return None;
            }
            StepKind::Workflow {
                name: name.to_string(),
                params,
                connection,
            }
        }
        "sim" => {
            let name = named(cx, &m, "sim", diags)?;
            if !CONTROLS.iter().any(|(c, _)| *c == name.as_str()) {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span_of(&name),
                        format!(
                            "`{}` is not a control of the simulated switch",
                            name.as_str()
                        ),
                    )
                    .label("unknown control")
                    .help(
                        did_you_mean(&name, CONTROLS.iter().map(|(c, _)| *c)).unwrap_or_else(
                            || {
                                format!(
                                    "controls: {}",
                                    CONTROLS
                                        .iter()
                                        .map(|(c, p)| format!("{c} {p}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            },
                        ),
                    ),
                );
                return None;
            }
            StepKind::Control {
                name: format!("sim.request.{}", name.as_str()),
                params,
            }
        }
        "switch_event" => {
            let node = m.get_node("switch_event")?;
            let e: SwitchEventFile = from_node(cx, node, at.clone(), "`switch_event`", diags)?;
            let name = scalar(node.as_mapping().and_then(|f| f.get_node("name")))?;
            let Some(spec) = events::event(&name) else {
                diags.push(crate::workflow::validate::unknown_event(
                    cx.span_of(&name),
                    &name,
                ));
                return None;
            };
            let event = SwitchEvent::new(
                (!spec.broadcast).then_some(agent),
                spec.name,
                Json::Object(e.data.unwrap_or_default()),
            );
            if let Err(bad) = event.check() {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        at,
                        format!("invalid switch event: {bad}"),
                    )
                    .label("not as the catalog has it")
                    .help("run `hisflow events` for each event's fields"),
                );
                return None;
            }
            StepKind::SwitchEvent(event)
        }
        "advance" => {
            let d = named(cx, &m, "advance", diags)?;
            let Some(delay) = crate::workflow::validate::parse_duration(&d) else {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span_of(&d),
                        format!("`{}` is not a duration", d.as_str()),
                    )
                    .label("expected e.g. `250ms` or `3s`"),
                );
                return None;
            };
            StepKind::Advance(delay)
        }
        "fault" => {
            let node = m.get_node("fault")?;
            let fault: Fault = from_node(cx, node, at.clone(), "`fault`", diags)?;
            let op = scalar(node.as_mapping().and_then(|f| f.get_node("op")))?;
            check_operation(cx, &op, diags)?;
            if let Some(ch) = scalar(node.as_mapping().and_then(|f| f.get_node("channel"))) {
                check_channel(cx, &ch, diags)?;
            }
            StepKind::Fault(fault)
        }
        "latency" => {
            let node = m.get_node("latency")?;
            let l: LatencyFile = from_node(cx, node, at.clone(), "`latency`", diags)?;
            let op = scalar(node.as_mapping().and_then(|f| f.get_node("op")))?;
            check_operation(cx, &op, diags)?;
            let Some(delay) = crate::workflow::validate::parse_duration(&l.delay) else {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        at,
                        format!("`{}` is not a duration", l.delay),
                    )
                    .label("expected e.g. `250ms` or `2s`"),
                );
                return None;
            };
            StepKind::Latency { op: l.op, delay }
        }
        _ => {
            let node = m.get_node(kind)?;
            let i: InteractionFile = from_node(cx, node, at.clone(), &format!("`{kind}`"), diags)?;
            let ch = scalar(node.as_mapping().and_then(|f| f.get_node("channel")))?;
            check_channel(cx, &ch, diags)?;
            let control = if kind == "interaction" {
                "startInteraction"
            } else {
                "endInteraction"
            };
            StepKind::Control {
                name: format!("sim.request.{control}"),
                params: serde_json::json!({ "channel": i.channel, "id": i.id }),
            }
        }
    };
    Some(Step {
        kind: step_kind,
        expect,
        line,
    })
}

/// `confirm:` of a scenario's switch names switch operations that answer
/// with no data, each with a duration.
fn check_confirm(cx: Ctx<'_>, node: &Node, switch: &SwitchState, diags: &mut Diagnostics) {
    let Some(confirm) = node.as_mapping().and_then(|m| m.get_mapping("confirm")) else {
        return;
    };
    for (k, _) in confirm.iter() {
        let delay = switch.confirm.get(k.as_str()).map_or("", String::as_str);
        if let Err(message) = crate::platform::sim::confirm_entry(k, delay) {
            diags.push(
                Diagnostic::new(Rule::InvalidValue, key_span(cx, k), message)
                    .label("not a confirmation the switch can make")
                    .help("confirm the operations that change the agent (agent.login, agent.logout, agent.set_ready, …) with a delay such as `500ms`"),
            );
        }
    }
}

fn check_request(
    cx: Ctx<'_>,
    name: &Sp<String>,
    platform: &Platform,
    diags: &mut Diagnostics,
) -> Option<()> {
    // A resume HIS answers itself, on every platform.
    if name.as_str() == crate::his::RESUME
        || (vocab::is_request(name) && platform.handler(name).is_some())
    {
        return Some(());
    }
    diags.push(
        Diagnostic::new(
            Rule::UnknownRequest,
            cx.span_of(name),
            format!(
                "`{}` is not a request of platform `{}`",
                name.as_str(),
                platform.name
            ),
        )
        .label("unknown request")
        .help(vocab::request_help(name)),
    );
    None
}

fn check_operation(cx: Ctx<'_>, op: &Sp<String>, diags: &mut Diagnostics) -> Option<()> {
    if catalog::switch_operation(op).is_some() {
        return Some(());
    }
    let names = || catalog::switch_operations().map(|o| o.name);
    diags.push(
        Diagnostic::new(
            Rule::UnknownOperation,
            cx.span_of(op),
            format!("`{}` is not a switch operation", op.as_str()),
        )
        .label("the switch has no such operation")
        .help(did_you_mean(op, names()).unwrap_or_else(|| {
            format!(
                "switch operations: {}",
                names().collect::<Vec<_>>().join(", ")
            )
        })),
    );
    None
}

fn check_channel(cx: Ctx<'_>, ch: &Sp<String>, diags: &mut Diagnostics) -> Option<()> {
    if MEDIA.contains(&ch.as_str()) {
        return Some(());
    }
    diags.push(
        Diagnostic::new(
            Rule::UnknownChannel,
            cx.span_of(ch),
            format!("`{}` is not a channel", ch.as_str()),
        )
        .label("no such channel")
        .help(
            did_you_mean(ch, MEDIA.iter().copied())
                .unwrap_or_else(|| format!("channels: {}", MEDIA.join(", "))),
        ),
    );
    None
}
