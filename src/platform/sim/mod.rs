//! The simulated switch: in memory and deterministic, with fault and latency
//! injection, and a state tests inspect after a run to assert a use case's
//! post-conditions on the switch itself.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::adapter::{Adapter, OpOutcome, OpResult, Operation, Reply, SwitchError};

/// An agent's state on one channel, with CSTA names.
pub const LOGGED_OFF: &str = "LoggedOff";
pub const NOT_READY: &str = "NotReady";
pub const READY: &str = "Ready";

/// The switch as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchState {
    /// Agents by id.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentState>,
    /// Reason codes by category (`logout`, `not_ready`).
    #[serde(default)]
    pub reason_codes: BTreeMap<String, Vec<String>>,
    /// False once a fault disconnected the switch: every call then fails.
    #[serde(default = "yes")]
    pub connected: bool,
}

impl Default for SwitchState {
    fn default() -> Self {
        Self {
            agents: BTreeMap::new(),
            reason_codes: BTreeMap::new(),
            connected: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    #[serde(default)]
    pub logged_in: bool,
    /// Channels by id (the media name).
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelState>,
    /// The reason the last logout gave the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_reason: Option<String>,
    /// The reason the last Not Ready gave the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelState {
    pub state: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// Ids of the interactions in progress (calls, emails, chats).
    #[serde(default)]
    pub interactions: Vec<String>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            state: NOT_READY.to_string(),
            active: true,
            interactions: Vec::new(),
        }
    }
}

/// A fault to inject: the matching call of an operation fails, never
/// answers, or takes the switch down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The operation, by catalog name (`agent.set_not_ready`).
    pub op: String,
    /// Only calls on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only the n-th matching call after the fault is injected (1-based);
    /// every matching call when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u32>,
    pub effect: FaultEffect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultEffect {
    /// The switch refuses with this code and message.
    Error { code: String, message: String },
    /// The switch never answers.
    Timeout,
    /// The switch goes away: this and every later call fails.
    Disconnect,
}

/// One call the switch received, for traces and assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub agent: String,
    pub op: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Default)]
struct Inner {
    state: SwitchState,
    /// Faults with the number of matching calls each has seen.
    faults: Vec<(Fault, u32)>,
    latency: BTreeMap<String, Duration>,
    calls: Vec<Call>,
}

/// The simulated switch.
#[derive(Debug, Default)]
pub struct SimSwitch {
    inner: Mutex<Inner>,
}

impl SimSwitch {
    pub fn new(state: SwitchState) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is plain data: a panic elsewhere cannot leave it torn.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push((fault, 0));
    }

    /// Every call of `op` answers after `delay`.
    pub fn set_latency(&self, op: &str, delay: Duration) {
        self.lock().latency.insert(op.to_string(), delay);
    }

    /// The switch as it is now.
    pub fn state(&self) -> SwitchState {
        self.lock().state.clone()
    }

    /// The calls received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Starts an interaction (a call, email or chat) on an agent's channel.
    pub fn start_interaction(
        &self,
        agent: &str,
        channel: &str,
        id: &str,
    ) -> Result<(), SwitchError> {
        let mut inner = self.lock();
        let ch = channel_mut(&mut inner.state, agent, channel)?;
        ch.interactions.push(id.to_string());
        Ok(())
    }

    /// Ends an interaction; `None` ends all of the channel's.
    pub fn end_interaction(
        &self,
        agent: &str,
        channel: &str,
        id: Option<&str>,
    ) -> Result<(), SwitchError> {
        let mut inner = self.lock();
        let ch = channel_mut(&mut inner.state, agent, channel)?;
        match id {
            Some(id) => ch.interactions.retain(|i| i != id),
            None => ch.interactions.clear(),
        }
        Ok(())
    }
}

fn channel_mut<'a>(
    state: &'a mut SwitchState,
    agent: &str,
    channel: &str,
) -> Result<&'a mut ChannelState, SwitchError> {
    state
        .agents
        .get_mut(agent)
        .filter(|a| a.logged_in)
        .ok_or_else(|| {
            SwitchError::new(
                "AgentNotLoggedIn",
                format!("agent {agent} is not logged in"),
            )
        })?
        .channels
        .get_mut(channel)
        .ok_or_else(|| {
            SwitchError::new(
                "AgentNotLoggedIn",
                format!("agent {agent} is not logged in on {channel}"),
            )
        })
}

impl Inner {
    /// The fault this call triggers, if any. Each fault counts the calls
    /// that match it from when it was injected: `call: 2` is the second.
    fn fault(&mut self, op: &Operation) -> Option<FaultEffect> {
        let mut hit = None;
        for (f, seen) in &mut self.faults {
            let matches =
                f.op == op.name() && f.channel.as_deref().is_none_or(|c| Some(c) == op.channel());
            if !matches {
                continue;
            }
            *seen += 1;
            if hit.is_none() && f.call.is_none_or(|k| k == *seen) {
                hit = Some(f.effect.clone());
            }
        }
        hit
    }

    fn apply(&mut self, agent: &str, op: &Operation) -> OpOutcome {
        if !self.state.connected {
            return Err(SwitchError::new(
                "SwitchUnavailable",
                "the switch is not connected",
            ));
        }
        let state = &mut self.state;
        match op {
            Operation::Login { channel } => {
                let a = state.agents.entry(agent.to_string()).or_default();
                a.logged_in = true;
                let ch = a.channels.entry(channel.clone()).or_default();
                ch.state = NOT_READY.to_string();
                Ok(OpResult::Done)
            }
            Operation::Logout { reason } => {
                let a = state
                    .agents
                    .get_mut(agent)
                    .filter(|a| a.logged_in)
                    .ok_or_else(|| {
                        SwitchError::new(
                            "AgentNotLoggedIn",
                            format!("agent {agent} is not logged in"),
                        )
                    })?;
                if let Some((id, _)) = a.channels.iter().find(|(_, c)| !c.interactions.is_empty()) {
                    return Err(SwitchError::new(
                        "InvalidState",
                        format!("an interaction is in progress on {id}"),
                    ));
                }
                if let Some(r) = reason {
                    let codes = state.reason_codes.get("logout");
                    if codes.is_some_and(|c| !c.is_empty() && !c.contains(r)) {
                        return Err(SwitchError::new(
                            "ReasonCodeOutOfRange",
                            format!("{r} is not a logout reason"),
                        ));
                    }
                }
                a.logged_in = false;
                a.logout_reason = reason.clone();
                for ch in a.channels.values_mut() {
                    ch.state = LOGGED_OFF.to_string();
                }
                Ok(OpResult::Done)
            }
            Operation::SetReady { channel } => {
                let ch = channel_mut(state, agent, channel)?;
                if !ch.active {
                    return Err(SwitchError::new(
                        "InvalidState",
                        format!("channel {channel} is deactivated"),
                    ));
                }
                ch.state = READY.to_string();
                Ok(OpResult::Done)
            }
            Operation::SetNotReady { channel, reason } => {
                channel_mut(state, agent, channel)?.state = NOT_READY.to_string();
                if let Some(a) = state.agents.get_mut(agent) {
                    a.not_ready_reason = reason.clone();
                }
                Ok(OpResult::Done)
            }
            Operation::ReasonCodes { category } => Ok(OpResult::List(
                state
                    .reason_codes
                    .get(category)
                    .cloned()
                    .unwrap_or_default(),
            )),
            Operation::Activate { channel } => {
                channel_mut(state, agent, channel)?.active = true;
                Ok(OpResult::Done)
            }
            Operation::Deactivate { channel } => {
                channel_mut(state, agent, channel)?.active = false;
                Ok(OpResult::Done)
            }
        }
    }
}

impl Adapter for SimSwitch {
    fn kind(&self) -> &str {
        "sim"
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        let mut inner = self.lock();
        let fault = inner.fault(op);
        let outcome = match fault {
            None => inner.apply(agent, op),
            Some(FaultEffect::Error { code, message }) => Err(SwitchError { code, message }),
            Some(FaultEffect::Disconnect) => {
                inner.state.connected = false;
                Err(SwitchError::new(
                    "SwitchUnavailable",
                    "the switch disconnected",
                ))
            }
            Some(FaultEffect::Timeout) => {
                inner.calls.push(Call {
                    agent: agent.to_string(),
                    op: op.name().to_string(),
                    channel: op.channel().map(str::to_string),
                    outcome: "no answer".into(),
                });
                return Reply::Pending(Box::pin(std::future::pending()));
            }
        };
        inner.calls.push(Call {
            agent: agent.to_string(),
            op: op.name().to_string(),
            channel: op.channel().map(str::to_string),
            outcome: match &outcome {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("error {}", e.code),
            },
        });
        match inner.latency.get(op.name()).copied() {
            None => Reply::Ready(outcome),
            Some(delay) => Reply::Pending(Box::pin(async move {
                tokio::time::sleep(delay).await;
                outcome
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(r: Reply) -> OpOutcome {
        match r {
            Reply::Ready(o) => o,
            Reply::Pending(_) => panic!("expected a synchronous answer"),
        }
    }

    fn logged_in() -> SimSwitch {
        let sim = SimSwitch::default();
        for ch in ["voice", "email"] {
            ready(sim.call("a", &Operation::Login { channel: ch.into() })).unwrap();
        }
        sim
    }

    #[test]
    fn operations_change_the_switch() {
        let sim = logged_in();
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: "voice".into(),
            },
        ))
        .unwrap();
        ready(sim.call(
            "a",
            &Operation::Deactivate {
                channel: "email".into(),
            },
        ))
        .unwrap();
        let s = sim.state();
        assert_eq!(s.agents["a"].channels["voice"].state, READY);
        assert!(!s.agents["a"].channels["email"].active);
        let err = ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: "email".into(),
            },
        ))
        .unwrap_err();
        assert_eq!(err.code, "InvalidState");
        ready(sim.call(
            "a",
            &Operation::Logout {
                reason: Some("Lunch".into()),
            },
        ))
        .unwrap();
        let s = sim.state();
        assert!(!s.agents["a"].logged_in);
        assert_eq!(s.agents["a"].logout_reason.as_deref(), Some("Lunch"));
        assert_eq!(s.agents["a"].channels["voice"].state, LOGGED_OFF);
    }

    #[test]
    fn a_busy_agent_cannot_log_out() {
        let sim = logged_in();
        sim.start_interaction("a", "email", "mail-1").unwrap();
        assert_eq!(
            ready(sim.call("a", &Operation::Logout { reason: None }))
                .unwrap_err()
                .code,
            "InvalidState"
        );
        sim.end_interaction("a", "email", None).unwrap();
        ready(sim.call("a", &Operation::Logout { reason: None })).unwrap();
    }

    #[test]
    fn faults_hit_the_nth_call_on_a_channel() {
        let sim = logged_in();
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: "voice".into(),
            },
        ))
        .unwrap();
        sim.inject(Fault {
            op: "agent.set_ready".into(),
            channel: None,
            call: Some(2),
            effect: FaultEffect::Error {
                code: "InvalidState".into(),
                message: "no".into(),
            },
        });
        assert!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: "voice".into()
                }
            ))
            .is_ok()
        );
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: "email".into()
                }
            ))
            .unwrap_err()
            .code,
            "InvalidState"
        );
        assert!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: "voice".into()
                }
            ))
            .is_ok()
        );
        let calls: Vec<String> = sim.calls().iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(&calls[3..], ["ok", "error InvalidState", "ok"]);
    }

    #[test]
    fn timeouts_never_answer_and_disconnects_stick() {
        let sim = logged_in();
        sim.inject(Fault {
            op: "agent.set_ready".into(),
            channel: Some("voice".into()),
            call: None,
            effect: FaultEffect::Timeout,
        });
        assert!(matches!(
            sim.call(
                "a",
                &Operation::SetReady {
                    channel: "voice".into()
                }
            ),
            Reply::Pending(_)
        ));
        sim.inject(Fault {
            op: "channel.deactivate".into(),
            channel: None,
            call: None,
            effect: FaultEffect::Disconnect,
        });
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::Deactivate {
                    channel: "email".into()
                }
            ))
            .unwrap_err()
            .code,
            "SwitchUnavailable"
        );
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: "email".into()
                }
            ))
            .unwrap_err()
            .code,
            "SwitchUnavailable"
        );
        assert!(!sim.state().connected);
    }
}
