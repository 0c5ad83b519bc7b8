//! A session's life beside its connections, over the real WebSocket: resume
//! and takeover, a login racing another, a dropped connection, and the
//! switch's state read back at login.

mod common;

use std::time::Duration;

use common::ws::{Client, serve, start};
use hisflow::his::Options;
use hisflow::server::{TAKEN_OVER, config};
use serde_json::json;

#[tokio::test]
async fn a_resume_takes_the_session_over_and_closes_the_earlier_connection() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    let token = a.login_token("agent-a", &["voice", "chat"]).await;
    a.request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    let mut b = Client::new(&addr).await;
    b.login("agent-b", &["chat"]).await;

    let mut c = Client::new(&addr).await;
    let (_, r) = c
        .request("session.request.resume", json!({ "token": "0000" }))
        .await;
    assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
    let (_, r) = c
        .request("session.request.resume", json!({ "token": token }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let s = &r["result"];
    assert_eq!(s["agent"], "agent-a");
    assert_eq!(s["resumed"], true);
    assert_eq!(s["token"], token.as_str(), "a resume keeps the token");
    assert_eq!(s["channels"][0]["id"], "voice");
    assert_eq!(
        s["channels"][0]["state"], "Ready",
        "the session as it is, not as it began"
    );
    assert_eq!(
        s["logout_reasons"],
        json!(["End of shift", "Lunch", "Meeting", "Training"])
    );

    assert_eq!(
        a.closed().await,
        (
            TAKEN_OVER,
            "The session was resumed on another connection.".to_string()
        )
    );
    // What the switch says now goes to the connection that resumed.
    c.request(
        "sim.request.startInteraction",
        json!({ "channel": "voice", "id": "call-1" }),
    )
    .await;
    assert_eq!(c.pushed().await["name"], "channel.event.interactionStarted");
    c.request("sim.request.endInteraction", json!({ "channel": "voice" }))
        .await;
    assert_eq!(c.pushed().await["name"], "channel.event.interactionEnded");
    let (_, r) = c
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let (_, r) = b
        .request("channel.request.ready", json!({ "channel": "chat" }))
        .await;
    assert_eq!(r["ok"], true, "agent-b is untouched: {r}");
}

#[tokio::test]
async fn a_dropped_connection_leaves_its_session_for_a_new_login_to_take_over() {
    let served = serve("reference", config::default_switch(), Options::default()).await;
    let mut a = Client::new(&served.addr).await;
    let old = a.login_token("agent-1", &["voice", "email"]).await;
    a.request("channel.request.ready", json!({ "channel": "email" }))
        .await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        served.his.session_count(),
        1,
        "the session is detached, not gone"
    );

    let mut b = Client::new(&served.addr).await;
    let r = b.login("agent-1", &["voice"]).await;
    let s = &r["result"];
    assert_eq!(s["resumed"], true, "{r}");
    assert_eq!(
        s["channels"][1]["state"], "Ready",
        "the session goes on as it was: {r}"
    );
    let token = s["token"].as_str().unwrap();
    assert_ne!(token, old, "a takeover by login gives a new token");
    let logins = served
        .sim
        .calls()
        .iter()
        .filter(|c| c.op == "agent.login")
        .count();
    assert_eq!(
        logins,
        2,
        "the switch was not asked again: {:?}",
        served.sim.calls()
    );

    let mut c = Client::new(&served.addr).await;
    let (_, r) = c
        .request("session.request.resume", json!({ "token": old }))
        .await;
    assert_eq!(
        r["error"]["code"], "NotLoggedIn",
        "the old token is void: {r}"
    );
    let (_, r) = b
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(!served.sim.state().agents["agent-1"].logged_in);
}

#[tokio::test]
async fn a_login_while_another_connection_is_live_signs_that_one_out() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    a.login("agent-1", &["voice"]).await;
    let mut b = Client::new(&addr).await;
    let r = b.login("agent-1", &["voice"]).await;
    assert_eq!(r["result"]["resumed"], true, "{r}");
    assert_eq!(
        a.closed().await,
        (
            TAKEN_OVER,
            "You logged in from another MediaBar.".to_string()
        )
    );
    let (_, r) = b
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn of_two_logins_of_one_agent_at_once_exactly_one_reaches_the_switch() {
    let served = serve("reference", config::default_switch(), Options::default()).await;
    served
        .sim
        .set_latency("agent.login", Duration::from_millis(300));
    let mut a = Client::new(&served.addr).await;
    let mut b = Client::new(&served.addr).await;
    let login = |id: &str| {
        json!({ "type": "request", "id": id, "name": "session.request.login", "params": { "agent": "agent-1", "channels": ["voice", "chat"] } })
            .to_string()
    };
    a.send_raw(&login("a")).await;
    b.send_raw(&login("b")).await;
    let (_, ra) = a.recv_until_response().await;
    let (_, rb) = b.recv_until_response().await;
    let (mut winner, won, lost) = if ra["ok"] == true {
        (a, ra, rb)
    } else {
        (b, rb, ra)
    };
    assert_eq!(won["ok"], true, "{won}");
    assert_eq!(lost["error"]["code"], "InvalidState", "{lost}");
    assert!(
        lost["error"]["message"]
            .as_str()
            .unwrap()
            .contains("logging in on another connection"),
        "{lost}"
    );
    let calls: Vec<_> = served
        .sim
        .calls()
        .into_iter()
        .map(|c| (c.op, c.channel))
        .collect();
    assert_eq!(
        calls
            .iter()
            .filter(|(op, _)| *op == "agent.login" || *op == "agent.logout")
            .count(),
        2,
        "one login per channel, no undo: {calls:?}"
    );
    let (_, r) = winner
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "the winner logs out: {r}");
    assert!(!served.sim.state().agents["agent-1"].logged_in);
}

#[tokio::test]
async fn after_a_logout_the_next_login_can_go_ready() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    a.login("agent-1", &["voice", "email"]).await;
    let (_, r) = a
        .request("session.request.logout", json!({ "reason": "Lunch" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let mut b = Client::new(&addr).await;
    let r = b.login("agent-1", &["voice", "email"]).await;
    assert_eq!(r["result"]["channels"][0]["active"], true, "{r}");
    let (_, r) = b
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test]
async fn a_connection_taken_over_gets_not_logged_in_for_what_it_still_sends() {
    let (platform, _) =
        hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
    let his = hisflow::his::His::new(
        std::sync::Arc::new(platform),
        std::sync::Arc::new(hisflow::platform::sim::SimSwitch::new(
            config::default_switch(),
        )),
        Options::default(),
    );
    let (mut a, mut ra) = his.connect();
    let login = json!({ "agent": "agent-1", "channels": ["voice"] });
    his.request(&mut a, "1", "session.request.login", &login);
    let token = loop {
        if let Some(hisflow::his::Out::Response { body, .. }) = ra.recv().await {
            break body["result"]["token"].as_str().unwrap().to_string();
        }
    };
    let (mut b, mut rb) = his.connect();
    his.request(
        &mut b,
        "2",
        "session.request.resume",
        &json!({ "token": token }),
    );
    assert!(matches!(
        rb.recv().await,
        Some(hisflow::his::Out::Response { .. })
    ));
    // The old connection has not read its close yet, and sends on.
    his.request(
        &mut a,
        "3",
        "channel.request.ready",
        &json!({ "channel": "voice" }),
    );
    let mut got = Vec::new();
    while let Some(out) = ra.try_recv() {
        got.push(out);
    }
    assert!(
        matches!(&got[..], [hisflow::his::Out::Close(hisflow::his::Closing::TakenOver(_)), hisflow::his::Out::Response { body, .. }] if body["error"]["code"] == "NotLoggedIn"),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_takeover_lets_the_request_under_way_answer_before_the_close() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    let token = a.login_token("agent-1", &["voice"]).await;
    a.request(
        "sim.request.latency",
        json!({ "op": "agent.set_ready", "delay": "500ms" }),
    )
    .await;
    a.send_raw(&json!({ "type": "request", "id": "go", "name": "channel.request.ready", "params": { "channel": "voice" } }).to_string()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut b = Client::new(&addr).await;
    let (_, r) = b
        .request("session.request.resume", json!({ "token": token }))
        .await;
    assert_eq!(
        r["result"]["channels"][0]["state"], "Ready",
        "after the request: {r}"
    );
    let (_, r) = a.recv_until_response().await;
    assert_eq!(
        (r["id"].clone(), r["ok"].clone()),
        (json!("go"), json!(true)),
        "{r}"
    );
    assert_eq!(a.closed().await.0, TAKEN_OVER);
}

#[tokio::test]
async fn a_resume_during_a_logout_is_answered_then_closed() {
    let addr = start("reference").await;
    let mut a = Client::new(&addr).await;
    let token = a.login_token("agent-1", &["voice"]).await;
    a.request(
        "sim.request.latency",
        json!({ "op": "agent.logout", "delay": "500ms" }),
    )
    .await;
    a.send_raw(&json!({ "type": "request", "id": "bye", "name": "session.request.logout", "params": { "reason": "Lunch" } }).to_string()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut b = Client::new(&addr).await;
    let (_, r) = b
        .request("session.request.resume", json!({ "token": token }))
        .await;
    assert_eq!(
        r["error"]["code"], "NotLoggedIn",
        "the logout ended it: {r}"
    );
    assert_eq!(b.closed().await, (1000, "logged out".to_string()));
    let (_, r) = a.recv_until_response().await;
    assert_eq!(
        (r["id"].clone(), r["ok"].clone()),
        (json!("bye"), json!(true)),
        "{r}"
    );
    assert_eq!(a.closed().await, (1000, "logged out".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_takeovers_each_get_their_answer_and_one_connection_is_left() {
    let addr = start("reference").await;
    let mut first = Client::new(&addr).await;
    let token = first.login_token("agent-1", &["voice"]).await;
    let mut racers = Vec::new();
    for i in 0..10 {
        let addr = addr.clone();
        let token = token.clone();
        racers.push(tokio::spawn(async move {
            let mut c = Client::new(&addr).await;
            let (name, params) = if i % 2 == 0 {
                ("session.request.resume", json!({ "token": token }))
            } else {
                (
                    "session.request.login",
                    json!({ "agent": "agent-1", "channels": ["voice"] }),
                )
            };
            let (_, r) = c.request(name, params).await;
            (c, r)
        }));
    }
    let mut answered = Vec::new();
    for r in racers {
        let (c, r) = r.await.unwrap();
        // A resume that lost to a login finds the token void; every other
        // takeover succeeds — and each is answered.
        assert!(
            r["ok"] == true || r["error"]["code"] == "NotLoggedIn",
            "{r}"
        );
        if r["ok"] == true {
            answered.push(c);
        }
    }
    // Every connection that took the session over but one is closed 4001.
    let mut open = 0;
    for mut c in answered {
        match tokio::time::timeout(Duration::from_millis(500), c.closed()).await {
            Ok((code, _)) => assert_eq!(code, TAKEN_OVER),
            Err(_) => open += 1,
        }
    }
    assert_eq!(open, 1, "one connection speaks for the session");
}
