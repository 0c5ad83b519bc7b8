//! `hisflow schema [-o DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use super::{emit, fail};

#[derive(clap::Args)]
pub struct Args {
    /// Folder to write the schemas into; printed to stdout when absent.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> ExitCode {
    let schemas = hisflow::schema::all();
    match args.output {
        None => {
            emit(&schemas.into_iter().map(|(_, s)| s).collect::<String>());
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return fail(format!("cannot create {}: {e}", dir.display()));
            }
            for (name, s) in schemas {
                let path = dir.join(name);
                if let Err(e) = std::fs::write(&path, s) {
                    return fail(format!("cannot write {}: {e}", path.display()));
                }
                eprintln!("wrote {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}
