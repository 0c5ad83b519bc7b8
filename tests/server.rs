//! HIS over a real WebSocket: a server on an ephemeral port, real clients.

mod common;

use std::time::Duration;

use common::ws::{Client, names, start};
use hisflow::server::config;
use serde_json::json;

#[tokio::test]
async fn the_basic_flow_logs_out_disposes_in_order_and_closes() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    let login = c.login("agent-1", &["voice", "email", "chat"]).await;
    assert_eq!(
        login["result"]["logout_reasons"],
        json!(["End of shift", "Lunch", "Meeting", "Training"])
    );
    assert!(
        login["result"]["token"]
            .as_str()
            .is_some_and(|t| t.len() == 32)
    );
    assert_eq!(login["result"]["channels"].as_array().unwrap().len(), 3);
    let (events, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true);
    assert_eq!(names(&events), ["channel.event.stateChanged"]);

    // AF1: no reason → NeedInfo with the reasons collected at login
    let (events, r) = c.request("session.request.logout", json!({})).await;
    assert!(events.is_empty());
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["code"], "NeedInfo");
    assert_eq!(r["error"]["need"]["field"], "reason");
    assert_eq!(
        r["error"]["need"]["choices"],
        json!(["End of shift", "Lunch", "Meeting", "Training"])
    );

    let (events, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        names(&events),
        [
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
    assert_eq!(c.closed().await, (1000, "logged out".to_string()));

    // the agent can log in again
    let mut again = Client::new(&addr).await;
    again.login("agent-1", &["voice"]).await;
}

#[tokio::test]
async fn ef1_via_the_simulator_changes_nothing_and_keeps_the_connection() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice", "email"]).await;
    let (events, r) = c
        .request(
            "sim.request.startInteraction",
            json!({ "channel": "email", "id": "mail-1" }),
        )
        .await;
    assert_eq!(r["ok"], true);
    assert!(events.is_empty(), "the switch's event comes on its own");
    let e = c.pushed().await;
    assert_eq!(e["name"], "channel.event.interactionStarted");
    assert_eq!(
        e["data"],
        json!({ "channel": "email", "interaction": "mail-1" })
    );
    let (events, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert!(events.is_empty());
    assert_eq!(r["error"]["code"], "OngoingInteraction");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interaction is in progress")
    );
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "the session is still usable");
    c.request("sim.request.endInteraction", json!({ "channel": "email" }))
        .await;
    let (_, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true);
}

#[tokio::test]
async fn ef2_and_ef3_via_faults_leave_the_agent_logged_in() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice", "email", "chat"]).await;
    for ch in ["voice", "email", "chat"] {
        c.request("channel.request.ready", json!({ "channel": ch }))
            .await;
    }
    c.request("sim.request.fault", json!({ "op": "agent.set_not_ready", "call": 2, "effect": { "error": { "code": "InvalidState", "message": "reserved" } } })).await;
    let (events, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["error"]["code"], "NotReadyFailed");
    assert_eq!(names(&events), ["channel.event.stateChanged"]);

    c.request("sim.request.fault", json!({ "op": "channel.deactivate", "call": 2, "effect": { "error": { "code": "InvalidState", "message": "routing" } } })).await;
    let (_, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["error"]["code"], "DeactivationFailed", "{r}");
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "chat" }))
        .await;
    assert_eq!(r["ok"], true, "still logged in: {r}");
}

#[tokio::test]
async fn profiles_without_reasons_or_deactivation() {
    let addr = start("twilio-taskrouter").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "no reason needed: {r}");

    // Communication Manager's codes are numbers on the switch, names in HIS.
    let addr = start("avaya-cm").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    let (_, r) = c
        .request("channel.request.deactivate", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["error"]["code"], "NotSupported");
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["error"]["code"], "NeedInfo");
    let (events, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(!names(&events).contains(&"channel.event.deactivated"));
}

#[tokio::test]
async fn bad_frames_get_invalid_request_and_the_connection_stays_usable() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    for bad in [
        "not json",
        "[1,2]",
        r#"{"type":"request","name":"x"}"#,
        r#"{"type":"request","id":"a","params":{}}"#,
        r#"{"type":"request","id":"b","name":"session.request.login","params":"x"}"#,
    ] {
        c.send_raw(bad).await;
        let (_, r) = c.recv_until_response().await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{bad} → {r}");
    }
    let (_, r) = c.request("channel.request.frobnicate", json!({})).await;
    assert_eq!(r["error"]["code"], "InvalidRequest");
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["error"]["code"], "NotLoggedIn");
    let (_, r) = c
        .request(
            "session.request.login",
            json!({ "agent": 5, "channels": ["voice"] }),
        )
        .await;
    assert_eq!(r["error"]["code"], "InvalidRequest");
    let (_, r) = c
        .request(
            "session.request.login",
            json!({ "agent": "a", "channels": "voice" }),
        )
        .await;
    assert_eq!(r["error"]["code"], "InvalidRequest");
    c.login("a", &["voice"]).await;
    let (_, r) = c
        .request("session.request.logout", json!({ "reason": 7 }))
        .await;
    assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_with_a_reason() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.send_raw(&"x".repeat(5000)).await;
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1009);
    assert!(reason.contains("over the limit"), "{reason}");
}

#[tokio::test]
async fn a_second_request_of_one_connection_while_the_first_runs_is_answered_busy() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    a.login("agent-1", &["voice"]).await;
    a.request(
        "sim.request.latency",
        json!({ "op": "agent.logout", "delay": "1s" }),
    )
    .await;
    // A double click: both frames leave before any answer comes.
    for id in ["first", "second"] {
        a.send_raw(&json!({ "type": "request", "id": id, "name": "session.request.logout", "params": { "reason": "Lunch" } }).to_string()).await;
    }
    let (_, r) = a.recv_until_response().await;
    assert_eq!(r["id"], "second", "the second is answered at once: {r}");
    assert_eq!(r["error"]["code"], "Busy", "{r}");
    let (_, r) = a.recv_until_response().await;
    assert_eq!(r["id"], "first");
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_client_that_drops_mid_logout_still_gets_the_logout_done() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    let token = a.login_token("agent-1", &["voice"]).await;
    a.request(
        "sim.request.latency",
        json!({ "op": "agent.logout", "delay": "300ms" }),
    )
    .await;
    a.send_raw(&json!({ "type": "request", "id": "x", "name": "session.request.logout", "params": { "reason": "Lunch" } }).to_string()).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // the logout ran to its end: the session is gone, the agent may log in again
    let mut b = Client::new(&addr).await;
    let (_, r) = b
        .request("session.request.resume", json!({ "token": token }))
        .await;
    assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
    b.login("agent-1", &["voice"]).await;
}

#[test]
fn the_builtin_platform_is_the_reference_folder() {
    let mut on_disk: Vec<String> = std::fs::read_dir(common::root().join("workflows/reference"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut built_in: Vec<String> = config::embedded_files().map(String::from).collect();
    built_in.sort();
    assert_eq!(built_in, on_disk);
}

#[tokio::test]
async fn a_forced_logout_disposes_in_the_seeds_order_and_closes_with_a_reason() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice", "email", "chat"]).await;
    let (events, r) = c
        .request("sim.request.forceLogout", json!({ "reason": "Shift over" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(events.is_empty());
    let mut pushed = Vec::new();
    for _ in 0..5 {
        pushed.push(c.pushed().await);
    }
    assert_eq!(
        names(&pushed),
        [
            "channel.event.disposed",
            "channel.event.disposed",
            "channel.event.disposed",
            "channelGroup.event.disposed",
            "session.event.disposed"
        ]
    );
    assert_eq!(pushed[0]["data"]["channel"], "voice");
    assert_eq!(pushed[4]["data"]["cause"], "supervisor");
    assert_eq!(
        c.closed().await,
        (
            1000,
            "Logged out by the switch (supervisor): Shift over".to_string()
        )
    );
    // The switch logged the agent out: a new login is a new session.
    let mut again = Client::new(&addr).await;
    again.login("agent-1", &["voice"]).await;
}

#[tokio::test]
async fn a_switch_event_arriving_while_a_logout_runs_waits_for_it() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice", "email"]).await;
    c.request(
        "sim.request.latency",
        json!({ "op": "channel.deactivate", "delay": "500ms" }),
    )
    .await;
    c.send_raw(
        &json!({ "type": "request", "id": "bye", "name": "session.request.logout", "params": { "reason": "Lunch" } })
            .to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The switch offers a call while the logout is deactivating channels.
    c.send_raw(
        &json!({ "type": "request", "id": "talk", "name": "sim.request.setState", "params": { "channel": "voice", "state": "Talking" } })
            .to_string(),
    )
    .await;
    let mut frames = Vec::new();
    loop {
        let (events, response) = c.recv_until_response().await;
        frames.extend(events);
        let id = response["id"].as_str().unwrap().to_string();
        assert_eq!(response["ok"], true, "{response}");
        frames.push(response);
        if id == "bye" {
            break;
        }
    }
    let order: Vec<String> = frames
        .iter()
        .map(|f| match f["type"].as_str().unwrap() {
            "event" => f["name"].as_str().unwrap().to_string(),
            _ => format!("response {}", f["id"].as_str().unwrap()),
        })
        .collect();
    assert_eq!(
        order,
        [
            "response talk",
            "channel.event.deactivated",
            "channel.event.deactivated",
            "channel.event.disposed",
            "channel.event.disposed",
            "channelGroup.event.disposed",
            "session.event.disposed",
            "response bye"
        ],
        "the switch's event neither interleaves with the logout nor outlives the session"
    );
    assert_eq!(c.closed().await, (1000, "logged out".to_string()));
}

#[tokio::test]
async fn a_client_that_sends_faster_than_it_reads_gets_every_response() {
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    // 3,000 requests, none of their answers read until all are sent: HIS
    // stops reading the client rather than lose what it owes it.
    let n = 3000;
    let sender = tokio::spawn(async move {
        for i in 0..n {
            let (name, params) = if i % 2 == 0 {
                (
                    "sim.request.startInteraction",
                    json!({ "channel": "voice", "id": format!("c{i}") }),
                )
            } else {
                (
                    "sim.request.endInteraction",
                    json!({ "channel": "voice", "id": format!("c{}", i - 1) }),
                )
            };
            c.send_raw(&json!({ "type": "request", "id": format!("p{i}"), "name": name, "params": params }).to_string())
                .await;
        }
        c
    });
    let mut c = sender.await.unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut events = 0;
    while ids.len() < n {
        let (e, response) = c.recv_until_response().await;
        events += e.len();
        assert_eq!(response["ok"], true, "{response}");
        assert!(
            ids.insert(response["id"].as_str().unwrap().to_string()),
            "one response per request: {response}"
        );
    }
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "the connection is still usable: {r}");
    assert!(events > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_after_its_events_does_not_wait_for_the_clients_ack() {
    // With Nagle's algorithm on the server's socket, the response frame
    // after an event frame waits for the client's delayed ACK: ~40 ms a
    // request on Linux. Twenty such requests would take 800 ms or more.
    let addr = start("reference").await;
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    let started = std::time::Instant::now();
    for i in 0..20 {
        let name = if i % 2 == 0 {
            "channel.request.ready"
        } else {
            "channel.request.notReady"
        };
        let (events, r) = c.request(name, json!({ "channel": "voice" })).await;
        assert_eq!(r["ok"], true, "{r}");
        assert!(!events.is_empty(), "an event-bearing response");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(400),
        "20 event-bearing round trips took {took:?}: frames wait for ACKs"
    );
}

#[tokio::test]
async fn the_simulators_controls_are_off_unless_asked_for_and_then_each_agent_has_its_own() {
    // Off by default: a client cannot arm faults or start calls.
    let plain = common::ws::serve_exactly(
        "reference",
        hisflow::server::config::default_switch(),
        hisflow::his::Options::default(),
    )
    .await;
    let mut c = Client::new(&plain.addr).await;
    c.login("agent-1", &["voice"]).await;
    let (_, r) = c
        .request(
            "sim.request.fault",
            json!({ "op": "agent.logout", "effect": "timeout" }),
        )
        .await;
    assert_eq!(r["error"]["code"], "NotSupported", "{r}");
    assert!(plain.sim.faults_of("agent-1").is_empty());

    // On: a fault is the caller's alone, listed and cleared by it, and a
    // dropped switch is nobody's to arm.
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    a.login("agent-1", &["voice"]).await;
    let mut b = Client::new(&addr).await;
    b.login("agent-2", &["voice"]).await;
    let (_, r) = a
        .request(
            "sim.request.fault",
            json!({ "op": "agent.logout", "effect": { "error": { "code": "InvalidState", "message": "agent-1's fault" } } }),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let (_, r) = a
        .request(
            "sim.request.fault",
            json!({ "op": "agent.logout", "effect": "disconnect" }),
        )
        .await;
    assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
    let (_, r) = b
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "agent-2 is not hit by agent-1's fault: {r}");
    let (_, r) = a.request("sim.request.faults", json!({})).await;
    assert_eq!(
        r["result"]["faults"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    let (_, r) = a.request("sim.request.clearFaults", json!({})).await;
    assert_eq!(r["result"]["cleared"], 1, "{r}");
    let (_, r) = a
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_open_the_websocket() {
    use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
    let (addr, _his) = common::ws::serve_settings(hisflow::server::Settings {
        allowed_origins: vec!["https://crm.example.com".into()],
        ..Default::default()
    })
    .await;
    let open = |origin: Option<String>| {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    match open(Some("http://evil.example".into())).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    // A page whose name was rebound to this machine: agents are not
    // authenticated here, so HIS answers only to its loopback names.
    let mut rebound = format!("ws://{addr}/ws").into_client_request().unwrap();
    rebound
        .headers_mut()
        .insert("Host", "evil.example:7411".parse().unwrap());
    rebound
        .headers_mut()
        .insert("Origin", "http://evil.example:7411".parse().unwrap());
    match tokio_tungstenite::connect_async(rebound).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    // HIS's own page, a configured origin, and a client that is no browser.
    for origin in [
        Some(format!("http://{addr}")),
        Some("https://crm.example.com".into()),
        None,
    ] {
        assert!(open(origin.clone()).await.is_ok(), "{origin:?}");
    }
}

#[tokio::test]
async fn silent_clients_are_dropped_and_past_the_cap_none_is_held() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, _his) = common::ws::serve_settings(hisflow::server::Settings {
        max_connections: 3,
        header_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    // Two clients that send half a request head and then nothing.
    let mut silent = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        silent.push(s);
    }
    // The third place is a MediaBar's; a fourth connection is closed at once.
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), over.read(&mut buf))
        .await
        .expect("closed at once, not held")
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection over the cap is closed");
    // The silent ones are dropped once the head's time is up: their places
    // are free again.
    for s in &mut silent {
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("dropped after the header timeout")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
    let mut again = Client::new(&addr).await;
    again.login("agent-2", &["voice"]).await;
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_client_that_answers_nothing_is_closed_and_its_session_waits() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, his) = common::ws::serve_settings(hisflow::server::Settings {
        idle_timeout: std::time::Duration::from_millis(600),
        ..Default::default()
    })
    .await;
    // A client speaking WebSocket by hand, which logs in and then answers
    // nothing, as one whose network is gone.
    let mut dead = tokio::net::TcpStream::connect(&addr).await.unwrap();
    dead.write_all(format!("GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").as_bytes()).await.unwrap();
    let login = br#"{"type":"request","id":"1","name":"session.request.login","params":{"agent":"agent-2","channels":["voice"]}}"#;
    // A masked text frame, as a client must send (mask 0: the payload as is).
    let mut frame = vec![
        0x81,
        0x80 | 126,
        (login.len() >> 8) as u8,
        login.len() as u8,
        0,
        0,
        0,
        0,
    ];
    frame.extend_from_slice(login);
    dead.write_all(&frame).await.unwrap();
    // `live` keeps answering pings (reading answers them) and is not closed.
    let mut live = Client::new(&addr).await;
    live.login("agent-1", &["voice"]).await;
    for _ in 0..6 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let (_, r) = live
            .request("channel.request.ready", json!({ "channel": "voice" }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
    }
    let mut bytes = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(3),
        dead.read_to_end(&mut bytes),
    )
    .await
    .expect("the server closed the connection")
    .unwrap();
    // Its close frame: opcode 8, then the code 1001.
    let close = bytes
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xE9);
    assert!(close, "no close 1001 in {} bytes", bytes.len());
    assert!(String::from_utf8_lossy(&bytes).contains("taken for dead"));
    // Its session waits for a resume, as after any dropped connection.
    assert!(his.settle("agent-2").await.is_some());
}

/// HIS on the reference platform with its switch counted, as `serve` runs
/// it.
async fn metered() -> String {
    use hisflow::his::metrics::{Metered, Metrics};
    use hisflow::his::{His, Options};
    use std::sync::Arc;
    let (p, _) = hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
    let metrics = Metrics::new();
    let switch = Arc::new(hisflow::platform::sim::SimSwitch::new(
        config::default_switch(),
    ));
    let his = His::new(
        Arc::new(p),
        Arc::new(Metered::new(switch, metrics.clone())),
        Options::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(hisflow::server::serve(
        listener,
        his,
        hisflow::server::Settings {
            metrics,
            ..Default::default()
        },
        std::future::pending(),
    ));
    addr
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_for_operators() {
    let addr = metered().await;
    assert_eq!(get(&addr, "/healthz").await, (200, "ok\n".to_string()));
    assert_eq!(get(&addr, "/readyz").await, (200, "ready\n".to_string()));

    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice", "chat"]).await;
    let (_, text) = get(&addr, "/metrics").await;
    assert!(
        text.lines().any(|l| l == "hisflow_connections 1")
            && text.lines().any(|l| l == "hisflow_sessions 1"),
        "{text}"
    );
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["error"]["code"], "NeedInfo");
    // A name nobody handles is counted, but not under its own name.
    let (_, r) = c.request("made.request.up", json!({})).await;
    assert_eq!(r["ok"], false);
    let (_, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");

    let (status, text) = get(&addr, "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "hisflow_sessions 0",
        "hisflow_requests_total{request=\"session.request.login\",outcome=\"ok\"} 1",
        "hisflow_requests_total{request=\"session.request.logout\",outcome=\"NeedInfo\"} 1",
        "hisflow_requests_total{request=\"session.request.logout\",outcome=\"ok\"} 1",
        "hisflow_request_duration_seconds_count{request=\"session.request.logout\"} 2",
        "hisflow_request_duration_seconds_bucket{request=\"session.request.login\",le=\"+Inf\"} 1",
        "hisflow_switch_operations_total{operation=\"agent.login\",outcome=\"ok\"} 2",
        "hisflow_switch_operations_total{operation=\"agent.logout\",outcome=\"ok\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("hisflow_requests_total{request=\"other\"")),
        "{text}"
    );
    assert!(!text.contains("made.request.up"), "{text}");
}
