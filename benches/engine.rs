//! The interpreter's speed, next to its physical limit: 3-channel logouts
//! through the reference Logout workflow against the in-memory simulated
//! switch, and the same logic hand-written as Rust against the same switch,
//! in the same run; and the memory an idle session costs, counted by the
//! allocator over 100,000 sessions. Then, in the same run, the same logout
//! written as XState 5 machines (benches/xstate), when its packages are
//! installed, with the ratio of the two.
//!
//! Run: `npm ci --prefix benches/xstate && cargo bench --bench engine`

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hisflow::engine::{Data, Engine, Event, NoObserver, Response, Session};
use hisflow::platform::sim::SimSwitch;
use hisflow::platform::{Adapter, Operation, Reply};
use serde_json::json;

#[path = "support/agents.rs"]
mod agents;
#[path = "support/counting.rs"]
mod counting;
#[path = "support/turns.rs"]
mod turns;

use agents::{session, switch};

use counting::{COUNTING, Counting, LIVE};

#[global_allocator]
static ALLOC: Counting = Counting;

/// An event's data as hand-written code builds it: the names are literals.
fn data<const N: usize>(fields: [(&'static str, serde_json::Value); N]) -> Data {
    let mut d = Data::with_capacity(N);
    for (k, v) in fields {
        d.insert(k, v);
    }
    d
}

fn ok(r: Reply) -> bool {
    matches!(r, Reply::Ready(Ok(_)))
}

/// The reference Logout, hand-written: the same checks, switch calls, events
/// and disposals, with nothing interpreted.
fn hand_written(s: &mut Session, sw: &dyn Adapter, reason: &str) -> (Vec<Event>, Response) {
    let mut events = Vec::new();
    if s.channels
        .iter()
        .any(|c| c.active && !c.interactions.is_empty())
    {
        return (
            events,
            Response::error(
                "OngoingInteraction",
                "You cannot log out while an interaction is in progress.",
            ),
        );
    }
    if !s.logout_reasons.iter().any(|r| r == reason) {
        return (
            events,
            Response::error("ReasonCodeOutOfRange", "not a logout reason"),
        );
    }
    for c in s.channels.iter_mut().filter(|c| c.state == "Ready") {
        if !ok(sw.call(
            &s.agent,
            &Operation::SetNotReady {
                channel: Some(c.id.to_string()),
                reason: Some("Logout".into()),
                reject_pending: false,
            },
        )) {
            return (events, Response::error("NotReadyFailed", "Logout failed"));
        }
        c.state = "NotReady".into();
        events.push(Event {
            name: "channel.event.stateChanged".into(),
            data: data([
                ("channel", json!(c.id)),
                ("state", json!("NotReady")),
                ("reason", json!("Logout")),
            ]),
        });
    }
    for c in s.channels.iter_mut().filter(|c| c.active) {
        if !ok(sw.call(
            &s.agent,
            &Operation::Deactivate {
                channel: c.id.to_string(),
            },
        )) {
            return (
                events,
                Response::error("DeactivationFailed", "Logout failed"),
            );
        }
        c.active = false;
        events.push(Event {
            name: "channel.event.deactivated".into(),
            data: data([("channel", json!(c.id))]),
        });
    }
    if !ok(sw.call(
        &s.agent,
        &Operation::Logout {
            reason: Some(reason.into()),
        },
    )) {
        return (events, Response::error("LogoutFailed", "Logout failed"));
    }
    for c in s.channels.drain(..) {
        events.push(Event {
            name: "channel.event.disposed".into(),
            data: data([("channel", json!(c.id))]),
        });
    }
    s.group = false;
    events.push(Event {
        name: "channelGroup.event.disposed".into(),
        data: data([("agent", json!(s.agent))]),
    });
    s.disposed = true;
    events.push(Event {
        name: "session.event.disposed".into(),
        data: data([
            ("agent", json!(s.agent)),
            ("session", json!(s.id)),
            ("cause", json!("logout")),
        ]),
    });
    (
        events,
        Response::Ok {
            result: json!({}),
            close: Some("logged out".into()),
        },
    )
}

/// Logs out every session given, on the switch given.
type Logouts<'a> = &'a mut dyn FnMut(&mut [Session], &Arc<SimSwitch>);

/// Median time per logout of each of `runs` over rounds of `n` agents, each
/// round on fresh sessions and a fresh switch prepared outside the timed
/// part, the runs taking turns ([`turns::medians`]).
fn measure(rounds: usize, n: usize, runs: &mut [Logouts<'_>]) -> Vec<Duration> {
    let mut runs: Vec<_> = runs
        .iter_mut()
        .map(|run| {
            move || {
                let mut sessions: Vec<Session> = (0..n).map(session).collect();
                let sim = Arc::new(SimSwitch::new(switch(n)));
                let t = Instant::now();
                run(&mut sessions, &sim);
                let per = t.elapsed() / n as u32;
                assert!(
                    sessions.iter().all(|s| s.disposed),
                    "every logout went through"
                );
                per
            }
        })
        .collect();
    turns::medians(0, turns::Until::Rounds(rounds), &mut runs)
}

fn main() {
    // Counted only around what is counted: the counters' locked additions
    // in the timed runs would weigh on the side that allocates more.
    COUNTING.store(false, Ordering::Relaxed);
    let quick = !std::env::args().any(|a| a == "--bench");
    let (rounds, n) = if quick { (3, 200) } else { (15, 2_000) };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).unwrap();
    let platform = Arc::new(platform);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let params = json!({ "reason": "Lunch" });

    // Both paths produce the same events: the comparison is like for like.
    {
        let sim = Arc::new(SimSwitch::new(switch(1)));
        let engine = Engine::new(platform.clone(), sim.clone());
        let mut a = session(0);
        let out =
            rt.block_on(engine.handle("session.request.logout", &params, &mut a, &mut NoObserver));
        let mut b = session(0);
        let (events, response) = hand_written(&mut b, &SimSwitch::new(switch(1)), "Lunch");
        let names = |e: &[Event]| e.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert!(
            out.response.is_ok() && response.is_ok(),
            "{:?}",
            out.response
        );
        assert_eq!(names(&out.events), names(&events));
        let data = |e: &[Event]| e.iter().map(|e| e.data.clone()).collect::<Vec<_>>();
        assert_eq!(
            data(&out.events),
            data(&events),
            "the same events, field by field"
        );
    }

    // One engine and one switch serve every agent, as in HIS.
    let mut interpreter = |sessions: &mut [Session], sim: &Arc<SimSwitch>| {
        let engine = Engine::new(platform.clone(), sim.clone());
        rt.block_on(async {
            for s in sessions.iter_mut() {
                black_box(
                    engine
                        .handle("session.request.logout", &params, s, &mut NoObserver)
                        .await,
                );
            }
        })
    };
    let mut hand = |sessions: &mut [Session], sim: &Arc<SimSwitch>| {
        for s in sessions.iter_mut() {
            black_box(hand_written(s, sim.as_ref(), "Lunch"));
        }
    };
    let medians = measure(rounds, n, &mut [&mut interpreter, &mut hand]);
    let (interpreted, direct) = (medians[0], medians[1]);
    // Allocations per logout, counted over one round of each.
    let count_allocs = |run: &mut dyn FnMut(&mut [Session], &Arc<SimSwitch>)| {
        let mut sessions: Vec<Session> = (0..n).map(session).collect();
        let sim = Arc::new(SimSwitch::new(switch(n)));
        counting::allocations(|| run(&mut sessions, &sim)) / n as isize
    };
    let engine_allocs = count_allocs(&mut interpreter);
    let direct_allocs = count_allocs(&mut hand);
    println!("3-channel logout (reference workflow, simulated switch in memory)");
    println!(
        "  interpreter:  {:>9.2} µs/logout  {:>10.0} logouts/s",
        interpreted.as_secs_f64() * 1e6,
        1.0 / interpreted.as_secs_f64()
    );
    println!(
        "  hand-written: {:>9.2} µs/logout  {:>10.0} logouts/s",
        direct.as_secs_f64() * 1e6,
        1.0 / direct.as_secs_f64()
    );
    println!(
        "  ratio:        {:>9.1} x the hand-written logic",
        interpreted.as_secs_f64() / direct.as_secs_f64()
    );
    println!(
        "  allocations:  {engine_allocs:>9} per logout interpreted, {direct_allocs} hand-written"
    );

    xstate(quick, interpreted, || {
        measure(rounds, n, &mut [&mut interpreter])[0]
    });

    let count = 100_000;
    COUNTING.store(true, Ordering::Relaxed);
    let before = LIVE.load(Ordering::Relaxed);
    let idle: Vec<Session> = (0..count).map(session).collect();
    let after = LIVE.load(Ordering::Relaxed);
    println!("idle session, 3 channels ({count} sessions)");
    println!(
        "  memory:       {:>9} bytes/session",
        (after - before) / count as isize
    );
    black_box(idle);
}

/// The same logout in XState, measured by its own script in this run, next
/// to the interpreter's figure.
fn xstate(quick: bool, before: Duration, mut again: impl FnMut() -> Duration) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/xstate");
    if !dir.join("node_modules/xstate").exists() {
        println!("XState: not installed; run `npm ci --prefix benches/xstate` to compare");
        return;
    }
    let mut cmd = std::process::Command::new("node");
    cmd.arg(dir.join("logout.mjs")).arg("--json");
    if quick {
        cmd.arg("--quick");
    }
    let out = match cmd.stderr(std::process::Stdio::null()).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!("XState: the script failed ({})", o.status);
            return;
        }
        Err(e) => {
            println!("XState: cannot run node: {e}");
            return;
        }
    };
    let line = String::from_utf8_lossy(&out.stdout);
    let figures: serde_json::Value = match line.lines().last().map(serde_json::from_str) {
        Some(Ok(v)) => v,
        _ => {
            println!("XState: unreadable output: {line}");
            return;
        }
    };
    let Some(us) = figures["us_per_logout"].as_f64() else {
        println!("XState: no figure in {figures}");
        return;
    };
    // The interpreter measured again once XState is done: the machine's load
    // may have changed meanwhile, and the mean of the two brackets it.
    let after = again();
    let ours = (before + after).as_secs_f64() / 2.0 * 1e6;
    println!(
        "the same logout in XState {} on node {}",
        figures["xstate"].as_str().unwrap_or("?"),
        figures["node"].as_str().unwrap_or("?")
    );
    if let Some(variants) = figures["variants"].as_object() {
        for (name, v) in variants {
            if let Some(us) = v["us_per_logout"].as_f64() {
                println!(
                    "  {name:<12}  {us:>9.2} µs/logout  {:>10.0} logouts/s",
                    1e6 / us
                );
            }
        }
    }
    println!(
        "  xstate:       {us:>9.2} µs/logout  {:>10.0} logouts/s",
        1e6 / us
    );
    println!(
        "  interpreter:  {ours:>9.2} µs/logout  {:>10.0} logouts/s  (before and after: {:.2}, {:.2})",
        1e6 / ours,
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6
    );
    println!("  ratio:        {:>9.1} x XState's throughput", us / ours);
}
