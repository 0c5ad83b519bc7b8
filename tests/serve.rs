//! The `hisflow serve` binary itself: configuration, a real login, and a
//! graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn serve_reads_its_config_answers_a_login_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("his.yaml");
    let platform = common::root().join("workflows/twilio-taskrouter");
    std::fs::write(
        &cfg,
        format!(
            "platform: {}\nlisten: 127.0.0.1:0\nlimits: {{ max_frame_bytes: 8192 }}\n",
            platform.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap(), "--log-json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            logs.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        let log: Value = serde_json::from_str(&line).expect("--log-json logs JSON lines");
        if let Some(addr) = log["fields"]["addr"].as_str() {
            assert_eq!(log["fields"]["platform"], "twilio-taskrouter");
            break addr.to_string();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
        let login = json!({ "type": "request", "id": "1", "name": "session.request.login", "params": { "agent": "a", "channels": ["voice"] } });
        ws.send(Message::Text(login.to_string().into())).await.unwrap();
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("no response") };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "response" {
                assert_eq!(v["ok"], true, "{v}");
                break;
            }
        }
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = (0..50).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        child.try_wait().unwrap()
    });
    assert_eq!(
        exited.map(|s| s.code()),
        Some(Some(0)),
        "serve stops cleanly on SIGTERM"
    );
}

#[test]
fn a_bad_config_is_a_usage_error_before_anything_listens() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("his.yaml");
    std::fs::write(&cfg, "listen: 127.0.0.1:0\nplatfrom: somewhere\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("platfrom"), "{err}");

    for (switch, said) in [
        (
            "confirm: { agent.logout: soon }",
            "`soon` is not a duration",
        ),
        ("confirm: { agent.reason_codes: 1s }", "answers with data"),
        ("confirm: { agent.lgout: 1s }", "not a switch operation"),
    ] {
        std::fs::write(&cfg, format!("switch:\n  {switch}\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
            .args(["serve", "--config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{switch}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "{switch}: {err}");
    }

    std::fs::write(&cfg, "platform: no/such/folder\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
