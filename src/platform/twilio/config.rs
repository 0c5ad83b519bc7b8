//! How a deployment reaches its TaskRouter Workspace: the `adapter:` entry
//! of `hisflow serve`'s configuration when its kind is `twilio-taskrouter`.
//! Secrets are never in it: it names the environment variables that hold
//! them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::workflow::duration::Span;

/// TaskRouter's REST API.
pub const DEFAULT_BASE_URL: &str = "https://taskrouter.twilio.com";

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Workspace's SID (`WS` and 32 hexadecimal digits).
    pub workspace_sid: String,
    /// Names of the environment variables holding the credentials.
    #[serde(default)]
    pub credentials: Credentials,
    /// How the Worker of an agent is found.
    #[serde(default)]
    pub worker: WorkerLookup,
    /// The Activities HIS moves Workers to, by friendly name.
    #[serde(default)]
    pub activities: Activities,
    /// The task channel (its unique name) of each medium HIS logs agents in
    /// on; a medium not listed uses the task channel of the same name.
    #[serde(default)]
    pub task_channels: BTreeMap<String, String>,
    /// Where TaskRouter sends its Event Callbacks.
    pub webhook: Webhook,
    /// TaskRouter's REST API (`https://taskrouter.twilio.com`); plain
    /// `http` only on a loopback address, for tests.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// How long one HTTP request may take before it is abandoned (`10s`).
    /// A workflow state's own timeout bounds the whole operation, retries
    /// included.
    #[serde(default)]
    pub request_timeout: Option<Span>,
    /// How often a request TaskRouter answered with 429 or 5xx, or could
    /// not be sent, is tried in all (`4`).
    #[serde(default, deserialize_with = "count")]
    pub attempts: Option<u32>,
}

/// A count written as a number or, as YAML read through the adapter's
/// `kind:` tag arrives, as its text.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u32),
        Text(String),
    }
    match Option::<Either>::deserialize(d)? {
        None => Ok(None),
        Some(Either::Number(n)) => Ok(Some(n)),
        Some(Either::Text(t)) => t.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("`{t}` is not a count (a whole number, e.g. 4)"))
        }),
    }
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

/// Names of environment variables. With `api_key_env`, HIS calls the REST
/// API with the API key and secret; otherwise with the Account SID and
/// auth token. The auth token is needed either way: Twilio signs its
/// webhooks with it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// `TWILIO_ACCOUNT_SID` by default.
    #[serde(default = "account_sid_env")]
    pub account_sid_env: String,
    /// `TWILIO_AUTH_TOKEN` by default.
    #[serde(default = "auth_token_env")]
    pub auth_token_env: String,
    /// An API key's SID (`SK…`), to call the REST API with instead of the
    /// auth token.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// That API key's secret; needed with `api_key_env`.
    #[serde(default)]
    pub api_secret_env: Option<String>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            account_sid_env: account_sid_env(),
            auth_token_env: auth_token_env(),
            api_key_env: None,
            api_secret_env: None,
        }
    }
}

fn account_sid_env() -> String {
    "TWILIO_ACCOUNT_SID".into()
}

fn auth_token_env() -> String {
    "TWILIO_AUTH_TOKEN".into()
}

/// The Worker of agent `a` is the one whose `attribute` is `value` with
/// `{agent}` replaced by `a`. `friendly_name` is the Worker's name; any
/// other is a key of its attributes (`contact_uri`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerLookup {
    /// `friendly_name` by default.
    #[serde(default = "friendly_name")]
    pub attribute: String,
    /// `{agent}` by default; e.g. `client:{agent}` for a `contact_uri`.
    #[serde(default = "agent_placeholder")]
    pub value: String,
}

impl Default for WorkerLookup {
    fn default() -> Self {
        WorkerLookup {
            attribute: friendly_name(),
            value: agent_placeholder(),
        }
    }
}

fn friendly_name() -> String {
    "friendly_name".into()
}

fn agent_placeholder() -> String {
    "{agent}".into()
}

impl WorkerLookup {
    /// The attribute's value for `agent`.
    pub fn value_for(&self, agent: &str) -> String {
        self.value.replacen("{agent}", agent, 1)
    }

    /// The agent whose Worker has `value`, if the pattern fits it.
    pub fn agent_of<'v>(&self, value: &'v str) -> Option<&'v str> {
        let (prefix, suffix) = self.value.split_once("{agent}")?;
        value
            .strip_prefix(prefix)?
            .strip_suffix(suffix)
            .filter(|a| !a.is_empty())
    }

    pub fn by_name(&self) -> bool {
        self.attribute == "friendly_name"
    }
}

/// Activities by friendly name. Ready is an available one; Not Ready (when
/// the agent gives no reason) and offline are unavailable ones. The Not
/// Ready reasons are every other unavailable Activity of the Workspace.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Activities {
    /// `Available` by default.
    #[serde(default = "available")]
    pub ready: String,
    /// `Unavailable` by default: also where a login puts an offline Worker.
    #[serde(default = "unavailable")]
    pub not_ready: String,
    /// `Offline` by default: logging out moves the Worker there.
    #[serde(default = "offline")]
    pub offline: String,
}

impl Default for Activities {
    fn default() -> Self {
        Activities {
            ready: available(),
            not_ready: unavailable(),
            offline: offline(),
        }
    }
}

fn available() -> String {
    "Available".into()
}

fn unavailable() -> String {
    "Unavailable".into()
}

fn offline() -> String {
    "Offline".into()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL TaskRouter calls, as it calls it (the Workspace's Event
    /// Callback URL): HIS checks signatures against it and serves its path.
    pub url: String,
}

impl Config {
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
            .map_or(Duration::from_secs(10), |s| s.0)
    }

    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or(4).clamp(1, 10)
    }

    /// The task channel of `media`.
    pub fn task_channel<'a>(&'a self, media: &'a str) -> &'a str {
        self.task_channels.get(media).map_or(media, String::as_str)
    }

    /// The medium whose task channel is `unique_name`.
    pub fn media_of<'a>(&'a self, unique_name: &'a str) -> &'a str {
        self.task_channels
            .iter()
            .find(|(_, u)| *u == unique_name)
            .map_or(unique_name, |(m, _)| m.as_str())
    }

    /// The webhook URL's path, which HIS serves.
    pub fn webhook_path(&self) -> Result<String, ConfigError> {
        let url = &self.webhook.url;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ConfigError(format!("webhook.url `{url}` is not a URL: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&parsed) => {}
            "http" => {
                return Err(ConfigError(format!(
                    "webhook.url `{url}` is plain http: TaskRouter's signed events could be read and replayed on the way; use https (a proxy in front of HIS may end TLS)"
                )));
            }
            other => {
                return Err(ConfigError(format!(
                    "webhook.url `{url}` is not an http(s) URL but {other}"
                )));
            }
        }
        let path = parsed.path();
        if path == "/" || path == "/ws" || path == "/mediabar.json" {
            return Err(ConfigError(format!(
                "webhook.url `{url}` must have a path of its own (e.g. /taskrouter/events), not `{path}`"
            )));
        }
        // The server routes on it: no pattern characters, nothing a
        // router would read as a parameter.
        if !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-._~".contains(c))
        {
            return Err(ConfigError(format!(
                "webhook.url's path `{path}` may hold only letters, digits and / - . _ ~"
            )));
        }
        Ok(path.to_string())
    }

    /// What the configuration gets wrong on its own, before any secret is
    /// read or request made.
    pub fn check(&self) -> Result<(), ConfigError> {
        let sid = &self.workspace_sid;
        if !(sid.len() == 34
            && sid.starts_with("WS")
            && sid[2..].chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(ConfigError(format!(
                "workspace_sid `{sid}` is not a Workspace SID (WS and 32 hexadecimal digits)"
            )));
        }
        if !self.worker.value.contains("{agent}") {
            return Err(ConfigError(format!(
                "worker.value `{}` lacks `{{agent}}`: every agent would be the same Worker",
                self.worker.value
            )));
        }
        let a = &self.activities;
        if a.ready == a.not_ready || a.ready == a.offline || a.not_ready == a.offline {
            return Err(ConfigError(
                "activities.ready, not_ready and offline must be three different Activities".into(),
            ));
        }
        self.webhook_path()?;
        let base = self.base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base)
            .map_err(|e| ConfigError(format!("base_url `{base}` is not a URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ConfigError(format!(
                "base_url `{base}` holds a user: credentials come from the environment, never the URL"
            )));
        }
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(&parsed) => {}
            "http" => {
                return Err(ConfigError(format!(
                    "base_url `{base}` is plain http: credentials would cross the network in clear text; use https"
                )));
            }
            _ => {
                return Err(ConfigError(format!(
                    "base_url `{base}` is not an https URL"
                )));
            }
        }
        Ok(())
    }
}

/// Whether a URL's host is this machine.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What is wrong with a TaskRouter configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// A credential read from the environment: never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The credentials, read from the environment variables the configuration
/// names.
#[derive(Debug, Clone)]
pub struct Keys {
    pub account_sid: String,
    /// Who the REST API is called as: the Account SID or the API key.
    pub user: String,
    pub password: Secret,
    /// Signs webhooks.
    pub auth_token: Secret,
}

impl Credentials {
    /// Reads the credentials from `env`; the error names the variable that
    /// is missing, never a value.
    pub fn read(&self, env: impl Fn(&str) -> Option<String>) -> Result<Keys, ConfigError> {
        let get = |name: &str| {
            env(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError(format!("the environment variable {name} is not set")))
        };
        let account_sid = get(&self.account_sid_env)?;
        let auth_token = Secret(get(&self.auth_token_env)?);
        let (user, password) = match (&self.api_key_env, &self.api_secret_env) {
            (Some(k), Some(s)) => (get(k)?, Secret(get(s)?)),
            (None, None) => (account_sid.clone(), auth_token.clone()),
            _ => {
                return Err(ConfigError(
                    "credentials: api_key_env and api_secret_env go together".into(),
                ));
            }
        };
        Ok(Keys {
            account_sid,
            user,
            password,
            auth_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        marked_yaml::from_yaml(0, yaml).unwrap()
    }

    const MINIMAL: &str = "workspace_sid: WSaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nwebhook: { url: 'https://his.example.com/taskrouter/events' }\n";

    #[test]
    fn defaults_and_checks() {
        let c = config(MINIMAL);
        c.check().unwrap();
        assert_eq!(c.webhook_path().unwrap(), "/taskrouter/events");
        assert_eq!(c.task_channel("voice"), "voice");
        assert_eq!(c.worker.value_for("agent-1"), "agent-1");
        let bad = config(&MINIMAL.replace("WSaaaa", "WXaaaa"));
        assert!(bad.check().unwrap_err().0.contains("not a Workspace SID"));
        let root = config(&MINIMAL.replace("/taskrouter/events", "/"));
        assert!(root.check().unwrap_err().0.contains("path of its own"));
        let clear = config(&format!(
            "{MINIMAL}base_url: http://taskrouter.example.com\n"
        ));
        assert!(clear.check().unwrap_err().0.contains("clear text"));
        let local = config(&format!("{MINIMAL}base_url: http://127.0.0.1:9999\n"));
        local.check().unwrap();
        let counted = config(&format!("{MINIMAL}attempts: '6'\n"));
        assert_eq!(counted.attempts(), 6);
        let wrong: Result<Config, _> =
            marked_yaml::from_yaml(0, &format!("{MINIMAL}attempts: four\n"));
        assert!(wrong.unwrap_err().to_string().contains("not a count"));
        let v6 = config(&format!("{MINIMAL}base_url: 'http://[::1]:9999'\n"));
        v6.check().unwrap();
        for sneaky in [
            "http://127.0.0.1.example.com",
            "http://localhost:1@evil.example",
            "http://127.0.0.1:80@evil.example",
            "'http://[::1]@evil.example'",
            "https://user:pass@taskrouter.twilio.com",
        ] {
            let c = config(&format!("{MINIMAL}base_url: {sneaky}\n"));
            assert!(c.check().is_err(), "{sneaky}");
        }
        let clear_hook =
            config(&MINIMAL.replace("https://his.example.com", "http://his.example.com"));
        assert!(clear_hook.check().unwrap_err().0.contains("replayed"));
        let local_hook =
            config(&MINIMAL.replace("https://his.example.com", "http://127.0.0.1:7411"));
        local_hook.check().unwrap();
        for pattern in ["/events/{x}", "/events/*rest", "/a/:b"] {
            let c = config(&MINIMAL.replace("/taskrouter/events", pattern));
            assert!(c.check().is_err(), "{pattern}");
        }
        let same = config(&format!("{MINIMAL}activities: {{ not_ready: Offline }}\n"));
        assert!(same.check().unwrap_err().0.contains("three different"));
    }

    #[test]
    fn workers_by_attribute() {
        let c = config(&format!(
            "{MINIMAL}worker: {{ attribute: contact_uri, value: 'client:{{agent}}' }}\n"
        ));
        assert_eq!(c.worker.value_for("a1"), "client:a1");
        assert_eq!(c.worker.agent_of("client:a1"), Some("a1"));
        assert_eq!(c.worker.agent_of("sip:a1"), None);
        assert_eq!(c.worker.agent_of("client:"), None);
        assert!(!c.worker.by_name());
    }

    #[test]
    fn credentials_come_from_the_environment_and_never_show() {
        let c = config(MINIMAL);
        let env = |k: &str| match k {
            "TWILIO_ACCOUNT_SID" => Some("ACx".to_string()),
            "TWILIO_AUTH_TOKEN" => Some("sekret".to_string()),
            _ => None,
        };
        let keys = c.credentials.read(env).unwrap();
        assert_eq!(keys.user, "ACx");
        assert!(!format!("{keys:?}").contains("sekret"));
        let missing = c.credentials.read(|_| None).unwrap_err();
        assert!(missing.0.contains("TWILIO_ACCOUNT_SID"));
        let mut with_key = c.credentials.clone();
        with_key.api_key_env = Some("KEY".into());
        assert!(with_key.read(env).unwrap_err().0.contains("go together"));
    }
}
