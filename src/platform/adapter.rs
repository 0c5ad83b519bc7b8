//! The adapter trait: the switch's primitive operations, and nothing of any
//! request's steps. An integrator adds a switch by implementing [`Adapter`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// One primitive operation, with its arguments, as the engine asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Log the agent in on a channel (a media).
    Login {
        channel: String,
    },
    /// Log the agent out of the switch.
    Logout {
        reason: Option<String>,
    },
    SetReady {
        channel: String,
    },
    SetNotReady {
        channel: String,
        reason: Option<String>,
    },
    /// The reason codes configured for `logout` or `not_ready`.
    ReasonCodes {
        category: String,
    },
    Activate {
        channel: String,
    },
    Deactivate {
        channel: String,
    },
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
        }
    }

    /// The channel the operation acts on, if it acts on one.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Operation::Login { channel }
            | Operation::SetReady { channel }
            | Operation::SetNotReady { channel, .. }
            | Operation::Activate { channel }
            | Operation::Deactivate { channel } => Some(channel),
            Operation::Logout { .. } | Operation::ReasonCodes { .. } => None,
        }
    }
}

/// What a switch says when it refuses an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// What a successful operation returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum OpResult {
    #[default]
    Done,
    /// A list of texts (reason codes).
    List(Vec<String>),
}

pub type OpOutcome = Result<OpResult, SwitchError>;

/// The answer to an operation: already there, or to be awaited. A switch
/// that answers synchronously (the simulated one, a cache) pays no boxed
/// future.
pub enum Reply {
    Ready(OpOutcome),
    Pending(Pin<Box<dyn Future<Output = OpOutcome> + Send>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ready(o) => f.debug_tuple("Ready").field(o).finish(),
            Reply::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// A switch. The engine calls [`Adapter::call`] for every switch operation a
/// workflow reaches, bounds it with the state's timeout, and turns the answer
/// into the state's outcome (`ok`, `error`, `timeout`). An adapter that
/// panics or never answers costs one request an error, never the engine.
pub trait Adapter: Send + Sync {
    /// The adapter kind, as platform manifests name it (`sim`).
    fn kind(&self) -> &str;

    /// Carries out one operation for `agent`.
    fn call(&self, agent: &str, op: &Operation) -> Reply;
}
