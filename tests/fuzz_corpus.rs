//! The fuzz targets' corpora as regression tests, on stable: every input of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! same harness `cargo +nightly fuzz run <target>` runs (fuzz/harness.rs),
//! and must return. A panic fails the test, with the file it came from.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The files of one folder, sorted; none when there is no such folder.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Stack for a target's inputs: a tokio worker's. CEL's generated parser
/// needs ~170 KiB per nested bracket unoptimised, which would overflow it at
/// 12 levels; Cargo.toml optimises `cel` in test builds too, so the 32 the
/// validator allows fit (fuzz/regressions/expression holds them).
const STACK: usize = 2 << 20;

/// Runs every corpus and regression input of `target` through `run`, on a
/// thread with the stack of [`STACK`].
fn replay(target: &'static str, run: fn(&[u8])) {
    let thread = std::thread::Builder::new()
        .name(target.to_string())
        .stack_size(STACK)
        .spawn(move || replay_here(target, run))
        .expect("a thread starts");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

fn replay_here(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = files(&fuzz.join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty or missing: the corpus is part of the tests"
    );
    let regressions = files(&fuzz.join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panicked:\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn workflow_files() {
    replay("workflow_files", harness::workflow_files);
}

#[test]
fn platform_files() {
    replay("platform_files", harness::platform_files);
}

#[test]
fn scenario_files() {
    replay("scenario_files", harness::scenario_files);
}

#[test]
fn expression() {
    replay("expression", harness::expression);
}

#[test]
fn client_frames() {
    replay("client_frames", harness::client_frames);
}
