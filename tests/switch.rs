//! The simulated switch in its own process (`hisflow switch`) and the HIS
//! nodes that drive it over its WebSocket (`adapter: { kind: sim, url }`):
//! what HIS does reaches the switch, what the switch does reaches every
//! node, and a switch that goes away and comes back is followed.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::SinkExt;
use hisflow::platform::sim::remote::RemoteSim;
use hisflow::platform::sim::{SimSwitch, SwitchState};
use hisflow::platform::{Adapter, EventSink, OpResult, Operation, SwitchEvent};
use hisflow::server::switch;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::direct::Direct;
use common::process::{Spawned, block_on, http_get, serve};
use common::ws::Client;

/// HIS on the switch at `addr`, with `more` configuration.
fn his_on(addr: &str, more: &str) -> Spawned {
    serve(
        &format!("adapter: {{ kind: sim, url: \"ws://{addr}/switch\" }}\n{more}"),
        "info",
    )
}

#[test]
fn his_drives_the_switch_process_and_the_switch_agrees() {
    let sw = common::process::switch(None, "127.0.0.1:0");
    // The switch HIS drives by url has its own description.
    let his = his_on(&sw.addr, "switch: { reason_codes: { logout: [Nope] } }\n");
    assert!(
        his.logs().iter().any(|l| l["fields"]["switch"]
            .as_str()
            .is_some_and(|s| s.contains(&sw.addr))),
        "HIS says which switch it drives: {:?}",
        his.logs()
    );
    assert!(
        his.logs().iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("`switch:` is not used"))),
        "{:?}",
        his.logs()
    );
    block_on(async {
        let mut c = Client::new(&his.addr).await;
        let mut s = Direct::open(&sw.addr).await;
        c.login("a1", &["voice", "email"]).await;
        assert_eq!(s.state("a1", "voice").await, "NotReady");
        let (_, r) = c
            .request("channel.request.ready", json!({ "channel": "voice" }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(s.state("a1", "voice").await, "Ready");
        let (_, r) = c
            .request(
                "channel.request.notReady",
                json!({ "channel": "voice", "reason": "Break" }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(s.state("a1", "voice").await, "NotReady");
        // A control HIS takes for its agent is the switch's: the fault
        // armed through HIS is the one the switch lists for a1.
        let (_, r) = c
            .request(
                "sim.request.fault",
                json!({ "op": "agent.set_ready", "effect": { "error": { "code": "InvalidState", "message": "not now" } } }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        let listed = s.control("a1", "sim.request.faults", json!({})).await;
        assert_eq!(listed["ok"]["faults"][0]["agent"], "a1", "{listed}");
        let (_, r) = c.request("sim.request.clearFaults", json!({})).await;
        assert_eq!(
            r,
            json!({ "type": "response", "id": r["id"], "ok": true, "result": { "cleared": 1 } })
        );
        let (_, r) = c
            .request("session.request.logout", json!({ "reason": "Lunch" }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(s.state("a1", "voice").await, "LoggedOff");
        assert_eq!(s.state("a1", "email").await, "LoggedOff");
    });
}

#[test]
fn a_forced_logout_at_the_switch_reaches_the_mediabar_through_his() {
    let sw = common::process::switch(None, "127.0.0.1:0");
    let his = his_on(&sw.addr, "");
    block_on(async {
        let mut c = Client::new(&his.addr).await;
        c.login("a1", &["voice"]).await;
        let mut s = Direct::open(&sw.addr).await;
        let r = s
            .control(
                "a1",
                "sim.request.forceLogout",
                json!({ "reason": "Shift over" }),
            )
            .await;
        assert_eq!(r, json!({ "id": 1, "ok": {} }));
        assert_eq!(
            c.closed().await,
            (
                1000,
                "Logged out by the switch (supervisor): Shift over".to_string()
            )
        );
    });
}

#[test]
fn two_his_nodes_on_one_switch_both_hear_its_events() {
    let sw = common::process::switch(None, "127.0.0.1:0");
    let one = his_on(&sw.addr, "");
    let two = his_on(&sw.addr, "");
    block_on(async {
        let mut a = Client::new(&one.addr).await;
        a.login("a1", &["voice"]).await;
        let mut b = Client::new(&two.addr).await;
        b.login("b1", &["voice"]).await;
        // An event for every agent: both nodes hear it.
        let mut s = Direct::open(&sw.addr).await;
        s.control(
            "-",
            "sim.request.linkDown",
            json!({ "reason": "maintenance" }),
        )
        .await;
        for c in [&mut a, &mut b] {
            let e = c.pushed().await;
            assert_eq!(e["name"], "session.event.switchUnavailable", "{e}");
            assert_eq!(e["data"]["reason"], "maintenance", "{e}");
        }
        s.control("-", "sim.request.linkUp", json!({})).await;
        for c in [&mut a, &mut b] {
            assert_eq!(c.pushed().await["name"], "session.event.switchAvailable");
        }
        // An agent's event: the node that has its session acts on it.
        s.control("b1", "sim.request.forceLogout", json!({})).await;
        assert_eq!(b.closed().await.0, 1000);
        let (_, r) = a
            .request("channel.request.ready", json!({ "channel": "voice" }))
            .await;
        assert_eq!(r["ok"], true, "a1 is still logged in: {r}");
        // The node without b1's session heard of its logout too, and
        // dropped it.
        let dropped = || {
            one.logs().iter().any(|l| {
                l["fields"]["message"] == "switch event for an agent without a session dropped"
                    && l["fields"]["agent"]
                        .as_str()
                        .is_some_and(|a| a.contains("b1"))
            })
        };
        for _ in 0..50 {
            if dropped() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(dropped(), "{:?}", one.logs());
    });
}

#[test]
fn his_follows_a_switch_that_crashes_and_comes_back() {
    let mut sw = common::process::switch(None, "127.0.0.1:0");
    let port = sw.port();
    let his = his_on(&sw.addr, "");
    let readyz = || block_on(http_get(&his.addr, "/readyz"));
    assert!(readyz().starts_with("HTTP/1.1 200"), "{}", readyz());
    block_on(async {
        let mut c = Client::new(&his.addr).await;
        c.login("a1", &["voice"]).await;
        sw.kill();
        let e = c.pushed().await;
        assert_eq!(e["name"], "session.event.switchUnavailable", "{e}");
        assert!(
            e["data"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("closed") || r.contains("failed")),
            "{e}"
        );
        let r = http_get(&his.addr, "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        let (_, r) = c
            .request("channel.request.ready", json!({ "channel": "voice" }))
            .await;
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["code"], "ReadyFailed", "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("ws://127.0.0.1:{port}/switch"))
                && message.contains("cannot be reached"),
            "the agent reads why: {r}"
        );
        // The switch starts again where it was, fresh: HIS connects again
        // by itself, reads the agent's channels, finds it logged out, and
        // says so.
        sw = common::process::switch(None, &format!("127.0.0.1:{port}"));
        let e = c.pushed().await;
        assert_eq!(e["name"], "session.event.switchAvailable", "{e}");
        let r = http_get(&his.addr, "/readyz").await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        let (code, reason) = c.closed().await;
        assert_eq!(
            (code, reason.as_str()),
            (
                1000,
                "Logged out by the switch while HIS could not reach it."
            )
        );
        let mut again = Client::new(&his.addr).await;
        again.login("a1", &["voice"]).await;
        let mut s = Direct::open(&sw.addr).await;
        assert_eq!(s.state("a1", "voice").await, "NotReady");
    });
    let downs: Vec<Value> = his
        .logs()
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("simulated switch"))
        })
        .collect();
    assert_eq!(
        downs.len(),
        2,
        "one line when it goes, one when it is back: {downs:#?}"
    );
}

#[test]
fn serve_refuses_to_start_when_its_switch_does_not_answer() {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("his.yaml");
    let url = format!("ws://127.0.0.1:{port}/switch");
    let serve = |text: String| {
        std::fs::write(&cfg, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_hisflow"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    let out = serve(format!(
        "listen: 127.0.0.1:0\nadapter: {{ kind: sim, url: \"{url}\" }}\n"
    ));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the simulated switch at {url} cannot be reached"))
            && err.contains("hisflow switch"),
        "{err}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it gave the switch a few seconds"
    );
    for (adapter, said) in [
        ("{ kind: sim, url: \"http://x/switch\" }", "ws://"),
        ("{ kind: sim, uri: \"ws://x/switch\" }", "uri"),
    ] {
        let out = serve(format!("listen: 127.0.0.1:0\nadapter: {adapter}\n"));
        assert_eq!(out.status.code(), Some(2), "{adapter}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{adapter}: {err}");
    }
}

#[test]
fn the_switch_reads_serves_configuration_and_doctor_reaches_it() {
    let d = tempfile::tempdir().unwrap();
    let config = "switch:\n  reason_codes:\n    logout: [Lunch, Home]\n";
    let mut sw = common::process::switch(Some(config), "127.0.0.1:0");
    let cfg = d.path().join("his.yaml");
    let url = format!("ws://{}/switch", sw.addr);
    std::fs::write(&cfg, format!("adapter: {{ kind: sim, url: \"{url}\" }}\n")).unwrap();
    let doctor = || {
        Command::new(env!("CARGO_BIN_EXE_hisflow"))
            .args(["doctor", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = doctor();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "ok    switch: the simulated switch at {url} answers (2 logout reason codes)"
        )),
        "{said}"
    );
    sw.kill();
    let out = doctor();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "FAIL  switch: the simulated switch at {url} cannot be reached"
        )),
        "{said}"
    );
}

#[test]
fn the_switch_stays_on_loopback_unless_allowed_and_stops_on_sigterm() {
    let help = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["switch", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("[default: 127.0.0.1:7412]"), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["switch", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loopback") && err.contains("--allow-remote"),
        "{err}"
    );
    let mut sw = Spawned::start(
        &["switch", "--listen", "0.0.0.0:0", "--allow-remote"],
        "info",
    );
    assert!(
        sw.logs().iter().any(|l| l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("off loopback"))),
        "{:?}",
        sw.logs()
    );
    let listening = sw
        .logs()
        .into_iter()
        .find(|l| l["fields"]["message"] == "switch listening")
        .unwrap();
    assert!(
        listening["fields"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/switch")
    );
    let local = format!("127.0.0.1:{}", sw.port());
    block_on(async {
        let mut s = Direct::open(&local).await;
        assert_eq!(s.state("a1", "voice").await, "LoggedOff");
        sw.signal("-TERM");
        assert_eq!(
            s.closed().await,
            (1001, "the switch is stopping".to_string())
        );
    });
    assert_eq!(sw.exit_code(), Some(0));
}

#[test]
fn the_switch_answers_what_is_no_request_and_refuses_web_pages() {
    let sw = common::process::switch(None, "127.0.0.1:0");
    block_on(async {
        let mut s = Direct::open(&sw.addr).await;
        // Without an id nothing can be answered: the switch logs it and
        // reads on.
        s.send_raw("not json").await;
        s.ws.send(Message::Binary(vec![1, 2, 3].into()))
            .await
            .unwrap();
        s.send_raw(r#"{"id": 9, "call": {"agent": "a1"}}"#).await;
        let r = s.reply(9).await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains("`op`"),
            "{r}"
        );
        s.send_raw(r#"{"id": 10, "call": {"agent": "a1", "op": {"op": "agent.lunch"}}}"#)
            .await;
        let r = s.reply(10).await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
        let r = s.control("a1", "sim.request.lunch", json!({})).await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
        // A refusal of the switch is the operation's error.
        let r = s
            .call("a1", json!({ "op": "agent.set_ready", "channel": "voice" }))
            .await;
        assert_eq!(r["error"]["code"], "AgentNotLoggedIn", "{r}");
        let r = s
            .call("a1", json!({ "op": "agent.login", "channel": "voice" }))
            .await;
        assert_eq!(r, json!({ "id": 3, "ok": null }));
        let r = s
            .call(
                "a1",
                json!({ "op": "agent.reason_codes", "category": "logout" }),
            )
            .await;
        assert_eq!(
            r["ok"],
            json!(["End of shift", "Lunch", "Meeting", "Training"])
        );
        // The sender of a frame over the limit is closed.
        s.send_raw(&format!(
            r#"{{"id": 1, "pad": "{}"}}"#,
            "x".repeat(70 * 1024)
        ))
        .await;
        assert_eq!(s.closed().await.0, 1009);
        // A web page may not open the switch's WebSocket.
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("ws://{}/switch", sw.addr),
            )
            .unwrap();
        req.headers_mut()
            .insert("Origin", "https://example.com".parse().unwrap());
        let refused = tokio_tungstenite::connect_async(req).await.unwrap_err();
        assert!(refused.to_string().contains("403"), "{refused}");
    });
}

/// What a sink was given.
fn recording(adapter: &dyn Adapter) -> Arc<Mutex<Vec<SwitchEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    adapter.subscribe(EventSink::new(move |e| into.lock().unwrap().push(e)));
    seen
}

fn interactions(seen: &Mutex<Vec<SwitchEvent>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|e| e.name == "interaction.event.started")
        .map(|e| e.text("interaction").unwrap().to_string())
        .collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_adapter_hears_every_event_in_order_and_the_link_is_followed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn(switch::serve(
        listener,
        SimSwitch::new(SwitchState::default()),
        switch::Settings::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let url = format!("ws://{addr}/switch");
    let within = Duration::from_secs(2);
    let one = RemoteSim::connect(&url, within).await.unwrap();
    let two = RemoteSim::connect(&url, within).await.unwrap();
    let (heard_one, heard_two) = (recording(&one), recording(&two));
    assert_eq!((one.kind(), one.reachable()), ("sim", Some(true)));

    // What `one` causes, both hear, in the switch's order; and `one` hears
    // an event before the reply to the control that caused it.
    one.call(
        "a1",
        &Operation::Login {
            channel: "voice".into(),
        },
    )
    .wait()
    .await
    .unwrap();
    let controls = one.controls().unwrap();
    let ids: Vec<String> = (0..30).map(|i| format!("c{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let r = controls
            .control(
                "a1",
                "sim.request.startInteraction",
                &json!({ "channel": "voice", "id": id }),
            )
            .wait()
            .await
            .unwrap();
        assert_eq!(r, json!({ "interaction": id }));
        assert_eq!(interactions(&heard_one).len(), i + 1);
    }
    until("two hears them all", || {
        interactions(&heard_two).len() == ids.len()
    })
    .await;
    assert_eq!(interactions(&heard_one), ids);
    assert_eq!(interactions(&heard_two), ids);
    let report = two
        .call(
            "a1",
            &Operation::State {
                channel: "voice".into(),
            },
        )
        .wait()
        .await
        .unwrap();
    let OpResult::State(report) = report else {
        panic!("{report:?}")
    };
    assert_eq!(report.interactions, ids);
    // A storm: requests at once, their answers and events crossing; both
    // adapters hear the events in the one order the switch made them.
    one.call(
        "a1",
        &Operation::Login {
            channel: "email".into(),
        },
    )
    .wait()
    .await
    .unwrap();
    let storm = (0..500).map(|i| {
        controls
            .control(
                "a1",
                "sim.request.startInteraction",
                &json!({ "channel": "email", "id": format!("m{i}") }),
            )
            .wait()
    });
    for answer in futures_util::future::join_all(storm).await {
        answer.unwrap();
    }
    let all = ids.len() + 500;
    until("two hears the storm", || {
        interactions(&heard_two).len() == all
    })
    .await;
    assert_eq!(interactions(&heard_one).len(), all);
    assert_eq!(interactions(&heard_one), interactions(&heard_two));

    // A call the switch holds fails when the switch goes away; later ones
    // fail at once; both adapters say the link is down, once.
    controls
        .control(
            "a1",
            "sim.request.latency",
            &json!({ "op": "agent.set_ready", "delay": "30s" }),
        )
        .wait()
        .await
        .unwrap();
    let held = one.call("a1", &Operation::SetReady { channel: None });
    stop.send(()).unwrap();
    first.await.unwrap().unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(5), held.wait())
        .await
        .expect("the held call fails when the switch goes")
        .unwrap_err();
    assert_eq!(failed.code, "SwitchUnavailable", "{failed:?}");
    for (adapter, heard) in [(&one, &heard_one), (&two, &heard_two)] {
        until("the link is down", || adapter.reachable() == Some(false)).await;
        let downs: Vec<SwitchEvent> = heard
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name.starts_with("link."))
            .cloned()
            .collect();
        assert_eq!(downs.len(), 1, "{downs:?}");
        assert_eq!(downs[0].agent, None);
        assert_eq!(downs[0].name, "link.event.down");
        assert!(
            downs[0]
                .text("reason")
                .unwrap()
                .contains("the switch is stopping"),
            "{downs:?}"
        );
        let hisflow::platform::Reply::Ready(Err(e)) = adapter.call(
            "a1",
            &Operation::State {
                channel: "voice".into(),
            },
        ) else {
            panic!("a call fails at once while the link is down")
        };
        assert_eq!(e.code, "SwitchUnavailable");
        assert!(e.message.contains(&url), "{e:?}");
    }

    // A switch at the same address again: both adapters find it by
    // themselves.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(switch::serve(
        listener,
        SimSwitch::new(SwitchState::default()),
        switch::Settings::default(),
        std::future::pending(),
    ));
    for (adapter, heard) in [(&one, &heard_one), (&two, &heard_two)] {
        until("the link is back", || adapter.reachable() == Some(true)).await;
        until("link.event.up is heard", || {
            heard
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.name == "link.event.up")
        })
        .await;
        let codes = adapter
            .call(
                "a1",
                &Operation::ReasonCodes {
                    category: "logout".into(),
                },
            )
            .wait()
            .await
            .unwrap();
        assert_eq!(codes, OpResult::List(Vec::new()));
    }
}

#[tokio::test]
async fn a_client_holds_at_most_1024_unanswered_operations() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(switch::serve(
        listener,
        SimSwitch::new(SwitchState::default()),
        switch::Settings::default(),
        std::future::pending(),
    ));
    let mut s = Direct::open(&addr).await;
    s.call("a1", json!({ "op": "agent.login", "channel": "voice" }))
        .await;
    s.control(
        "a1",
        "sim.request.latency",
        json!({ "op": "agent.set_ready", "delay": "30s" }),
    )
    .await;
    let held = switch::MAX_IN_FLIGHT as u64;
    for id in 100..100 + held + 1 {
        let frame =
            json!({ "id": id, "call": { "agent": "a1", "op": { "op": "agent.set_ready" } } });
        s.send_raw(&frame.to_string()).await;
    }
    let r = s.reply(100 + held).await;
    assert_eq!(r["error"]["code"], "Busy", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("1024"),
        "{r}"
    );
}
