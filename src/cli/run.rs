//! `hisflow run WORKFLOW --scenario FILE [--trace]`

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use hisflow::engine::{Trace, TraceEntry};
use hisflow::scenario;
use hisflow::workflow::expr::Programs;
use hisflow::{Diagnostics, Platform};

use super::test::{describe_failures, runtime};
use super::{EXIT_PROBLEMS, emit, failed, report};

#[derive(clap::Args)]
pub struct Args {
    /// A workflow file (or platform folder): the scenario runs on its
    /// platform — unless the scenario is in a platform's `scenarios/`
    /// folder, which names its platform.
    workflow: PathBuf,
    /// The scenario to run.
    #[arg(long)]
    scenario: PathBuf,
    /// Print the execution trace as JSON lines: states with their
    /// `file:line`, transitions, operations with their arguments, outcomes,
    /// errors and durations, events, switch events, machine transitions.
    #[arg(long)]
    trace: bool,
}

pub fn run(args: Args) -> ExitCode {
    // A scenario of a platform's `scenarios/` folder runs on that platform,
    // whichever (inherited) workflow file is named.
    let owner = args
        .scenario
        .parent()
        .filter(|d| d.ends_with(scenario::SCENARIOS))
        .and_then(|d| d.parent())
        .filter(|p| p.join(hisflow::workflow::validate::MANIFEST).is_file())
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        });
    let dir = if let Some(owner) = owner {
        owner
    } else if args.workflow.is_dir() {
        args.workflow.clone()
    } else {
        args.workflow
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let (platform, mut checked) = match hisflow::load_platform(&dir) {
        Ok(p) => p,
        Err(hisflow::Error::Invalid(r)) => {
            emit(&report::human(r.diagnostics.iter(), &r.sources));
            return ExitCode::from(EXIT_PROBLEMS);
        }
        Err(e) => return failed(e),
    };
    let platform: Arc<Platform> = Arc::new(platform);
    let mut diags = Diagnostics::new();
    let loaded = match scenario::load_scenario(
        &mut checked.sources,
        &Programs::default(),
        &args.scenario,
        &platform,
        &mut diags,
    ) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let Some(s) = loaded else {
        emit(&report::human(diags.iter(), &checked.sources));
        return ExitCode::from(EXIT_PROBLEMS);
    };
    let trace = Arc::new(Mutex::new(Trace::default()));
    let result = runtime().block_on(scenario::run_scenario(&platform, &s, trace.clone()));
    let trace = std::mem::take(&mut *trace.lock().unwrap_or_else(|e| e.into_inner()));
    let mut out = String::new();
    if args.trace {
        for e in &trace.entries {
            let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
        }
    } else {
        for step in &result.steps {
            let _ = writeln!(out, "→ {} (line {})", step.what, step.line);
            for e in &step.events {
                let _ = writeln!(out, "  ← event {} {}", e.name, e.data);
            }
            if let Some(r) = &step.response {
                let _ = writeln!(out, "  ← response {r}");
            }
            if let Some(reason) = &step.closed {
                let _ = writeln!(out, "  ← closed: {reason}");
            }
        }
        let ops = trace
            .entries
            .iter()
            .filter(|e| matches!(e, TraceEntry::Operation { .. }))
            .count();
        let _ = writeln!(
            out,
            "{} steps, {ops} switch and HIS operations",
            result.steps.len()
        );
    }
    if !result.passed() {
        let _ = writeln!(out, "FAIL  {}", result.name);
        describe_failures(&mut out, &result);
    }
    emit(&out);
    if result.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    }
}
