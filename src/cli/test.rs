//! `hisflow test PATH... [--require-coverage] [--format human|json|junit]`

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
    /// Output format: the report for a person, or one for CI.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Format {
    /// PASS/FAIL lines, failures with their lines, transition coverage.
    Human,
    /// One JSON object: every scenario with its failures, and coverage.
    Json,
    /// JUnit XML, as CI systems' test reports read it.
    Junit,
}

/// One scenario's outcome, for the machine formats.
struct Case {
    platform: String,
    name: String,
    file: PathBuf,
    /// `line N (step): what went wrong`; empty when it passed.
    failures: Vec<String>,
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
    checked.prepare();
    let platforms: Vec<Arc<Platform>> = std::mem::take(&mut checked.platforms)
        .into_iter()
        .map(Arc::new)
        .collect();
    let programs = Programs::default();
    let mut diags = Diagnostics::new();
    let coverage = Arc::new(Mutex::new(Coverage::default()));
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    let mut cases: Vec<Case> = Vec::new();
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
                cases.push(Case {
                    platform: platform.name.clone(),
                    name: file.display().to_string(),
                    file: file.clone(),
                    failures: vec!["the scenario does not load (see its diagnostics)".into()],
                });
                continue;
            };
            let result = rt.block_on(scenario::run_scenario(platform, &s, coverage.clone()));
            cases.push(Case {
                platform: platform.name.clone(),
                name: result.name.clone(),
                file: file.clone(),
                failures: failures(&result),
            });
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
        // A machine format owns standard output.
        let text = report::human(diags.iter(), &checked.sources);
        if args.format == Format::Human {
            emit(&text);
        } else {
            eprint!("{text}");
        }
    }
    let refs: Vec<&Platform> = platforms.iter().map(|p| p.as_ref()).collect();
    let coverage = coverage.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let cov = CoverageReport::of(&refs, &coverage, &checked.sources);
    write_coverage(&mut out, &cov);
    let _ = writeln!(out, "{passed} passed, {failed} failed");
    match args.format {
        Format::Human => emit(&out),
        Format::Json => emit(&json(&cases, &cov)),
        Format::Junit => emit(&junit(&cases)),
    }
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
    for f in failures(result) {
        let _ = writeln!(out, "        {f}");
    }
}

/// Each failed expectation of a scenario: `line N (step): what went wrong`.
fn failures(result: &ScenarioResult) -> Vec<String> {
    result
        .steps
        .iter()
        .flat_map(|step| {
            step.failures
                .iter()
                .map(move |f| format!("line {} ({}): {f}", step.line, step.what))
        })
        .collect()
}

/// `{"scenarios": [{platform, name, file, passed, failures}], "passed",
/// "failed", "coverage": {covered, total, not_taken: [...]}}`.
fn json(cases: &[Case], cov: &CoverageReport) -> String {
    let (covered, total) = cov.totals();
    let not_taken: Vec<serde_json::Value> = cov
        .workflows
        .iter()
        .flat_map(|w| {
            w.uncovered.iter().map(move |u| {
                serde_json::json!({
                    "file": u.file.display().to_string(),
                    "line": u.line,
                    "column": u.column,
                    "from": u.from,
                    "on": u.on,
                    "to": u.to,
                })
            })
        })
        .collect();
    let scenarios: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "platform": c.platform,
                "name": c.name,
                "file": c.file.display().to_string(),
                "passed": c.failures.is_empty(),
                "failures": c.failures,
            })
        })
        .collect();
    let failed = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({
        "scenarios": scenarios,
        "passed": cases.len() - failed,
        "failed": failed,
        "coverage": { "covered": covered, "total": total, "not_taken": not_taken },
    }))
    .unwrap_or_default();
    text.push('\n');
    text
}

/// JUnit XML: a `testsuite` per platform, a `testcase` per scenario, a
/// `failure` with every failed expectation.
fn junit(cases: &[Case]) -> String {
    let failed = cases.iter().filter(|c| !c.failures.is_empty()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"hisflow\" tests=\"{}\" failures=\"{failed}\">",
        cases.len()
    );
    let mut platforms: Vec<&str> = cases.iter().map(|c| c.platform.as_str()).collect();
    platforms.dedup();
    for p in platforms {
        let mine: Vec<&Case> = cases.iter().filter(|c| c.platform == p).collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml(p),
            mine.len(),
            mine.iter().filter(|c| !c.failures.is_empty()).count()
        );
        for c in mine {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"",
                xml(p),
                xml(&c.name),
                xml(&c.file.display().to_string())
            );
            if c.failures.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml(&c.failures[0]),
                xml(&c.failures.join("\n"))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text for an XML attribute or element.
fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
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
