//! HIS under load on loopback: N agents connect, log in, go Ready and Not
//! Ready on voice and log out, all connected at once. Prints requests/s,
//! p50/p99 latency per request kind — every one but login answers with
//! events before its response — and the server's memory per connected
//! session.
//!
//! The server runs in this process; the clients in a child process of the
//! same binary, so each side has its own file-descriptor limit.
//!
//! Then the same load, 1,000 agents, three ways side by side: sessions in
//! memory only, in the embedded store (`--data-dir`), and shared by three
//! nodes over NATS JetStream (a `nats-server` this bench starts; the agents
//! spread over the nodes) — the per-request cost of the store and of NATS.
//!
//! Run: `cargo bench --bench load` (10,000 agents; 200 without `--bench`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hisflow::his::cluster::{Cluster, ClusterConfig};
use hisflow::his::store::{Embedded, Store};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[path = "support/counting.rs"]
mod counting;

use counting::{Counting, LIVE};

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let addr = args[i + 1].clone();
        let n: usize = args[i + 2].parse().unwrap();
        return client(&addr, n);
    }
    let full = args.iter().any(|a| a == "--bench");
    let agents = if full { 10_000 } else { 200 };
    let stats = server(agents, &Mode::Memory, true);
    report(agents, &stats);
    let agents = if full { 1_000 } else { 100 };
    let nats = Nats::start();
    let data = tempfile_dir();
    let runs = [
        ("in memory", server(agents, &Mode::Memory, false)),
        (
            "embedded store",
            server(agents, &Mode::Embedded(data.clone()), false),
        ),
        (
            "3 nodes, NATS",
            server(agents, &Mode::Cluster(nats.url.clone()), false),
        ),
    ];
    let _ = std::fs::remove_dir_all(&data);
    compare(agents, &runs);
}

/// Where the server keeps its sessions.
enum Mode {
    Memory,
    Embedded(std::path::PathBuf),
    /// Three nodes over the NATS at this URL.
    Cluster(String),
}

/// Runs the load against HIS kept as `mode` says; returns the client's
/// figures, with the server's memory per session when `measure`.
fn server(agents: usize, mode: &Mode, measure: bool) -> Value {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).unwrap();
    let platform = Arc::new(platform);
    let sim = Arc::new(hisflow::platform::sim::SimSwitch::new(
        hisflow::server::config::default_switch(),
    ));
    let metrics = hisflow::his::metrics::Metrics::new();
    let nodes = if matches!(mode, Mode::Cluster(_)) {
        3
    } else {
        1
    };
    let mut hiss = Vec::new();
    let mut addrs = Vec::new();
    for n in 0..nodes {
        let (store, cluster): (Option<Arc<dyn Store>>, _) = match mode {
            Mode::Memory => (None, None),
            Mode::Embedded(dir) => {
                let (s, _) = Embedded::open(dir, metrics.clone()).unwrap();
                (Some(s), None)
            }
            Mode::Cluster(url) => {
                let config = ClusterConfig {
                    url: url.clone(),
                    node: Some(format!("n{n}")),
                    bucket: Some(format!("load_{}", std::process::id())),
                    ..ClusterConfig::default()
                };
                let c = rt
                    .block_on(Cluster::join(&config, metrics.clone()))
                    .unwrap();
                (Some(c.clone() as Arc<dyn Store>), Some(c))
            }
        };
        let limits = hisflow::his::Options {
            max_sessions: agents * 2,
            store,
            cluster,
            ..Default::default()
        };
        let his = hisflow::his::His::new(platform.clone(), sim.clone(), limits);
        let _guard = rt.enter();
        his.start_cluster();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        addrs.push(listener.local_addr().unwrap().to_string());
        rt.spawn(hisflow::server::serve(
            listener,
            his.clone(),
            hisflow::server::Settings::default(),
            std::future::pending(),
        ));
        hiss.push(his);
    }
    let addr = addrs.join(",");

    let before = LIVE.load(Ordering::Relaxed);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--client", &addr, &agents.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "logged in", "the client said {line:?}");
    // Every agent is connected and logged in: what does each cost the server?
    std::thread::sleep(Duration::from_millis(200));
    let per_session = (LIVE.load(Ordering::Relaxed) - before) / agents as isize;
    let sessions: usize = hiss.iter().map(|h| h.session_count()).sum();
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let mut stats: Value = serde_json::from_str(&line).unwrap();
    child.wait().unwrap();
    if measure {
        stats["sessions"] = json!(sessions);
        stats["per_session"] = json!(per_session);
    }
    assert_eq!(stats["failures"], 0, "every request succeeded");
    drop(hiss);
    rt.shutdown_timeout(Duration::from_secs(1));
    stats
}

const KINDS: [&str; 4] = [
    "session.request.login",
    "channel.request.ready",
    "channel.request.notReady",
    "session.request.logout",
];

fn report(agents: usize, stats: &Value) {
    let sessions = &stats["sessions"];
    let per_session = &stats["per_session"];
    println!(
        "HIS under load: {agents} agents connected at once on loopback (2 cores, clients included)"
    );
    println!(
        "  all log in as fast as they can ({:.1} s), then each goes Ready, Not Ready and logs out, 1,000 agents a second",
        stats["login_phase_s"].as_f64().unwrap()
    );
    println!("  sessions held at peak:     {sessions}");
    println!("  memory per connected session (server, connection included): {per_session} bytes");
    println!(
        "  requests/s:                {:.0}",
        stats["requests_per_s"].as_f64().unwrap()
    );
    for kind in KINDS {
        let k = &stats["latency"][kind];
        println!(
            "  {kind:<28} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
            k["p50_ms"].as_f64().unwrap(),
            k["p99_ms"].as_f64().unwrap(),
            k["count"]
        );
    }
}

/// The runs side by side, with each one's cost over the first.
fn compare(agents: usize, runs: &[(&str, Value)]) {
    println!();
    println!(
        "Where sessions are kept: {agents} agents, the same load, in one run (p50 / p99 in ms; + over in memory)"
    );
    let ms = |v: &Value, kind: &str, p: &str| v["latency"][kind][p].as_f64().unwrap();
    for kind in KINDS {
        println!("  {kind}");
        for (name, v) in runs {
            let (p50, p99) = (ms(v, kind, "p50_ms"), ms(v, kind, "p99_ms"));
            let (b50, b99) = (
                ms(&runs[0].1, kind, "p50_ms"),
                ms(&runs[0].1, kind, "p99_ms"),
            );
            println!(
                "    {name:<16} {p50:>7.2} / {p99:>7.2}    {:>+7.2} / {:>+7.2}",
                p50 - b50,
                p99 - b99
            );
        }
    }
}

/// A data directory of this run's own.
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hisflow-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A `nats-server` with JetStream on a loopback port, for the cluster run.
struct Nats {
    child: std::process::Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Nats {
    fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("hisflow-load-nats-{}", std::process::id()));
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (Debian's package nats-server)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client side: connect and log everyone in, report, wait for `go`, then
/// Ready and logout for everyone at once.
fn client(addr: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let urls: Vec<String> = addr.split(',').map(|a| format!("ws://{a}/ws")).collect();
    rt.block_on(async move {
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let mut logins = Vec::new();
        for i in 0..n {
            // Agents spread over the nodes.
            let url = urls[i % urls.len()].clone();
            let gate = gate.clone();
            logins.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("connects");
                let t = timed(&mut ws, "1", "session.request.login", json!({ "agent": format!("agent-{i}"), "channels": ["voice", "email", "chat"] })).await;
                (ws, t)
            }));
        }
        let mut sockets = Vec::new();
        let mut lat: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
        let mut failures = 0;
        let started = Instant::now();
        for l in logins {
            let (ws, (d, ok)) = l.await.unwrap();
            lat.entry("session.request.login").or_default().push(d);
            failures += usize::from(!ok);
            sockets.push(ws);
        }
        let login_phase = started.elapsed();
        println!("logged in");
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();

        // Agents act at spread-out moments, as people do: each waits its
        // turn within a window, 1,000 agents a second (3,000 requests/s offered).
        let window = Duration::from_secs_f64(n as f64 / 1000.0);
        let started = Instant::now();
        let mut runs = Vec::new();
        for (i, mut ws) in sockets.into_iter().enumerate() {
            let at = window.mul_f64(i as f64 / n as f64);
            runs.push(tokio::spawn(async move {
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
                let ready = timed(&mut ws, "2", "channel.request.ready", json!({ "channel": "voice" })).await;
                let not_ready = timed(&mut ws, "3", "channel.request.notReady", json!({ "channel": "voice" })).await;
                let logout = timed(&mut ws, "4", "session.request.logout", json!({ "reason": "Lunch" })).await;
                [("channel.request.ready", ready), ("channel.request.notReady", not_ready), ("session.request.logout", logout)]
            }));
        }
        for r in runs {
            for (kind, (d, ok)) in r.await.unwrap() {
                lat.entry(kind).or_default().push(d);
                failures += usize::from(!ok);
            }
        }
        let run_phase = started.elapsed();
        let total = lat.values().map(Vec::len).sum::<usize>() as f64;
        let pct = |v: &mut Vec<Duration>, p: f64| {
            v.sort();
            v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3
        };
        let mut latency = serde_json::Map::new();
        for (k, v) in lat.iter_mut() {
            latency.insert(k.to_string(), json!({ "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "count": v.len() }));
        }
        let stats = json!({
            "requests_per_s": total / (login_phase + run_phase).as_secs_f64(),
            "login_phase_s": login_phase.as_secs_f64(),
            "latency": latency,
            "failures": failures,
        });
        println!("{stats}");
    });
}

/// Sends one request and waits for its response (events before it are read
/// and dropped); returns the round trip and whether it succeeded.
async fn timed<S>(ws: &mut S, id: &str, name: &str, params: Value) -> (Duration, bool)
where
    S: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures_util::Sink<Message>>::Error: std::fmt::Debug,
{
    let frame = json!({ "type": "request", "id": id, "name": name, "params": params }).to_string();
    let t = Instant::now();
    ws.send(Message::Text(frame.into())).await.unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == "response" {
                return (t.elapsed(), v["ok"] == true);
            }
        }
    }
    (t.elapsed(), false)
}
