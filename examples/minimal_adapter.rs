//! A switch adapter in fifty lines: the example docs/adapters.md walks
//! through. It accepts every operation and logs it, and delivers a switch
//! event as a real switch would when a supervisor logs the agent out; a real
//! adapter would call the switch's API and listen to its notifications.
//!
//! Run: `cargo run --example minimal_adapter`

use std::sync::{Arc, Mutex};

use hisflow::his::{His, Options, Out};
use hisflow::platform::{
    Adapter, ChannelReport, EventSink, OpResult, Operation, Reply, SwitchEvent,
};
use serde_json::json;

/// Accepts every operation, remembers it, and keeps where its events go.
#[derive(Default)]
struct Recording {
    log: Mutex<Vec<String>>,
    events: Mutex<Option<EventSink>>,
}

impl Adapter for Recording {
    fn kind(&self) -> &str {
        "sim"
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        self.log.lock().unwrap().push(format!("{agent}: {op:?}"));
        let result = match op {
            Operation::ReasonCodes { .. } => OpResult::List(vec!["Lunch".into()]),
            // What the switch has: a fresh login leaves the agent Not Ready.
            Operation::State { .. } => OpResult::State(ChannelReport {
                state: "NotReady".into(),
                active: true,
                interactions: Vec::new(),
            }),
            _ => OpResult::Done,
        };
        // A switch reached over the network would return
        // `Reply::Pending(Box::pin(async move { … }))` instead.
        Reply::Ready(Ok(result))
    }

    fn subscribe(&self, events: EventSink) {
        *self.events.lock().unwrap() = Some(events);
    }
}

impl Recording {
    /// What the adapter does when the switch notifies it.
    fn switch_says(&self, event: SwitchEvent) {
        if let Some(sink) = self.events.lock().unwrap().as_ref() {
            sink.deliver(event);
        }
    }
}

/// The next message, within 5 s: an example that goes wrong says so and
/// stops, rather than wait for ever.
async fn next(outbox: &mut hisflow::his::Messages) -> Out {
    tokio::time::timeout(std::time::Duration::from_secs(5), outbox.recv())
        .await
        .expect("HIS answers within 5 s")
        .expect("the connection is open")
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).expect("the reference platform validates");
    let switch = Arc::new(Recording::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let his = His::new(Arc::new(platform), switch.clone(), Options::default());
        let (mut conn, mut outbox) = his.connect();
        his.request(
            &mut conn,
            "1",
            "session.request.login",
            &json!({"agent": "agent-7", "channels": ["voice", "chat"]}),
        );
        loop {
            let out = next(&mut outbox).await;
            println!("→ {out:?}");
            if let Out::Response { body, .. } = &out {
                assert_eq!(body["ok"], true, "the login succeeds");
                break;
            }
        }
        // A supervisor logs agent-7 out at the switch.
        switch.switch_says(SwitchEvent::new(
            Some("agent-7"),
            "agent.event.loggedOut",
            json!({"cause": "supervisor"}),
        ));
        loop {
            let out = next(&mut outbox).await;
            println!("→ {out:?}");
            if matches!(out, Out::Close(_)) {
                break;
            }
        }
    });
    for line in switch.log.lock().unwrap().iter() {
        println!("switch: {line}");
    }
}
