//! A platform that uses every construct validates clean, and the model built
//! from it says what the files say.

mod common;

use std::time::Duration;

use common::root;
use hisflow::workflow::model::{
    Body, Entity, EventRoute, FailurePolicy, MachineTrigger, Response, StateKind, Target, Trigger,
};

fn platform() -> hisflow::Platform {
    let (p, report) =
        hisflow::load_platform(&root().join("tests/fixtures/valid/constructs")).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    p
}

#[test]
fn the_platform_resolves_settings_requests_and_adapter() {
    let p = platform();
    assert_eq!(p.name, "constructs");
    assert_eq!(p.adapter, "sim");
    assert_eq!(p.lacks, ["channel.activate"]);
    assert_eq!(p.settings["retries"], serde_json::json!(3));
    assert_eq!(p.settings["free_text"], serde_json::json!(true));
    assert_eq!(
        p.settings["quoted"],
        serde_json::json!("0"),
        "a text setting takes a number as text"
    );
    assert_eq!(p.settings["labels"]["voice"], serde_json::json!("Phone"));
    // Declaration order, whatever order the values were written in.
    assert_eq!(
        p.settings["labels"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["voice", "chat"]
    );
    assert_eq!(
        p.settings.keys().collect::<Vec<_>>(),
        [
            "retries",
            "free_text",
            "labels",
            "quoted",
            "mode",
            "wait",
            "codes"
        ]
    );
    assert_eq!(p.settings["mode"], serde_json::json!("safe"), "a default");
    assert_eq!(p.settings["wait"], serde_json::json!("3s"));
    assert_eq!(
        p.settings["codes"],
        serde_json::json!([{ "code": 1, "label": "Lunch" }])
    );
    assert_eq!(
        p.declared["codes"].ty.to_string(),
        "list of { code: integer, label: text }"
    );
    assert_eq!(
        p.declared["retries"].description.as_deref(),
        Some("How often.")
    );
    assert_eq!(
        p.error_codes["PartialDeactivation"],
        "Some channels stayed active."
    );
    assert_eq!(
        p.handler("session.request.logout").unwrap().name,
        "everything"
    );
    assert_eq!(p.handler("channel.request.ready").unwrap().name, "helper");
}

#[test]
fn the_model_keeps_states_in_file_order_with_their_kinds() {
    let p = platform();
    let w = p.workflow("everything").unwrap();
    let names: Vec<&str> = w.states().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pick",
            "ask",
            "each_op",
            "each_call",
            "call_one",
            "emit_it",
            "store",
            "confirm",
            "bye",
            "done",
            "failed"
        ]
    );
    let kinds: Vec<&str> = w.states().map(|(_, s)| s.kind.name()).collect();
    assert_eq!(
        kinds,
        [
            "choice", "respond", "foreach", "foreach", "call", "emit", "op", "wait", "respond",
            "respond", "respond"
        ]
    );
    assert_eq!(w.state(w.start).name, "pick");
    assert_eq!(w.state(w.state_id("ask").unwrap()).flow, "AF1");
    assert_eq!(
        w.inputs
            .iter()
            .map(|i| (i.name.as_str(), i.required))
            .collect::<Vec<_>>(),
        [("reason", false), ("count", false)]
    );
}

#[test]
fn foreach_bodies_keep_their_timeout_retry_and_policy() {
    let p = platform();
    let w = p.workflow("everything").unwrap();
    let StateKind::Foreach(f) = &w.state(w.state_id("each_op").unwrap()).kind else {
        panic!("foreach")
    };
    assert_eq!(f.binding, "channel");
    assert_eq!(f.policy, FailurePolicy::Continue);
    let Body::Op(op) = &f.body else {
        panic!("op body")
    };
    assert_eq!(op.op.name, "agent.set_not_ready");
    assert_eq!(op.timeout, Duration::from_millis(250));
    let retry = op.retry.as_ref().unwrap();
    assert_eq!(
        (retry.attempts, retry.delay, retry.backoff),
        (2, Duration::from_millis(10), 1.5)
    );
    assert_eq!(retry.outcomes, ["timeout", "error"]);
    assert_eq!(
        op.args.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["channel", "reason"]
    );
}

#[test]
fn transitions_resolve_with_otherwise_as_fallback() {
    let p = platform();
    let w = p.workflow("everything").unwrap();
    let id = |n: &str| w.state_id(n).unwrap();
    let call = id("call_one");
    assert_eq!(w.next(call, &Trigger::Outcome("ok")), Some(id("emit_it")));
    assert_eq!(
        w.next(call, &Trigger::Outcome("need_info")),
        Some(id("ask"))
    );
    assert_eq!(
        w.next(call, &Trigger::Outcome("error")),
        Some(id("failed")),
        "otherwise catches error"
    );
    let pick = id("pick");
    assert_eq!(w.next(pick, &Trigger::Guard(0)), Some(id("ask")));
    assert_eq!(w.next(pick, &Trigger::Guard(1)), Some(id("each_op")));
    let labels: Vec<String> = w
        .transitions(pick)
        .iter()
        .map(|(t, _)| t.label(w.state(pick)))
        .collect();
    assert_eq!(labels, ["!has(request.reason)", "true", "otherwise"]);
    assert_eq!(w.next(id("emit_it"), &Trigger::Next), Some(id("store")));
}

#[test]
fn responses_carry_codes_templates_and_close() {
    let p = platform();
    let w = p.workflow("everything").unwrap();
    let StateKind::Respond(Response::Error { code, message }) =
        &w.state(w.state_id("failed").unwrap()).kind
    else {
        panic!()
    };
    assert_eq!(code, "Internal");
    assert_eq!(
        message.display(),
        "Failed (${error.code}) on ${error.channel}: ${error.message}. Quoted setting: ${platform.quoted}"
    );
    let StateKind::Respond(Response::Ok { result, close }) =
        &w.state(w.state_id("done").unwrap()).kind
    else {
        panic!()
    };
    assert!(close.is_none());
    assert_eq!(result.len(), 2);
    let StateKind::Op(op) = &w.state(w.state_id("store").unwrap()).kind else {
        panic!()
    };
    assert_eq!(op.save.as_deref(), Some("logout_reasons"));
}

#[test]
fn a_wait_keeps_its_event_guard_timeout_and_outcomes() {
    let p = platform();
    let w = p.workflow("everything").unwrap();
    let id = |n: &str| w.state_id(n).unwrap();
    let StateKind::Wait(wait) = &w.state(id("confirm")).kind else {
        panic!("wait")
    };
    assert_eq!(wait.event.name, "agent.event.loggedOut");
    assert_eq!(wait.timeout, Duration::from_secs(2));
    assert_eq!(
        wait.guard.as_ref().unwrap().source(),
        "!has(event.cause) || event.cause != 'supervisor'"
    );
    assert_eq!(
        w.next(id("confirm"), &Trigger::Outcome("received")),
        Some(id("bye"))
    );
    assert_eq!(
        w.next(id("confirm"), &Trigger::Outcome("timeout")),
        Some(id("done"))
    );
    let StateKind::Respond(Response::Ok { close, .. }) = &w.state(id("bye")).kind else {
        panic!("respond")
    };
    assert_eq!(
        close.as_ref().unwrap().display(),
        "Bye, ${session.agent}${has(event.reason) ? ': ' + event.reason : ''}"
    );
}

#[test]
fn events_route_to_workflows_or_are_ignored() {
    let p = platform();
    assert_eq!(
        p.events["link.event.down"],
        EventRoute::Workflow("gone".into())
    );
    assert_eq!(p.events["link.event.up"], EventRoute::Ignore);
    assert_eq!(p.event_handler("link.event.down").unwrap().name, "gone");
    assert!(p.event_handler("link.event.up").is_none());
    assert!(
        p.event_handler("agent.event.stateChanged").is_none(),
        "heard by the machine only"
    );
}

#[test]
fn a_machine_keeps_its_states_triggers_and_targets() {
    let p = platform();
    let m = p.machine(Entity::Channel).unwrap();
    assert_eq!(m.name, "line");
    assert!(p.machine(Entity::Session).is_none());
    let states: Vec<&str> = m.states.iter().map(|s| s.name).collect();
    assert_eq!(states, ["Off", "Idle", "Ready", "Busy"]);
    assert_eq!(m.initial_name(), "Off");
    // Each state's own transitions first, in file order, then the machine's.
    let all: Vec<(Option<&str>, &str)> = m
        .transitions
        .iter()
        .map(|t| (t.from.map(|f| m.states[f].name), t.trigger.name()))
        .collect();
    assert_eq!(
        all,
        [
            (Some("Off"), "agent.login"),
            (Some("Idle"), "agent.set_ready"),
            (Some("Idle"), "agent.set_not_ready"),
            (Some("Busy"), "agent.event.stateChanged"),
            (None, "agent.logout"),
            (None, "agent.event.stateChanged"),
            (None, "agent.event.stateChanged"),
            (None, "agent.event.channelDeactivated"),
            (None, "agent.event.channelActivated"),
            (None, "interaction.event.started"),
            (None, "interaction.event.ended"),
            (None, "agent.state"),
        ]
    );
    assert!(matches!(m.transitions[0].trigger, MachineTrigger::Op(_)));
    assert!(matches!(m.transitions[3].trigger, MachineTrigger::Event(_)));
    let busy = &m.transitions[5];
    assert!(matches!(busy.to, Target::State(s) if m.states[s].name == "Busy"));
    assert_eq!(busy.emit.as_ref().unwrap().event, "channel.event.busy");
    assert!(
        matches!(&m.transitions[6].to, Target::Dynamic(t) if t.display() == "${event.state == 'Ready' ? 'Ready' : 'Idle'}")
    );
    assert!(matches!(m.transitions[7].to, Target::Stay));
    assert_eq!(m.transitions[7].set[0].0, "active");
    // In Busy, its own transition is tried before the machine's.
    let busy_id = m.state_id("Busy");
    let order: Vec<usize> = m
        .candidates(busy_id, "agent.event.stateChanged")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(order, [3, 5, 6]);
}

#[test]
fn an_inheriting_platform_merges_its_events_over_the_inherited_ones() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(
        &root().join("workflows/reference"),
        &tmp.path().join("reference"),
    );
    std::fs::create_dir(tmp.path().join("child")).unwrap();
    std::fs::write(
        tmp.path().join("child/platform.yaml"),
        "platform: child\nextends: reference\nevents:\n  link.event.down: ignore\n",
    )
    .unwrap();
    let (p, report) = hisflow::load_platform(&tmp.path().join("child")).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    assert_eq!(p.events["link.event.down"], EventRoute::Ignore);
    assert_eq!(
        p.events["agent.event.loggedOut"],
        EventRoute::Workflow("switch_logout".into())
    );
    assert_eq!(p.machines.len(), 2, "the machines are inherited");
}

#[test]
fn only_an_operation_that_answers_data_has_a_result() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("m.yaml"),
        "machine: channel\nentity: channel\ninitial: NotReady\non:\n  agent.set_ready:\n    when: has(event.result)\n    to: Ready\nstates:\n  NotReady: {}\n  Ready: {}\n",
    )
    .unwrap();
    let out = common::run(d.path(), &["validate", "m.yaml", "--format", "json"]);
    let found = common::positions(&common::stdout(&out));
    assert_eq!(
        found
            .iter()
            .map(|p| (p.1, p.2, p.3.as_str()))
            .collect::<Vec<_>>(),
        [(6, 21, "hisflow::unknown-field")],
        "{found:?}"
    );
}

/// Validates a platform folder of one manifest and one workflow; returns
/// each diagnostic as (file, line, column, code).
fn platform_with(manifest: &str, workflow: &str) -> Vec<(String, u64, u64, String)> {
    let d = tempfile::tempdir().unwrap();
    let requests = "requests:\n  session.request.login: w\n  session.request.logout: w\n  channel.request.ready: w\n  channel.request.notReady: w\n  channel.request.activate: w\n  channel.request.deactivate: w\nevents:\n  agent.event.loggedOut: ignore\n  agent.event.logoutPending: ignore\n  agent.event.stateChanged: ignore\n  agent.event.channelActivated: ignore\n  agent.event.channelDeactivated: ignore\n  interaction.event.started: ignore\n  interaction.event.ended: ignore\n  link.event.down: ignore\n  link.event.up: ignore\n";
    std::fs::write(
        d.path().join("platform.yaml"),
        format!("platform: p\nadapter: {{ kind: sim }}\n{manifest}{requests}"),
    )
    .unwrap();
    std::fs::write(d.path().join("w.yaml"), workflow).unwrap();
    let out = common::run(d.path(), &["validate", ".", "--format", "json"]);
    common::positions(&common::stdout(&out))
        .into_iter()
        .map(|(f, l, c, code)| (f.trim_start_matches("./").to_string(), l, c, code))
        .collect()
}

const RESPOND: &str = "workflow: w\nstart: done\nstates:\n  done: { respond: { ok: {} } }\n";

#[test]
fn every_wrong_setting_is_reported_at_its_token() {
    let found = platform_with(
        "declare:\n  settings:\n    n: { type: integer }\n    b: { type: bool }\n    l: { type: list, of: text }\n    r: { type: record, fields: { code: integer, label: text } }\n    d: { type: duration }\n    e: { type: enum, values: [a, b] }\n    x: { type: txt }\n    y: { type: text, of: text }\n    z: { type: list }\n    needed: { type: text }\nsettings:\n  n: many\n  b: 'yes'\n  l: single\n  r: { code: 1, lable: x }\n  d: soon\n  e: [a]\n",
        RESPOND,
    );
    let at: Vec<(u64, u64, &str)> = found
        .iter()
        .map(|(_, l, c, code)| (*l, *c, code.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (1, 11, "hisflow::missing-key"),    // `y` has no value
            (1, 11, "hisflow::missing-key"),    // nor `needed`
            (11, 16, "hisflow::invalid-value"), // txt
            (12, 22, "hisflow::misplaced-key"), // `of` on text
            (13, 16, "hisflow::missing-key"),   // a list without `of`
            (16, 6, "hisflow::invalid-value"),  // n: many
            (17, 6, "hisflow::invalid-value"),  // b: 'yes'
            (18, 6, "hisflow::invalid-value"),  // l: single
            (19, 6, "hisflow::missing-key"),    // r lacks label
            (19, 17, "hisflow::unknown-field"), // lable
            (20, 6, "hisflow::invalid-value"),  // d: soon
            (21, 6, "hisflow::invalid-value"),  // e: [a]
        ],
        "{found:#?}"
    );
}

#[test]
fn expressions_read_settings_as_declared() {
    let found = platform_with(
        "declare:\n  settings:\n    codes: { type: list, of: { type: record, fields: { code: integer, label: text } }, default: [] }\n    mode: { type: enum, values: [fast, safe], default: safe }\n",
        "workflow: w\nstart: pick\nstates:\n  pick:\n    choice:\n      - when: platform.codes.exists(r, r.lable == 'x')\n        next: done\n      - when: platform.mode == 'fats' || platform.modes == 'fast'\n        next: done\n    otherwise: done\n  done: { respond: { ok: {} } }\n",
    );
    let at: Vec<(&str, u64, u64, &str)> = found
        .iter()
        .map(|(f, l, c, code)| (f.as_str(), *l, *c, code.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            ("w.yaml", 6, 42, "hisflow::unknown-field"),
            ("w.yaml", 8, 32, "hisflow::unknown-value"),
            ("w.yaml", 8, 51, "hisflow::unknown-field"),
        ],
        "{found:#?}"
    );
}

/// The docs list exactly the functions the validator accepts, and each
/// works: its example gives what the docs say, through the engine's CEL.
/// `UPDATE_DOCS=1` rewrites the table from the catalog.
#[test]
fn the_documented_functions_are_the_ones_that_work() {
    use hisflow::workflow::functions::{FUNCTIONS, MACROS, table};
    let path = root().join("docs/workflow-language.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let open =
        "<!-- functions: generated from src/workflow/functions.rs, checked by tests/valid.rs -->\n";
    let (head, rest) = doc.split_once(open).expect("the functions table's markers");
    let (written, tail) = rest.split_once("<!-- /functions -->").expect("its end");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(
            &path,
            format!("{head}{open}{}<!-- /functions -->{tail}", table()),
        )
        .unwrap();
    } else {
        assert_eq!(
            written,
            table(),
            "docs/workflow-language.md's function table is stale: UPDATE_DOCS=1 cargo test --test valid"
        );
    }
    let env = hisflow::workflow::expr::env().clone();
    for f in FUNCTIONS {
        let check = format!("({}) == ({})", f.example, f.gives);
        let program = env
            .compile(&check)
            .unwrap_or_else(|e| panic!("{check}: {e:?}"));
        let ctx = cel::Context::with_env(env.clone());
        assert_eq!(
            program.execute(&ctx),
            Ok(cel::Value::Bool(true)),
            "{} does not give {}",
            f.example,
            f.gives
        );
    }
    // And the validator takes every example, macros included.
    let mut guards: Vec<String> = FUNCTIONS
        .iter()
        .map(|f| format!("({}) == ({})", f.example, f.gives))
        .collect();
    guards.extend(MACROS.iter().map(|(_, e, _)| format!("dyn({e}) != null")));
    let when: String = guards.join(" && ").replace('\'', "''");
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        format!("workflow: w\ninput: {{ reason: {{ type: string }} }}\nstart: a\nstates:\n  a:\n    choice:\n      - when: '{when}'\n        next: b\n    otherwise: b\n  b: {{ respond: {{ ok: {{}} }} }}\n"),
    )
    .unwrap();
    let report = hisflow::validate_paths(&[d.path().join("w.yaml")]).unwrap();
    assert!(!report.diagnostics.has_errors(), "{:?}", report.diagnostics);
}

/// What HIS tells an agent reads as plain sentences: a switch's or an
/// inner workflow's message is never nested in brackets inside another, and
/// a message that ends with one ends the sentence.
#[test]
fn messages_to_the_agent_nest_no_message_in_brackets() {
    let mut checked = 0;
    for dir in std::fs::read_dir(common::root().join("workflows")).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let Some(msg) = line.trim().strip_prefix("message:") else {
                    continue;
                };
                let msg = msg.trim().trim_matches('"');
                checked += 1;
                let at = format!("{}:{}", f.display(), i + 1);
                assert!(!msg.contains("(${error.message})"), "{at}: {msg}");
                if let Some(rest) = msg.split("${error.message}").nth(1) {
                    assert!(
                        rest.starts_with('.') || rest.starts_with(" You"),
                        "{at}: the sentence with the switch's message must end there: {msg}"
                    );
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} messages found");
}
