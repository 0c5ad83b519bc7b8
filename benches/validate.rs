//! Validation throughput, in files/s and states/s, for the shipped workflows/
//! tree and for one generated workflow of 1,000 states. Each is measured next
//! to a baseline in the same run — parsing the same files as bare YAML — so
//! the printed ratio (validation cost / parse cost) means something on a
//! shared, noisy machine where absolute figures drift.
//!
//! Run: `cargo bench --bench validate`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Median wall time of `f` over enough runs to fill about `budget`.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 11 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        // The same files validation reads: scenarios are not workflows.
        if p.is_dir() && !p.ends_with("scenarios") {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(p);
        }
    }
}

fn parse_only(files: &[PathBuf]) {
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        black_box(marked_yaml::parse_yaml(0, &text).unwrap());
    }
}

/// A workflow of `n` states: choices over the session, switch operations with
/// every outcome handled, events, and a response at the end.
fn generated(n: usize) -> String {
    let mut s = String::from("workflow: big\nstart: s0\nstates:\n");
    for i in 0..n - 1 {
        let next = format!("s{}", i + 1);
        match i % 3 {
            0 => s.push_str(&format!(
                "  s{i}:\n    choice:\n      - when: session.channels.exists(c, c.active && size(c.interactions) > {i})\n        next: {next}\n    otherwise: {next}\n"
            )),
            1 => s.push_str(&format!(
                "  s{i}:\n    op: agent.set_not_ready\n    args: {{ channel: \"'voice'\", reason: \"'r{i}'\" }}\n    timeout: 2s\n    on: {{ ok: {next} }}\n    otherwise: {next}\n"
            )),
            _ => s.push_str(&format!("  s{i}:\n    emit: channel.event.stateChanged\n    data: {{ n: \"{i}\" }}\n    next: {next}\n")),
        }
    }
    s.push_str(&format!("  s{}:\n    respond:\n      ok: {{}}\n", n - 1));
    s
}

fn report(name: &str, files: usize, states: usize, validate: Duration, parse: Duration) {
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("{name} ({files} files, {states} states)");
    println!(
        "  validate: {:>10.3} ms  {:>10.0} files/s  {:>12.0} states/s",
        validate.as_secs_f64() * 1e3,
        per_s(files, validate),
        per_s(states, validate)
    );
    println!(
        "  baseline: {:>10.3} ms  (same files parsed as bare YAML)",
        parse.as_secs_f64() * 1e3
    );
    println!(
        "  ratio:    {:>10.2} x the cost of parsing",
        validate.as_secs_f64() / parse.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench`-less args; keep it quick then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let budget = if quick {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(3)
    };

    let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut files = Vec::new();
    yaml_files(&tree, &mut files);
    let check = hisflow::validate_paths(std::slice::from_ref(&tree)).unwrap();
    assert!(!check.diagnostics.has_errors());
    let validate = measure(budget, || {
        black_box(hisflow::validate_paths(std::slice::from_ref(&tree)).unwrap());
    });
    let parse = measure(budget, || parse_only(&files));
    report(
        "workflows/ tree",
        check.files,
        check.states,
        validate,
        parse,
    );

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, generated(1000)).unwrap();
    let check = hisflow::validate_paths(std::slice::from_ref(&big)).unwrap();
    assert!(!check.diagnostics.has_errors(), "{:?}", check.diagnostics);
    assert_eq!(check.states, 1000);
    let big_files = vec![big.clone()];
    let validate = measure(budget, || {
        black_box(hisflow::validate_paths(std::slice::from_ref(&big)).unwrap());
    });
    let parse = measure(budget, || parse_only(&big_files));
    report("generated workflow, 1,000 states", 1, 1000, validate, parse);
}
