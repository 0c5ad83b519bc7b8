//! The simulated switch's controls (`sim.request.*`): what a tester makes
//! the switch do. Those about an agent act on the caller's own; `fault`,
//! `latency`, `confirm` and the link change the whole switch, as they would
//! a real one. Their effects reach HIS as switch events, like anything else
//! the switch does.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::{Fault, MAX_LATENCIES, SimSwitch};
use crate::platform::adapter::{Answer, ControlReply, Controls, SwitchError};
use crate::platform::catalog;
use crate::workflow::validate::parse_duration;

/// The prefix of every control request.
pub const PREFIX: &str = "sim.request.";

/// Every control, with its parameters, for help and documentation.
pub const CONTROLS: &[(&str, &str)] = &[
    ("startInteraction", "{channel, id?}"),
    ("endInteraction", "{channel, id?}"),
    ("setState", "{channel, state, reason?}"),
    ("setActive", "{channel, active}"),
    ("forceLogout", "{reason?, cause?}"),
    ("linkDown", "{reason?}"),
    ("linkUp", "{}"),
    ("fault", "{op, channel?, call?, effect}"),
    ("latency", "{op, delay}"),
    ("confirm", "{op, delay?}"),
    ("faults", "{}"),
    ("clearFaults", "{}"),
];

fn invalid(message: impl Into<String>) -> SwitchError {
    SwitchError::new("InvalidRequest", message)
}

fn text<'a>(params: &'a Json, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Json::as_str)
}

fn required<'a>(params: &'a Json, key: &str) -> Result<&'a str, SwitchError> {
    text(params, key)
        .ok_or_else(|| invalid(format!("parameter `{key}` is required and must be text")))
}

fn switch_op(params: &Json) -> Result<&str, SwitchError> {
    let op = required(params, "op")?;
    match catalog::switch_operation(op) {
        Some(_) => Ok(op),
        None => Err(invalid(format!("`{op}` is not a switch operation"))),
    }
}

/// The longest delay a control takes, as a workflow's longest timeout.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// Faults a switch holds at once: each counts the calls it sees.
pub const MAX_FAULTS: usize = 100;

fn delay(params: &Json) -> Result<Option<Duration>, SwitchError> {
    match params.get("delay") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(d)) => match parse_duration(d) {
            Some(v) if v <= MAX_DELAY => Ok(Some(v)),
            Some(_) => Err(invalid(format!("`{d}` is longer than 10 minutes"))),
            None => Err(invalid(format!(
                "`{d}` is not a duration (e.g. `500ms`, `2s`)"
            ))),
        },
        Some(other) => Err(invalid(format!(
            "`delay` must be text such as `2s`, not {other}"
        ))),
    }
}

impl Controls for SimSwitch {
    fn prefix(&self) -> &str {
        PREFIX
    }

    fn control(&self, agent: &str, name: &str, params: &Json) -> ControlReply {
        Answer::Ready(self.run_control(agent, name, params))
    }
}

impl SimSwitch {
    /// Carries out one control for `agent` at once; the result is the
    /// response's `result`.
    pub fn run_control(&self, agent: &str, name: &str, params: &Json) -> Result<Json, SwitchError> {
        let control = name.strip_prefix(PREFIX).unwrap_or(name);
        match control {
            "startInteraction" => {
                let channel = required(params, "channel")?;
                let id = match text(params, "id") {
                    Some(id) => id.to_string(),
                    None => {
                        let mut inner = self.lock();
                        inner.counter += 1;
                        format!("interaction-{}", inner.counter)
                    }
                };
                self.start_interaction(agent, channel, &id)?;
                Ok(json!({ "interaction": id }))
            }
            "endInteraction" => {
                let channel = required(params, "channel")?;
                self.end_interaction(agent, channel, text(params, "id"))?;
                Ok(json!({}))
            }
            "setState" => {
                let channel = required(params, "channel")?;
                let state = required(params, "state")?;
                self.set_state(agent, channel, state, text(params, "reason"))?;
                Ok(json!({}))
            }
            "setActive" => {
                let channel = required(params, "channel")?;
                let active = params
                    .get("active")
                    .and_then(Json::as_bool)
                    .ok_or_else(|| {
                        invalid("parameter `active` is required and must be true or false")
                    })?;
                self.set_active(agent, channel, active)?;
                Ok(json!({}))
            }
            "forceLogout" => {
                let cause = text(params, "cause").unwrap_or("supervisor");
                self.force_logout(agent, text(params, "reason"), cause)?;
                Ok(json!({}))
            }
            "linkDown" => {
                self.set_link(false, text(params, "reason"));
                Ok(json!({}))
            }
            "linkUp" => {
                self.set_link(true, None);
                Ok(json!({}))
            }
            "fault" => {
                let mut fault: Fault = serde_json::from_value(params.clone())
                    .map_err(|e| invalid(format!("not a fault: {e}")))?;
                // A client's fault is for its own agent; a dropped link
                // would be every agent's.
                fault.agent = Some(agent.to_string());
                if matches!(fault.effect, super::FaultEffect::Disconnect) {
                    return Err(invalid(
                        "a client may not drop the switch for every agent: use a timeout or an error",
                    ));
                }
                switch_op(params)?;
                if self.lock().faults.len() >= MAX_FAULTS {
                    return Err(invalid(format!(
                        "the switch holds {MAX_FAULTS} faults already"
                    )));
                }
                self.inject(fault);
                Ok(json!({}))
            }
            "latency" => {
                let op = switch_op(params)?;
                let d = delay(params)?.ok_or_else(|| invalid("give `delay` (e.g. `2s`)"))?;
                if !self.set_agent_latency(agent, op, d) {
                    return Err(invalid(format!(
                        "the switch holds {MAX_LATENCIES} agents' latencies already"
                    )));
                }
                Ok(json!({}))
            }
            "faults" => Ok(json!({ "faults": self.faults_of(agent) })),
            "clearFaults" => Ok(json!({ "cleared": self.clear_faults(agent) })),
            "confirm" => {
                let op = required(params, "op")?;
                let d = delay(params)?;
                if let Some(d) = d {
                    super::confirm_entry(op, &format!("{}ms", d.as_millis())).map_err(invalid)?;
                } else {
                    switch_op(params)?;
                }
                self.set_confirm(op, d);
                Ok(json!({}))
            }
            other => Err(invalid(format!(
                "unknown simulator request `{PREFIX}{other}`; controls: {}",
                CONTROLS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}
