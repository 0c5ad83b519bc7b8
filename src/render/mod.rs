//! Diagrams of a validated workflow: `Display` wrappers that draw every state
//! and transition, states grouped and coloured by their use-case flow.

mod dot;
mod mermaid;

pub use dot::Dot;
pub use mermaid::Mermaid;

use crate::workflow::model::{Body, Response, State, StateKind};

/// Fill colour of a flow's states: the basic flow blue, alternate flows
/// green, error flows red, anything else grey, so a picture reads like the
/// use case at a glance.
pub(crate) fn flow_colour(flow: &str) -> &'static str {
    let upper = flow.to_ascii_uppercase();
    if flow == "basic" {
        "#dbeafe"
    } else if upper.starts_with("AF") {
        "#dcfce7"
    } else if upper.starts_with("EF") {
        "#fee2e2"
    } else {
        "#f3f4f6"
    }
}

/// Border colour matching [`flow_colour`].
pub(crate) fn flow_stroke(flow: &str) -> &'static str {
    let upper = flow.to_ascii_uppercase();
    if flow == "basic" {
        "#1d4ed8"
    } else if upper.starts_with("AF") {
        "#15803d"
    } else if upper.starts_with("EF") {
        "#b91c1c"
    } else {
        "#4b5563"
    }
}

/// What a state does, in one line.
pub(crate) fn summary(state: &State) -> String {
    match &state.kind {
        StateKind::Op(op) => format!("op {}", op.op.name),
        StateKind::Choice(_) => "choice".into(),
        StateKind::Foreach(f) => {
            let body = match &f.body {
                Body::Op(op) => format!("op {}", op.op.name),
                Body::Call(c) => format!("call {}", c.workflow),
            };
            format!("foreach {}: {body}", f.binding)
        }
        StateKind::Call(c) => format!("call {}", c.workflow),
        StateKind::Emit(e) => format!("emit {}", e.event),
        StateKind::Respond(Response::Ok { close, .. }) => {
            if *close {
                "respond ok, close".into()
            } else {
                "respond ok".into()
            }
        }
        StateKind::Respond(Response::Error { code, .. }) => format!("respond error {code}"),
        StateKind::Respond(Response::NeedInfo { field, .. }) => format!("respond need_info {field}"),
    }
}

/// Guards can be long; a diagram edge shows at most this many characters.
pub(crate) const MAX_LABEL: usize = 60;

pub(crate) fn shorten(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_LABEL - 1).collect();
        out.push('…');
        out
    }
}
