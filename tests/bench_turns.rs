//! The benches' timing helper: runs take turns, every other round in the
//! reverse order, and each figure is the median of its run's samples.

#[path = "../benches/support/turns.rs"]
mod turns;

use std::cell::RefCell;
use std::time::Duration;

use turns::{Until, medians};

/// Runs of different closures, as the benches' runs of one each.
type Run<'a> = &'a mut dyn FnMut() -> Duration;

#[test]
fn runs_take_turns_every_other_round_reversed() {
    let order = RefCell::new(Vec::new());
    let mut a = || {
        order.borrow_mut().push('a');
        Duration::from_micros(1)
    };
    let mut b = || {
        order.borrow_mut().push('b');
        Duration::from_micros(1)
    };
    let mut c = || {
        order.borrow_mut().push('c');
        Duration::from_micros(1)
    };
    let mut runs: [Run<'_>; 3] = [&mut a, &mut b, &mut c];
    medians(1, Until::Rounds(3), &mut runs);
    let order: String = order.into_inner().into_iter().collect();
    // One warm-up round in order, then the timed rounds alternate.
    assert_eq!(order, "abc".to_owned() + "abc" + "cba" + "abc");
}

#[test]
fn each_figure_is_the_median_of_its_runs_samples() {
    let mut n = 0u64;
    // 9, 1, 3, 2, 4 ms: the median is 3 ms; the mean (3.8), the first
    // sample and the last are not.
    let samples = [9, 1, 3, 2, 4];
    let mut odd = || {
        let d = Duration::from_millis(samples[n as usize % 5]);
        n += 1;
        d
    };
    let mut flat = || Duration::from_millis(7);
    let mut runs: [Run<'_>; 2] = [&mut odd, &mut flat];
    let m = medians(0, Until::Rounds(5), &mut runs);
    assert_eq!(m, [Duration::from_millis(3), Duration::from_millis(7)]);
}

#[test]
fn a_budget_gives_each_run_its_time_and_at_least_eleven_rounds() {
    let mut calls = 0;
    let mut quick = || {
        calls += 1;
        Duration::ZERO
    };
    let mut runs: [Run<'_>; 1] = [&mut quick];
    medians(0, Until::Budget(Duration::ZERO), &mut runs);
    assert_eq!(calls, 11, "a zero budget still takes eleven rounds");

    // Eleven rounds of 2 ms take about 22 ms: one that stops at 100 ms
    // went on for the budget, however long each sleep took.
    let mut slow = || {
        std::thread::sleep(Duration::from_millis(2));
        Duration::from_millis(2)
    };
    let mut runs: [Run<'_>; 1] = [&mut slow];
    let t = std::time::Instant::now();
    medians(0, Until::Budget(Duration::from_millis(100)), &mut runs);
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "rounds go on until the budget is spent: {:?}",
        t.elapsed()
    );
}
