//! `hisflow doctor --config FILE`: checks a deployment before agents
//! arrive — its platform, and its switch as the adapter can reach it — one
//! line per check. Exit 0 when nothing failed, 1 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use hisflow::platform::deploy::{self, Status};
use hisflow::server::config;

use super::{EXIT_PROBLEMS, emit, fail, report};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration `hisflow serve` would run with.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> ExitCode {
    let cfg = match config::read(&args.config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let builtin = std::env::temp_dir().join(format!("hisflow-doctor-{}", std::process::id()));
    let dir = match &cfg.platform {
        Some(p) => p.clone(),
        None => match config::extract_reference(&builtin) {
            Ok(d) => d,
            Err(e) => return fail(format!("cannot write the built-in platform: {e}")),
        },
    };
    let loaded = hisflow::load_platform(&dir);
    let _ = std::fs::remove_dir_all(&builtin);
    let platform = match loaded {
        Ok((p, _)) => p,
        Err(hisflow::Error::Invalid(r)) => {
            emit(&report::human(r.diagnostics.iter(), &r.sources));
            println!("FAIL  platform: {} has errors", dir.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
        Err(e) => return fail(e),
    };
    println!(
        "ok    platform: `{}` ({}), adapter `{}`",
        platform.name,
        dir.display(),
        platform.adapter
    );
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let checks = rt.block_on(deploy::doctor(&platform, cfg.adapter.as_ref(), |name| {
        std::env::var(name).ok()
    }));
    let mut failed = false;
    for c in &checks {
        let tag = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => {
                failed = true;
                "FAIL"
            }
        };
        println!("{tag}  {}: {}", c.name, c.detail);
    }
    if failed {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}
