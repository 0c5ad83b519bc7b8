//! The interpreter against the simulated switch, driven directly.

mod common;

use std::sync::Arc;

use common::{root, rt};
use std::collections::VecDeque;

use hisflow::engine::{Engine, Interaction, NoObserver, Response, Session, Trace, TraceEntry};
use hisflow::platform::SwitchEvent;
use hisflow::platform::sim::{Fault, FaultEffect, SimSwitch, SwitchState};
use serde_json::json;

fn engine(platform: &str, sim: Arc<SimSwitch>) -> Engine {
    let (p, _) = hisflow::load_platform(&root().join("workflows").join(platform)).unwrap();
    Engine::new(Arc::new(p), sim)
}

fn sim() -> Arc<SimSwitch> {
    let mut state = SwitchState::default();
    state
        .reason_codes
        .insert("logout".into(), vec!["Lunch".into(), "End of shift".into()]);
    state
        .reason_codes
        .insert("not_ready".into(), vec!["Break".into(), "Logout".into()]);
    Arc::new(SimSwitch::new(state))
}

/// An engine on a folder of `files` (name, text) whose logout request runs
/// workflow `w`; the folder lives as long as the returned guard.
fn engine_of(files: &[(&str, &str)]) -> (tempfile::TempDir, Engine) {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    let platform = logout_by_w(d.path());
    let e = Engine::new(Arc::new(platform), sim());
    (d, e)
}

/// A sim platform whose logout request runs workflow `w`, from the workflow
/// files of `dir`, which must validate clean.
fn logout_by_w(dir: &std::path::Path) -> hisflow::Platform {
    let report = hisflow::validate_paths(&[dir.to_path_buf()]).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    hisflow::Platform {
        name: "t".into(),
        description: None,
        dir: dir.to_path_buf(),
        ancestors: vec![],
        adapter: "sim".into(),
        switch: None,
        lacks: vec![],
        settings: Default::default(),
        declared: Default::default(),
        error_codes: Default::default(),
        requests: [("session.request.logout".to_string(), "w".to_string())]
            .into_iter()
            .collect(),
        events: Default::default(),
        workflows: report
            .workflows
            .into_iter()
            .map(|w| (w.name.clone(), w))
            .collect(),
        machines: report.machines,
    }
}

async fn login(e: &Engine, s: &mut Session) {
    let out = e
        .handle(
            "session.request.login",
            &json!({"agent": "a1", "channels": ["voice", "email", "chat"]}),
            s,
            &mut NoObserver,
        )
        .await;
    assert!(out.response.is_ok(), "{:?}", out.response);
}

#[test]
fn login_then_logout_with_a_reason_disposes_everything_in_order() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        login(&e, &mut s).await;
        assert_eq!(s.logout_reasons, ["Lunch", "End of shift"]);
        assert_eq!(s.channels.len(), 3);
        for ch in ["voice", "email"] {
            let out = e
                .handle(
                    "channel.request.ready",
                    &json!({"channel": ch}),
                    &mut s,
                    &mut NoObserver,
                )
                .await;
            assert!(out.response.is_ok(), "{:?}", out.response);
        }
        let out = e
            .handle(
                "session.request.logout",
                &json!({}),
                &mut s,
                &mut NoObserver,
            )
            .await;
        match &out.response {
            Response::NeedInfo { field, choices, .. } => {
                assert_eq!(field, "reason");
                assert_eq!(choices, &json!(["Lunch", "End of shift"]));
            }
            other => panic!("expected NeedInfo, got {other:?}"),
        }
        assert!(out.events.is_empty());
        let mut trace = Trace::default();
        let out = e
            .handle(
                "session.request.logout",
                &json!({"reason": "Lunch"}),
                &mut s,
                &mut trace,
            )
            .await;
        assert!(
            out.response.close() == Some("logged out"),
            "{:?}",
            out.response
        );
        let names: Vec<&str> = out.events.iter().map(|e| &*e.name).collect();
        assert_eq!(
            names,
            [
                "channel.event.stateChanged",
                "channel.event.stateChanged",
                "channel.event.deactivated",
                "channel.event.deactivated",
                "channel.event.deactivated",
                "channel.event.disposed",
                "channel.event.disposed",
                "channel.event.disposed",
                "channelGroup.event.disposed",
                "session.event.disposed"
            ]
        );
        assert!(s.disposed && s.channels.is_empty() && !s.group);
        let a = &sim.state().agents["a1"];
        assert!(!a.logged_in);
        assert_eq!(a.logout_reason.as_deref(), Some("Lunch"));
        assert!(
            trace
                .entries
                .iter()
                .any(|t| matches!(t, TraceEntry::Operation { op, .. } if op == "agent.logout"))
        );
    });
}

#[test]
fn ef2_not_ready_failure_on_the_second_ready_channel_keeps_the_first() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        login(&e, &mut s).await;
        for ch in ["voice", "email", "chat"] {
            e.handle(
                "channel.request.ready",
                &json!({"channel": ch}),
                &mut s,
                &mut NoObserver,
            )
            .await;
        }
        sim.inject(Fault {
            agent: None,
            op: "agent.set_not_ready".into(),
            channel: None,
            call: Some(2),
            effect: FaultEffect::Error {
                code: "InvalidState".into(),
                message: "agent is reserved".into(),
            },
        });
        let out = e
            .handle(
                "session.request.logout",
                &json!({"reason": "Lunch"}),
                &mut s,
                &mut NoObserver,
            )
            .await;
        match &out.response {
            Response::Error { code, message } => {
                assert_eq!(code, "NotReadyFailed");
                assert!(
                    message.contains("email") && message.contains("reserved"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        let a = &sim.state().agents["a1"];
        assert!(a.logged_in);
        assert_eq!(a.channels["voice"].state, "NotReady");
        assert_eq!(a.channels["email"].state, "Ready");
        assert_eq!(a.channels["chat"].state, "Ready");
        assert_eq!(s.channel("voice").unwrap().state, "NotReady");
        assert!(!s.disposed);
    });
}

#[test]
fn ef1_an_interaction_changes_nothing() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        login(&e, &mut s).await;
        s.channel_mut("email")
            .unwrap()
            .interactions
            .push(Interaction {
                id: "m1".into(),
                media: "email".into(),
            });
        let before = sim.state();
        let out = e
            .handle(
                "session.request.logout",
                &json!({"reason": "Lunch"}),
                &mut s,
                &mut NoObserver,
            )
            .await;
        assert!(
            matches!(&out.response, Response::Error { code, .. } if code == "OngoingInteraction"),
            "{:?}",
            out.response
        );
        assert!(out.events.is_empty());
        assert_eq!(sim.state(), before);
    });
}

#[test]
fn a_switch_that_never_answers_times_out() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        login(&e, &mut s).await;
        sim.inject(Fault { agent: None, op: "agent.set_ready".into(), channel: Some("voice".into()), call: None, effect: FaultEffect::Timeout });
        let out = e.handle("channel.request.ready", &json!({"channel": "voice"}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "ReadyFailed" && message.contains("did not answer")), "{:?}", out.response);
    });
}

#[test]
fn bad_params_are_refused_before_anything_runs() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        let out = e.handle("session.request.login", &json!({"agent": 5, "channels": []}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, .. } if code == "InvalidRequest"));
        let out = e.handle("session.request.logout", &json!({"reson": "x"}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "InvalidRequest" && message.contains("reson")));
        // A 64 KB reason, or 1,000 channels, never reach a workflow.
        let out = e.handle("session.request.logout", &json!({"reason": "x".repeat(65_536)}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "InvalidRequest" && message.contains("65536 characters; at most 256")), "{:?}", out.response);
        let many: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
        let out = e.handle("session.request.login", &json!({"agent": "a1", "channels": many}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "InvalidRequest" && message.contains("1000 items; at most 32")), "{:?}", out.response);
        // Limits an operator sets.
        let tight = engine("reference", sim.clone()).with_param_limits(hisflow::engine::ParamLimits { text: 8, list: 2 });
        let out = tight.handle("session.request.logout", &json!({"reason": "End of shift"}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "InvalidRequest" && message.contains("12 characters; at most 8")), "{:?}", out.response);
        let out = tight.handle("session.request.login", &json!({"agent": "a1", "channels": ["voice", "email", "chat"]}), &mut s, &mut NoObserver).await;
        assert!(matches!(&out.response, Response::Error { code, message } if code == "InvalidRequest" && message.contains("3 items; at most 2")), "{:?}", out.response);
        assert!(sim.calls().is_empty());
    });
}

mod misbehaving {
    use super::*;
    use hisflow::engine::Channel;
    use hisflow::platform::{Adapter, Operation, Reply};

    struct Panics;
    impl Adapter for Panics {
        fn kind(&self) -> &str {
            "sim"
        }
        fn call(&self, _: &str, _: &Operation) -> Reply {
            panic!("adapter bug")
        }
    }

    struct PanicsLater;
    impl Adapter for PanicsLater {
        fn kind(&self) -> &str {
            "sim"
        }
        fn call(&self, _: &str, _: &Operation) -> Reply {
            Reply::Pending(Box::pin(async { panic!("adapter bug, later") }))
        }
    }

    struct Silent;
    impl Adapter for Silent {
        fn kind(&self) -> &str {
            "sim"
        }
        fn call(&self, _: &str, _: &Operation) -> Reply {
            Reply::Pending(Box::pin(std::future::pending()))
        }
    }

    /// Answers everything with no data, `agent.state` included.
    struct Dataless;
    impl Adapter for Dataless {
        fn kind(&self) -> &str {
            "sim"
        }
        fn call(&self, _: &str, op: &Operation) -> Reply {
            Reply::Ready(Ok(match op {
                Operation::ReasonCodes { .. } => hisflow::platform::OpResult::List(vec![]),
                _ => hisflow::platform::OpResult::Done,
            }))
        }
    }

    #[test]
    fn an_adapter_that_answers_a_read_without_its_data_fails_the_login_clearly() {
        let (p, _) = hisflow::load_platform(&root().join("workflows/reference")).unwrap();
        let e = Engine::new(Arc::new(p), Arc::new(Dataless));
        let mut s = e.new_session("s1", "a1");
        let r = rt()
            .block_on(e.handle(
                "session.request.login",
                &json!({"agent": "a1", "channels": ["voice"]}),
                &mut s,
                &mut NoObserver,
            ))
            .response;
        assert!(
            matches!(&r, Response::Error { code, message } if code == "LoginFailed" && message.contains("answered `agent.state` without its data")),
            "{r:?}"
        );
        assert!(s.channels.is_empty(), "what the login opened is undone");
    }

    fn session() -> Session {
        let mut s = Session::new("s1", "a1");
        s.channels.push(Channel {
            id: "voice".into(),
            media: "voice".into(),
            state: "NotReady".into(),
            active: true,
            interactions: vec![],
        });
        s
    }

    fn ready_with(adapter: Arc<dyn Adapter>) -> Response {
        let (p, _) = hisflow::load_platform(&root().join("workflows/reference")).unwrap();
        let e = Engine::new(Arc::new(p), adapter);
        let mut s = session();
        rt().block_on(e.handle(
            "channel.request.ready",
            &json!({"channel": "voice"}),
            &mut s,
            &mut NoObserver,
        ))
        .response
    }

    #[test]
    fn an_adapter_that_panics_costs_the_request_an_error_not_the_engine() {
        let r = ready_with(Arc::new(Panics));
        assert!(
            matches!(&r, Response::Error { code, message } if code == "ReadyFailed" && message.contains("adapter failed")),
            "{r:?}"
        );
        let r = ready_with(Arc::new(PanicsLater));
        assert!(
            matches!(&r, Response::Error { code, message } if code == "ReadyFailed" && message.contains("adapter failed")),
            "{r:?}"
        );
    }

    #[test]
    fn an_adapter_that_never_answers_times_out() {
        let r = ready_with(Arc::new(Silent));
        assert!(
            matches!(&r, Response::Error { code, message } if code == "ReadyFailed" && message.contains("did not answer agent.set_ready within 5s")),
            "{r:?}"
        );
    }
}

#[test]
fn an_argument_that_cannot_be_evaluated_ends_the_request_before_the_switch() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        "workflow: w\ninput:\n  reason: { type: string, required: false }\nstart: a\nstates:\n  a:\n    op: agent.logout\n    args: { reason: \"request.reason + '!'\" }\n    on: { ok: done }\n    otherwise: failed\n  done:\n    respond: { ok: {} }\n  failed:\n    respond: { error: { code: LogoutFailed, message: no } }\n",
    )
    .unwrap();
    let platform = logout_by_w(d.path());
    let sim = sim();
    let e = Engine::new(Arc::new(platform), sim.clone());
    let mut s = Session::new("s1", "a1");
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Error { code, message } if code == "Internal" && message.contains("request.reason")),
        "{:?}",
        out.response
    );
    assert!(sim.calls().is_empty(), "the switch was called");
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({"reason": "x"}),
        &mut s,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Error { code, .. } if code == "LogoutFailed"),
        "{:?}",
        out.response
    );
    assert_eq!(sim.calls()[0].outcome, "error AgentNotLoggedIn");
}

#[test]
fn a_fault_in_a_called_workflow_ends_the_whole_request_not_the_callers_error_path() {
    let (_d, e) = engine_of(&[
        (
            "w.yaml",
            "workflow: w\nstart: a\nstates:\n  a:\n    call: v\n    on: { ok: done }\n    otherwise: refused\n  done:\n    respond: { ok: {} }\n  refused:\n    respond: { error: { code: LogoutFailed, message: the caller's error path } }\n",
        ),
        (
            "v.yaml",
            "workflow: v\ninput:\n  x: { type: string, required: false }\nstart: a\nstates:\n  a:\n    choice:\n      - when: request.x == 'y'\n        next: done\n    otherwise: done\n  done:\n    respond: { ok: {} }\n",
        ),
    ]);
    let mut s = Session::new("s1", "a1");
    let mut trace = Trace::default();
    let out = rt().block_on(e.handle("session.request.logout", &json!({}), &mut s, &mut trace));
    assert!(
        matches!(&out.response, Response::Error { code, message } if code == "Internal" && message.contains("request.x")),
        "{:?}",
        out.response
    );
    let finished = trace
        .entries
        .iter()
        .filter(|t| matches!(t, TraceEntry::RunFinished { .. }))
        .count();
    assert_eq!(finished, 2, "both runs end, each once");
}

fn event(name: &str, data: serde_json::Value) -> SwitchEvent {
    SwitchEvent::new(Some("a1"), name, data)
}

/// A workflow that waits for an email's interaction, then for a logout; and
/// a channel machine whose guard fails on a state that is not a number.
fn waiting() -> (tempfile::TempDir, Engine) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        r#"workflow: w
start: first
states:
  first:
    wait: interaction.event.started
    when: event.channel == 'email'
    timeout: 2s
    on: { received: second, timeout: late }
  second:
    wait: agent.event.loggedOut
    timeout: 2s
    on: { received: done, timeout: late }
  done:
    respond:
      ok:
        result: { got: event.name, cause: "has(event.cause) ? event.cause : ''" }
  late:
    respond: { error: { code: Timeout, message: late } }
"#,
    )
    .unwrap();
    std::fs::write(
        d.path().join("m.yaml"),
        r#"machine: m
entity: channel
initial: LoggedOff
on:
  agent.event.stateChanged:
    - when: event.state == 'Talking'
      to: "${'Nowhere'}"
    - when: int(event.state) > 0
      to: Ready
  agent.set_ready:
    when: int(event.channel) > 0
    to: Ready
  agent.logout: LoggedOff
states:
  LoggedOff: {}
  Ready: {}
"#,
    )
    .unwrap();
    // The session machine decides on the session as it was before the
    // trigger, though the channels' machine hears the same one.
    std::fs::write(
        d.path().join("s.yaml"),
        r#"machine: s
entity: session
initial: Open
on:
  agent.logout:
    - when: session.channels.exists(c, c.state == 'Ready')
      to: WasReady
    - to: WasNot
states:
  Open: {}
  WasReady: {}
  WasNot: {}
"#,
    )
    .unwrap();
    std::fs::write(
        d.path().join("r.yaml"),
        "workflow: r\ninput:\n  op: { type: string, required: true }\nstart: which\nstates:\n  which:\n    choice:\n      - when: request.op == 'ready'\n        next: ready\n    otherwise: out\n  ready:\n    op: agent.set_ready\n    args: { channel: \"'voice'\" }\n    next: done\n    otherwise: done\n  out:\n    op: agent.logout\n    next: done\n    otherwise: done\n  done:\n    respond: { ok: {} }\n",
    )
    .unwrap();
    let platform = logout_by_w(d.path());
    let e = Engine::new(Arc::new(platform), sim());
    (d, e)
}

#[test]
fn a_wait_takes_its_event_and_leaves_the_others_in_order() {
    let (_d, e) = waiting();
    let mut inbox: VecDeque<SwitchEvent> = [
        event("agent.event.loggedOut", json!({ "cause": "supervisor" })),
        event(
            "interaction.event.started",
            json!({ "channel": "voice", "interaction": "c1" }),
        ),
        event(
            "interaction.event.started",
            json!({ "channel": "email", "interaction": "m1" }),
        ),
        event(
            "interaction.event.ended",
            json!({ "channel": "email", "interaction": "m1" }),
        ),
    ]
    .into();
    let mut s = Session::new("s1", "a1");
    let out = rt().block_on(e.handle_with(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut inbox,
        &mut NoObserver,
    ));
    assert_eq!(
        out.response,
        Response::Ok {
            result: json!({ "got": "agent.event.loggedOut", "cause": "supervisor" }),
            close: None
        },
        "the second wait took the event the first one left"
    );
    let left: Vec<(&str, Option<&str>)> = out
        .deferred
        .iter()
        .map(|e| (&*e.name, e.text("channel")))
        .collect();
    assert_eq!(left, [("interaction.event.started", Some("voice"))]);
    assert_eq!(inbox.len(), 1, "what came after stays queued");
}

#[test]
fn a_wait_times_out_when_its_event_does_not_come() {
    let (_d, e) = waiting();
    let mut inbox: VecDeque<SwitchEvent> = [event(
        "interaction.event.started",
        json!({ "channel": "voice", "interaction": "c1" }),
    )]
    .into();
    let mut s = Session::new("s1", "a1");
    let rt = rt();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let out = rt.block_on(e.handle_with(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut inbox,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Error { code, .. } if code == "Timeout"),
        "{:?}",
        out.response
    );
    let waited = rt.block_on(async { started.elapsed() });
    assert_eq!(waited, std::time::Duration::from_secs(2));
    assert_eq!(out.deferred.len(), 1);
}

/// A switch event for the session, outside any request.
async fn told(e: &Engine, s: &mut Session, state: &str) -> hisflow::engine::Outcome {
    let ev = event(
        "agent.event.stateChanged",
        json!({ "channel": "voice", "state": state }),
    );
    e.event(&ev, s, &mut VecDeque::new(), &mut NoObserver).await
}

#[test]
fn a_machine_fault_ends_the_request_naming_the_machine() {
    let (_d, e) = waiting();
    let mut s = Session::new("s1", "a1");
    rt().block_on(async {
        assert_eq!(
            told(&e, &mut s, "Ready").await.response,
            Response::ok(),
            "no channel, no machine instance to hear it"
        );
        s.channels.push(voice("LoggedOff"));
        let out = told(&e, &mut s, "Ready").await;
        assert!(
            matches!(&out.response, Response::Error { code, message } if code == "Internal" && message.contains("machine `m`") && message.contains("int(event.state)")),
            "{:?}",
            out.response
        );
        assert_eq!(s.channels[0].state, "LoggedOff", "nothing changed");

        // A computed target the machine has no state for: logged, not taken.
        assert_eq!(told(&e, &mut s, "Talking").await.response, Response::ok());
        assert_eq!(s.channels[0].state, "LoggedOff");

        // In a request, a machine's fault ends the request with Internal.
        let _ = hisflow::platform::Adapter::call(
            e.adapter().as_ref(),
            "a1",
            &hisflow::platform::Operation::Login {
                channel: "voice".into(),
            },
        );
        let r = e.platform().workflow("r").unwrap().clone();
        let out = e
            .run(&r, &json!({ "op": "ready" }), &mut s, &mut NoObserver)
            .await;
        assert!(
            matches!(&out.response, Response::Error { code, message } if code == "Internal" && message.contains("int(event.channel)")),
            "{:?}",
            out.response
        );
    });
}

#[test]
fn machines_that_hear_one_trigger_decide_on_the_session_as_it_was() {
    let (_d, e) = waiting();
    let sim = sim();
    let e = Engine::new(e.platform().clone(), sim.clone());
    rt().block_on(async {
        let mut s = e.new_session("s1", "a1");
        assert_eq!(s.state.as_deref(), Some("Open"));
        s.channels.push(voice("Ready"));
        let _ = hisflow::platform::Adapter::call(
            sim.as_ref(),
            "a1",
            &hisflow::platform::Operation::Login {
                channel: "voice".into(),
            },
        );
        let r = e.platform().workflow("r").unwrap().clone();
        let out = e
            .run(&r, &json!({ "op": "out" }), &mut s, &mut NoObserver)
            .await;
        assert!(out.response.is_ok(), "{:?}", out.response);
        assert_eq!(
            s.channels[0].state, "LoggedOff",
            "the channel heard the logout"
        );
        assert_eq!(
            s.state.as_deref(),
            Some("WasReady"),
            "the session decided on the channel as it was before"
        );
    });
}

/// A channel machine that takes any state the switch reports, and a workflow
/// waiting for voice to be Ready.
fn mirror() -> (tempfile::TempDir, Engine) {
    engine_of(&[
        (
            "m.yaml",
            "machine: m\nentity: channel\ninitial: LoggedOff\non:\n  agent.event.stateChanged: ${event.state}\nstates:\n  LoggedOff: {}\n  NotReady: {}\n  Ready: {}\n  Reserved: {}\n  Talking: {}\n  WorkingAfterCall: {}\n",
        ),
        (
            "w.yaml",
            "workflow: w\nstart: await\nstates:\n  await:\n    wait: agent.event.stateChanged\n    when: \"event.channel == 'voice' && event.state == 'Ready' && int(has(event.reason) ? event.reason : '1') > 0\"\n    timeout: 2s\n    on: { received: done, timeout: late }\n  done:\n    respond: { ok: {} }\n  late:\n    respond: { error: { code: Timeout, message: late } }\n",
        ),
    ])
}

fn voice(state: &str) -> hisflow::engine::Channel {
    hisflow::engine::Channel {
        id: "voice".into(),
        media: "voice".into(),
        state: state.to_string().into(),
        active: true,
        interactions: vec![],
    }
}

fn changed(state: &str, reason: Option<&str>) -> SwitchEvent {
    event(
        "agent.event.stateChanged",
        json!({ "channel": "voice", "state": state, "reason": reason }),
    )
}

#[test]
fn while_a_request_waits_the_machines_hear_every_event_in_order() {
    let (_d, e) = mirror();
    let mut s = Session::new("s1", "a1");
    s.channels.push(voice("NotReady"));
    let mut inbox: VecDeque<SwitchEvent> = [
        changed("Reserved", None),
        changed("Ready", None),
        changed("Talking", None),
    ]
    .into();
    let out = rt().block_on(e.handle_with(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut inbox,
        &mut NoObserver,
    ));
    assert!(out.response.is_ok(), "{:?}", out.response);
    assert_eq!(
        s.channels[0].state, "Ready",
        "Reserved, then Ready: the switch's order, not the wait's"
    );
    let left: Vec<Option<&str>> = out.deferred.iter().map(|e| e.text("state")).collect();
    assert_eq!(
        left,
        [Some("Reserved")],
        "left for its workflow, heard already"
    );
    assert_eq!(inbox.len(), 1, "Talking was not taken from the queue");
}

#[test]
fn an_event_a_failing_guard_was_checking_is_kept() {
    let (_d, e) = mirror();
    let mut s = Session::new("s1", "a1");
    s.channels.push(voice("NotReady"));
    let mut inbox: VecDeque<SwitchEvent> = [changed("Ready", Some("not a number"))].into();
    let out = rt().block_on(e.handle_with(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut inbox,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Error { code, .. } if code == "Internal"),
        "{:?}",
        out.response
    );
    assert_eq!(out.deferred.len(), 1, "the event outlives the fault");
}

#[test]
fn a_storm_during_a_wait_keeps_no_more_than_the_queue_holds() {
    /// A queue of 10,000 events with room for 16.
    struct Small(VecDeque<SwitchEvent>);
    impl hisflow::engine::Inbox for Small {
        fn next(
            &mut self,
            deadline: tokio::time::Instant,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<SwitchEvent>> + Send + '_>>
        {
            self.0.next(deadline)
        }
        fn limit(&self) -> usize {
            16
        }
    }
    let (_d, e) = mirror();
    let mut s = Session::new("s1", "a1");
    s.channels.push(voice("NotReady"));
    let storm = (0..10_000).map(|i| changed(if i % 2 == 0 { "Talking" } else { "NotReady" }, None));
    let mut inbox = Small(storm.collect());
    let out = rt().block_on(e.handle_with(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut inbox,
        &mut NoObserver,
    ));
    assert!(matches!(&out.response, Response::Error { code, .. } if code == "Timeout"));
    assert_eq!(out.deferred.len(), 16);
}

#[test]
fn variables_start_at_their_initial_values_and_a_set_reads_them_as_they_were() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        "workflow: w\nvars:\n  n: { initial: \"0\" }\n  log: { initial: \"''\" }\n  why: {}\nstart: count\nstates:\n  count:\n    set:\n      n: vars.n + 1\n      log: vars.log + string(vars.n)\n    choice:\n      - when: vars.n < 3\n        next: count\n    otherwise: try\n  try:\n    op: agent.logout\n    on: { ok: done }\n    otherwise: failed\n  done:\n    respond: { ok: { result: { n: vars.n, log: vars.log } } }\n  failed:\n    set: { why: error.message }\n    respond: { error: { code: LogoutFailed, message: \"${vars.why} after ${vars.log}\" } }\n",
    )
    .unwrap();
    let sim = sim();
    let e = Engine::new(Arc::new(logout_by_w(d.path())), sim.clone());
    let mut s = Session::new("s1", "a1");
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut NoObserver,
    ));
    // The agent is not logged in, so the logout fails: the error path reads
    // a variable set on entering its own state.
    assert!(
        matches!(&out.response, Response::Error { code, message } if code == "LogoutFailed" && message.ends_with(" after 012")),
        "{:?}",
        out.response
    );
    // Logged in at the switch, so the next logout succeeds.
    let login = hisflow::platform::Operation::Login {
        channel: "voice".into(),
    };
    assert!(matches!(
        hisflow::platform::Adapter::call(sim.as_ref(), "a1", &login),
        hisflow::platform::Reply::Ready(Ok(_))
    ));
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Ok { result, .. } if result == &json!({"n": 3, "log": "012"})),
        "{:?}",
        out.response
    );
}

#[test]
fn a_workflow_that_loops_ends_the_request_naming_where_and_the_session_goes_on() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        "workflow: w\ninput:\n  reason: { type: string, required: false }\nstart: a\nstates:\n  a:\n    choice:\n      - when: has(request.reason)\n        next: done\n    otherwise: b\n  b:\n    choice:\n      - when: size(session.channels) > 99\n        next: done\n    otherwise: a\n  done:\n    respond: { ok: {} }\n",
    )
    .unwrap();
    let e = Engine::new(Arc::new(logout_by_w(d.path())), sim()).with_step_budget(50);
    let mut s = Session::new("s1", "a1");
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({}),
        &mut s,
        &mut NoObserver,
    ));
    assert!(
        matches!(&out.response, Response::Error { code, message } if code == "Internal"
            && message.contains("entered 50 states")
            && message.contains("workflow `w` loops through state `")),
        "{:?}",
        out.response
    );
    // The same session takes the next request.
    let out = rt().block_on(e.handle(
        "session.request.logout",
        &json!({"reason": "x"}),
        &mut s,
        &mut NoObserver,
    ));
    assert!(out.response.is_ok(), "{:?}", out.response);
}

#[test]
fn an_expression_over_too_much_of_the_switchs_data_ends_the_request_at_its_budget() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("w.yaml"),
        "workflow: w\nstart: get\nstates:\n  get:\n    op: agent.reason_codes\n    args: { category: \"'logout'\" }\n    save: logout_reasons\n    on: { ok: pairs }\n    otherwise: done\n  pairs:\n    choice:\n      - when: session.logout_reasons.all(a, session.logout_reasons.all(b, a != '' && b != ''))\n        next: done\n    otherwise: done\n  done:\n    respond: { ok: {} }\n",
    )
    .unwrap();
    let run = |reasons: usize, budget: usize| {
        let mut state = SwitchState::default();
        state.reason_codes.insert(
            "logout".into(),
            (0..reasons).map(|i| format!("reason {i}")).collect(),
        );
        let e = Engine::new(
            Arc::new(logout_by_w(d.path())),
            Arc::new(SimSwitch::new(state)),
        )
        .with_eval_budget(budget);
        let mut s = Session::new("s1", "a1");
        rt().block_on(e.handle(
            "session.request.logout",
            &json!({}),
            &mut s,
            &mut NoObserver,
        ))
        .response
    };
    let default = hisflow::workflow::record::EVAL_BUDGET;
    // 200 reasons, paired: 40,200 items visited, within the budget.
    assert!(run(200, default).is_ok(), "{:?}", run(200, default));
    // 400: 160,400, over it; the request ends naming the expression.
    let over = run(400, default);
    assert!(
        matches!(&over, Response::Error { code, message } if code == "Internal"
            && message.contains("visits more than 100000 list items")
            && message.contains("session.logout_reasons.all(")),
        "{over:?}"
    );
    // An operator's tighter budget.
    let over = run(200, 30_000);
    assert!(
        matches!(&over, Response::Error { message, .. } if message.contains("more than 30000 list items")),
        "{over:?}"
    );
}

/// Records the durations the engine gives.
#[derive(Default)]
struct Durations {
    operations: Vec<(String, std::time::Duration)>,
    runs: Vec<std::time::Duration>,
}

impl hisflow::engine::Observer for Durations {
    fn operation(
        &mut self,
        op: &str,
        _args: &dyn cel::common::value::Val,
        _outcome: &str,
        _failure: Option<&hisflow::engine::Failure>,
        elapsed: std::time::Duration,
    ) {
        self.operations.push((op.to_string(), elapsed));
    }
    fn run_finished(
        &mut self,
        _w: &hisflow::workflow::model::Workflow,
        _r: &Response,
        elapsed: std::time::Duration,
    ) {
        self.runs.push(elapsed);
    }
}

#[test]
fn an_observer_that_reads_durations_gets_them_even_beside_one_that_does_not() {
    rt().block_on(async {
        let sim = sim();
        let e = engine("reference", sim.clone());
        let mut s = Session::new("s1", "a1");
        login(&e, &mut s).await;
        // Timed, a run and an operation take some time; untimed, zero.
        let zero = std::time::Duration::ZERO;
        // `NoObserver` reads no durations: the pair must still time for the other.
        let mut obs = hisflow::engine::Both(NoObserver, Durations::default());
        let out = e
            .handle(
                "session.request.logout",
                &json!({"reason": "Lunch"}),
                &mut s,
                &mut obs,
            )
            .await;
        assert!(out.response.is_ok(), "{:?}", out.response);
        let d = obs.1;
        let logout = d.operations.iter().find(|(op, _)| op == "agent.logout");
        assert!(logout.is_some_and(|(_, t)| *t > zero), "{:?}", d.operations);
        // The logout workflow, which waited on the switch, is the last to finish.
        assert!(d.runs.last().is_some_and(|t| *t > zero), "{:?}", d.runs);
    });
}
