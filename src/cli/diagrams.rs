//! `hisflow diagrams DIR` — the Mermaid page of every platform's Logout
//! workflow, and of every machine file.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{fail, validated};
use hisflow::render::{diagram_page, machine_page};

#[derive(clap::Args)]
pub struct Args {
    /// Folder to write the pages into (`docs/diagrams`).
    output: PathBuf,
    /// Platform folders to draw.
    #[arg(long, default_value = "workflows")]
    workflows: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let report = match validated(std::slice::from_ref(&args.workflows), None) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Err(e) = std::fs::create_dir_all(&args.output) {
        return fail(format!("cannot create {}: {e}", args.output.display()));
    }
    for p in &report.platforms {
        let Some(logout) = p.handler("session.request.logout") else {
            continue;
        };
        let path = args.output.join(format!("{}-logout.md", p.name));
        if let Err(e) = std::fs::write(&path, diagram_page(p, logout)) {
            return fail(format!("cannot write {}: {e}", path.display()));
        }
        eprintln!("wrote {}", path.display());
    }
    // Each machine file once, under the platform whose folder holds it.
    for p in &report.platforms {
        for m in &p.machines {
            let own = m
                .path
                .parent()
                .and_then(|d| d.canonicalize().ok())
                .is_some_and(|d| d == p.dir);
            if !own {
                continue;
            }
            let path = args
                .output
                .join(format!("{}-{}-machine.md", p.name, m.name));
            if let Err(e) = std::fs::write(&path, machine_page(p, m)) {
                return fail(format!("cannot write {}: {e}", path.display()));
            }
            eprintln!("wrote {}", path.display());
        }
    }
    ExitCode::SUCCESS
}
