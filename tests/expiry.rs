//! Sessions left without a connection, on a paused clock: HIS logs the
//! agent out once `detach_grace` has passed, through the platform's logout
//! workflow, and tries again when the switch refused because of a call.

mod common;

use std::sync::Arc;
use std::time::Duration;

use hisflow::his::{Connection, His, Messages, Options, Out};
use hisflow::platform::sim::{SimSwitch, SwitchState};
use hisflow::server::config;
use serde_json::{Value, json};

const GRACE: Duration = Duration::from_secs(120);

struct Desk {
    his: Arc<His>,
    sim: Arc<SimSwitch>,
}

impl Desk {
    fn new(platform: &str, switch: SwitchState, expiry_reason: Option<&str>) -> Desk {
        let (p, _) =
            hisflow::load_platform(&common::root().join("workflows").join(platform)).unwrap();
        let sim = Arc::new(SimSwitch::new(switch));
        // HIS's default grace: GRACE says what it is.
        let options = Options {
            expiry_reason: expiry_reason.map(str::to_string),
            ..Options::default()
        };
        let his = His::new(Arc::new(p), sim.clone(), options);
        Desk { his, sim }
    }

    /// A connection that sent `name` and got its response.
    async fn request(
        &self,
        conn: &mut Connection,
        rx: &mut Messages,
        name: &str,
        params: Value,
    ) -> Value {
        self.his.request(conn, "r", name, &params);
        loop {
            match rx.recv().await.expect("the connection is open") {
                Out::Response { body, .. } => return body,
                _ => continue,
            }
        }
    }

    /// Logs agent-1 in on a new connection, which then goes away.
    async fn login_and_drop(&self, channels: &[&str]) -> String {
        let (mut conn, mut rx) = self.his.connect();
        let r = self
            .request(
                &mut conn,
                &mut rx,
                "session.request.login",
                json!({ "agent": "agent-1", "channels": channels }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        r["result"]["token"].as_str().unwrap().to_string()
    }

    fn logged_in(&self) -> bool {
        self.sim.state().agents["agent-1"].logged_in
    }
}

#[tokio::test(start_paused = true)]
async fn a_session_left_detached_is_logged_out_once_the_grace_has_passed() {
    let desk = Desk::new("reference", config::default_switch(), Some("Lunch"));
    desk.login_and_drop(&["voice", "email"]).await;
    tokio::time::sleep(GRACE - Duration::from_secs(1)).await;
    assert!(desk.his.settle("agent-1").await.is_some());
    assert!(desk.logged_in(), "not before the grace is over");

    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(desk.his.session_count(), 0, "the session is gone");
    let agent = &desk.sim.state().agents["agent-1"];
    assert!(!agent.logged_in, "logged out at the switch");
    assert_eq!(agent.logout_reason.as_deref(), Some("Lunch"));
    assert!(
        agent.channels.values().all(|c| !c.active),
        "the logout workflow ran whole: {agent:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_resume_within_the_grace_keeps_the_session() {
    let desk = Desk::new("reference", config::default_switch(), Some("Lunch"));
    let token = desk.login_and_drop(&["voice"]).await;
    tokio::time::sleep(GRACE / 2).await;
    let (mut conn, mut rx) = desk.his.connect();
    let r = desk
        .request(
            &mut conn,
            &mut rx,
            "session.request.resume",
            json!({ "token": token }),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    tokio::time::sleep(GRACE * 3).await;
    assert!(desk.logged_in(), "an attached session never expires");
    // Dropped again: the grace starts over.
    drop(conn);
    tokio::time::sleep(GRACE - Duration::from_secs(1)).await;
    assert!(desk.logged_in());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!desk.logged_in());
}

#[tokio::test(start_paused = true)]
async fn without_an_expiry_reason_the_first_the_platform_offers_is_given() {
    let desk = Desk::new("reference", config::default_switch(), None);
    desk.login_and_drop(&["voice"]).await;
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    let agent = &desk.sim.state().agents["agent-1"];
    assert!(!agent.logged_in);
    assert_eq!(agent.logout_reason.as_deref(), Some("End of shift"));
}

#[tokio::test(start_paused = true)]
async fn an_expiry_refused_for_a_call_is_tried_again_when_the_call_ends() {
    let desk = Desk::new("reference", config::default_switch(), Some("Lunch"));
    desk.login_and_drop(&["voice", "email"]).await;
    desk.sim
        .start_interaction("agent-1", "voice", "call-1")
        .unwrap();
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    assert!(desk.logged_in(), "refused: a call is in progress (EF1)");
    assert_eq!(desk.his.session_count(), 1);

    desk.sim.end_interaction("agent-1", "voice", None).unwrap();
    assert!(
        desk.his.settle("agent-1").await.is_none(),
        "the session ended"
    );
    assert!(!desk.logged_in(), "logged out once the call ended");
}

#[tokio::test(start_paused = true)]
async fn on_a_switch_that_defers_the_logout_the_expiry_completes_when_the_call_ends() {
    let switch = SwitchState {
        pending_logout: true,
        ..SwitchState::default()
    };
    let desk = Desk::new("avaya-cm", switch, None);
    desk.login_and_drop(&["voice"]).await;
    desk.sim
        .start_interaction("agent-1", "voice", "call-1")
        .unwrap();
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    let agent = &desk.sim.state().agents["agent-1"];
    assert!(
        agent.logout_pending,
        "the switch took the logout: {agent:?}"
    );
    assert_eq!(
        agent.logout_reason.as_deref(),
        Some("1"),
        "the number CM has for the first of the reasons the platform offers (End of shift)"
    );
    assert!(agent.logged_in, "the agent stays on the call");

    desk.sim.end_interaction("agent-1", "voice", None).unwrap();
    assert!(
        desk.his.settle("agent-1").await.is_none(),
        "the session ended"
    );
    assert!(!desk.logged_in());
}

#[tokio::test(start_paused = true)]
async fn an_expiry_the_switch_refused_is_tried_again_a_grace_later() {
    let desk = Desk::new("reference", config::default_switch(), Some("Lunch"));
    desk.login_and_drop(&["voice"]).await;
    desk.sim.inject(hisflow::platform::sim::Fault {
        agent: None,
        op: "agent.logout".into(),
        channel: None,
        call: Some(1),
        effect: hisflow::platform::sim::FaultEffect::Error {
            code: "SwitchBusy".into(),
            message: "try later".into(),
        },
    });
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    assert!(desk.logged_in(), "the switch refused the first time");
    tokio::time::sleep(GRACE).await;
    assert!(!desk.logged_in(), "tried again one grace later");
    assert_eq!(desk.his.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_configured_reason_the_platform_refuses_gives_way_to_the_first_it_offers() {
    let desk = Desk::new("reference", config::default_switch(), Some("Gone fishing"));
    desk.login_and_drop(&["voice"]).await;
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    let agent = &desk.sim.state().agents["agent-1"];
    assert!(!agent.logged_in, "not left logged in for ever: {agent:?}");
    assert_eq!(agent.logout_reason.as_deref(), Some("End of shift"));
}

#[tokio::test(start_paused = true)]
async fn sessions_do_not_expire_while_his_stops() {
    let desk = Desk::new("reference", config::default_switch(), Some("Lunch"));
    let (mut conn, mut rx) = desk.his.connect();
    let r = desk
        .request(
            &mut conn,
            &mut rx,
            "session.request.login",
            json!({ "agent": "agent-1", "channels": ["voice"] }),
        )
        .await;
    assert_eq!(r["ok"], true);
    desk.his.shut();
    drop(conn);
    tokio::time::sleep(GRACE * 3).await;
    assert!(desk.logged_in(), "the agents stay as the switch has them");
}

#[tokio::test(start_paused = true)]
async fn a_session_whose_connection_an_event_closed_expires_like_a_detached_one() {
    // A platform whose link workflow closes the MediaBar's connection but
    // keeps the session.
    let d = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(common::root().join("workflows/reference")).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, d.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let link = std::fs::read_to_string(d.path().join("link.yaml")).unwrap();
    let closing = link.replacen(
        "  down:\n    emit: session.event.switchUnavailable\n    data:\n      reason: \"has(event.reason) ? event.reason : null\"\n    next: done",
        "  down:\n    respond:\n      ok:\n        close_reason: The switch is down.",
        1,
    );
    assert_ne!(closing, link);
    std::fs::write(d.path().join("link.yaml"), closing).unwrap();
    let (p, report) = hisflow::load_platform(d.path()).unwrap();
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    let sim = Arc::new(SimSwitch::new(config::default_switch()));
    let his = His::new(Arc::new(p), sim.clone(), Options::default());
    let desk = Desk { his, sim };
    let (mut conn, mut rx) = desk.his.connect();
    let r = desk
        .request(
            &mut conn,
            &mut rx,
            "session.request.login",
            json!({ "agent": "agent-1", "channels": ["voice"] }),
        )
        .await;
    assert_eq!(r["ok"], true);
    desk.sim.set_link(false, None);
    assert!(desk.his.settle("agent-1").await.is_some());
    assert!(
        std::iter::from_fn(|| rx.try_recv()).any(|o| matches!(o, Out::Close(_))),
        "the connection was closed"
    );
    desk.sim.set_link(true, None);
    drop(conn);
    tokio::time::sleep(GRACE + Duration::from_secs(1)).await;
    assert!(!desk.logged_in(), "the session did not outlive its grace");
}
