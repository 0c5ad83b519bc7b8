//! The `hisflow serve` binary itself: configuration, a real login, and a
//! graceful stop on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::process::{block_on, http_get, serve};
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
            // The simulated switch stands in for TaskRouter.
            "platform: {}\nlisten: 127.0.0.1:0\nadapter: {{ kind: sim }}\nlimits: {{ max_frame_bytes: 8192 }}\n",
            platform.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap(), "--log-json"])
        // Its data directory in the test's own.
        .current_dir(d.path())
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
    block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .unwrap();
        let login = json!({ "type": "request", "id": "1", "name": "session.request.login", "params": { "agent": "a", "channels": ["voice"] } });
        ws.send(Message::Text(login.to_string().into()))
            .await
            .unwrap();
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                panic!("no response")
            };
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

    std::fs::write(&cfg, "detach_grace: soon\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`soon` is not a duration"), "{err}");

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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, id: &str, name: &str, params: Value) {
    let frame = json!({ "type": "request", "id": id, "name": name, "params": params });
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// Every frame up to the connection's end: texts as JSON, the close frame
/// as `{"close": code, "reason": …}`.
async fn until_closed(ws: &mut Ws) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("the server ends the connection in time");
        match next {
            Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(Some(f)))) => {
                frames.push(json!({ "close": u16::from(f.code), "reason": f.reason.as_str() }));
                return frames;
            }
            Some(Ok(_)) => {}
            _ => {
                frames.push(json!({ "close": null }));
                return frames;
            }
        }
    }
}

async fn response(ws: &mut Ws) -> Value {
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no response")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "response" {
            return v;
        }
    }
}

#[test]
fn sigterm_lets_the_requests_under_way_finish_then_closes_every_connection_going_away() {
    let mut served = serve("", "info");
    let url = format!("ws://{}/ws", served.addr);
    // A client that never finishes its request's headers does not hold the
    // stop up.
    let mut half_open = std::net::TcpStream::connect(&served.addr).unwrap();
    std::io::Write::write_all(&mut half_open, b"GET /ws HTTP/1.1\r\nHost: x\r\n").unwrap();
    let frames = block_on(async {
        let mut a = open(&url).await;
        let mut b = open(&url).await;
        let mut c = open(&url).await;
        for (ws, agent) in [(&mut a, "a"), (&mut b, "b"), (&mut c, "c")] {
            send(
                ws,
                "in",
                "session.request.login",
                json!({ "agent": agent, "channels": ["voice"] }),
            )
            .await;
            assert_eq!(response(ws).await["ok"], true);
        }
        for op in ["agent.logout", "agent.set_ready"] {
            send(
                &mut a,
                "slow",
                "sim.request.latency",
                json!({ "op": op, "delay": "1s" }),
            )
            .await;
            assert_eq!(response(&mut a).await["ok"], true);
        }
        send(
            &mut a,
            "bye",
            "session.request.logout",
            json!({ "reason": "Lunch" }),
        )
        .await;
        send(
            &mut c,
            "go",
            "channel.request.ready",
            json!({ "channel": "voice" }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        served.signal("-TERM");
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Stopping: no new connection, no new request.
        assert!(
            tokio_tungstenite::connect_async(&url).await.is_err(),
            "no connection is accepted after the signal"
        );
        send(
            &mut b,
            "late",
            "channel.request.ready",
            json!({ "channel": "voice" }),
        )
        .await;
        let (fa, fb, fc) = tokio::join!(
            until_closed(&mut a),
            until_closed(&mut b),
            until_closed(&mut c)
        );
        (fa, fb, fc)
    });
    let (a, b, c) = frames;
    let last_two = |f: &[Value]| f[f.len() - 2..].to_vec();
    let [ra, ca] = &last_two(&a)[..] else {
        unreachable!()
    };
    assert_eq!(
        (ra["id"].clone(), ra["ok"].clone()),
        (json!("bye"), json!(true)),
        "{a:?}"
    );
    assert_eq!(ca["close"], 1000, "the logout ended its session: {a:?}");
    let [rc, cc] = &last_two(&c)[..] else {
        unreachable!()
    };
    assert_eq!(
        (rc["id"].clone(), rc["ok"].clone()),
        (json!("go"), json!(true)),
        "{c:?}"
    );
    assert_eq!(cc["close"], 1001, "{c:?}");
    assert_eq!(cc["reason"], "HIS is shutting down");
    let [rb, cb] = &last_two(&b)[..] else {
        unreachable!()
    };
    assert_eq!(rb["error"]["code"], "ShuttingDown", "{b:?}");
    assert_eq!(cb["close"], 1001, "{b:?}");
    assert_eq!(served.exit_code(), Some(0), "serve stops cleanly");
    drop(half_open);
}

#[test]
fn the_audit_trail_has_a_line_per_login_resume_takeover_and_logout_and_never_a_token() {
    // Every level, and the WebSocket library's frames asked for by name.
    let mut served = serve(
        "detach_grace: 1s\nexpiry_reason: Lunch\n",
        "trace,tungstenite::protocol=trace,tokio_tungstenite=trace",
    );
    let url = format!("ws://{}/ws", served.addr);
    let tokens = block_on(async {
        let connect = || async { open(&url).await };
        let mut tokens = Vec::new();
        let mut a = connect().await;
        send(
            &mut a,
            "1",
            "session.request.login",
            json!({ "agent": "ann", "channels": ["voice"] }),
        )
        .await;
        let r = response(&mut a).await;
        tokens.push(r["result"]["token"].as_str().unwrap().to_string());
        // resumed elsewhere, then that connection drops
        let mut b = connect().await;
        send(
            &mut b,
            "2",
            "session.request.resume",
            json!({ "token": tokens[0] }),
        )
        .await;
        assert_eq!(response(&mut b).await["ok"], true);
        drop(b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // a new login takes the detached session over, and logs out
        let mut c = connect().await;
        send(
            &mut c,
            "3",
            "session.request.login",
            json!({ "agent": "ann", "channels": ["voice"] }),
        )
        .await;
        let r = response(&mut c).await;
        assert_eq!(r["result"]["resumed"], true, "{r}");
        tokens.push(r["result"]["token"].as_str().unwrap().to_string());
        send(
            &mut c,
            "4",
            "session.request.logout",
            json!({ "reason": "Lunch" }),
        )
        .await;
        assert_eq!(response(&mut c).await["ok"], true);
        // one the switch logs out
        let mut d = connect().await;
        send(
            &mut d,
            "5",
            "session.request.login",
            json!({ "agent": "dan", "channels": ["voice"] }),
        )
        .await;
        tokens.push(
            response(&mut d).await["result"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        send(
            &mut d,
            "6",
            "sim.request.forceLogout",
            json!({ "reason": "Shift over" }),
        )
        .await;
        until_closed(&mut d).await;
        // one left alone until it expires
        let mut e = connect().await;
        send(
            &mut e,
            "7",
            "session.request.login",
            json!({ "agent": "eve", "channels": ["voice"] }),
        )
        .await;
        tokens.push(
            response(&mut e).await["result"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        drop(e);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tokens
    });
    served.signal("-TERM");
    assert_eq!(served.exit_code(), Some(0));
    let logs = served.logs();
    let raw = served.logs.lock().unwrap().join("\n");
    for t in &tokens {
        let leaks: Vec<&str> = raw.lines().filter(|l| l.contains(t.as_str())).collect();
        assert!(leaks.is_empty(), "a token reached the logs: {leaks:#?}");
    }
    let audit: Vec<(String, String, String)> = logs
        .iter()
        .filter(|l| l["target"] == "audit")
        .map(|l| {
            let f = &l["fields"];
            let how = f["how"].as_str().or(f["outcome"].as_str()).unwrap_or("");
            (
                f["message"].as_str().unwrap().to_string(),
                f["agent"].as_str().unwrap().to_string(),
                how.to_string(),
            )
        })
        .collect();
    let want = |m: &str, agent: &str, how: &str| {
        let line = (m.to_string(), format!("{agent:?}"), how.to_string());
        assert!(
            audit.contains(&line),
            "no audit line {line:?} in {audit:#?}"
        );
    };
    want("login", "ann", "ok");
    want("session resumed", "ann", "resume");
    want("session detached", "ann", "");
    want("session taken over by a login", "ann", "login");
    want("logout", "ann", "requested");
    want("logout", "dan", "switch");
    want("logout", "eve", "expired");
    let logout = logs
        .iter()
        .find(|l| l["target"] == "audit" && l["fields"]["how"] == "expired")
        .unwrap();
    assert!(
        logout["fields"]["duration_s"].as_f64().unwrap() >= 1.0,
        "{logout}"
    );
    assert!(
        logout["fields"]["session"]
            .as_str()
            .unwrap()
            .starts_with("session-")
    );
}

#[test]
fn a_request_still_running_after_the_shutdown_grace_is_abandoned() {
    let mut served = serve("shutdown_grace: 1s\n", "info");
    let url = format!("ws://{}/ws", served.addr);
    let frames = block_on(async {
        let mut a = open(&url).await;
        send(
            &mut a,
            "in",
            "session.request.login",
            json!({ "agent": "a", "channels": ["voice"] }),
        )
        .await;
        assert_eq!(response(&mut a).await["ok"], true);
        send(
            &mut a,
            "slow",
            "sim.request.latency",
            json!({ "op": "agent.set_ready", "delay": "30s" }),
        )
        .await;
        assert_eq!(response(&mut a).await["ok"], true);
        send(
            &mut a,
            "go",
            "channel.request.ready",
            json!({ "channel": "voice" }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let signalled = std::time::Instant::now();
        served.signal("-TERM");
        let frames = until_closed(&mut a).await;
        (frames, signalled.elapsed())
    });
    let (frames, took) = frames;
    assert_eq!(
        frames,
        [json!({ "close": 1001, "reason": "HIS is shutting down" })]
    );
    assert!(
        took < Duration::from_secs(10),
        "the grace is 1 s, not the request's 30: {took:?}"
    );
    assert_eq!(served.exit_code(), Some(0));
    let logs = served.logs();
    assert!(
        logs.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("abandoned"))),
        "the abandoned request is logged"
    );
}

#[test]
fn without_authentication_serve_stays_on_loopback() {
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not authenticated") && err.contains("loopback"),
        "{err}"
    );
    // On loopback it starts, and says that agents are not authenticated.
    let mut served = serve("limits: { max_text_param: 8 }\n", "info");
    let url = format!("ws://{}/ws", served.addr);
    block_on(async {
        let mut ws = open(&url).await;
        send(
            &mut ws,
            "1",
            "session.request.login",
            json!({ "agent": "a", "channels": ["a channel name"] }),
        )
        .await;
        let r = response(&mut ws).await;
        assert_eq!(r["error"]["code"], "InvalidRequest", "{r}");
        assert!(
            r.to_string().contains("at most 8"),
            "the configured limit: {r}"
        );
    });
    let warned = served.logs().iter().any(|l| {
        l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not authenticated"))
    });
    assert!(warned, "{:?}", served.logs());
    served.signal("-TERM");
    assert_eq!(served.exit_code(), Some(0));
}

/// `hisflow add-user`, with the password on standard input.
fn add_user(users: &std::path::Path, agent: &str, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["add-user", "--users", users.to_str().unwrap(), agent])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(password.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn agents_added_by_the_cli_log_in_off_loopback_and_no_password_reaches_the_logs() {
    let d = tempfile::tempdir().unwrap();
    let users = d.path().join("users.txt");
    let out = add_user(&users, "agent-1", "s3cret-pa55word\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add_user(&users, "agent-2", "\n");
    assert_eq!(out.status.code(), Some(2), "an empty password is refused");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&users).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the users file is its owner's alone");
    }
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with("agent-1:$argon2id$"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");

    // Passwords in clear text off loopback: refused, unless a proxy ends TLS.
    let cfg = d.path().join("his.yaml");
    std::fs::write(
        &cfg,
        format!(
            "listen: 0.0.0.0:0\nauth: {{ kind: users, file: {} }}\n",
            users.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clear text") && err.contains("tls_by_proxy"),
        "{err}"
    );

    // Every level, the WebSocket library's frames asked for by name.
    let mut served = serve(
        &format!(
            "listen: 0.0.0.0:0\ntls_by_proxy: true\nauth: {{ kind: users, file: {} }}\n",
            users.display()
        ),
        "trace,tungstenite::protocol=trace,tokio_tungstenite=trace",
    );
    let port = served.addr.rsplit_once(':').unwrap().1.to_string();
    let url = format!("ws://127.0.0.1:{port}/ws");
    block_on(async {
        let page = http_get(&format!("127.0.0.1:{port}"), "/mediabar.json").await;
        assert!(
            page.contains(r#"{"auth":"password","simulator_controls":true,"deactivatable_media":["voice","email","chat"],"not_ready_reason":"optional"}"#),
            "{page}"
        );
        let mut ws = open(&url).await;
        for (id, password, ok) in [
            ("1", "wrong-pa55word", false),
            ("2", "s3cret-pa55word", true),
        ] {
            send(
                &mut ws,
                id,
                "session.request.login",
                json!({ "agent": "agent-1", "password": password, "channels": ["voice"] }),
            )
            .await;
            let r = response(&mut ws).await;
            assert_eq!(r["ok"], ok, "{r}");
        }
    });
    served.signal("-TERM");
    assert_eq!(served.exit_code(), Some(0));
    let logs = served.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("login refused"),
        "the refusal is in the audit trail"
    );
    assert!(!logs.contains("pa55word"), "a password reached the logs");
}

#[test]
fn sigterm_stops_serve_while_a_workflow_loops_and_the_others_are_answered_meanwhile() {
    // The reference platform, its Ready looping for ever.
    let d = tempfile::tempdir().unwrap();
    let platform = d.path().join("looping");
    common::copy_tree(&common::root().join("workflows/reference"), &platform);
    std::fs::write(
        platform.join("go_ready.yaml"),
        "workflow: go_ready\ninput:\n  channel: { type: string, required: true }\nstart: a\nstates:\n  a:\n    choice:\n      - when: size(session.channels) > 99\n        next: done\n    otherwise: b\n  b:\n    choice:\n      - when: size(session.channels) > 98\n        next: done\n    otherwise: a\n  done:\n    respond: { ok: {} }\n",
    )
    .unwrap();
    let _ = std::fs::remove_dir_all(platform.join("scenarios"));
    // A budget no loop reaches soon: only the stop can end it.
    let mut served = serve(
        &format!(
            "platform: {}\nshutdown_grace: 1s\nlimits: {{ max_states_per_request: 1000000000 }}\n",
            platform.display()
        ),
        "info",
    );
    let url = format!("ws://{}/ws", served.addr);
    block_on(async {
        let mut looping = open(&url).await;
        send(
            &mut looping,
            "1",
            "session.request.login",
            json!({ "agent": "a", "channels": ["voice"] }),
        )
        .await;
        assert_eq!(response(&mut looping).await["ok"], true);
        send(
            &mut looping,
            "2",
            "channel.request.ready",
            json!({ "channel": "voice" }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Another agent is served while the loop runs.
        let mut other = open(&url).await;
        send(
            &mut other,
            "1",
            "session.request.login",
            json!({ "agent": "b", "channels": ["voice"] }),
        )
        .await;
        assert_eq!(response(&mut other).await["ok"], true);
    });
    served.signal("-TERM");
    assert_eq!(
        served.exit_code(),
        Some(0),
        "serve stops within its shutdown grace"
    );
    let abandoned = served.logs().iter().any(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("abandoned"))
    });
    assert!(abandoned, "the loop was still running: {:?}", served.logs());
}

/// A WebSocket to `url`.
async fn open(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}
