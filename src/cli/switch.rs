//! `hisflow switch [--config FILE] [--listen ADDR] [--log-json] [--allow-remote]`:
//! the simulated switch alone, in a process of its own, for HIS nodes whose
//! configuration says `adapter: { kind: sim, url: ws://ADDR/switch }`.

use std::path::PathBuf;
use std::process::ExitCode;

use hisflow::platform::sim::SimSwitch;
use hisflow::platform::sim::wire::PATH;
use hisflow::server::{config, switch};

use super::fail;
use super::serve::{init_logs, load_platform, read_config, shutdown};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration `hisflow serve` reads: its platform and `switch:`
    /// describe the switch, as serve would run it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = switch::DEFAULT_LISTEN)]
    listen: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Listen on an address other machines can reach. The switch asks
    /// nobody who they are: whoever reaches it can act on every agent.
    #[arg(long)]
    allow_remote: bool,
}

pub fn run(args: Args) -> ExitCode {
    init_logs(args.log_json);
    let cfg = match read_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let builtin = std::env::temp_dir().join(format!("hisflow-switch-{}", std::process::id()));
    let platform = load_platform(&cfg, &builtin, "the switch");
    // Only its description of the switch is needed.
    let _ = std::fs::remove_dir_all(&builtin);
    let platform = match platform {
        Ok(p) => p,
        Err(code) => return code,
    };
    // As `hisflow serve` would run it; a long-running switch forgets the
    // agents that logged out.
    let sim = SimSwitch::new(config::switch_for(&platform, cfg.switch)).forgetful();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let listen = args.listen;
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
        };
        let local = listener.local_addr();
        let loopback = local.as_ref().is_ok_and(|a| a.ip().is_loopback());
        if !loopback && !args.allow_remote {
            return fail(format!(
                "the simulated switch authenticates nobody, so it listens only on a loopback address, not {listen}: \
                 pass --allow-remote to let other machines (HIS nodes) reach it, on a network only they can reach"
            ));
        }
        if !loopback {
            tracing::warn!("the switch listens off loopback (--allow-remote): whoever reaches it can act on every agent");
        }
        let addr = local.map(|a| a.to_string()).unwrap_or(listen);
        tracing::info!(platform = %platform.name, %addr, url = %format!("ws://{addr}{PATH}"), "switch listening");
        let stop = shutdown("stopping: closing every client");
        match switch::serve(listener, sim, switch::Settings::default(), stop).await {
            Ok(()) => {
                tracing::info!("switch stopped");
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("the switch failed: {e}")),
        }
    })
}
