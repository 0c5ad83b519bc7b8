//! `hisflow render FILE --format mermaid|dot [-o FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{EXIT_PROBLEMS, emit, fail, report};
use hisflow::render::{Dot, Mermaid};

#[derive(clap::Args)]
pub struct Args {
    /// The workflow file to draw; it is validated in its folder's platform first.
    file: PathBuf,
    /// Diagram language.
    #[arg(long, value_enum, default_value_t = Format::Mermaid)]
    format: Format,
    /// Where to write the diagram; stdout when absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Mermaid,
    Dot,
}

pub fn run(args: Args) -> ExitCode {
    let report = match hisflow::validate_paths(std::slice::from_ref(&args.file)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if report.diagnostics.has_errors() {
        emit(&report::human(report.diagnostics.iter(), &report.sources));
        eprintln!("cannot render {}: it has errors", args.file.display());
        return ExitCode::from(EXIT_PROBLEMS);
    }
    let wanted = args.file.canonicalize().unwrap_or(args.file.clone());
    let workflow = report
        .platforms
        .iter()
        .flat_map(|p| p.workflows.values())
        .chain(report.workflows.iter())
        .find(|w| w.path.canonicalize().is_ok_and(|p| p == wanted));
    let Some(workflow) = workflow else {
        return fail(format!("{} is not a workflow file", args.file.display()));
    };
    let text = match args.format {
        Format::Mermaid => Mermaid(workflow).to_string(),
        Format::Dot => Dot(workflow).to_string(),
    };
    match args.output {
        None => emit(&text),
        Some(path) => {
            if let Err(e) = std::fs::write(&path, text) {
                return fail(format!("cannot write {}: {e}", path.display()));
            }
        }
    }
    ExitCode::SUCCESS
}
