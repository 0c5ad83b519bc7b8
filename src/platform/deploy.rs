//! Which switch `hisflow serve` drives: the platform's adapter kind, with
//! the deployment's details from the configuration's `adapter:` entry, or
//! the simulated switch standing in for it.

use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::adapter::{Adapter, OpResult, Operation};
use super::inbound::Inbound;
use super::sim::remote::{RemoteError, RemoteSim};
use super::sim::{SimSwitch, SwitchState};
use super::twilio;
use crate::workflow::model::Platform;

/// The switch HIS drives, by adapter kind.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum AdapterConfig {
    /// The simulated switch, whatever adapter the platform names: for
    /// demonstrations, and for trying a real switch's profile without it.
    #[serde(rename = "sim")]
    Sim(SimConfig),
    /// A Twilio TaskRouter Workspace (docs/adapters.md).
    #[serde(rename = "twilio-taskrouter")]
    TwilioTaskrouter(Box<twilio::Config>),
}

/// Where the simulated switch runs.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// The WebSocket of a simulated switch in its own process (`hisflow
    /// switch`), such as `ws://127.0.0.1:7412/switch`: it outlives HIS, and
    /// several HIS may share it. Without it HIS runs the switch itself, as
    /// the configuration's `switch:` describes it.
    #[serde(default)]
    pub url: Option<String>,
}

/// How long `hisflow serve` waits for the simulated switch at `url` to
/// answer before it refuses to start: one started at the same time has
/// that long to listen.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// How long `hisflow doctor` waits for it.
const DOCTOR_WITHIN: Duration = Duration::from_secs(3);

/// The switch started for a platform.
pub struct Started {
    pub adapter: Arc<dyn Adapter>,
    /// Where the switch's webhooks reach HIS, when it sends any.
    pub inbound: Option<Arc<dyn Inbound>>,
    /// What was started, for the log.
    pub description: String,
}

/// Why the switch could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "platform `{platform}` runs on the `{kind}` adapter: describe the deployment in the configuration's `adapter:` (kind: {kind}; see docs/adapters.md), or set `adapter: {{ kind: sim }}` to run it on the simulated switch"
    )]
    Undescribed { platform: String, kind: String },
    #[error(
        "the configuration's adapter is `{configured}`, but platform `{platform}` is written for `{kind}`"
    )]
    Mismatch {
        platform: String,
        kind: String,
        configured: &'static str,
    },
    #[error("adapter `{0}` is not built into this hisflow")]
    Unknown(String),
    #[error("twilio-taskrouter: {0}")]
    TaskRouter(#[from] twilio::StartError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Starts the switch for `platform`: `configured` when the configuration
/// has an `adapter:` entry, else the simulated switch `sim` for a platform
/// on `sim`. Credentials come from `env`.
pub async fn start(
    platform: &Platform,
    configured: Option<&AdapterConfig>,
    sim: impl FnOnce() -> SwitchState,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Started, DeployError> {
    match configured {
        None if platform.adapter == "sim" => Ok(simulated(sim())),
        None if super::catalog::adapter(&platform.adapter).is_some() => {
            Err(DeployError::Undescribed {
                platform: platform.name.clone(),
                kind: platform.adapter.clone(),
            })
        }
        None => Err(DeployError::Unknown(platform.adapter.clone())),
        Some(AdapterConfig::Sim(SimConfig { url: None })) => Ok(simulated(sim())),
        Some(AdapterConfig::Sim(SimConfig { url: Some(url) })) => {
            let adapter = RemoteSim::connect(url, CONNECT_WITHIN).await?;
            Ok(Started {
                adapter: Arc::new(adapter),
                inbound: None,
                description: format!("the simulated switch at {url}"),
            })
        }
        Some(AdapterConfig::TwilioTaskrouter(config)) => {
            if platform.adapter != twilio::KIND {
                return Err(DeployError::Mismatch {
                    platform: platform.name.clone(),
                    kind: platform.adapter.clone(),
                    configured: twilio::KIND,
                });
            }
            let description = format!(
                "TaskRouter Workspace {} at {}",
                config.workspace_sid, config.base_url
            );
            let adapter =
                twilio::TaskRouter::connect((**config).clone(), env, &platform.media()).await?;
            Ok(Started {
                inbound: Some(adapter.inbound()),
                adapter: Arc::new(adapter),
                description,
            })
        }
    }
}

fn simulated(state: SwitchState) -> Started {
    Started {
        adapter: Arc::new(SimSwitch::new(state).forgetful()),
        inbound: None,
        description: "the simulated switch".into(),
    }
}

/// Whether the simulated switch at `url` answers: a read of its logout
/// reason codes, which changes nothing.
async fn remote_doctor(url: &str) -> (Status, String) {
    let sim = match RemoteSim::connect(url, DOCTOR_WITHIN).await {
        Ok(s) => s,
        Err(e) => return (Status::Fail, e.to_string()),
    };
    let read = sim.call(
        "hisflow-doctor",
        &Operation::ReasonCodes {
            category: "logout".into(),
        },
    );
    match tokio::time::timeout(DOCTOR_WITHIN, read.wait()).await {
        Ok(Ok(OpResult::List(codes))) => (
            Status::Ok,
            format!(
                "the simulated switch at {url} answers ({} logout reason codes)",
                codes.len()
            ),
        ),
        Ok(Ok(other)) => (
            Status::Fail,
            format!(
                "the switch at {url} answers a read of reason codes with {other:?}: is it `hisflow switch`?"
            ),
        ),
        Ok(Err(e)) => (
            Status::Fail,
            format!("the simulated switch at {url} refused to read its reason codes: {e}"),
        ),
        Err(_) => (
            Status::Fail,
            format!(
                "the simulated switch at {url} did not answer within {} s",
                DOCTOR_WITHIN.as_secs()
            ),
        ),
    }
}

/// How a check of `hisflow doctor` came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but likely not as meant.
    Warn,
    Fail,
}

/// One line of `hisflow doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub name: &'static str,
    pub detail: String,
}

/// Checks the switch a deployment would drive, against the real service,
/// as far as its adapter can tell without changing anything.
pub async fn doctor(
    platform: &Platform,
    configured: Option<&AdapterConfig>,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<Check> {
    let line = |status, detail: String| Check {
        status,
        name: "switch",
        detail,
    };
    match configured {
        None if platform.adapter == "sim" => vec![line(
            Status::Ok,
            "the simulated switch: nothing to reach".into(),
        )],
        Some(AdapterConfig::Sim(SimConfig { url: None })) => vec![line(
            Status::Ok,
            format!(
                "the simulated switch stands in for `{}`: nothing to reach",
                platform.adapter
            ),
        )],
        Some(AdapterConfig::Sim(SimConfig { url: Some(url) })) => {
            let (status, detail) = remote_doctor(url).await;
            vec![line(status, detail)]
        }
        None => vec![line(
            Status::Fail,
            DeployError::Undescribed {
                platform: platform.name.clone(),
                kind: platform.adapter.clone(),
            }
            .to_string(),
        )],
        Some(AdapterConfig::TwilioTaskrouter(config)) => {
            if platform.adapter != twilio::KIND {
                return vec![line(
                    Status::Fail,
                    DeployError::Mismatch {
                        platform: platform.name.clone(),
                        kind: platform.adapter.clone(),
                        configured: twilio::KIND,
                    }
                    .to_string(),
                )];
            }
            twilio::doctor::run(config, env, &platform.media()).await
        }
    }
}
