//! The XState bench (benches/xstate) runs the same Logout as the engine:
//! its `--check` prints, for each way of writing it, the events and the
//! response of the bench's logout, and they must be the ones the engine
//! produces for the same agent, field by field.

mod common;

#[path = "../benches/support/agents.rs"]
#[allow(dead_code)]
mod agents;

use std::process::Command;
use std::sync::Arc;

use hisflow::engine::{Engine, NoObserver};
use hisflow::platform::sim::SimSwitch;
use serde_json::{Value, json};

#[tokio::test]
async fn the_xstate_bench_logs_out_as_the_engine_does() {
    let root = common::root();
    let script = root.join("benches/xstate/logout.mjs");
    // Installed by .ci/run or, failing that, here, at the version the lock
    // file pins.
    let dir = root.join("benches/xstate");
    if !dir.join("node_modules/xstate").exists() {
        let ran = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status();
        assert!(
            ran.as_ref().is_ok_and(|s| s.success()),
            "XState is not installed and `npm ci --prefix benches/xstate` failed ({ran:?}): \
             install Node.js and npm (apt-get install nodejs npm), then run it, as .ci/run does"
        );
    }
    let out = Command::new("node")
        .arg(&script)
        .arg("--check")
        .output()
        .expect("node runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (platform, _) = hisflow::load_platform(&root.join("workflows/reference")).unwrap();
    let sim = Arc::new(SimSwitch::new(agents::switch(1)));
    let engine = Engine::new(Arc::new(platform), sim);
    let mut session = agents::session(0);
    let done = engine
        .handle(
            "session.request.logout",
            &json!({ "reason": "Lunch" }),
            &mut session,
            &mut NoObserver,
        )
        .await;
    assert!(done.response.is_ok(), "{:?}", done.response);
    let ours: Vec<(String, Value)> = done
        .events
        .iter()
        .map(|e| (e.name.to_string(), e.data.to_json()))
        .collect();

    for variant in ["actors", "lean"] {
        let theirs: Vec<(String, Value)> = text
            .lines()
            .skip_while(|l| *l != format!("{variant}:"))
            .skip(1)
            .take_while(|l| l.starts_with("  ") && !l.starts_with("  response"))
            .map(|l| {
                let (name, data) = l.trim().split_once(' ').expect("a name and its data");
                (
                    name.to_string(),
                    serde_json::from_str(data).expect("JSON data"),
                )
            })
            .collect();
        assert_eq!(theirs, ours, "the {variant} variant");
    }
}
