//! The adapter trait: the switch's primitive operations and the events it
//! sends on its own, and nothing of any request's steps. An integrator adds a
//! switch by implementing [`Adapter`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::events::EventSink;

/// One primitive operation, with its arguments, as the engine asks for it.
///
/// As JSON (the simulated switch's own protocol, docs/adapters.md) it is
/// tagged with its catalog name:
/// `{"op":"agent.set_not_ready","channel":"voice","reason":"Break"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub enum Operation {
    /// Log the agent in on a channel (a media).
    #[serde(rename = "agent.login")]
    Login { channel: String },
    /// Log the agent out of the switch.
    #[serde(rename = "agent.logout")]
    Logout {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Make the agent Ready on a channel, or on all of them where the
    /// switch's state is the agent's (TaskRouter's Activity).
    #[serde(rename = "agent.set_ready")]
    SetReady {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Make the agent Not Ready on a channel, or on all of them.
    #[serde(rename = "agent.set_not_ready")]
    SetNotReady {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Reject the work the switch is offering the agent, instead of
        /// leaving it pending (TaskRouter's `RejectPendingReservations`).
        #[serde(default)]
        reject_pending: bool,
    },
    /// The reason codes configured for `logout` or `not_ready`.
    #[serde(rename = "agent.reason_codes")]
    ReasonCodes { category: String },
    #[serde(rename = "channel.activate")]
    Activate { channel: String },
    #[serde(rename = "channel.deactivate")]
    Deactivate { channel: String },
    /// The agent's state on a channel as the switch has it (CSTA's
    /// GetAgentState, Finesse's `GET /User/{id}`).
    #[serde(rename = "agent.state")]
    State { channel: String },
}

impl Operation {
    /// The catalog name (`agent.set_not_ready`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Login { .. } => "agent.login",
            Operation::Logout { .. } => "agent.logout",
            Operation::SetReady { .. } => "agent.set_ready",
            Operation::SetNotReady { .. } => "agent.set_not_ready",
            Operation::ReasonCodes { .. } => "agent.reason_codes",
            Operation::Activate { .. } => "channel.activate",
            Operation::Deactivate { .. } => "channel.deactivate",
            Operation::State { .. } => "agent.state",
        }
    }

    /// The channel the operation acts on, if it acts on one.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Operation::Login { channel }
            | Operation::Activate { channel }
            | Operation::Deactivate { channel }
            | Operation::State { channel } => Some(channel),
            Operation::SetReady { channel } | Operation::SetNotReady { channel, .. } => {
                channel.as_deref()
            }
            Operation::Logout { .. } | Operation::ReasonCodes { .. } => None,
        }
    }
}

/// What a switch says when it refuses an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchError {
    /// The switch's code, in the protocol's vocabulary where one fits
    /// (`InvalidState`, `ReasonCodeOutOfRange`, …).
    pub code: String,
    pub message: String,
}

impl SwitchError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// What a successful operation returns. As JSON it is what expressions
/// read ([`OpResult::to_json`]): `null`, a list of texts, or a channel's
/// report — each kind of JSON one kind of result.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OpResult {
    #[default]
    Done,
    /// A list of texts (reason codes).
    List(Vec<String>),
    /// The agent's state on a channel ([`Operation::State`]).
    State(ChannelReport),
}

/// What a switch says of an agent's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelReport {
    /// One of the catalog's [agent states](super::events::AGENT_STATES);
    /// `LoggedOff` when the agent is not logged in on the channel.
    pub state: String,
    /// Whether the switch routes work on the channel.
    pub active: bool,
    /// Ids of the interactions in progress on it.
    pub interactions: Vec<String>,
}

impl OpResult {
    /// The result as expressions read it (`event.result` in a machine).
    pub fn to_json(&self) -> Option<Json> {
        match self {
            OpResult::Done => None,
            OpResult::List(l) => Some(Json::from(l.clone())),
            OpResult::State(r) => Some(serde_json::json!({
                "state": r.state,
                "active": r.active,
                "interactions": r.interactions,
            })),
        }
    }
}

pub type OpOutcome = Result<OpResult, SwitchError>;

/// An answer already there, or to be awaited. A switch that answers
/// synchronously (the simulated one, a cache) pays no boxed future; one in
/// another process answers later.
pub enum Answer<T> {
    Ready(T),
    Pending(Pin<Box<dyn Future<Output = T> + Send>>),
}

impl<T: 'static> Answer<T> {
    /// The answer, once it is there.
    pub async fn wait(self) -> T {
        match self {
            Answer::Ready(v) => v,
            Answer::Pending(fut) => fut.await,
        }
    }

    /// The answer turned by `f`, when it comes.
    pub fn map<U: 'static>(self, f: impl FnOnce(T) -> U + Send + 'static) -> Answer<U> {
        match self {
            Answer::Ready(v) => Answer::Ready(f(v)),
            Answer::Pending(fut) => Answer::Pending(Box::pin(async move { f(fut.await) })),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Ready(o) => f.debug_tuple("Ready").field(o).finish(),
            Answer::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// The answer to an operation.
pub type Reply = Answer<OpOutcome>;

/// The answer to a control: the response's `result`, or the switch's
/// refusal.
pub type ControlReply = Answer<Result<Json, SwitchError>>;

/// A switch. The engine calls [`Adapter::call`] for every switch operation a
/// workflow reaches, bounds it with the state's timeout, and turns the answer
/// into the state's outcome (`ok`, `error`, `timeout`). An adapter that
/// panics or never answers costs one request an error, never the engine.
///
/// What the switch does on its own — an agent logged out by a supervisor, a
/// call offered, the link lost — the adapter delivers as
/// [switch events](super::events) to the sink HIS gives [`Adapter::subscribe`].
pub trait Adapter: Send + Sync {
    /// The adapter kind, as platform manifests name it (`sim`).
    fn kind(&self) -> &str;

    /// Carries out one operation for `agent`.
    fn call(&self, agent: &str, op: &Operation) -> Reply;

    /// Where to deliver switch events from now on. HIS calls it once, before
    /// any operation; an adapter whose switch sends nothing ignores it.
    fn subscribe(&self, _events: EventSink) {}

    /// Requests the adapter answers itself, if it has any (the simulated
    /// switch's controls).
    fn controls(&self) -> Option<&dyn Controls> {
        None
    }

    /// Whether the switch answers, as far as the adapter knows: `/readyz`
    /// says HIS is not ready while it does not. `None` when the adapter
    /// cannot tell (or its switch never goes away, as the simulated one).
    fn reachable(&self) -> Option<bool> {
        None
    }
}

/// Requests an adapter answers itself, beside the platform's workflows: the
/// simulated switch's controls (`sim.request.*`). HIS hands over the requests
/// whose name starts with [`Controls::prefix`], always for the caller's own
/// agent, and knows nothing else of them. What they make the switch do
/// reaches HIS as switch events, like anything else the switch does.
pub trait Controls: Send + Sync {
    /// The request-name prefix, e.g. `sim.request.`.
    fn prefix(&self) -> &str;

    /// Carries out one control request for `agent`; the result is the
    /// response's `result`. A switch in another process answers later.
    fn control(&self, agent: &str, name: &str, params: &Json) -> ControlReply;
}
