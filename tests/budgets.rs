//! The engine's memory budgets, held: a 3-channel logout through the
//! reference workflow allocates at most 150 blocks, and an idle 3-channel
//! session holds at most 1 KB. Both are counted by the allocator, so unlike
//! times they are exact on a noisy machine, and a change that breaks either
//! fails here rather than in a bench no one reads. `cargo bench --bench
//! engine` prints the figures themselves, with the same agents.
//!
//! One test: the allocator's counters are the process's, and a second test
//! running beside it would count into them.

#[path = "../benches/support/agents.rs"]
mod agents;
#[path = "../benches/support/counting.rs"]
mod counting;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hisflow::engine::{Engine, NoObserver, Session};
use hisflow::platform::sim::SimSwitch;
use serde_json::json;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

/// The budgets (the README quotes the figures under them).
const LOGOUT_ALLOCATIONS: isize = 150;
const IDLE_SESSION_BYTES: isize = 1024;

#[test]
fn a_logout_and_an_idle_session_stay_within_their_budgets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
    let (platform, _) = hisflow::load_platform(&dir).expect("the reference platform loads");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = 40;
    let sim = Arc::new(SimSwitch::new(agents::switch(n)));
    let engine = Engine::new(Arc::new(platform), sim);
    let params = json!({ "reason": "Lunch" });
    let mut sessions: Vec<Session> = (0..n).map(agents::session).collect();
    // The first logout makes what lives for the process (names interned,
    // lazily built tables): not a logout's own cost.
    let (first, rest) = sessions.split_first_mut().unwrap();
    let out = rt.block_on(engine.handle("session.request.logout", &params, first, &mut NoObserver));
    assert!(out.response.is_ok(), "{:?}", out.response);
    let mut outcomes = Vec::with_capacity(n);
    let made = counting::allocations(|| {
        rt.block_on(async {
            for s in rest.iter_mut() {
                outcomes.push(
                    engine
                        .handle("session.request.logout", &params, s, &mut NoObserver)
                        .await,
                );
            }
        })
    });
    assert!(
        outcomes
            .iter()
            .all(|o| o.response.is_ok() && o.events.len() == 10),
        "every logout went through, with its ten events"
    );
    assert!(sessions.iter().all(|s| s.disposed));
    let logouts = n as isize - 1;
    let per_logout = made as f64 / logouts as f64;
    // On the total, not a rounded-down mean: 150.9 a logout is over.
    assert!(
        made <= LOGOUT_ALLOCATIONS * logouts,
        "a logout allocates {per_logout:.1} blocks; the budget is {LOGOUT_ALLOCATIONS}"
    );
    // Not nothing either: a counter that counted nothing would pass above.
    assert!(
        made > 10 * logouts,
        "counted {per_logout:.1} allocations a logout"
    );

    let count = 10_000;
    let before = counting::LIVE.load(Ordering::Relaxed);
    let idle: Vec<Session> = (0..count).map(agents::session).collect();
    let per_session = (counting::LIVE.load(Ordering::Relaxed) - before) / count as isize;
    assert!(
        per_session <= IDLE_SESSION_BYTES,
        "an idle 3-channel session holds {per_session} bytes; the budget is {IDLE_SESSION_BYTES}"
    );
    assert!(
        per_session >= std::mem::size_of::<Session>() as isize,
        "counted {per_session} bytes a session"
    );
    drop(idle);
}
