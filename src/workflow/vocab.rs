//! The names workflows share with the client protocol and with HIS: requests,
//! error codes, and the shape of the data expressions can read.

use std::sync::{Arc, LazyLock};

/// Every request of the client protocol, with its parameters. A platform must
/// map each to a workflow.
pub const REQUESTS: &[(&str, &str)] = &[
    (
        "session.request.login",
        "log an agent in: create the session, its channel group and channels",
    ),
    (
        "session.request.logout",
        "log the agent out and dispose of the session (Agent Logout use case)",
    ),
    ("channel.request.ready", "make the agent Ready on a channel"),
    (
        "channel.request.notReady",
        "make the agent Not Ready on a channel",
    ),
    ("channel.request.activate", "activate a channel"),
    ("channel.request.deactivate", "deactivate a channel"),
];

/// Whether `name` is a request of the client protocol.
pub fn is_request(name: &str) -> bool {
    REQUESTS.iter().any(|(r, _)| *r == name)
}

/// The help line for a name that is not a request: the closest one, or all.
pub fn request_help(name: &str) -> String {
    let names = || REQUESTS.iter().map(|(r, _)| *r);
    super::diagnostic::did_you_mean(name, names())
        .unwrap_or_else(|| format!("requests: {}", names().collect::<Vec<_>>().join(", ")))
}

/// Error codes a `respond: {error: …}` may use. They are the protocol's
/// vocabulary, taken from real switches where one fits.
pub const ERROR_CODES: &[(&str, &str)] = &[
    (
        "InvalidRequest",
        "the request is malformed or its parameters are wrong",
    ),
    (
        "NotLoggedIn",
        "the request needs a session and there is none",
    ),
    ("Busy", "another request of the session is running"),
    (
        "OngoingInteraction",
        "an interaction is in progress on a channel",
    ),
    (
        "NotReadyFailed",
        "the switch refused to make the agent Not Ready",
    ),
    ("ReadyFailed", "the switch refused to make the agent Ready"),
    (
        "DeactivationFailed",
        "the switch refused to deactivate a channel",
    ),
    (
        "ActivationFailed",
        "the switch refused to activate a channel",
    ),
    ("LogoutFailed", "the switch refused to log the agent out"),
    ("LoginFailed", "the switch refused to log the agent in"),
    (
        "ParameterMissing",
        "a parameter the switch requires is absent",
    ),
    (
        "ReasonCodeOutOfRange",
        "the reason is not one the switch accepts",
    ),
    (
        "InvalidState",
        "the agent's state does not allow the request",
    ),
    (
        "AgentNotLoggedIn",
        "the switch does not know the agent as logged in",
    ),
    ("UnknownChannel", "the session has no such channel"),
    ("NotSupported", "the switch does not support the request"),
    ("Timeout", "the switch did not answer in time"),
    ("Internal", "HIS failed; the request may be retried"),
];

/// The reason a connection closes with after `respond: { ok: { close: true } }`.
pub const LOGGED_OUT: &str = "logged out";

/// `NeedInfo` is what a `need_info` response carries; workflows do not use it
/// as an error code directly.
pub const NEED_INFO: &str = "NeedInfo";

/// A typed view of the data expressions read, used to check field names at
/// validation time. `Any` stops checking (e.g. platform settings of a lone file).
/// Shared, not owned: every expression's check passes shapes around.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Any,
    Scalar,
    /// Text that is one of a declared set of values: a literal compared with
    /// it must be one of them.
    Enum(Arc<Vocabulary>),
    List(Arc<Shape>),
    Object(&'static [(&'static str, ShapeRef)]),
    /// Fields known only at validation time: request inputs.
    Open(Arc<[String]>),
    /// Fields with shapes known only at validation time: the platform's
    /// settings, a record setting, the session with its platform's states.
    Record(Arc<[(String, Shape)]>),
}

/// A declared set of values, and what declares it, for diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// Shared: the session's shape is built for every workflow checked,
    /// with its machines' states.
    pub values: Arc<[String]>,
    /// What the values are, e.g. "a state of the channel machine".
    pub what: String,
    /// Where to declare another, for the help line.
    pub declare: String,
}

impl Shape {
    pub fn record(fields: Vec<(String, Shape)>) -> Shape {
        Shape::Record(fields.into())
    }

    pub fn list(of: Shape) -> Shape {
        Shape::List(Arc::new(of))
    }

    pub fn enumeration(values: impl Into<Arc<[String]>>, what: &str, declare: &str) -> Shape {
        Shape::Enum(Arc::new(Vocabulary {
            values: values.into(),
            what: what.to_string(),
            declare: declare.to_string(),
        }))
    }
}

// The catalog's sets, built once: every workflow's and machine's check
// reads them, and each built afresh was a string per value.
fn agent_states(what: &str, declare: &str) -> Shape {
    Shape::enumeration(
        crate::platform::events::AGENT_STATES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        what,
        declare,
    )
}
static AGENT_STATE: LazyLock<Shape> = LazyLock::new(|| {
    agent_states(
        "an agent state",
        "run `hisflow events` for the agent states a switch reports",
    )
});
/// An agent state as a switch reports it: an event's `state`, the result
/// of `agent.state`.
pub static REPORTED_STATE: LazyLock<Shape> = LazyLock::new(|| {
    agent_states(
        "an agent state a switch reports",
        "run `hisflow events` for the agent states",
    )
});
static MEDIA_SHAPE: LazyLock<Shape> = LazyLock::new(|| {
    Shape::enumeration(
        MEDIA.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "a media",
        "media are voice, email and chat",
    )
});

/// What a platform names: the states of its machines. `None`: not known
/// (no machine for the entity).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct States {
    /// Shared: every workflow's check keeps a copy for its reuse.
    pub channel: Option<Arc<[String]>>,
    pub session: Option<Arc<[String]>>,
}

impl States {
    /// A channel's `state`: one of the channel machine's states, or of the
    /// agent states a switch may report when there is no machine.
    pub fn channel_state(&self) -> Shape {
        match &self.channel {
            Some(s) => Shape::enumeration(
                s.clone(),
                "a state of the platform's channel machine",
                "add the state to the channel machine's `states:`",
            ),
            None => AGENT_STATE.clone(),
        }
    }

    /// A channel of the session.
    pub fn channel(&self) -> Shape {
        Shape::record(vec![
            ("id".into(), Shape::Scalar),
            ("media".into(), MEDIA_SHAPE.clone()),
            ("state".into(), self.channel_state()),
            ("active".into(), Shape::Scalar),
            ("interactions".into(), ShapeRef::ListOf(INTERACTION).shape()),
        ])
    }

    /// The session, with its channels' and its own states.
    pub fn session(&self) -> Shape {
        let state = match &self.session {
            Some(s) => Shape::enumeration(
                s.clone(),
                "a state of the platform's session machine",
                "add the state to the session machine's `states:`",
            ),
            None => Shape::Scalar,
        };
        Shape::record(vec![
            ("id".into(), Shape::Scalar),
            ("agent".into(), Shape::Scalar),
            ("state".into(), state),
            ("channels".into(), Shape::list(self.channel())),
            ("logout_reasons".into(), ShapeRef::ListOfScalar.shape()),
            ("not_ready_reasons".into(), ShapeRef::ListOfScalar.shape()),
        ])
    }
}

/// A static reference to a shape, so shapes can nest in consts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeRef {
    Scalar,
    ListOf(&'static [(&'static str, ShapeRef)]),
    ListOfScalar,
    Object(&'static [(&'static str, ShapeRef)]),
    Any,
}

impl ShapeRef {
    pub fn shape(self) -> Shape {
        match self {
            ShapeRef::Scalar => Shape::Scalar,
            ShapeRef::ListOf(f) => Shape::list(Shape::Object(f)),
            ShapeRef::ListOfScalar => Shape::list(Shape::Scalar),
            ShapeRef::Object(f) => Shape::Object(f),
            ShapeRef::Any => Shape::Any,
        }
    }
}

pub const INTERACTION: &[(&str, ShapeRef)] =
    &[("id", ShapeRef::Scalar), ("media", ShapeRef::Scalar)];

/// A channel of the agent's session, as expressions see it.
pub const CHANNEL: &[(&str, ShapeRef)] = &[
    ("id", ShapeRef::Scalar),
    ("media", ShapeRef::Scalar),
    ("state", ShapeRef::Scalar),
    ("active", ShapeRef::Scalar),
    ("interactions", ShapeRef::ListOf(INTERACTION)),
];

/// The session: agent, channels and the reasons collected at login; `state`
/// is its machine's state (null on a platform without a session machine).
pub const SESSION: &[(&str, ShapeRef)] = &[
    ("id", ShapeRef::Scalar),
    ("agent", ShapeRef::Scalar),
    ("state", ShapeRef::Scalar),
    ("channels", ShapeRef::ListOf(CHANNEL)),
    ("logout_reasons", ShapeRef::ListOfScalar),
    ("not_ready_reasons", ShapeRef::ListOfScalar),
];

/// Session fields a workflow may write (`save:`, `his.session.set`).
pub const WRITABLE_SESSION_FIELDS: &[&str] = &["logout_reasons", "not_ready_reasons"];

/// The last failure: which operation, on which channel, what the switch said.
pub const ERROR: &[(&str, ShapeRef)] = &[
    ("code", ShapeRef::Scalar),
    ("message", ShapeRef::Scalar),
    ("operation", ShapeRef::Scalar),
    ("channel", ShapeRef::Scalar),
];

/// Media a channel can carry.
pub const MEDIA: &[&str] = &["voice", "email", "chat"];

/// Events have the seed's form `<entity>.event.<what>`.
pub fn is_event_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    ok(parts.next()) && parts.next() == Some("event") && ok(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_follow_the_seed_form() {
        assert!(is_event_name("channel.event.stateChanged"));
        assert!(is_event_name("channelGroup.event.disposed"));
        assert!(!is_event_name("channel.stateChanged"));
        assert!(!is_event_name("channel.event."));
        assert!(!is_event_name("a.event.b.c"));
    }
}
