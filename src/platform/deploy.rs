//! Which switch `hisflow serve` drives: the platform's adapter kind, with
//! the deployment's details from the configuration's `adapter:` entry, or
//! the simulated switch standing in for it.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use super::adapter::Adapter;
use super::inbound::Inbound;
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
    Sim,
    /// A Twilio TaskRouter Workspace (docs/adapters.md).
    #[serde(rename = "twilio-taskrouter")]
    TwilioTaskrouter(Box<twilio::Config>),
}

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
        Some(AdapterConfig::Sim) => Ok(simulated(sim())),
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
        Some(AdapterConfig::Sim) => vec![line(
            Status::Ok,
            format!(
                "the simulated switch stands in for `{}`: nothing to reach",
                platform.adapter
            ),
        )],
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
