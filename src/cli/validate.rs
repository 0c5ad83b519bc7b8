//! `hisflow validate PATH...`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{EXIT_PROBLEMS, emit, failed, report};
use hisflow::Severity;

#[derive(clap::Args)]
pub struct Args {
    /// Workflow files, platform manifests or folders (searched recursively);
    /// `-` reads one file from stdin, named by `--stdin-filename`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The path the file read from stdin stands for. It is checked in that
    /// folder, against that platform, as if saved there.
    #[arg(long, value_name = "PATH")]
    stdin_filename: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Leave out a rule's findings (`dead-end` or `hisflow::dead-end`);
    /// repeatable. A comment `# hisflow-ignore: RULE` on a line, or the line
    /// above, leaves them out there.
    #[arg(long, value_name = "RULE")]
    ignore: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Each diagnostic with its source, labelled, and a help line.
    Human,
    /// `file:line:col: severity: message [code]`, one a line.
    Short,
    /// A JSON array (docs/workflow-language.md describes its fields).
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…::message`).
    Github,
    /// A SARIF 2.1.0 log, for code-scanning dashboards.
    Sarif,
}

pub fn run(mut args: Args) -> ExitCode {
    let mut overlay = hisflow::Overlay::new();
    let dashes = args.paths.iter().filter(|p| p.as_os_str() == "-").count();
    match (dashes, &args.stdin_filename) {
        (0, None) => {}
        (0, Some(_)) => return super::fail("--stdin-filename is for `-`, which is not given"),
        (1, Some(name)) => {
            // Checked before a folder's files stand in for it: stdin can
            // only take the place of one file.
            if name.is_dir() {
                eprintln!("error: --stdin-filename {}: is a folder", name.display());
                return ExitCode::from(super::EXIT_FAILURE);
            }
            let mut bytes = Vec::new();
            let read = std::io::Read::read_to_end(
                &mut std::io::Read::take(
                    std::io::stdin().lock(),
                    hisflow::workflow::load::MAX_FILE_BYTES as u64 + 1,
                ),
                &mut bytes,
            );
            if let Err(e) = read {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::from(super::EXIT_FAILURE);
            }
            overlay.insert(name, bytes);
            for p in &mut args.paths {
                if p.as_os_str() == "-" {
                    p.clone_from(name);
                }
            }
        }
        (1, None) => {
            return super::fail(
                "`-` needs --stdin-filename PATH: a workflow means what its platform folder makes it mean",
            );
        }
        _ => return super::fail("`-` may be given once"),
    }
    // A scenario file is checked against its platform, which is validated
    // for it.
    // A `scenarios` folder stands for its files.
    let given: Vec<PathBuf> = args
        .paths
        .iter()
        .flat_map(|p| hisflow::scenario::files_of_folder(p).unwrap_or_else(|| vec![p.clone()]))
        .collect();
    let (scenarios, mut paths): (Vec<PathBuf>, Vec<PathBuf>) = given
        .into_iter()
        .partition(|p| overlay.is_file(p) && hisflow::scenario::platform_of(p).is_some());
    for s in &scenarios {
        if let Some(dir) = hisflow::scenario::platform_of(s) {
            paths.push(dir.join(hisflow::workflow::validate::MANIFEST));
        }
    }
    let mut report = match hisflow::validate_paths_with(&paths, overlay) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    // Every scenario of a platform when the platform's folder is validated.
    let checked = if args.paths.iter().any(|p| p.is_dir()) {
        hisflow::scenario::check_report(&mut report)
    } else {
        hisflow::scenario::check_files(&mut report, &scenarios)
    };
    if let Err(e) = checked {
        return failed(e);
    }
    for rule in &args.ignore {
        if hisflow::Rule::by_name(rule).is_none() {
            return super::fail(format!(
                "--ignore {rule}: no such rule (`hisflow rules` lists them)"
            ));
        }
    }
    let suppressed = report.diagnostics.suppress(&report.sources, &args.ignore);
    let diags = &report.diagnostics;
    let text = match args.format {
        Format::Human => report::human(diags.iter(), &report.sources),
        Format::Short => report::short(diags.iter(), &report.sources),
        Format::Json => report::json(diags.iter(), &report.sources),
        Format::Github => report::github(diags.iter(), &report.sources),
        Format::Sarif => super::sarif::sarif(diags.iter(), &report.sources),
    };
    emit(&text);
    let (errors, warnings) = (diags.count(Severity::Error), diags.count(Severity::Warning));
    if matches!(args.format, Format::Human | Format::Short) {
        let _ = writeln!(
            std::io::stderr(),
            "{} file{} checked: {errors} error{}, {warnings} warning{}{}",
            report.files,
            plural(report.files),
            plural(errors),
            plural(warnings),
            if suppressed > 0 {
                format!(", {suppressed} ignored")
            } else {
                String::new()
            }
        );
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
