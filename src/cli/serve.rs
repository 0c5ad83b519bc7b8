//! `hisflow serve [--config FILE] [--listen ADDR] [--log-json] [--simulator-controls]
//! [--tls-cert FILE --tls-key FILE]`

use std::io::IsTerminal;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use hisflow::Platform;
use hisflow::his::auth::Authenticator;
use hisflow::his::cluster::{Cluster, ClusterConfig};
use hisflow::his::metrics::{Metered, Metrics};
use hisflow::his::store::{DEFAULT_DATA_DIR, Embedded, Store};
use hisflow::his::{His, Options};
use hisflow::platform::deploy;
use hisflow::server::{self, MAX_FRAME_BYTES, config};

use super::{EXIT_PROBLEMS, emit, fail, report};

#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (YAML; schema: schemas/config.schema.json).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on; overrides the configuration's `listen`.
    #[arg(long)]
    listen: Option<String>,
    /// Where sessions are kept across a restart; overrides the
    /// configuration's `data_dir`. Default: `hisflow-data` in the current
    /// directory.
    #[arg(long, conflicts_with = "nats")]
    data_dir: Option<PathBuf>,
    /// Run as a node of a cluster sharing its sessions through NATS
    /// JetStream at URL (`nats://host:4222`), instead of --data-dir;
    /// overrides the configuration's `cluster.nats`.
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
    /// A NATS credentials file (user JWT and NKey seed).
    #[arg(long, requires = "nats")]
    nats_creds: Option<PathBuf>,
    /// CA certificate (PEM) for NATS' TLS; TLS is then required.
    #[arg(long, requires = "nats")]
    nats_tls_ca: Option<PathBuf>,
    /// This node's name in the cluster; a fresh one at each start without.
    #[arg(long, requires = "nats")]
    node: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Let clients use the simulated switch's controls (interactions,
    /// faults, latency …), each for its own agent: for demos and tests.
    #[arg(long)]
    simulator_controls: bool,
    /// Serve HTTPS and WSS with this certificate chain (PEM); overrides the
    /// configuration's `tls.cert`. Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// Logs to stderr, as text or (`json`) JSON lines, at `RUST_LOG`'s levels
/// (`info` by default).
pub(super) fn init_logs(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if json {
        logs.json().finish().with(no_frames()).init();
    } else {
        logs.with_ansi(colour).finish().with(no_frames()).init();
    }
}

/// The configuration at `path`, or the default one.
pub(super) fn read_config(path: Option<&Path>) -> Result<config::ServeConfig, ExitCode> {
    match path {
        Some(path) => config::read(path).map_err(fail),
        None => Ok(config::ServeConfig::default()),
    }
}

/// The configuration's platform, or the built-in one, written to
/// `builtin` first; `who` is what does not start if it has errors.
pub(super) fn load_platform(
    cfg: &config::ServeConfig,
    builtin: &Path,
    who: &str,
) -> Result<Platform, ExitCode> {
    let dir = match &cfg.platform {
        Some(p) => p.clone(),
        None => config::extract_reference(builtin).map_err(|e| {
            fail(format!(
                "cannot write the built-in platform to {}: {e}",
                builtin.display()
            ))
        })?,
    };
    match hisflow::load_platform(&dir) {
        Ok((p, _)) => Ok(p),
        Err(hisflow::Error::Invalid(r)) => {
            emit(&report::human(r.diagnostics.iter(), &r.sources));
            eprintln!("the platform has errors; {who} does not start");
            Err(ExitCode::from(EXIT_PROBLEMS))
        }
        Err(e) => Err(fail(e)),
    }
}

pub fn run(args: Args) -> ExitCode {
    init_logs(args.log_json);
    let cfg = match read_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The built-in platform is written to a folder of this process's own,
    // removed when HIS stops.
    let builtin = std::env::temp_dir().join(format!("hisflow-{}", std::process::id()));
    let platform = match load_platform(&cfg, &builtin, "HIS") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let listen = args
        .listen
        .or(cfg.listen)
        .unwrap_or_else(|| config::DEFAULT_LISTEN.to_string());
    let auth = match Authenticator::from_config(&cfg.auth) {
        Ok(a) => Arc::new(a),
        Err(e) => return fail(format!("auth: {e}")),
    };
    let tls = match args
        .tls_cert
        .zip(args.tls_key)
        .or(cfg.tls.map(|t| (t.cert, t.key)))
    {
        Some((cert, key)) => match server::listener::tls_acceptor(&cert, &key) {
            Ok(t) => Some(t),
            Err(e) => return fail(format!("tls: {e}")),
        },
        None => None,
    };
    let has_tls = tls.is_some();
    let scheme = if has_tls { "s" } else { "" };
    let limits = cfg.limits.unwrap_or_default();
    let defaults = Options::default();
    let options = Options {
        max_sessions: limits.max_sessions.unwrap_or(defaults.max_sessions),
        max_queued_events: limits
            .max_queued_events
            .unwrap_or(defaults.max_queued_events),
        detach_grace: cfg.detach_grace.map_or(defaults.detach_grace, |s| s.0),
        expiry_reason: cfg.expiry_reason,
        simulator_controls: args.simulator_controls || cfg.simulator_controls,
        max_states_per_request: limits
            .max_states_per_request
            .unwrap_or(defaults.max_states_per_request),
        auth: auth.clone(),
        param_limits: hisflow::engine::ParamLimits {
            text: limits.max_text_param.unwrap_or(defaults.param_limits.text),
            list: limits.max_list_items.unwrap_or(defaults.param_limits.list),
        },
        eval_budget: limits.max_eval_items.unwrap_or(defaults.eval_budget),
        store: None,
        cluster: None,
    };
    let cluster = match (args.nats, cfg.cluster.clone()) {
        (Some(url), _) => Some(ClusterConfig {
            url,
            creds: args.nats_creds,
            tls_ca: args.nats_tls_ca,
            node: args.node,
            bucket: None,
        }),
        (None, Some(c)) => Some(ClusterConfig {
            url: c.nats,
            creds: c.creds,
            tls_ca: c.tls_ca,
            node: c.node,
            bucket: c.bucket,
        }),
        (None, None) => None,
    };
    let data_dir = args
        .data_dir
        .or(cfg.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let settings = server::Settings {
        max_frame: limits.max_frame_bytes.unwrap_or(MAX_FRAME_BYTES),
        shutdown_grace: cfg.shutdown_grace.map_or(server::SHUTDOWN_GRACE, |s| s.0),
        allowed_origins: cfg.allowed_origins.clone(),
        max_connections: limits
            .max_connections
            .unwrap_or(server::listener::MAX_CONNECTIONS),
        header_timeout: limits
            .header_timeout
            .map_or(server::listener::HEADER_TIMEOUT, |s| s.0),
        idle_timeout: limits.idle_timeout.map_or(server::IDLE_TIMEOUT, |s| s.0),
        tls,
        inbound: None,
        metrics: Metrics::new(),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let switch = cfg.switch.clone();
    if let (Some(_), Some(deploy::AdapterConfig::Sim(deploy::SimConfig { url: Some(url) }))) =
        (&switch, &cfg.adapter)
    {
        tracing::warn!(%url, "the configuration's `switch:` is not used: the simulated switch at the adapter's url has its own (`hisflow switch` reads it)");
    }
    let started = rt.block_on(deploy::start(
        &platform,
        cfg.adapter.as_ref(),
        || config::switch_for(&platform, switch),
        |name| std::env::var(name).ok(),
    ));
    let started = match started {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    tracing::info!(switch = %started.description, "switch ready");
    let settings = server::Settings {
        inbound: started.inbound,
        ..settings
    };
    let name = platform.name.clone();
    // The switch's answers counted for /metrics.
    let adapter = Arc::new(Metered::new(started.adapter, settings.metrics.clone()));
    let code = rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {listen}: {e}")),
        };
        let local = listener.local_addr();
        let loopback = local.as_ref().is_ok_and(|a| a.ip().is_loopback());
        if !auth.is_none() && !loopback && !has_tls && !cfg.tls_by_proxy {
            return fail(format!(
                "agents would send their {} in clear text on {listen}: give HIS a certificate (`tls`, --tls-cert/--tls-key), \
                 or set `tls_by_proxy: true` if a proxy in front of it ends TLS",
                if auth.kind() == "jwt" { "tokens" } else { "passwords" }
            ));
        }
        if auth.is_none() {
            // Without authentication, whoever reaches HIS is any agent they
            // name: only this machine's users may reach it so.
            if !loopback {
                return fail(format!(
                    "agents are not authenticated (auth: none), which HIS allows only on a loopback address, not {listen}: \
                     set `auth` in the configuration (users or jwt; see the README's \"Security and limits\")"
                ));
            }
            tracing::warn!("agents are not authenticated (auth: none): anyone who can reach this address can act as any agent");
        }
        // Opened once HIS is sure to start: a refused start leaves no data
        // directory behind.
        let (options, records) = match &cluster {
            Some(config) => match Cluster::join(config, settings.metrics.clone()).await {
                Ok(c) => {
                    tracing::info!(node = %c.node(), nats = %hisflow::his::cluster::credentials(&config.url).0, "joined the cluster");
                    let store: Arc<dyn Store> = c.clone();
                    (Options { store: Some(store), cluster: Some(c), ..options }, Vec::new())
                }
                Err(e) => return fail(e),
            },
            None => match Embedded::open(&data_dir, settings.metrics.clone()) {
                Ok((store, records)) => {
                    tracing::info!(data_dir = %data_dir.display(), sessions = records.len(), "session store open");
                    let store: Arc<dyn Store> = store;
                    (Options { store: Some(store), ..options }, records)
                }
                Err(e) => return fail(e),
            },
        };
        let his = His::new(Arc::new(platform), adapter, options);
        if !records.is_empty() {
            let n = his.restore(records);
            tracing::info!(sessions = n, "sessions restored; each reads the switch's state again");
        }
        tokio::spawn(His::watch_expiries(his.weak()));
        his.start_cluster();
        let addr = local.map(|a| a.to_string()).unwrap_or(listen);
        tracing::info!(platform = %name, %addr, auth = auth.kind(), "HIS listening: MediaBar at http{scheme}://{addr}/, WebSocket at ws{scheme}://{addr}/ws");
        let stop = shutdown("shutting down: finishing the requests under way");
        let served = server::serve(listener, his.clone(), settings, stop).await;
        his.flush_store().await;
        match served {
            Ok(()) => {
                tracing::info!("HIS stopped");
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("the server failed: {e}")),
        }
    });
    let _ = std::fs::remove_dir_all(&builtin);
    code
}

/// The WebSocket library traces every frame's payload — resume tokens among
/// them. No log level may show a token: whatever `RUST_LOG` says, its
/// traces never pass.
fn no_frames<S: tracing::Subscriber>() -> impl tracing_subscriber::Layer<S> {
    tracing_subscriber::filter::filter_fn(|meta| {
        let frames = ["tungstenite", "tokio_tungstenite"]
            .iter()
            .any(|c| meta.target().starts_with(c));
        !(frames && *meta.level() == tracing::Level::TRACE)
    })
}

/// Completes on SIGINT or SIGTERM, saying `what` happens then.
pub(super) async fn shutdown(what: &'static str) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("{what}");
}
