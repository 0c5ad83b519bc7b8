//! Switch events through HIS, as a connection sees them: events for agents
//! without a session, malformed events, an event storm, and events that
//! arrive while a request runs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use hisflow::his::{Closing, Connection, His, Messages, Options, Out};
use hisflow::platform::SwitchEvent;
use hisflow::platform::sim::SimSwitch;
use hisflow::server::config;
use serde_json::{Value, json};

struct Agent {
    his: Arc<His>,
    sim: Arc<SimSwitch>,
    conn: Connection,
    rx: Messages,
    next: u32,
    /// The session's token, from the login.
    token: String,
}

impl Agent {
    async fn new(limits: Options) -> Agent {
        let (platform, _) =
            hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
        let sim = Arc::new(SimSwitch::new(config::default_switch()));
        let his = His::new(Arc::new(platform), sim.clone(), limits);
        let (conn, rx) = his.connect();
        let mut a = Agent {
            his,
            sim,
            conn,
            rx,
            next: 0,
            token: String::new(),
        };
        let (_, r) = a
            .request(
                "session.request.login",
                json!({ "agent": "agent-1", "channels": ["voice", "email"] }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        a.token = r["result"]["token"].as_str().unwrap().to_string();
        a
    }

    fn send(&mut self, name: &str, params: Value) -> String {
        self.next += 1;
        let id = format!("r{}", self.next);
        self.his.request(&mut self.conn, &id, name, &params);
        id
    }

    /// Everything up to the response to `id`.
    async fn until(&mut self, id: &str) -> (Vec<Out>, Value) {
        let mut before = Vec::new();
        loop {
            let out = tokio::time::timeout(Duration::from_secs(30), self.rx.recv())
                .await
                .expect("a response in time")
                .expect("the connection is open");
            match out {
                Out::Response { id: Some(r), body } if r == id => return (before, body),
                other => before.push(other),
            }
        }
    }

    async fn request(&mut self, name: &str, params: Value) -> (Vec<Out>, Value) {
        let id = self.send(name, params);
        self.until(&id).await
    }

    /// What the connection received once the session handled everything
    /// queued for it.
    async fn pushed(&mut self) -> Vec<Out> {
        self.his.settle("agent-1").await;
        let mut out = Vec::new();
        while let Some(o) = self.rx.try_recv() {
            out.push(o);
        }
        out
    }
}

fn event_names(outs: &[Out]) -> Vec<&str> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(&*e.name),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn events_for_agents_without_a_session_are_dropped() {
    let mut a = Agent::new(Options::default()).await;
    let before = a.his.session_count();
    a.sim.emit(SwitchEvent::new(
        Some("nobody"),
        "agent.event.loggedOut",
        json!({ "cause": "supervisor" }),
    ));
    a.sim.emit(SwitchEvent::new(
        Some("nobody"),
        "interaction.event.started",
        json!({ "channel": "voice", "interaction": "c1" }),
    ));
    assert!(a.pushed().await.is_empty());
    assert_eq!(a.his.session_count(), before);
    let (_, r) = a
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "the session of agent-1 is untouched: {r}");
}

#[tokio::test]
async fn malformed_events_are_dropped_and_change_nothing() {
    let mut a = Agent::new(Options::default()).await;
    let session = a.his.settle("agent-1").await.unwrap();
    for (name, data) in [
        // a field missing
        ("agent.event.stateChanged", json!({ "channel": "voice" })),
        // a field of the wrong type
        (
            "interaction.event.started",
            json!({ "channel": "voice", "interaction": 42 }),
        ),
        // a field the event does not have
        ("agent.event.loggedOut", json!({ "who": "supervisor" })),
        // a state the catalog does not know
        (
            "agent.event.stateChanged",
            json!({ "channel": "voice", "state": "Lunch" }),
        ),
        // not an event at all
        ("agent.event.exploded", json!({})),
    ] {
        a.sim
            .emit(SwitchEvent::new(Some("agent-1"), name, data.clone()));
        assert!(a.pushed().await.is_empty(), "{name} {data}");
    }
    // A link event sent for one agent is malformed too.
    a.sim.emit(SwitchEvent::new(
        Some("agent-1"),
        "link.event.down",
        json!({}),
    ));
    assert!(a.pushed().await.is_empty());
    assert_eq!(a.his.settle("agent-1").await.unwrap(), session);
}

#[tokio::test]
async fn a_storm_of_events_costs_a_bounded_queue() {
    assert_eq!(
        Options::default().max_queued_events,
        1024,
        "as docs/adapters.md says"
    );
    let limits = Options {
        max_queued_events: 64,
        ..Options::default()
    };
    let mut a = Agent::new(limits).await;
    // On this single-threaded runtime the session's task cannot run while
    // the storm is delivered: the queue fills, and the rest are dropped.
    for i in 0..10_000 {
        let state = if i % 2 == 0 { "Reserved" } else { "Ready" };
        a.sim.emit(SwitchEvent::new(
            Some("agent-1"),
            "agent.event.stateChanged",
            json!({ "channel": "voice", "state": state }),
        ));
    }
    let pushed = a.pushed().await;
    let names = event_names(&pushed);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "channel.event.stateChanged")
            .count(),
        64,
        "each queued event changed the state once, and no more were kept"
    );
    // The MediaBar learns that what it shows may no longer be the switch's.
    let Some(Out::Event(lost)) = pushed.first() else {
        panic!("{pushed:?}")
    };
    assert_eq!(lost.name, "session.event.eventsLost");
    assert_eq!(lost.data, json!({ "count": 10_000 - 64 }));
    assert_eq!(names.len(), 65);
    // The session still works, and hears the switch again.
    let (_, r) = a
        .request("channel.request.ready", json!({ "channel": "email" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    a.sim
        .start_interaction("agent-1", "email", "mail-1")
        .unwrap();
    assert_eq!(
        event_names(&a.pushed().await),
        ["channel.event.interactionStarted"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_switch_event_waits_for_the_request_under_way() {
    let mut a = Agent::new(Options::default()).await;
    a.sim.set_latency("agent.set_ready", Duration::from_secs(2));
    let id = a.send("channel.request.ready", json!({ "channel": "voice" }));
    // The request is under way, waiting for the switch's answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.sim.set_active("agent-1", "email", false).unwrap();
    a.sim
        .start_interaction("agent-1", "email", "mail-1")
        .unwrap();
    let (before, r) = a.until(&id).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        event_names(&before),
        ["channel.event.stateChanged"],
        "only the request's own event comes before its response"
    );
    assert_eq!(
        event_names(&a.pushed().await),
        [
            "channel.event.deactivated",
            "channel.event.interactionStarted"
        ],
        "the switch's events follow, in the order they came"
    );
}

#[tokio::test(start_paused = true)]
async fn a_logout_is_never_interleaved_with_the_switch() {
    let mut a = Agent::new(Options::default()).await;
    a.sim
        .set_latency("channel.deactivate", Duration::from_secs(2));
    let id = a.send("session.request.logout", json!({ "reason": "Lunch" }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.sim
        .set_state("agent-1", "voice", "Talking", None)
        .unwrap();
    let (before, r) = a.until(&id).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        event_names(&before),
        [
            "channel.event.deactivated",
            "channel.event.deactivated",
            "channel.event.disposed",
            "channel.event.disposed",
            "channelGroup.event.disposed",
            "session.event.disposed"
        ]
    );
    let after = a.pushed().await;
    assert_eq!(
        after,
        [Out::Close(Closing::Ended("logged out".into()))],
        "the switch's event found no session to change after the logout"
    );
}

#[tokio::test]
async fn a_connection_that_does_not_read_what_the_switch_says_is_closed() {
    let mut a = Agent::new(Options::default()).await;
    // Nobody reads: the switch's events pile up in the connection's outbox.
    for i in 0..1500 {
        let id = format!("c{i}");
        a.sim.start_interaction("agent-1", "voice", &id).unwrap();
        a.sim
            .end_interaction("agent-1", "voice", Some(&id))
            .unwrap();
        if i % 100 == 0 {
            a.his.settle("agent-1").await;
        }
    }
    a.his.settle("agent-1").await;
    let mut got = Vec::new();
    while let Some(o) = a.rx.try_recv() {
        got.push(o);
    }
    assert_eq!(
        got.len(),
        hisflow::his::OUTBOX_CAPACITY + 1,
        "what fitted, then the overflow"
    );
    assert_eq!(got.last(), Some(&Out::Overflow));
}

#[tokio::test]
async fn a_request_queued_as_the_switch_ends_the_session_still_gets_its_response() {
    let mut a = Agent::new(Options::default()).await;
    // The switch's logout is queued first; the request comes right after,
    // before the session ran either.
    a.sim.force_logout("agent-1", None, "supervisor").unwrap();
    let id = a.send("channel.request.ready", json!({ "channel": "voice" }));
    let (before, r) = a.until(&id).await;
    assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
    assert_eq!(
        event_names(&before),
        [
            "channel.event.disposed",
            "channel.event.disposed",
            "channelGroup.event.disposed",
            "session.event.disposed"
        ]
    );
    assert!(
        before.iter().any(|o| matches!(o, Out::Close(_))),
        "the connection was told the session ended"
    );
}

#[tokio::test]
async fn agent_ids_are_text_a_log_can_hold() {
    let mut a = Agent::new(Options::default()).await;
    let (conn, rx) = a.his.connect();
    a.conn = conn;
    a.rx = rx;
    for agent in [
        json!(""),
        json!("evil\nERROR forged"),
        json!("x".repeat(129)),
    ] {
        let (_, r) = a
            .request(
                "session.request.login",
                json!({ "agent": agent, "channels": ["voice"] }),
            )
            .await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{agent}: {r}");
    }
    let (_, r) = a
        .request(
            "session.request.login",
            json!({ "agent": "x".repeat(128), "channels": ["voice"] }),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    // A logged-in connection cannot resume another session.
    let (_, r) = a
        .request("session.request.resume", json!({ "token": "whatever" }))
        .await;
    assert_eq!(r["error"]["code"], "InvalidState", "{r}");
}

#[tokio::test]
async fn events_lost_while_detached_are_reported_to_the_connection_that_resumes() {
    let limits = Options {
        max_queued_events: 8,
        ..Options::default()
    };
    let mut a = Agent::new(limits).await;
    // The MediaBar goes away: its session is detached.
    let (conn, rx) = a.his.connect();
    drop(std::mem::replace(&mut a.conn, conn));
    a.rx = rx;
    a.his.settle("agent-1").await;
    for i in 0..100 {
        let state = if i % 2 == 0 { "Reserved" } else { "Ready" };
        a.sim.emit(SwitchEvent::new(
            Some("agent-1"),
            "agent.event.stateChanged",
            json!({ "channel": "voice", "state": state }),
        ));
    }
    a.his.settle("agent-1").await;
    let token = a.token.clone();
    let (outs, r) = a
        .request("session.request.resume", json!({ "token": token }))
        .await;
    assert!(outs.is_empty(), "{outs:?}");
    assert_eq!(r["result"]["resumed"], true, "{r}");
    let after = a.pushed().await;
    let [Out::Event(lost)] = &after[..] else {
        panic!("the events lost, right after the session: {after:?}")
    };
    assert_eq!(lost.name, "session.event.eventsLost");
    assert_eq!(lost.data, json!({ "count": 100 - 8 }));
}
