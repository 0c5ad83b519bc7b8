//! Cluster mode: HIS nodes sharing their sessions through a real
//! `nats-server` with JetStream. The nodes run in this process, each with
//! its own runtime (so that one can die with everything in it), over one
//! simulated switch whose events reach every node, as the switch's events
//! reach every node of a deployment. tests/cluster_serve.rs runs the real
//! binary.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::nats::Nats;
use common::ws::Client;
use hisflow::his::cluster::{self, Cluster, ClusterConfig};
use hisflow::his::metrics::Metrics;
use hisflow::his::store::Store;
use hisflow::his::{His, Options};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::{self, config};
use serde_json::json;

/// One simulated switch for every node: each subscribes, and each hears
/// every event, as each node of a deployment hears the switch.
fn shared_switch() -> Arc<SimSwitch> {
    Arc::new(SimSwitch::new(config::default_switch()))
}

struct Node {
    rt: tokio::runtime::Runtime,
    addr: String,
    his: Arc<His>,
    cluster: Arc<Cluster>,
}

fn node(nats: &Nats, name: &str, switch: &Arc<SimSwitch>, grace: Duration) -> Node {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ClusterConfig {
        url: nats.url.clone(),
        node: Some(name.into()),
        ..ClusterConfig::default()
    };
    let (addr, his, cluster) = rt.block_on(async {
        let cluster = Cluster::join(&config, Metrics::new()).await.unwrap();
        let store: Arc<dyn Store> = cluster.clone();
        let (p, _) = hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
        let his = His::new(
            Arc::new(p),
            switch.clone(),
            Options {
                store: Some(store),
                cluster: Some(cluster.clone()),
                detach_grace: grace,
                ..Options::default()
            },
        );
        his.start_cluster();
        tokio::spawn(His::watch_expiries(his.weak()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(server::serve(
            listener,
            his.clone(),
            server::Settings::default(),
            std::future::pending(),
        ));
        (addr, his, cluster)
    });
    Node {
        rt,
        addr,
        his,
        cluster,
    }
}

impl Node {
    /// Dies at once, as `kill -9` would: its connections to NATS and to
    /// clients drop, nothing is cleaned up.
    fn die(self) {
        let Node {
            rt, his, cluster, ..
        } = self;
        rt.shutdown_background();
        drop((his, cluster));
    }

    fn has(&self, agent: &str) -> bool {
        self.rt.block_on(self.his.settle(agent)).is_some()
    }
}

fn three(nats: &Nats, switch: &Arc<SimSwitch>, grace: Duration) -> Vec<Node> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|n| node(nats, n, switch, grace))
        .collect()
}

fn logged_in(switch: &SimSwitch, agent: &str) -> bool {
    switch
        .state()
        .agents
        .get(agent)
        .is_some_and(|a| a.logged_in)
}

fn calls(switch: &SimSwitch, agent: &str, op: &str) -> usize {
    switch
        .calls()
        .iter()
        .filter(|c| c.agent == agent && c.op == op)
        .count()
}

/// The cluster's entries, as an operator reads them; a NATS just started
/// again may need a few tries.
fn entries(nats: &Nats) -> Vec<cluster::Entry> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = ClusterConfig {
        url: nats.url.clone(),
        ..ClusterConfig::default()
    };
    for _ in 0..20 {
        let read = rt.block_on(async {
            let c = Cluster::observe(&config, Metrics::new())
                .await
                .map_err(|e| e.to_string())?;
            c.all().await.map_err(|e| e.to_string())
        });
        match read {
            Ok(all) => return all.into_iter().map(|(e, _)| e).collect(),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    panic!("the cluster's entries could not be read");
}

#[test]
fn agents_spread_over_three_nodes_resume_and_log_out_on_any_other() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    let mut tokens = Vec::new();
    for (i, agent) in ["a1", "a2", "a3"].iter().enumerate() {
        let n = &nodes[i];
        let token = n.rt.block_on(async {
            let mut c = Client::new(&n.addr).await;
            let t = c.login_token(agent, &["voice", "email"]).await;
            let (_, r) = c
                .request("channel.request.ready", json!({ "channel": "voice" }))
                .await;
            assert_eq!(r["ok"], true, "{r}");
            t
        });
        tokens.push(token);
    }
    let owners: Vec<String> = {
        let mut e = entries(&nats);
        e.sort_by(|a, b| a.record.session.agent.cmp(&b.record.session.agent));
        e.into_iter().map(|e| e.owner).collect()
    };
    assert_eq!(owners, ["n1", "n2", "n3"]);

    // Each MediaBar comes back on the next node.
    for i in 0..3 {
        let agent = format!("a{}", i + 1);
        let there = &nodes[(i + 1) % 3];
        there.rt.block_on(async {
            let mut c = Client::new(&there.addr).await;
            let (_, r) = c
                .request("session.request.resume", json!({ "token": tokens[i] }))
                .await;
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["result"]["channels"][0]["state"], "Ready", "{r}");
            let (_, r) = c
                .request("session.request.logout", json!({ "reason": "Lunch" }))
                .await;
            assert_eq!(r["ok"], true, "{r}");
        });
        assert!(!nodes[i].has(&agent), "{agent} left its first node");
        assert!(!logged_in(&switch, &agent));
        assert_eq!(calls(&switch, &agent, "agent.logout"), 1);
    }
    eventually("every entry removed", || entries(&nats).is_empty());
    for n in nodes {
        n.die();
    }
}

#[test]
fn one_request_at_a_time_holds_across_nodes() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let (mut first, token) = n1.rt.block_on(async {
        let mut c = Client::new(&n1.addr).await;
        let t = c.login_token("a1", &["voice"]).await;
        (c, t)
    });
    switch.set_latency("agent.set_ready", Duration::from_millis(1500));
    n1.rt.block_on(first.send_raw(
        &json!({ "type": "request", "id": "slow", "name": "channel.request.ready", "params": { "channel": "voice" } }).to_string(),
    ));
    eventually("the switch asked", || {
        calls(&switch, "a1", "agent.set_ready") == 1
    });
    // The same session on another node, while its request runs: Busy.
    n2.rt.block_on(async {
        let mut c = Client::new(&n2.addr).await;
        let (_, r) = c
            .request("session.request.resume", json!({ "token": token }))
            .await;
        assert_eq!(r["error"]["code"], "Busy", "{r}");
    });
    let (_, r) = n1.rt.block_on(first.recv_until_response());
    assert_eq!(r["ok"], true, "{r}");
    // Once it is done, the other node gets the session, and the first
    // MediaBar is told.
    n2.rt.block_on(async {
        let mut c = Client::new(&n2.addr).await;
        let (_, r) = c
            .request("session.request.resume", json!({ "token": token }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["result"]["channels"][0]["state"], "Ready", "{r}");
    });
    let (code, reason) = n1.rt.block_on(first.closed());
    assert_eq!(code, 4001, "{reason}");
    assert_eq!(calls(&switch, "a1", "agent.set_ready"), 1);
    for n in nodes {
        n.die();
    }
}

#[test]
fn a_node_killed_under_load_loses_no_session_and_runs_no_logout_twice() {
    let nats = Nats::start();
    let switch = shared_switch();
    let mut nodes = three(&nats, &switch, Duration::from_secs(120));
    let agents: Vec<String> = (1..=9).map(|i| format!("a{i}")).collect();
    let mut tokens = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        let n = &nodes[i % 3];
        tokens.push(n.rt.block_on(async {
            Client::new(&n.addr)
                .await
                .login_token(agent, &["voice"])
                .await
        }));
    }
    // Load on n1's agents: Ready, Not Ready, over and over, from clients
    // that stay connected.
    let n1 = nodes.remove(0);
    let busy: Vec<_> = (0..3)
        .map(|k| {
            let (addr, token) = (n1.addr.clone(), tokens[k * 3].clone());
            n1.rt.spawn(async move {
                let mut c = Client::new(&addr).await;
                let (_, r) = c
                    .request("session.request.resume", json!({ "token": token }))
                    .await;
                assert_eq!(r["ok"], true, "{r}");
                for round in 0.. {
                    let name = if round % 2 == 0 {
                        "channel.request.ready"
                    } else {
                        "channel.request.notReady"
                    };
                    c.request(name, json!({ "channel": "voice", "reason": "Break" }))
                        .await;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    n1.die();
    drop(busy);

    // Every agent logs out through a node that lives; n1's agents too,
    // once their sessions are taken over.
    for (i, agent) in agents.iter().enumerate() {
        let n = &nodes[i % 2];
        n.rt.block_on(async {
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
        });
        assert!(!logged_in(&switch, agent), "{agent}");
        assert_eq!(calls(&switch, agent, "agent.logout"), 1, "{agent}");
    }
    eventually("every entry removed", || entries(&nats).is_empty());
    for n in nodes {
        n.die();
    }
}

#[test]
fn a_dead_nodes_detached_sessions_expire_exactly_once_elsewhere() {
    let nats = Nats::start();
    let switch = shared_switch();
    let mut nodes = three(&nats, &switch, Duration::from_secs(2));
    let n1 = nodes.remove(0);
    n1.rt.block_on(async {
        for agent in ["a1", "a2"] {
            Client::new(&n1.addr).await.login(agent, &["voice"]).await;
        }
    });
    eventually("both detached", || {
        entries(&nats)
            .iter()
            .filter(|e| e.record.detached_at.is_some())
            .count()
            == 2
    });
    n1.die();
    // The survivors take the sessions over once n1's heartbeat is gone,
    // and the grace runs out on one of them.
    eventually("a1 and a2 logged out by expiry", || {
        !logged_in(&switch, "a1") && !logged_in(&switch, "a2")
    });
    std::thread::sleep(Duration::from_secs(3));
    for agent in ["a1", "a2"] {
        assert_eq!(calls(&switch, agent, "agent.logout"), 1, "{agent}");
    }
    eventually("every entry removed", || entries(&nats).is_empty());
    for n in nodes {
        n.die();
    }
}

fn sessions_cli(nats: &Nats, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .arg("sessions")
        .args(args)
        .args(["--nats", &nats.url])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn operators_list_show_and_expire_the_clusters_sessions() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    let mut a2 = None;
    for (i, agent) in ["a1", "a2"].iter().enumerate() {
        let n = &nodes[i];
        let c = n.rt.block_on(async {
            let mut c = Client::new(&n.addr).await;
            c.login(agent, &["voice"]).await;
            c
        });
        if i == 1 {
            a2 = Some(c);
        }
    }
    let (code, out, err) = sessions_cli(&nats, &["list"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("a1 ") && lines[1].contains("on n1"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("a2 ") && lines[2].contains("on n2"),
        "{out}"
    );
    let (code, out, _) = sessions_cli(&nats, &["show", "a2"]);
    assert_eq!(code, Some(0));
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["node"], "n2");

    let (code, out, err) = sessions_cli(&nats, &["expire", "a2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("marked for expiry"), "{out}");
    let mut a2 = a2.unwrap();
    let (_, reason) = nodes[1].rt.block_on(a2.closed());
    assert!(
        reason.contains("An operator ended your session"),
        "{reason}"
    );
    eventually("a2 logged out", || !logged_in(&switch, "a2"));
    assert!(logged_in(&switch, "a1"));
    assert_eq!(calls(&switch, "a2", "agent.logout"), 1);
    let (code, _, err) = sessions_cli(&nats, &["expire", "nobody"]);
    assert_eq!(code, Some(1), "{err}");
    for n in nodes {
        n.die();
    }
}

#[test]
fn two_logins_of_one_agent_on_two_nodes_at_once_leave_one_session() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    switch.set_latency("agent.login", Duration::from_millis(300));
    let answers: Vec<serde_json::Value> = std::thread::scope(|s| {
        let asks: Vec<_> = nodes[..2]
            .iter()
            .map(|n| {
                s.spawn(move || {
                    n.rt.block_on(async {
                        let mut c = Client::new(&n.addr).await;
                        let (_, r) = c
                            .request(
                                "session.request.login",
                                json!({ "agent": "a1", "channels": ["voice"] }),
                            )
                            .await;
                        r
                    })
                })
            })
            .collect();
        asks.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|r| r["ok"] == true).count();
    assert_eq!(ok, 1, "{answers:?}");
    let refused = answers.iter().find(|r| r["ok"] != true).unwrap();
    assert_eq!(refused["error"]["code"], "InvalidState", "{refused}");
    let e = entries(&nats);
    assert_eq!(e.len(), 1);
    let owner = &e[0].owner;
    let winner = if owner == "n1" { &nodes[0] } else { &nodes[1] };
    let loser = if owner == "n1" { &nodes[1] } else { &nodes[0] };
    assert!(winner.has("a1") && !loser.has("a1"));
    for n in nodes {
        n.die();
    }
}

#[test]
fn a_node_whose_session_was_taken_meanwhile_lets_it_go_at_its_next_write() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let mut c = n1.rt.block_on(async {
        let mut c = Client::new(&n1.addr).await;
        c.login("a1", &["voice"]).await;
        c
    });
    // n2 takes a1's session as it would from a node it believed dead (n1
    // cut off from NATS long enough for its heartbeat to lapse).
    n2.rt.block_on(async {
        let (entry, revision) = n2.cluster.entry("a1").await.unwrap().unwrap();
        assert_eq!(entry.owner, "n1");
        n2.cluster.claim(&entry, revision).await.unwrap();
    });
    // n1 finds the session is no longer its own before it runs the next
    // request: nothing reaches the switch, and its MediaBar is told.
    let (_, r) = n1
        .rt
        .block_on(c.request("channel.request.ready", json!({ "channel": "voice" })));
    assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
    assert_eq!(calls(&switch, "a1", "agent.set_ready"), 0);
    let (code, reason) = n1.rt.block_on(c.closed());
    assert_eq!(code, 4001, "{reason}");
    assert!(reason.contains("moved to another HIS node"), "{reason}");
    assert!(!n1.has("a1"));
    for n in nodes {
        n.die();
    }
}

#[test]
fn a_node_that_cannot_write_to_nats_says_so_and_writes_again_once_it_can() {
    let nats = Nats::start();
    let switch = shared_switch();
    let n1 = node(&nats, "n1", &switch, Duration::from_secs(120));
    let mut c = n1.rt.block_on(async {
        let mut c = Client::new(&n1.addr).await;
        c.login("a1", &["voice"]).await;
        c
    });
    assert!(n1.his.store_healthy());
    let mut nats = nats;
    std::thread::scope(|s| {
        // NATS is away for 8 s, then back with what it had.
        let away = s.spawn(|| nats.restart_after(Duration::from_secs(8)));
        std::thread::sleep(Duration::from_millis(300));
        // The request is done at the switch and answered; its write fails.
        let (_, r) = n1
            .rt
            .block_on(c.request("channel.request.ready", json!({ "channel": "voice" })));
        assert_eq!(r["ok"], true, "{r}");
        assert!(!n1.his.store_healthy(), "the node says it is not ready");
        away.join().unwrap();
    });
    // The session writes itself again until NATS takes it.
    eventually("the entry caught up", || {
        entries(&nats)
            .first()
            .is_some_and(|e| e.record.session.channels[0].state == "Ready")
    });
    eventually("the node is ready again", || n1.his.store_healthy());
    n1.die();
}

/// Joins the cluster at `url` with `tls_ca`, as a node would.
fn join(url: &str, tls_ca: Option<std::path::PathBuf>) -> Result<(), String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = ClusterConfig {
            url: url.to_string(),
            tls_ca,
            node: Some("n1".into()),
            ..ClusterConfig::default()
        };
        Cluster::join(&config, Metrics::new())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

#[test]
fn a_node_reaches_nats_over_tls_and_with_a_password() {
    let d = tempfile::tempdir().unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (d.path().join("cert.pem"), d.path().join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, signing_key.serialize_pem()).unwrap();
    let tls = Nats::start_with(&[
        "--tls",
        "--tlscert",
        c.to_str().unwrap(),
        "--tlskey",
        k.to_str().unwrap(),
    ]);
    let url = tls.url.replace("nats://127.0.0.1", "tls://localhost");
    join(&url, Some(c.clone())).unwrap();
    let refused = join(&url, None).unwrap_err();
    assert!(refused.contains("cannot connect to NATS"), "{refused}");

    let guarded = Nats::start_with(&["--user", "hisflow", "--pass", "s3cret"]);
    let with = guarded.url.replace("nats://", "nats://hisflow:s3cret@");
    join(&with, None).unwrap();
    let refused = join(&guarded.url, None).unwrap_err();
    assert!(refused.contains("cannot connect to NATS"), "{refused}");
    let wrong = guarded.url.replace("nats://", "nats://hisflow:guess@");
    let refused = join(&wrong, None).unwrap_err();
    assert!(
        refused.contains("authorization") && !refused.contains("guess"),
        "{refused}"
    );
}

#[test]
fn a_made_up_token_with_an_agents_prefix_moves_nothing() {
    let nats = Nats::start();
    let switch = shared_switch();
    let nodes = three(&nats, &switch, Duration::from_secs(120));
    let (n1, n2) = (&nodes[0], &nodes[1]);
    let (mut real, token) = n1.rt.block_on(async {
        let mut c = Client::new(&n1.addr).await;
        let t = c.login_token("a1", &["voice"]).await;
        (c, t)
    });
    let (prefix, _) = token.split_once('.').unwrap();
    let forged = format!("{prefix}.{}", "0".repeat(32));
    n2.rt.block_on(async {
        let mut c = Client::new(&n2.addr).await;
        let (_, r) = c
            .request("session.request.resume", json!({ "token": forged }))
            .await;
        assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
    });
    // The session stays on n1, its MediaBar attached and working.
    assert_eq!(entries(&nats)[0].owner, "n1");
    assert!(n1.has("a1") && !n2.has("a1"));
    let (_, r) = n1
        .rt
        .block_on(real.request("channel.request.ready", json!({ "channel": "voice" })));
    assert_eq!(r["ok"], true, "{r}");
    for n in nodes {
        n.die();
    }
}

#[test]
fn a_second_node_under_a_running_nodes_name_is_refused() {
    let nats = Nats::start();
    let switch = shared_switch();
    let n1 = node(&nats, "n1", &switch, Duration::from_secs(120));
    let refused = join(&nats.url, None).unwrap_err();
    assert!(refused.contains("named `n1` already"), "{refused}");
    n1.die();
}
