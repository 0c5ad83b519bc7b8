//! Timing runs against their baseline in turns. On a shared, noisy machine
//! two runs timed one after the other give a ratio that says nothing: a
//! busy moment during one side weighs on it alone. Taken in turns, round by
//! round, a change in load weighs on each alike; every other round goes in
//! the reverse order, so that none always runs in what the one before it
//! left of the caches and the allocator.

use std::time::{Duration, Instant};

/// When the rounds stop.
#[derive(Clone, Copy)]
#[allow(dead_code, reason = "each bench stops its rounds one way")]
pub enum Until {
    /// After this many rounds.
    Rounds(usize),
    /// Once each run has had about this much time, and at least 11 rounds.
    Budget(Duration),
}

/// The median time of each of `runs`, taken in turns as the module says,
/// after `warmup` untimed rounds. A run does its work and says how long the
/// part that counts took (what it prepares beforehand is not timed).
pub fn medians<F: FnMut() -> Duration>(
    warmup: usize,
    until: Until,
    runs: &mut [F],
) -> Vec<Duration> {
    for _ in 0..warmup {
        for run in runs.iter_mut() {
            run();
        }
    }
    let mut samples = vec![Vec::new(); runs.len()];
    let start = Instant::now();
    let mut round = 0;
    while !done(until, round, start.elapsed(), runs.len()) {
        for i in 0..runs.len() {
            let i = if round % 2 == 0 {
                i
            } else {
                runs.len() - 1 - i
            };
            samples[i].push(runs[i]());
        }
        round += 1;
    }
    samples.into_iter().map(median).collect()
}

fn done(until: Until, rounds: usize, elapsed: Duration, runs: usize) -> bool {
    match until {
        Until::Rounds(n) => rounds >= n.max(1),
        Until::Budget(b) => rounds >= 11 && elapsed >= b * runs as u32,
    }
}

fn median(mut s: Vec<Duration>) -> Duration {
    s.sort();
    s[s.len() / 2]
}

/// How long one call of `f` takes: a run whose whole work is timed.
#[allow(dead_code, reason = "the engine bench times only part of each run")]
pub fn timed(mut f: impl FnMut()) -> impl FnMut() -> Duration {
    move || {
        let t = Instant::now();
        f();
        t.elapsed()
    }
}
