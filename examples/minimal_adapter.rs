//! A switch adapter in thirty lines: the example docs/adapters.md walks
//! through. It logs every operation and accepts all of them; a real adapter
//! would call the switch's API instead.
//!
//! Run: `cargo run --example minimal_adapter`

use std::sync::{Arc, Mutex};

use hisflow::engine::{Engine, NoObserver, Session};
use hisflow::platform::{Adapter, OpResult, Operation, Reply};
use serde_json::json;

/// Accepts every operation and remembers it.
#[derive(Default)]
struct Recording {
    log: Mutex<Vec<String>>,
}

impl Adapter for Recording {
    fn kind(&self) -> &str {
        "sim"
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        self.log.lock().unwrap().push(format!("{agent}: {op:?}"));
        let result = match op {
            Operation::ReasonCodes { .. } => OpResult::List(vec!["Lunch".into()]),
            _ => OpResult::Done,
        };
        // A switch reached over the network would return
        // `Reply::Pending(Box::pin(async move { … }))` instead.
        Reply::Ready(Ok(result))
    }
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).expect("the reference platform validates");
    let switch = Arc::new(Recording::default());
    let engine = Engine::new(Arc::new(platform), switch.clone());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut session = Session::new("session-1", "agent-7");
    rt.block_on(async {
        let login = engine
            .handle(
                "session.request.login",
                &json!({"agent": "agent-7", "channels": ["voice", "chat"]}),
                &mut session,
                &mut NoObserver,
            )
            .await;
        println!("login:  {}", login.response.to_protocol());
        let logout = engine
            .handle(
                "session.request.logout",
                &json!({"reason": "Lunch"}),
                &mut session,
                &mut NoObserver,
            )
            .await;
        for e in &logout.events {
            println!("event:  {} {}", e.name, e.data);
        }
        println!("logout: {}", logout.response.to_protocol());
    });
    for line in switch.log.lock().unwrap().iter() {
        println!("switch: {line}");
    }
}
