//! Limits over the real server, at the sizes a hostile or careless client
//! reaches: thousands of idle connections, a 10 MiB frame, a 64 KB agent
//! id, a looping workflow, and memory after thousands of agents came and
//! went.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::ws::{Client, serve_configured};
use futures_util::{SinkExt, StreamExt};
use hisflow::his::{His, Options};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::{self, Settings, config};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Held by each test: the memory one measures is not the connections
/// another holds.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_flat_after_thousands_of_agents_log_in_and_out() {
    let _alone = ALONE.lock().await;
    let (p, _) = hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
    // The switch `hisflow serve` runs.
    let sim = Arc::new(SimSwitch::new(config::default_switch()).forgetful());
    let his = His::new(Arc::new(p), sim.clone(), Options::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server::serve(
        listener,
        his.clone(),
        Settings::default(),
        std::future::pending(),
    ));
    let cycles = |from: usize, to: usize| {
        let addr = addr.clone();
        async move {
            let mut workers = Vec::new();
            for w in 0..4 {
                let addr = addr.clone();
                workers.push(tokio::spawn(async move {
                    for i in (from + w..to).step_by(4) {
                        let mut c = Client::new(&addr).await;
                        // Every agent a new one, as over a long day.
                        c.login(&format!("agent-{i}"), &["voice", "email"]).await;
                        let (_, r) = c
                            .request("session.request.logout", json!({ "reason": "Lunch" }))
                            .await;
                        assert_eq!(r["ok"], true, "{r}");
                        c.closed().await;
                    }
                }));
            }
            for w in workers {
                w.await.unwrap();
            }
        }
    };
    // Warm up: the allocator's pools, the runtime's threads.
    cycles(0, 500).await;
    let before = rss();
    cycles(500, 5_500).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = rss();
    assert_eq!(his.session_count(), 0, "every session ended");
    assert!(
        sim.state().agents.is_empty(),
        "the switch forgot the agents that logged out"
    );
    let grown = after.saturating_sub(before);
    println!("5,000 login/logout cycles: resident memory {before} → {after} bytes");
    assert!(
        grown < 4 << 20,
        "5,000 agents that came and went left {grown} bytes behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_leave_room_for_an_agent_and_are_closed_when_silent() {
    let _alone = ALONE.lock().await;
    let (addr, _his) = serve_configured(
        Options::default(),
        Settings {
            idle_timeout: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..2_000 {
        // Upgraded WebSockets whose client reads nothing, so answers no
        // ping: as good as dead.
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        idle.push(ws);
    }
    // An agent still logs in and acts at once.
    let mut c = Client::new(&addr).await;
    c.login("agent-1", &["voice"]).await;
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    // Silent past the idle timeout: HIS ends every one (with 1001; a
    // client that reads the close frame only now finds the connection
    // gone when it answers it).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (mut going_away, mut ended) = (0, 0);
    for ws in &mut idle {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    assert_eq!(u16::from(f.code), 1001);
                    going_away += 1;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => {
                    ended += 1;
                    break;
                }
                Err(_) => panic!("a silent connection is still open after the idle timeout"),
            }
        }
    }
    assert_eq!(going_away + ended, 2_000);
    println!("2,000 idle connections: {going_away} closed with 1001 as read, {ended} found closed");
}

#[tokio::test]
async fn a_ten_mebibyte_frame_is_refused_and_a_64_kb_agent_id_too() {
    let _alone = ALONE.lock().await;
    let (addr, _his) = serve_configured(Options::default(), Settings::default()).await;
    // 64 KB of agent id, inside a frame the transport takes.
    let mut c = Client::new(&addr).await;
    let (_, r) = c
        .request(
            "session.request.login",
            json!({ "agent": "a".repeat(64_000), "channels": ["voice"] }),
        )
        .await;
    assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 128 characters"),
        "{r}"
    );
    c.login("agent-1", &["voice"]).await;

    // 10 MiB in one frame: closed with 1009 without reading it into memory;
    // the session waits for a resume as after any dropped connection.
    let big = json!({ "type": "request", "id": "x", "name": "session.request.logout",
                      "params": { "reason": "r".repeat(10 << 20) } });
    let _ = c.ws.send(Message::Text(big.to_string().into())).await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the connection ends");
    assert_eq!(end, Some(1009), "a close frame with 1009, not a reset");
    let mut again = Client::new(&addr).await;
    again.login("agent-1", &["voice"]).await;
}
