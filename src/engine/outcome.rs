//! What a request produces: events, then exactly one response.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::platform::SwitchEvent;

/// An event for the client, `<entity>.event.<what>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Most are the workflow's own names, lent for the process's life.
    pub name: Cow<'static, str>,
    pub data: Value,
}

/// The one response to a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Ok {
        result: Value,
        /// Close the client's connection after sending the response, with
        /// this reason for the agent.
        #[serde(skip_serializing_if = "Option::is_none")]
        close: Option<String>,
    },
    Error {
        code: String,
        message: String,
    },
    /// The request lacks a parameter: the client asks the user and resubmits.
    NeedInfo {
        field: String,
        message: String,
        choices: Value,
        free_text: bool,
        /// The user may decline: the client resubmits the field as `""`.
        optional: bool,
    },
}

impl Response {
    pub fn error(code: impl Into<String>, message: impl Into<String>) -> Self {
        Response::Error {
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Response::Ok { .. })
    }

    /// Success with an empty result, the connection left open.
    pub fn ok() -> Self {
        Response::Ok {
            result: serde_json::json!({}),
            close: None,
        }
    }

    /// Why the client's connection closes after this response, if it does.
    pub fn close(&self) -> Option<&str> {
        match self {
            Response::Ok { close, .. } => close.as_deref(),
            _ => None,
        }
    }

    /// The outcome a calling workflow sees.
    pub fn outcome(&self) -> &'static str {
        match self {
            Response::Ok { .. } => "ok",
            Response::Error { .. } => "error",
            Response::NeedInfo { .. } => "need_info",
        }
    }

    /// The response in the client protocol's shape: `{ok, result}` or
    /// `{ok: false, error: {code, message, need?}}`.
    pub fn to_protocol(&self) -> Value {
        match self {
            Response::Ok { result, .. } => serde_json::json!({ "ok": true, "result": result }),
            Response::Error { code, message } => {
                serde_json::json!({ "ok": false, "error": { "code": code, "message": message } })
            }
            Response::NeedInfo {
                field,
                message,
                choices,
                free_text,
                optional,
            } => serde_json::json!({
                "ok": false,
                "error": {
                    "code": crate::workflow::vocab::NEED_INFO,
                    "message": message,
                    "need": { "field": field, "choices": choices, "free_text": free_text, "optional": optional }
                }
            }),
        }
    }
}

/// Everything a request (or a switch event) produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub response: Response,
    /// Switch events a `wait` saw but did not take, in arrival order. The
    /// session's machines heard them already; the caller runs the workflows
    /// the platform routes them to ([`Engine::route`](super::Engine::route))
    /// after the request.
    pub deferred: Vec<SwitchEvent>,
}

impl Outcome {
    /// An outcome with no events: the request was refused before it ran.
    pub fn refused(code: &str, message: impl Into<String>) -> Self {
        Outcome {
            events: Vec::new(),
            response: Response::error(code, message),
            deferred: Vec::new(),
        }
    }
}

/// What went wrong in a step, as a workflow's `error` shows it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub operation: String,
    pub channel: Option<String>,
}

impl Failure {
    pub(crate) fn to_val(&self) -> Box<dyn cel::common::value::Val> {
        use crate::workflow::record::{Record, text};
        Box::new(Record::new(vec![
            ("code".into(), text(&self.code)),
            ("message".into(), text(&self.message)),
            ("operation".into(), text(&self.operation)),
            (
                "channel".into(),
                match &self.channel {
                    Some(c) => text(c),
                    None => Box::new(cel::common::types::CelNull),
                },
            ),
        ]))
    }
}
