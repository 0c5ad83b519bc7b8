//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `hisflow` binary, with deterministic rendering: no colour, 100 columns.
pub fn hisflow(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hisflow"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    hisflow(dir).args(args).output().expect("hisflow runs")
}

/// A runtime on paused time: the engine's timeouts and the sim's latencies
/// pass instantly and deterministically.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `(file, line, column, code)` of each diagnostic of a `--format json` run.
pub fn positions(json: &str) -> Vec<(String, u64, u64, String)> {
    let v: serde_json::Value = serde_json::from_str(json).expect("validate prints JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().replace('\\', "/"),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Copies a folder and everything under it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
/// Waits until `f` holds, for up to 15 s.
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not happen");
}

pub mod chromium;
pub mod direct;
pub mod nats;
pub mod process;
pub mod taskrouter;
pub mod ws;
