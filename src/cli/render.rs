//! `hisflow render FILE --format mermaid|dot [-o FILE]`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::{emit, fail, validated};
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
    let refusal = format!("cannot render {}: it has errors", args.file.display());
    let report = match validated(std::slice::from_ref(&args.file), Some(&refusal)) {
        Ok(r) => r,
        Err(code) => return code,
    };
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
