//! HIS under load on loopback: N agents connect, log in, go Ready and Not
//! Ready on voice and log out, all connected at once. Prints requests/s,
//! p50/p99 latency per request kind — every one but login answers with
//! events before its response — and the server's memory per connected
//! session.
//!
//! The server runs in this process; the clients in a child process of the
//! same binary, so each side has its own file-descriptor limit.
//!
//! Run: `cargo bench --bench load` (10,000 agents; 200 without `--bench`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
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
    let agents = if args.iter().any(|a| a == "--bench") {
        10_000
    } else {
        200
    };
    server(agents);
}

fn server(agents: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).unwrap();
    let sim = Arc::new(hisflow::platform::sim::SimSwitch::new(
        hisflow::server::config::default_switch(),
    ));
    let limits = hisflow::his::Options {
        max_sessions: agents * 2,
        ..Default::default()
    };
    let his = hisflow::his::His::new(Arc::new(platform), sim, limits);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    rt.spawn(hisflow::server::serve(
        listener,
        his.clone(),
        hisflow::server::Settings::default(),
        std::future::pending(),
    ));

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
    let sessions = his.session_count();
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    let stats: Value = serde_json::from_str(&line).unwrap();
    child.wait().unwrap();

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
    for kind in [
        "session.request.login",
        "channel.request.ready",
        "channel.request.notReady",
        "session.request.logout",
    ] {
        let k = &stats["latency"][kind];
        println!(
            "  {kind:<28} p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
            k["p50_ms"].as_f64().unwrap(),
            k["p99_ms"].as_f64().unwrap(),
            k["count"]
        );
    }
    assert_eq!(stats["failures"], 0, "every request succeeded");
}

/// The client side: connect and log everyone in, report, wait for `go`, then
/// Ready and logout for everyone at once.
fn client(addr: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let url = format!("ws://{addr}/ws");
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        let mut logins = Vec::new();
        for i in 0..n {
            let url = url.clone();
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
