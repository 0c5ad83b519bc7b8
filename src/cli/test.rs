//! `hisflow test PATH... [--require-coverage]`

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use hisflow::engine::Coverage;
use hisflow::scenario::{self, CoverageReport, ScenarioResult};
use hisflow::workflow::expr::Programs;
use hisflow::{Diagnostics, Platform};

use super::{EXIT_PROBLEMS, emit, failed, report, validated};

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files, or folders searched for `scenarios/*.yaml`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Fail unless every transition of every workflow was taken.
    #[arg(long)]
    require_coverage: bool,
}

/// A paused clock: timeouts and latency in scenarios cost no wall time.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime starts")
}

pub fn run(args: Args) -> ExitCode {
    let found = match scenario::find(&args.paths) {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    let dirs: Vec<PathBuf> = found.keys().map(|d| d.join("platform.yaml")).collect();
    let mut checked = match validated(&dirs, Some("the platforms have errors; no scenario ran")) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let platforms: Vec<Arc<Platform>> = std::mem::take(&mut checked.platforms)
        .into_iter()
        .map(Arc::new)
        .collect();
    let programs = Programs::default();
    let mut diags = Diagnostics::new();
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    let rt = runtime();
    for (dir, files) in &found {
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        let Some(platform) = platforms.iter().find(|p| p.dir == canonical) else {
            let _ = writeln!(out, "{}: not a valid platform folder", dir.display());
            failed += files.len();
            continue;
        };
        let _ = writeln!(out, "{}", platform.name);
        // Named files run alone; a folder runs what it inherits too.
        let named = args
            .paths
            .iter()
            .any(|p| p.is_file() && scenario::platform_of(p).as_deref() == Some(dir.as_path()));
        let inherited = if named {
            Vec::new()
        } else {
            scenario::inherited(platform)
        };
        for file in files.iter().chain(&inherited) {
            let loaded = match scenario::load_scenario(
                &mut checked.sources,
                &programs,
                file,
                platform,
                &mut diags,
            ) {
                Ok(s) => s,
                Err(e) => return super::failed(e),
            };
            let Some(s) = loaded else {
                let _ = writeln!(out, "  FAIL  {} (does not load)", file.display());
                failed += 1;
                continue;
            };
            let result = rt.block_on(scenario::run_scenario(platform, &s, coverage.clone()));
            if result.passed() {
                passed += 1;
                let _ = writeln!(out, "  PASS  {}  ({})", result.name, file.display());
            } else {
                failed += 1;
                let _ = writeln!(out, "  FAIL  {}  ({})", result.name, file.display());
                if inherited.contains(file) {
                    let _ = writeln!(
                        out,
                        "        inherited: where {} answers differently, write its own {}",
                        platform.name,
                        dir.join(scenario::SCENARIOS)
                            .join(file.file_name().unwrap_or_default())
                            .display()
                    );
                }
                describe_failures(&mut out, &result);
            }
        }
    }
    if !diags.is_empty() {
        emit(&report::human(diags.iter(), &checked.sources));
    }
    let refs: Vec<&Platform> = platforms.iter().map(|p| p.as_ref()).collect();
    let coverage = coverage.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let cov = CoverageReport::of(&refs, &coverage, &checked.sources);
    write_coverage(&mut out, &cov);
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    emit(&out);
    let incomplete = args.require_coverage && !cov.complete();
    if incomplete {
        eprintln!("--require-coverage: some transitions were never taken");
    }
    if failed > 0 || incomplete || diags.has_errors() {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn describe_failures(out: &mut String, result: &ScenarioResult) {
    for step in result.steps.iter().filter(|s| !s.failures.is_empty()) {
        for f in &step.failures {
            let _ = writeln!(out, "        line {} ({}): {f}", step.line, step.what);
        }
    }
}

fn write_coverage(out: &mut String, cov: &CoverageReport) {
    let (covered, total) = cov.totals();
    let _ = writeln!(out, "transition coverage: {covered}/{total}");
    for w in &cov.workflows {
        let mark = if w.uncovered.is_empty() { " " } else { "!" };
        let _ = writeln!(
            out,
            "  {mark} {:<55} {:>3}/{:<3}",
            w.path.display(),
            w.covered(),
            w.total
        );
        for u in &w.uncovered {
            let _ = writeln!(
                out,
                "        not taken: {} --{}--> {}  ({})",
                u.from,
                u.on,
                u.to,
                at(u, &w.path)
            );
        }
        for (u, why) in &w.impossible {
            let _ = writeln!(
                out,
                "        impossible: {} --{}--> {}  ({}): {why}",
                u.from,
                u.on,
                u.to,
                at(u, &w.path)
            );
        }
    }
}

/// Where a transition is written: line and column, with the file when it is
/// not the one the report line names (a state an override kept).
fn at(u: &hisflow::scenario::Uncovered, path: &std::path::Path) -> String {
    if u.file == path {
        format!("{}:{}", u.line, u.column)
    } else {
        format!("{}:{}:{}", u.file.display(), u.line, u.column)
    }
}
