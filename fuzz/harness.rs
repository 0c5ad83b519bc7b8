//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (run
//! with `cargo +nightly fuzz run <target>`) and `tests/fuzz_corpus.rs` (every
//! file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` replayed
//! on stable, in `cargo test`).
//!
//! Each function takes any bytes and must return: a panic is a finding. They
//! print nothing. Files are written under one folder per process, created
//! once and reused by every run.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use hisflow::engine::values;
use hisflow::engine::{Channel, Coverage, Interaction, Session};
use hisflow::his::{His, Options, Out};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::{config, protocol};
use hisflow::workflow::expr::{self, Programs, Scope};
use hisflow::workflow::load::Ctx;
use hisflow::workflow::native::{Inputs, V};
use hisflow::workflow::raw::Sp;
use hisflow::workflow::record::Record;
use hisflow::workflow::vocab::{Shape, States};
use hisflow::{Diagnostic, Diagnostics, Platform, Report, Sources};
use serde_json::json;

// ---------------------------------------------------------------------------
// Shared set-up

/// This process's folder for the files the targets write.
fn work_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale();
        let dir = std::env::temp_dir().join(format!("hisflow-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    })
    .as_deref()
}

/// Removes the folders of earlier processes that are gone (where `/proc`
/// tells which are alive), so that test runs do not pile them up.
fn remove_stale() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hisflow-fuzz-"))
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh copy of the built-in reference platform in `<work>/<name>/reference`.
fn reference_copy(name: &str) -> Option<PathBuf> {
    let base = work_dir()?.join(name);
    std::fs::create_dir_all(&base).ok()?;
    config::extract_reference(&base).ok()
}

/// One target's files are rewritten by each run: runs of a target take turns
/// (the tests run on several threads). A panic in one run poisons nothing.
fn take(lock: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    lock.lock().unwrap_or_else(|e| e.into_inner())
}

/// A current-thread runtime on a paused clock, as `hisflow test` runs
/// scenarios: timeouts, latency and grace periods cost no wall time.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime starts")
}

/// Lets what a run left on the runtime (session tasks, the simulated
/// switch's timers) end: the clock jumps from timer to timer.
async fn settle_leftovers() {
    tokio::time::sleep(hisflow::his::DETACH_GRACE + Duration::from_secs(600)).await;
}

/// The reference platform, validated once.
fn reference_platform() -> Option<Arc<Platform>> {
    static PLATFORM: OnceLock<Option<Arc<Platform>>> = OnceLock::new();
    PLATFORM
        .get_or_init(|| {
            let dir = reference_copy("platform")?;
            let (platform, _) = hisflow::load_platform(&dir).ok()?;
            Some(Arc::new(platform))
        })
        .clone()
}

// ---------------------------------------------------------------------------
// Diagnostics, rendered by the CLI's own code (src/cli/report.rs): miette's
// graphical report, as `hisflow validate` shows a person, and the JSON of
// `--format json`.

#[path = "../src/cli/report.rs"]
#[allow(dead_code)]
mod report;

fn render<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>, sources: &Sources) -> String {
    let diags: Vec<&Diagnostic> = diags.into_iter().collect();
    let mut out = report::human(diags.iter().copied(), sources);
    out.push_str(&report::json(diags.iter().copied(), sources));
    out
}

fn render_report(report: &Report) -> String {
    let mut out = render(report.diagnostics.iter(), &report.sources);
    for p in &report.platforms {
        let _ = write!(out, "{} {}", p.name, p.workflows.len());
    }
    out
}

// ---------------------------------------------------------------------------
// workflow_files: the bytes as a workflow file

/// The bytes as `logout.yaml` of a copy of the reference platform, then as
/// the one workflow of a folder without `platform.yaml`: validated, and
/// every diagnostic rendered.
pub fn workflow_files(data: &[u8]) {
    static LOCK: Mutex<()> = Mutex::new(());
    static DIRS: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    let _turn = take(&LOCK);
    let Some((platform, loose)) = DIRS
        .get_or_init(|| {
            let platform = reference_copy("workflow_files")?;
            let loose = work_dir()?.join("workflow_files").join("loose");
            std::fs::create_dir_all(&loose).ok()?;
            Some((platform, loose))
        })
        .as_ref()
    else {
        return;
    };
    let file = platform.join("logout.yaml");
    if std::fs::write(&file, data).is_ok()
        && let Ok(mut report) = hisflow::validate_paths(std::slice::from_ref(platform))
    {
        report.prepare();
        std::hint::black_box(render_report(&report));
    }
    let file = loose.join("w.yaml");
    if std::fs::write(&file, data).is_ok()
        && let Ok(report) = hisflow::validate_paths(&[file])
    {
        std::hint::black_box(render_report(&report));
    }
}

// ---------------------------------------------------------------------------
// platform_files: the bytes as a platform manifest

/// The bytes as `platform.yaml` of a folder holding the reference workflows,
/// beside a pristine `reference` it may extend: validated, diagnostics
/// rendered.
pub fn platform_files(data: &[u8]) {
    static LOCK: Mutex<()> = Mutex::new(());
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let _turn = take(&LOCK);
    let Some(dir) = DIR
        .get_or_init(|| {
            let reference = reference_copy("platform_files")?;
            let dir = reference.parent()?.join("fuzzed");
            std::fs::create_dir_all(&dir).ok()?;
            for name in config::embedded_files().filter(|n| *n != "platform.yaml") {
                std::fs::copy(reference.join(name), dir.join(name)).ok()?;
            }
            Some(dir)
        })
        .as_ref()
    else {
        return;
    };
    if std::fs::write(dir.join("platform.yaml"), data).is_ok()
        && let Ok(mut report) = hisflow::validate_paths(std::slice::from_ref(dir))
    {
        report.prepare();
        std::hint::black_box(render_report(&report));
    }
}

// ---------------------------------------------------------------------------
// scenario_files: the bytes as a scenario, loaded and run as `hisflow test`

/// The bytes as `scenarios/fuzzed.yaml` of the reference platform: loaded
/// and, when it loads, run against a new simulated switch on a paused clock.
pub fn scenario_files(data: &[u8]) {
    static LOCK: Mutex<()> = Mutex::new(());
    static SETUP: OnceLock<Option<(PathBuf, Arc<Platform>, tokio::runtime::Runtime)>> =
        OnceLock::new();
    let _turn = take(&LOCK);
    let Some((file, platform, rt)) = SETUP
        .get_or_init(|| {
            let dir = reference_copy("scenario_files")?;
            let (platform, _) = hisflow::load_platform(&dir).ok()?;
            let scenarios = dir.join(hisflow::scenario::SCENARIOS);
            std::fs::create_dir_all(&scenarios).ok()?;
            Some((scenarios.join("fuzzed.yaml"), Arc::new(platform), runtime()))
        })
        .as_ref()
    else {
        return;
    };
    if std::fs::write(file, data).is_err() {
        return;
    }
    let mut sources = Sources::new();
    let programs = Programs::default();
    let mut diags = Diagnostics::new();
    let loaded =
        hisflow::scenario::load_scenario(&mut sources, &programs, file, platform, &mut diags);
    std::hint::black_box(render(diags.iter(), &sources));
    let Ok(Some(scenario)) = loaded else {
        return;
    };
    let coverage = Arc::new(std::sync::Mutex::new(Coverage::default()));
    rt.block_on(async {
        let result = hisflow::scenario::run_scenario(platform, &scenario, coverage).await;
        let mut out = format!("{} {}", result.name, result.passed());
        for step in &result.steps {
            for f in &step.failures {
                let _ = writeln!(out, "line {} ({}): {f}", step.line, step.what);
            }
        }
        std::hint::black_box(out);
        settle_leftovers().await;
    });
}

// ---------------------------------------------------------------------------
// expression: the bytes as a CEL expression

/// The bytes (UTF-8) as a CEL expression and as a `${…}` template, compiled
/// as the validator compiles a workflow's (names checked against a
/// workflow's scope, with variables and a foreach item), and, when they
/// compile, evaluated as the engine evaluates them: as a guard, a value, a
/// list and text, by the native evaluator and by CEL's.
pub fn expression(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(platform) = reference_platform() else {
        return;
    };
    let mut sources = Sources::new();
    let file = sources.add(PathBuf::from("expression.yaml"), text.to_string());
    let programs = Programs::default();
    let cx = Ctx {
        sources: &sources,
        file,
        programs: &programs,
    };
    let inputs: Vec<String> = [
        "agent", "channel", "channels", "reason", "n", "flag", "nested",
    ]
    .map(String::from)
    .to_vec();
    let scope = Scope::new(inputs, Shape::Any, States::default().session())
        .with_vars(&[
            "count".to_string(),
            "reason".to_string(),
            "list".to_string(),
        ])
        .with_item("item", Shape::Any);
    let mut diags = Diagnostics::new();
    let sp = Sp::new(None, text.to_string());
    let compiled = expr::compile(cx, &sp, &scope, &mut diags);
    let template = expr::template(cx, &sp, &scope, &mut diags);
    std::hint::black_box(render(diags.iter(), &sources));

    let request = values::from_json(&json!({
        "agent": "agent-1",
        "channel": "voice",
        "channels": ["voice", "email"],
        "reason": "Lunch",
        "n": 3,
        "flag": true,
        "nested": { "a": [1, 2.5, { "b": null }], "s": "x" },
    }));
    let mut session = Session::new("s-1", "agent-1");
    session.state = Some("Active".into());
    session.logout_reasons = vec!["Lunch".into(), "End of shift".into()];
    session.not_ready_reasons = vec!["Break".into()];
    session.group = true;
    session.channels = vec![
        Channel {
            id: "voice".into(),
            media: "voice".into(),
            state: "Ready".into(),
            active: true,
            interactions: vec![Interaction {
                id: "call-1".into(),
                media: "voice".into(),
            }],
        },
        Channel {
            id: "email".into(),
            media: "email".into(),
            state: "NotReady".into(),
            active: false,
            interactions: Vec::new(),
        },
    ];
    let settings = platform.settings_value();
    let error = values::no_error();
    let event = values::no_event();
    let vars = Record::new(vec![
        ("count".into(), values::from_json(&json!(2)).into()),
        ("reason".into(), values::from_json(&json!("Lunch")).into()),
        (
            "list".into(),
            values::from_json(&json!([1, "two", [3]])).into(),
        ),
    ]);
    let inputs = Inputs {
        request: V::of(request.as_ref()),
        session: V::Obj(&session),
        platform: V::of(settings.as_ref()),
        error: V::Rec(&error),
        event: V::Rec(&event),
        entity: None,
        vars: V::Rec(&vars),
        item: None,
        budget: hisflow::workflow::record::EVAL_BUDGET,
    };
    let item = values::from_json(&json!({ "id": "voice", "media": "voice" }));
    let env = expr::env();
    let mut out = String::new();
    if let Some((e, _shape)) = &compiled {
        let item = Some(("item", V::Val(item.as_ref())));
        let _ = write!(out, "{:?}", values::eval_bool(env, e, &inputs, item));
        let _ = write!(out, "{:?}", values::eval_json(env, e, &inputs, item));
        if let Ok(v) = values::eval_owned(env, e, &inputs, item) {
            let _ = write!(out, "{:?}", values::as_text(v.as_val()));
        }
        let _ = write!(out, "{}", values::eval_items(env, e, &inputs).is_ok());
        // CEL's own evaluator, for what the native one answered.
        let _ = write!(
            out,
            "{:?}",
            values::with_value(env, e, &inputs, item, values::to_json)
        );
    }
    if let Some(t) = &template {
        for part in &t.parts {
            if let expr::TemplatePart::Expr(e) = part
                && let Ok(v) = values::eval_owned(env, e, &inputs, None)
            {
                let _ = write!(out, "{:?}", values::as_text(v.as_val()));
            }
        }
        out.push_str(&t.display());
    }
    std::hint::black_box(out);
}

// ---------------------------------------------------------------------------
// client_frames: the bytes as a client's text frames

/// Frames one run sends at most: each may wait for its response.
const MAX_FRAMES: usize = 256;

/// Virtual time a frame's response may take (the clock is paused).
const RESPONSE_WAIT: Duration = Duration::from_secs(120);

/// The bytes split on `\n` into text frames for one connection of a new HIS
/// (reference platform, simulated switch with its controls on). Each frame
/// is parsed as the server parses it and taken as the server takes it; the
/// client then reads what HIS sent until the response to that frame. Lines
/// starting with `#` are the client's doing, not frames: `#reconnect`
/// (drop the connection, open another), `#wait` (a minute passes). `$token`
/// in a frame becomes the last session token HIS gave out.
pub fn client_frames(data: &[u8]) {
    static LOCK: Mutex<()> = Mutex::new(());
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let _turn = take(&LOCK);
    let Some(platform) = reference_platform() else {
        return;
    };
    let rt = RT.get_or_init(runtime);
    rt.block_on(async {
        let sim = Arc::new(SimSwitch::new(config::switch_for(&platform, None)));
        let his = His::new(
            platform.clone(),
            sim,
            Options {
                simulator_controls: true,
                ..Default::default()
            },
        );
        let (mut conn, mut rx) = his.connect();
        let mut token = String::new();
        let mut seen = String::new();
        for line in data.split(|b| *b == b'\n').take(MAX_FRAMES) {
            let Ok(text) = std::str::from_utf8(line) else {
                continue;
            };
            match text.trim_end() {
                "#reconnect" => {
                    (conn, rx) = his.connect();
                    continue;
                }
                "#wait" => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    continue;
                }
                t if t.starts_with('#') => continue,
                _ => {}
            }
            let text = if token.is_empty() {
                text.to_string()
            } else {
                text.replace("$token", &token)
            };
            let id = match protocol::parse(&text) {
                Err((id, message)) => {
                    conn.reply(
                        id.as_deref(),
                        json!({ "ok": false, "error": { "code": "InvalidRequest", "message": message } }),
                    );
                    id
                }
                Ok(req) => {
                    his.request(&mut conn, &req.id, &req.name, &req.params);
                    Some(req.id)
                }
            };
            let until = tokio::time::Instant::now() + RESPONSE_WAIT;
            while let Ok(Some(out)) = tokio::time::timeout_at(until, rx.recv()).await {
                let answered =
                    matches!(&out, Out::Response { id: r, .. } if *r == id);
                let closed = matches!(out, Out::Close(_) | Out::Overflow);
                note(&out, &mut token, &mut seen);
                if closed {
                    // The transport ends the connection: the client opens another.
                    (conn, rx) = his.connect();
                    break;
                }
                if answered {
                    break;
                }
            }
        }
        let until = tokio::time::Instant::now() + RESPONSE_WAIT;
        while let Ok(Some(out)) = tokio::time::timeout_at(until, rx.recv()).await {
            note(&out, &mut token, &mut seen);
        }
        std::hint::black_box(seen);
        drop(conn);
        drop(rx);
        his.shut();
        let _ = his.drain(Duration::from_secs(60)).await;
        drop(his);
        settle_leftovers().await;
    });
}

/// What the transport would send for `out`; remembers a token HIS gave.
fn note(out: &Out, token: &mut String, seen: &mut String) {
    match out {
        Out::Event(e) => seen.push_str(&protocol::event(&e.name, &e.data)),
        Out::Response { id, body } => {
            if let Some(t) = body["result"]["token"].as_str() {
                *token = t.to_string();
            }
            seen.push_str(&protocol::response(id.as_deref(), body).to_string());
        }
        Out::Close(c) => seen.push_str(c.reason()),
        Out::Overflow => seen.push_str("overflow"),
    }
    if seen.len() > 1 << 16 {
        seen.clear();
    }
}
