//! `hisflow render FILE --format mermaid|dot [-o FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{emit, fail, validated};
use hisflow::render::{Dot, MachineDot, MachineMermaid, Mermaid};

#[derive(clap::Args)]
pub struct Args {
    /// The workflow or machine file to draw; it is validated in its folder's
    /// platform first.
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
    let refusal = format!("cannot render {}: it has errors", args.file.display());
    let report = match validated(std::slice::from_ref(&args.file), Some(&refusal)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let wanted = args.file.canonicalize().unwrap_or(args.file.clone());
    let is_it = |p: &std::path::Path| p.canonicalize().is_ok_and(|p| p == wanted);
    let workflow = report
        .platforms
        .iter()
        .flat_map(|p| p.workflows.values())
        .chain(report.workflows.iter())
        .find(|w| is_it(&w.path));
    let machine = report
        .platforms
        .iter()
        .flat_map(|p| p.machines.iter())
        .chain(report.machines.iter())
        .find(|m| is_it(&m.path));
    let text = match (workflow, machine, args.format) {
        (Some(w), _, Format::Mermaid) => Mermaid(w).to_string(),
        (Some(w), _, Format::Dot) => Dot(w).to_string(),
        (None, Some(m), Format::Mermaid) => MachineMermaid(m).to_string(),
        (None, Some(m), Format::Dot) => MachineDot(m).to_string(),
        (None, None, _) => {
            return fail(format!(
                "{} is not a workflow or machine file",
                args.file.display()
            ));
        }
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
