//! Durable sessions: HIS keeps them in its data directory, takes them back
//! after it died, reconciles each with the switch, and lets operators list,
//! show, expire and recover them.
//!
//! A HIS "dies" here by its runtime being torn down with every task in it,
//! as close to `kill -9` as one process allows: no task runs after it, and
//! the switch (which outlives it) keeps what it had. tests/restart.rs does
//! the same with the real binary, a switch in its own process, and a real
//! `kill -9`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::ws::{Client, Served, serve_on};
use hisflow::his::metrics::Metrics;
use hisflow::his::store::{self, Embedded, Record, StoreError};
use hisflow::his::{His, Options};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::config;
use serde_json::{Value, json};

/// One life of HIS: its own runtime, so that it can die with everything in
/// it.
struct Life {
    rt: tokio::runtime::Runtime,
    served: Served,
    restored: usize,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the store of `dir`, waiting for a dead HIS's writer to let go of
/// the directory.
fn open(dir: &Path, metrics: Arc<Metrics>) -> (Arc<Embedded>, Vec<Record>) {
    for _ in 0..100 {
        match Embedded::open(dir, metrics.clone()) {
            Err(StoreError::InUse { .. }) => std::thread::sleep(Duration::from_millis(20)),
            other => return other.unwrap(),
        }
    }
    panic!("the data directory stayed locked");
}

fn live(dir: &Path, sim: &Arc<SimSwitch>, grace: Duration) -> Life {
    let rt = runtime();
    let (store, records) = open(dir, Metrics::new());
    let options = Options {
        store: Some(store),
        detach_grace: grace,
        ..Options::default()
    };
    let (served, restored) = rt.block_on(async {
        let served = serve_on("reference", sim.clone(), options).await;
        let restored = served.his.restore(records);
        (served, restored)
    });
    Life {
        rt,
        served,
        restored,
    }
}

impl Life {
    /// Dies at once: every task stops where it is, nothing is cleaned up.
    fn die(self) {
        let Life { rt, served, .. } = self;
        rt.shutdown_background();
        drop(served);
    }
}

fn sim() -> Arc<SimSwitch> {
    Arc::new(SimSwitch::new(config::default_switch()))
}

fn listed(dir: &Path) -> Vec<store::Listed> {
    store::list(dir).unwrap().0
}

fn logged_in_at_switch(sim: &SimSwitch, agent: &str) -> bool {
    sim.state().agents.get(agent).is_some_and(|a| a.logged_in)
}

#[test]
fn sessions_survive_his_dying_resume_with_their_tokens_and_log_out() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    assert_eq!(first.restored, 0);
    let addr = first.served.addr.clone();
    let (tokens, attached) = first.rt.block_on(async {
        let mut tokens = Vec::new();
        let mut clients = Vec::new();
        for agent in ["a1", "a2", "a3"] {
            let mut c = Client::new(&addr).await;
            tokens.push(c.login_token(agent, &["voice", "email"]).await);
            clients.push(c);
        }
        let (_, r) = clients[0]
            .request("channel.request.ready", json!({ "channel": "voice" }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        // a3's MediaBar is still connected when HIS dies.
        (tokens, clients.pop().unwrap())
    });
    let rows = listed(d.path());
    assert_eq!(rows.len(), 3);
    let ids: Vec<String> = rows.iter().map(|l| l.record.session.id.clone()).collect();
    first.die();
    drop(attached);

    // While HIS is down, a supervisor logs a2 out at the switch.
    sim.force_logout("a2", None, "supervisor").unwrap();

    let second = live(d.path(), &sim, Duration::from_secs(120));
    assert_eq!(second.restored, 3);
    let his = second.served.his.clone();
    // a2's session reads LoggedOff everywhere: disposed of, and gone from
    // the store.
    eventually("a2's session disposed of", || {
        second.rt.block_on(his.settle("a2")).is_none()
    });
    eventually("a2's record removed", || {
        listed(d.path())
            .iter()
            .all(|l| l.record.session.agent != "a2")
    });
    let addr = second.served.addr.clone();
    second.rt.block_on(async {
        let mut a1 = Client::new(&addr).await;
        let (_, r) = a1
            .request("session.request.resume", json!({ "token": tokens[0] }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["result"]["resumed"], true);
        assert_eq!(r["result"]["token"], json!(tokens[0]));
        let voice = &r["result"]["channels"][0];
        assert_eq!(
            (&voice["media"], &voice["state"]),
            (&json!("voice"), &json!("Ready")),
            "{r}"
        );

        let mut a2 = Client::new(&addr).await;
        let (_, r) = a2
            .request("session.request.resume", json!({ "token": tokens[1] }))
            .await;
        assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");

        let mut a3 = Client::new(&addr).await;
        let (_, r) = a3
            .request("session.request.resume", json!({ "token": tokens[2] }))
            .await;
        assert_eq!(r["ok"], true, "{r}");

        // A new session's id is none of the restored ones'.
        let mut a4 = Client::new(&addr).await;
        let r = a4.login("a4", &["voice"]).await;
        let id = r["result"]["session"].as_str().unwrap().to_string();
        assert!(!ids.contains(&id), "{id} is a restored session's id");
        for c in [&mut a1, &mut a3, &mut a4] {
            let (_, r) = c
                .request(
                    "session.request.logout",
                    json!({ "reason": "End of shift" }),
                )
                .await;
            assert_eq!(r["ok"], true, "{r}");
        }
    });
    for agent in ["a1", "a2", "a3", "a4"] {
        assert!(!logged_in_at_switch(&sim, agent), "{agent}");
    }
    eventually("the store emptied", || listed(d.path()).is_empty());
    second.die();
}

#[test]
fn a_request_under_way_when_his_dies_is_reported_and_never_run_again() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    let addr = first.served.addr.clone();
    let client = first.rt.block_on(async {
        let mut c = Client::new(&addr).await;
        c.login("a1", &["voice"]).await;
        c
    });
    sim.set_latency("agent.logout", Duration::from_secs(30));
    let mut client = client;
    first.rt.block_on(client.send_raw(
        &json!({ "type": "request", "id": "bye", "name": "session.request.logout", "params": { "reason": "Lunch" } }).to_string(),
    ));
    eventually("the logout marked under way", || {
        listed(d.path())
            .first()
            .and_then(|l| l.record.under_way.clone())
            .is_some_and(|u| u.request == "session.request.logout" && u.id == "bye")
    });
    let logouts = || {
        sim.calls()
            .iter()
            .filter(|c| c.op == "agent.logout" && c.agent == "a1")
            .count()
    };
    eventually("the switch asked to log out", || logouts() == 1);
    first.die();
    drop(client);
    sim.set_latency("agent.logout", Duration::ZERO);

    let second = live(d.path(), &sim, Duration::from_secs(120));
    assert_eq!(second.restored, 1);
    // The switch had carried the logout out (its answer was what was
    // slow): the restored session reads LoggedOff and is disposed of, and
    // the logout is not asked a second time.
    assert!(!logged_in_at_switch(&sim, "a1"));
    eventually("a1's session disposed of", || {
        second.rt.block_on(second.served.his.settle("a1")).is_none()
    });
    eventually("the store emptied", || listed(d.path()).is_empty());
    assert_eq!(logouts(), 1, "{:?}", sim.calls());
    second.die();
}

#[test]
fn a_restored_session_nobody_resumes_expires_after_the_grace_it_had_left() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    let addr = first.served.addr.clone();
    first.rt.block_on(async {
        let mut c = Client::new(&addr).await;
        c.login("a1", &["voice"]).await;
    });
    eventually("a1 detached", || {
        listed(d.path())
            .first()
            .is_some_and(|l| l.record.detached_at.is_some())
    });
    first.die();
    let second = live(d.path(), &sim, Duration::from_secs(1));
    assert_eq!(second.restored, 1);
    assert!(logged_in_at_switch(&sim, "a1"));
    eventually("HIS logged the detached agent out", || {
        !logged_in_at_switch(&sim, "a1")
    });
    eventually("the store emptied", || listed(d.path()).is_empty());
    second.die();
}

#[test]
fn a_second_his_may_not_share_a_data_directory() {
    let d = tempfile::tempdir().unwrap();
    let (_store, _) = Embedded::open(d.path(), Metrics::new()).unwrap();
    let err = Embedded::open(d.path(), Metrics::new()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another HIS"), "{err}");
}

fn hisflow(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_damaged_store_stops_his_from_starting_until_it_is_recovered() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let life = live(d.path(), &sim, Duration::from_secs(120));
    let addr = life.served.addr.clone();
    life.rt.block_on(async {
        for agent in ["a1", "a2"] {
            Client::new(&addr).await.login(agent, &["voice"]).await;
        }
    });
    eventually("both stored", || listed(d.path()).len() == 2);
    life.die();
    // Wait for the dead HIS's writer to let go.
    drop(open(d.path(), Metrics::new()));

    // One record garbled by hand.
    let db = rusqlite::Connection::open(d.path().join(store::STORE_FILE)).unwrap();
    db.execute(
        "UPDATE sessions SET record = '{\"session\":' WHERE agent = 'a2'",
        [],
    )
    .unwrap();
    drop(db);
    let err = open_err(d.path());
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let (code, _, err) = hisflow(&["serve", "--listen", "127.0.0.1:0"], d.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("is damaged") && err.contains("hisflow sessions recover --data-dir"),
        "{err}"
    );
    // `list` still shows what it can, and says what it cannot.
    let (code, out, err) = hisflow(&["sessions", "list"], d.path());
    assert_eq!(code, Some(3), "{err}");
    assert!(out.contains("a1") && !out.contains("a2"), "{out}");
    assert!(err.contains("cannot be read"), "{err}");

    let (code, out, err) = hisflow(&["sessions", "recover"], d.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 session(s) saved"), "{out}");
    assert!(out.contains("lost: session"), "{out}");
    let kept: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".damaged-"))
        .collect();
    assert!(!kept.is_empty(), "the damaged file is kept");
    let (_s, records) = Embedded::open(d.path(), Metrics::new()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].session.agent, "a1");
}

#[test]
fn a_file_that_is_not_a_store_is_refused_not_overwritten() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join(store::STORE_FILE),
        "not a database at all\n".repeat(100),
    )
    .unwrap();
    let (code, _, err) = hisflow(&["serve", "--listen", "127.0.0.1:0"], d.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is damaged"), "{err}");
    let text = std::fs::read_to_string(d.path().join(store::STORE_FILE)).unwrap();
    assert!(text.starts_with("not a database"), "left as it was");
    let (code, out, err) = hisflow(&["sessions", "recover"], d.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 session(s) saved"), "{out}");
    assert!(Embedded::open(d.path(), Metrics::new()).is_ok());
}

#[test]
fn operators_list_show_and_expire_the_sessions_of_a_running_his() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let metrics = Metrics::new();
    let rt = runtime();
    let (store, _) = Embedded::open(d.path(), metrics.clone()).unwrap();
    let options = Options {
        store: Some(store),
        ..Options::default()
    };
    let served = rt.block_on(serve_on("reference", sim.clone(), options));
    rt.spawn(His::watch_expiries(served.his.weak()));
    let addr = served.addr.clone();
    let (mut a1, _a2) = rt.block_on(async {
        let mut a1 = Client::new(&addr).await;
        a1.login("a1", &["voice", "email"]).await;
        let mut a2 = Client::new(&addr).await;
        a2.login("a2", &["chat"]).await;
        (a1, a2)
    });

    let (code, out, err) = hisflow(&["sessions", "list"], d.path());
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("AGENT"), "{out}");
    assert!(
        lines[1].starts_with("a1 ") && lines[1].contains("voice NotReady, email NotReady"),
        "{out}"
    );
    assert!(lines[1].contains("attached"), "{out}");
    assert!(
        lines[2].starts_with("a2 ") && lines[2].contains("chat NotReady"),
        "{out}"
    );
    assert_eq!(lines[3], "2 session(s)");

    let (code, out, err) = hisflow(&["sessions", "list", "--json"], d.path());
    assert_eq!(code, Some(0), "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().map(Vec::len), Some(2));

    let (code, out, _) = hisflow(&["sessions", "show", "a1"], d.path());
    assert_eq!(code, Some(0));
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["agent"], "a1");
    assert_eq!(shown["channels"][1]["media"], "email");
    assert!(
        !out.contains("token"),
        "no token nor its hash is shown: {out}"
    );
    let (code, _, err) = hisflow(&["sessions", "show", "nobody"], d.path());
    assert_eq!(code, Some(1));
    assert!(err.contains("no session of `nobody`"), "{err}");

    let (code, out, err) = hisflow(&["sessions", "expire", "a1"], d.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("marked for expiry"), "{out}");
    let (code, reason) = rt.block_on(a1.closed());
    assert_eq!(code, 1000, "{reason}");
    assert!(
        reason.contains("An operator ended your session"),
        "{reason}"
    );
    eventually("HIS logged a1 out", || !logged_in_at_switch(&sim, "a1"));
    assert!(logged_in_at_switch(&sim, "a2"));
    eventually("a1's record removed", || {
        let rows = listed(d.path());
        rows.len() == 1 && rows[0].record.session.agent == "a2"
    });
    let (code, _, _) = hisflow(&["sessions", "expire", "a1"], d.path());
    assert_eq!(code, Some(1), "a1 has no session any more");

    let text = metrics.render(0, 0);
    let commits = text
        .lines()
        .find_map(|l| l.strip_prefix("hisflow_store_commit_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("store commits counted");
    assert!(commits >= 4, "{text}");
    assert!(text.contains("hisflow_store_errors_total 0"), "{text}");
    rt.shutdown_background();
}

#[test]
fn a_graceful_stop_does_not_start_the_grace() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    let addr = first.served.addr.clone();
    let client = first.rt.block_on(async {
        let mut c = Client::new(&addr).await;
        c.login("a1", &["voice"]).await;
        c
    });
    // HIS stops: its connections close, as SIGTERM has them.
    first.served.his.shut();
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    let rows = listed(d.path());
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].record.detached_at, None,
        "the MediaBar's grace starts after the restart"
    );
    first.die();
}

#[test]
fn a_session_that_heard_many_events_keeps_its_record_when_his_dies() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    let addr = first.served.addr.clone();
    let _client = first.rt.block_on(async {
        let mut c = Client::new(&addr).await;
        c.login("a1", &["voice"]).await;
        c
    });
    for i in 0..80 {
        let state = if i % 2 == 0 { "Ready" } else { "NotReady" };
        sim.set_state("a1", "voice", state, None).unwrap();
    }
    assert!(first.rt.block_on(first.served.his.settle("a1")).is_some());
    first.die();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(listed(d.path()).len(), 1, "the record outlives HIS");
}

#[test]
fn after_a_takeover_and_a_restart_only_the_new_token_resumes() {
    let d = tempfile::tempdir().unwrap();
    let sim = sim();
    let first = live(d.path(), &sim, Duration::from_secs(120));
    let addr = first.served.addr.clone();
    let (old, new) = first.rt.block_on(async {
        let old = Client::new(&addr).await.login_token("a1", &["voice"]).await;
        let new = Client::new(&addr).await.login_token("a1", &["voice"]).await;
        (old, new)
    });
    assert_ne!(old, new);
    first.die();
    let second = live(d.path(), &sim, Duration::from_secs(120));
    let addr = second.served.addr.clone();
    second.rt.block_on(async {
        let mut c = Client::new(&addr).await;
        let (_, r) = c
            .request("session.request.resume", json!({ "token": old }))
            .await;
        assert_eq!(r["error"]["code"], "NotLoggedIn", "{r}");
        let (_, r) = c
            .request("session.request.resume", json!({ "token": new }))
            .await;
        assert_eq!(r["ok"], true, "{r}");
    });
    second.die();
}

#[test]
fn a_store_of_a_newer_hisflow_or_a_log_without_its_database_is_refused() {
    let d = tempfile::tempdir().unwrap();
    drop(Embedded::open(d.path(), Metrics::new()).unwrap());
    unlocked(d.path());
    let db = rusqlite::Connection::open(d.path().join(store::STORE_FILE)).unwrap();
    db.execute_batch("PRAGMA user_version = 9").unwrap();
    drop(db);
    let err = open_err(d.path());
    assert!(matches!(err, StoreError::Newer { found: 9, .. }), "{err}");
    let (code, _, err) = hisflow(&["sessions", "recover"], d.path());
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("newer hisflow"), "{err}");

    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(store::STORE_FILE), "").unwrap();
    std::fs::write(
        d.path().join(format!("{}-wal", store::STORE_FILE)),
        [1u8; 64],
    )
    .unwrap();
    let err = open_err(d.path());
    assert!(
        matches!(err, StoreError::Corrupt { .. }) && err.to_string().contains("holds changes"),
        "{err}"
    );
}

/// The error opening the store of `dir`, once no dead HIS holds it.
fn open_err(dir: &Path) -> StoreError {
    for _ in 0..100 {
        match Embedded::open(dir, Metrics::new()) {
            Err(StoreError::InUse { .. }) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return e,
            Ok(_) => panic!("the store opened"),
        }
    }
    panic!("the data directory stayed locked");
}

#[test]
fn recover_leaves_a_sound_store_alone_and_mends_a_log_without_its_database() {
    let d = tempfile::tempdir().unwrap();
    drop(Embedded::open(d.path(), Metrics::new()).unwrap());
    unlocked(d.path());
    let (code, out, err) = hisflow(&["sessions", "recover"], d.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("not damaged"), "{out}");
    assert!(
        !std::fs::read_dir(d.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("damaged-")),
        "nothing moved"
    );

    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join(format!("{}-wal", store::STORE_FILE)),
        [1u8; 64],
    )
    .unwrap();
    assert!(matches!(open_err(d.path()), StoreError::Corrupt { .. }));
    let (code, out, err) = hisflow(&["sessions", "recover"], d.path());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("0 session(s) saved"), "{out}");
    assert!(Embedded::open(d.path(), Metrics::new()).is_ok());
}

/// Waits until no store's writer holds `dir`'s lock.
fn unlocked(dir: &Path) {
    let file = std::fs::File::open(dir.join(store::LOCK_FILE)).unwrap();
    for _ in 0..200 {
        if file.try_lock().is_ok() {
            let _ = file.unlock();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the data directory stayed locked");
}
