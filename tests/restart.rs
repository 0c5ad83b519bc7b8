//! The real binaries, as an operator runs them: the simulated switch in its
//! own process (`hisflow switch`), HIS (`hisflow serve`) driving it, killed
//! with SIGKILL and started again on the same data directory; and three HIS
//! nodes sharing their sessions through a real `nats-server`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::direct::Direct;
use common::eventually;
use common::nats::Nats;
use common::process::{Spawned, block_on, serve_in, switch};
use common::ws::Client;
use serde_json::{Value, json};

/// `hisflow serve` in `dir` on the switch at `url`, with `extra` config.
fn his(dir: &Path, url: &str, extra: &str) -> Spawned {
    serve_in(
        dir,
        &format!("adapter: {{ kind: sim, url: \"{url}\" }}\n{extra}"),
        "info",
    )
}

fn url(switch: &Spawned) -> String {
    format!("ws://{}/switch", switch.addr)
}

/// Lines of `logs` whose message is `message`.
fn logged(s: &Spawned, message: &str) -> Vec<Value> {
    s.logs()
        .into_iter()
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

/// `hisflow sessions ARGS`' output.
fn sessions(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .arg("sessions")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn his_killed_and_restarted_on_its_data_directory_gives_every_agent_back() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let sw = switch(None, "127.0.0.1:0");
    let mut first = his(d.path(), &url(&sw), "");
    let tokens: Vec<String> = block_on(async {
        let mut tokens = Vec::new();
        for agent in ["a1", "a2", "a3", "a4"] {
            let mut c = Client::new(&first.addr).await;
            tokens.push(c.login_token(agent, &["voice", "email"]).await);
            if agent == "a1" {
                let (_, r) = c
                    .request("channel.request.ready", json!({ "channel": "voice" }))
                    .await;
                assert_eq!(r["ok"], true, "{r}");
            }
        }
        tokens
    });
    let listed = sessions(&["list", "--data-dir", data.to_str().unwrap()]);
    assert!(listed.contains("4 session(s)"), "{listed}");
    first.kill();

    // While HIS is down, a supervisor logs a4 out at the switch.
    block_on(async {
        let mut s = Direct::open(&sw.addr).await;
        let r = s
            .control(
                "a4",
                "sim.request.forceLogout",
                json!({ "cause": "supervisor" }),
            )
            .await;
        assert!(r.get("ok").is_some(), "{r}");
    });

    let second = his(d.path(), &url(&sw), "");
    let restored = logged(
        &second,
        "sessions restored; each reads the switch's state again",
    );
    assert_eq!(restored.len(), 1, "{:#?}", second.logs());
    assert_eq!(restored[0]["fields"]["sessions"], 4);
    block_on(async {
        // Every MediaBar of an agent still logged in resumes with its token.
        let mut bars = Vec::new();
        for token in &tokens[..3] {
            let mut c = Client::new(&second.addr).await;
            let (_, r) = c
                .request("session.request.resume", json!({ "token": token }))
                .await;
            assert_eq!(r["ok"], true, "{r}");
            bars.push((c, r));
        }
        assert_eq!(bars[0].1["result"]["channels"][0]["state"], "Ready");
        // a4's session read LoggedOff at the switch and was disposed of.
        let mut a4 = Client::new(&second.addr).await;
        let (_, r) = a4
            .request("session.request.resume", json!({ "token": tokens[3] }))
            .await;
        assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
        for (c, _) in &mut bars {
            let (_, r) = c
                .request(
                    "session.request.logout",
                    json!({ "reason": "End of shift" }),
                )
                .await;
            assert_eq!(r["ok"], true, "{r}");
        }
        let mut s = Direct::open(&sw.addr).await;
        for agent in ["a1", "a2", "a3", "a4"] {
            assert_eq!(s.state(agent, "voice").await, "LoggedOff", "{agent}");
        }
    });
    eventually("the store emptied", || {
        sessions(&["list", "--data-dir", data.to_str().unwrap()]).contains("0 session(s)")
    });
}

#[test]
fn a_logout_under_way_when_his_is_killed_is_reported_and_not_run_again() {
    let d = tempfile::tempdir().unwrap();
    let sw = switch(None, "127.0.0.1:0");
    let mut first = his(d.path(), &url(&sw), "");
    block_on(async {
        let mut c = Client::new(&first.addr).await;
        c.login("a1", &["voice"]).await;
        // The switch answers a logout in 3 s (it carries it out at once).
        let (_, r) = c
            .request(
                "sim.request.latency",
                json!({ "op": "agent.logout", "delay": "3s" }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        c.send_raw(
            &json!({ "type": "request", "id": "bye", "name": "session.request.logout", "params": { "reason": "Lunch" } })
                .to_string(),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    first.kill();
    let second = his(d.path(), &url(&sw), "");
    let reported = logged(
        &second,
        "a request was under way when HIS stopped; it is not run again: its outcome is what the switch now says",
    );
    assert_eq!(reported.len(), 1, "{:#?}", second.logs());
    assert_eq!(reported[0]["fields"]["request"], "session.request.logout");
    assert_eq!(reported[0]["fields"]["id"], "bye");
    // The switch had logged a1 out: the restored session is disposed of.
    eventually("a1's session disposed of", || {
        second
            .logs()
            .iter()
            .any(|l| l["fields"]["message"] == "logout" && l["fields"]["how"] == "switch")
    });
}

fn node(dir: &Path, url: &str, nats: &Nats, name: &str) -> Spawned {
    his(
        dir,
        url,
        &format!("cluster: {{ nats: \"{}\", node: {name} }}\n", nats.url),
    )
}

#[test]
fn three_his_processes_share_sessions_over_nats_and_survive_one_killed() {
    let nats = Nats::start();
    let sw = switch(None, "127.0.0.1:0");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Spawned> = ["n1", "n2", "n3"]
        .iter()
        .zip(&dirs)
        .map(|(n, d)| node(d.path(), &url(&sw), &nats, n))
        .collect();
    let agents: Vec<String> = (1..=6).map(|i| format!("a{i}")).collect();
    let tokens: Vec<String> = block_on(async {
        let mut tokens = Vec::new();
        for (i, agent) in agents.iter().enumerate() {
            let mut c = Client::new(&nodes[i % 3].addr).await;
            tokens.push(c.login_token(agent, &["voice"]).await);
        }
        tokens
    });

    // One session asked on two nodes at once: the request runs on the
    // first, the second is told Busy.
    block_on(async {
        let mut first = Client::new(&nodes[0].addr).await;
        let (_, r) = first
            .request("session.request.resume", json!({ "token": tokens[0] }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        let (_, r) = first
            .request(
                "sim.request.latency",
                json!({ "op": "agent.set_ready", "delay": "2s" }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        first
            .send_raw(
                &json!({ "type": "request", "id": "slow", "name": "channel.request.ready", "params": { "channel": "voice" } })
                    .to_string(),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut second = Client::new(&nodes[1].addr).await;
        let (_, r) = second
            .request("session.request.resume", json!({ "token": tokens[0] }))
            .await;
        assert_eq!(r["error"]["code"], "Busy", "{r}");
        let (_, r) = first.recv_until_response().await;
        assert_eq!(r["ok"], true, "{r}");
        let (_, r) = first
            .request(
                "sim.request.latency",
                json!({ "op": "agent.set_ready", "delay": "0s" }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
    });

    // n1 is killed while its agents work.
    let load = {
        let addr = nodes[0].addr.clone();
        let token = tokens[3].clone();
        std::thread::spawn(move || {
            block_on(async {
                let mut c = Client::new(&addr).await;
                c.request("session.request.resume", json!({ "token": token }))
                    .await;
                for round in 0..1000 {
                    let name = if round % 2 == 0 {
                        "channel.request.ready"
                    } else {
                        "channel.request.notReady"
                    };
                    c.send_raw(
                        &json!({ "type": "request", "id": round.to_string(), "name": name, "params": { "channel": "voice" } })
                            .to_string(),
                    )
                    .await;
                    if tokio::time::timeout(Duration::from_secs(2), c.recv_until_response())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    nodes[0].kill();
    let _ = load.join();

    // Every agent logs out through a node that lives.
    block_on(async {
        for (i, agent) in agents.iter().enumerate() {
            let n = &nodes[1 + i % 2];
            let mut c = Client::new(&n.addr).await;
            let (_, r) = c
                .request("session.request.resume", json!({ "token": tokens[i] }))
                .await;
            assert_eq!(r["ok"], true, "{agent}: {r}");
            let (_, r) = c
                .request(
                    "session.request.logout",
                    json!({ "reason": "End of shift" }),
                )
                .await;
            assert_eq!(r["ok"], true, "{agent}: {r}");
        }
        let mut s = Direct::open(&sw.addr).await;
        for agent in &agents {
            assert_eq!(s.state(agent, "voice").await, "LoggedOff", "{agent}");
        }
    });
    // a2 was on n2, alive, and resumed on n3: n3's audit names n2.
    let taken = nodes[2].logs().into_iter().find(|l| {
        l["fields"]["message"] == "session taken on this node" && l["fields"]["agent"] == "\"a2\""
    });
    assert_eq!(
        taken.as_ref().map(|l| l["fields"]["from"].clone()),
        Some(json!("n2")),
        "{:#?}",
        nodes[2].logs()
    );
    // No logout ran twice: each agent's one logout is in the audit log of
    // exactly one node.
    for agent in &agents {
        let logouts: usize = nodes[1..]
            .iter()
            .map(|n| {
                n.logs()
                    .iter()
                    .filter(|l| {
                        l["fields"]["message"] == "logout"
                            && l["fields"]["agent"] == format!("{agent:?}")
                    })
                    .count()
            })
            .sum();
        assert_eq!(logouts, 1, "{agent}");
    }
}
