//! `hisflow serve`'s configuration file.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::his::auth::AuthConfig;
use crate::platform::deploy::AdapterConfig;
use crate::platform::sim::SwitchState;

/// HIS's configuration. Every key is optional: with none, HIS serves the
/// reference platform on the simulated switch at 127.0.0.1:7411.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[schemars(title = "hisflow serve configuration")]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The platform folder to serve (its platform.yaml and workflows);
    /// relative to the configuration file. The built-in reference platform
    /// when absent.
    #[serde(default)]
    pub platform: Option<PathBuf>,
    /// Address and port to listen on.
    #[serde(default)]
    pub listen: Option<String>,
    /// Where HIS keeps its sessions across a restart (`--data-dir`);
    /// relative to the configuration file. `hisflow-data` in the directory
    /// HIS is started from when absent.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Run as a node of a cluster that shares its sessions through NATS
    /// JetStream, instead of keeping them in `data_dir`.
    #[serde(default)]
    pub cluster: Option<ClusterSettings>,
    /// The switch HIS drives, when the platform's adapter is not the
    /// simulated one (`kind: twilio-taskrouter` and its Workspace), or
    /// `kind: sim` to run any platform on the simulated switch.
    #[serde(default)]
    pub adapter: Option<AdapterConfig>,
    /// The simulated switch's state at start: reason codes, agents.
    #[serde(default)]
    pub switch: Option<SwitchState>,
    #[serde(default)]
    pub limits: Option<LimitsConfig>,
    /// How long a session lives without a connection — a reload, a dropped
    /// network — before HIS logs the agent out (`120s` by default).
    #[serde(default)]
    pub detach_grace: Option<Span>,
    /// The logout reason HIS gives the switch when it logs out a session
    /// left detached. Without one, and on a platform that needs one, the
    /// first reason the platform offers.
    #[serde(default)]
    pub expiry_reason: Option<String>,
    /// How long the requests under way may take to finish after SIGINT or
    /// SIGTERM before every connection is closed (`10s` by default).
    #[serde(default)]
    pub shutdown_grace: Option<Span>,
    /// Whether clients may use the simulated switch's controls, each for its
    /// own agent (`--simulator-controls`); off by default.
    #[serde(default)]
    pub simulator_controls: bool,
    /// Origins (`https://crm.example.com`) whose pages may open the
    /// WebSocket besides HIS's own page; others are refused with 403.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// How agents prove who they are (`kind: none | users | jwt`); none
    /// by default, which HIS allows only on a loopback address.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Serve HTTPS and WSS with this certificate; plain HTTP without.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// HIS sits behind a proxy that ends TLS: it may then take passwords
    /// and tokens over plain HTTP off loopback, which it otherwise refuses.
    #[serde(default)]
    pub tls_by_proxy: bool,
}

/// How a node reaches the cluster's NATS.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// NATS server URL(s), `nats://host:4222` or `tls://host:4222`, several
    /// separated by commas.
    pub nats: String,
    /// A NATS credentials file (user JWT and NKey seed); relative to the
    /// configuration file.
    #[serde(default)]
    pub creds: Option<PathBuf>,
    /// CA certificate (PEM) for NATS' TLS certificate; TLS is then
    /// required. Relative to the configuration file.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// This node's name (letters, digits, `-`, `_`); a fresh one at each
    /// start when absent.
    #[serde(default)]
    pub node: Option<String>,
    /// The JetStream key-value bucket of sessions (`hisflow_sessions`).
    #[serde(default)]
    pub bucket: Option<String>,
}

/// The certificate HIS presents.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, the server's own first; relative to the
    /// configuration file.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A duration in a configuration; below the server, so that HIS and
/// adapters read their own settings with it too.
pub use crate::workflow::duration::Span;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest text frame a client may send, in bytes (64 KiB by default).
    #[serde(default)]
    pub max_frame_bytes: Option<usize>,
    /// How many sessions HIS holds at once (100,000 by default).
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// How many switch events may wait for one session (1,024 by default);
    /// more are dropped and logged.
    #[serde(default)]
    pub max_queued_events: Option<usize>,
    /// How many states one request may enter (1,000 by default): a
    /// workflow that loops ends with `Internal` there.
    #[serde(default)]
    pub max_states_per_request: Option<usize>,
    /// How many connections HIS holds at once (10,000 by default); one more
    /// is closed at once.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// How long a client has, from connecting, to send its HTTP request
    /// head (`10s` by default).
    #[serde(default)]
    pub header_timeout: Option<Span>,
    /// How long a connection may send no frame — pings, sent at a third of
    /// it, are answered by any live client — before it is closed (`90s` by
    /// default).
    #[serde(default)]
    pub idle_timeout: Option<Span>,
    /// The most characters a text parameter of a request may hold (a
    /// reason, a channel …; 256 by default). Agent ids are 1 to 128.
    #[serde(default)]
    pub max_text_param: Option<usize>,
    /// The most items a list parameter may hold (32 by default).
    #[serde(default)]
    pub max_list_items: Option<usize>,
    /// How many list items one evaluation of an expression may visit,
    /// inner loops included (100,000 by default); past it the request ends
    /// with `Internal`, naming the expression.
    #[serde(default)]
    pub max_eval_items: Option<usize>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";

/// Reads a configuration file; the error says where it is wrong.
pub fn read(path: &Path) -> Result<ServeConfig, crate::Error> {
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut config: ServeConfig =
        marked_yaml::from_yaml(0, &text).map_err(|source| crate::Error::Config {
            path: path.to_path_buf(),
            source,
        })?;
    if let Some(Err((_, message))) = config.switch.as_ref().map(SwitchState::check) {
        return Err(crate::Error::ConfigValue {
            path: path.to_path_buf(),
            message,
        });
    }
    // Paths in the file are the file's: HIS may be started from anywhere.
    let base = path.parent().unwrap_or(Path::new("."));
    let rebase = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    if let Some(p) = &mut config.platform {
        rebase(p);
    }
    if let Some(p) = &mut config.data_dir {
        rebase(p);
    }
    if let Some(c) = &mut config.cluster {
        for p in [&mut c.creds, &mut c.tls_ca].into_iter().flatten() {
            rebase(p);
        }
    }
    match &mut config.auth {
        AuthConfig::None => {}
        AuthConfig::Users { file } => rebase(file),
        AuthConfig::Jwt { key_file, .. } => rebase(key_file),
    }
    if let Some(tls) = &mut config.tls {
        rebase(&mut tls.cert);
        rebase(&mut tls.key);
    }
    Ok(config)
}

/// The simulated switch `hisflow serve` runs for `platform`: the
/// configuration's, else the platform's `adapter.switch` laid over the
/// default one.
pub fn switch_for(platform: &crate::Platform, configured: Option<SwitchState>) -> SwitchState {
    configured.unwrap_or_else(|| {
        let default = serde_json::to_value(default_switch()).unwrap_or_default();
        platform
            .switch
            .as_ref()
            .map(|s| crate::platform::sim::layered(Some(&default), s.clone()))
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_else(default_switch)
    })
}

/// The simulated switch when the configuration does not describe one: the
/// reason codes the reference platform offers its agents.
pub fn default_switch() -> SwitchState {
    let mut s = SwitchState::default();
    s.reason_codes.insert(
        "logout".into(),
        ["End of shift", "Lunch", "Meeting", "Training"]
            .map(String::from)
            .to_vec(),
    );
    s.reason_codes.insert(
        "not_ready".into(),
        ["Break", "Lunch", "Meeting"].map(String::from).to_vec(),
    );
    s
}

/// The reference platform, built into the binary so that `hisflow serve`
/// needs no files.
const REFERENCE: &[(&str, &str)] = &[
    (
        "platform.yaml",
        include_str!("../../workflows/reference/platform.yaml"),
    ),
    (
        "activate_channel.yaml",
        include_str!("../../workflows/reference/activate_channel.yaml"),
    ),
    (
        "channel.yaml",
        include_str!("../../workflows/reference/channel.yaml"),
    ),
    (
        "collect_reasons.yaml",
        include_str!("../../workflows/reference/collect_reasons.yaml"),
    ),
    (
        "deactivate_channel.yaml",
        include_str!("../../workflows/reference/deactivate_channel.yaml"),
    ),
    (
        "dispose_channel.yaml",
        include_str!("../../workflows/reference/dispose_channel.yaml"),
    ),
    (
        "dispose_session.yaml",
        include_str!("../../workflows/reference/dispose_session.yaml"),
    ),
    (
        "go_not_ready.yaml",
        include_str!("../../workflows/reference/go_not_ready.yaml"),
    ),
    (
        "go_ready.yaml",
        include_str!("../../workflows/reference/go_ready.yaml"),
    ),
    (
        "link.yaml",
        include_str!("../../workflows/reference/link.yaml"),
    ),
    (
        "login.yaml",
        include_str!("../../workflows/reference/login.yaml"),
    ),
    (
        "logout.yaml",
        include_str!("../../workflows/reference/logout.yaml"),
    ),
    (
        "open_channel.yaml",
        include_str!("../../workflows/reference/open_channel.yaml"),
    ),
    (
        "session.yaml",
        include_str!("../../workflows/reference/session.yaml"),
    ),
    (
        "switch_logout.yaml",
        include_str!("../../workflows/reference/switch_logout.yaml"),
    ),
];

/// Names of the built-in reference platform's files, for the test that
/// keeps the list complete.
pub fn embedded_files() -> impl Iterator<Item = &'static str> {
    REFERENCE.iter().map(|(n, _)| *n)
}

/// Writes the built-in reference platform into `dir/reference` and returns
/// that folder.
pub fn extract_reference(dir: &Path) -> std::io::Result<PathBuf> {
    let target = dir.join("reference");
    std::fs::create_dir_all(&target)?;
    for (name, text) in REFERENCE {
        std::fs::write(target.join(name), text)?;
    }
    Ok(target)
}
