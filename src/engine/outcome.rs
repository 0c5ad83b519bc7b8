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
    pub data: Data,
}

/// An event's data: its fields in the order the workflow writes them, each
/// name the workflow's own, lent rather than copied. A frame serialises it
/// straight to a JSON object; no map is built on the way.
#[derive(Debug, Clone, Default)]
pub struct Data(Vec<(Cow<'static, str>, Value)>);

impl Data {
    pub fn with_capacity(n: usize) -> Self {
        Data(Vec::with_capacity(n))
    }

    /// Adds a field; a name given twice keeps the last value, as in JSON.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: Value) {
        let name = name.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(f) => f.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Adds a field by a name it does not hold yet, without looking: the
    /// names of a workflow's mapping, which loading keeps distinct (a
    /// duplicate key is an error).
    pub(crate) fn insert_new(&mut self, name: &'static str, value: Value) {
        debug_assert!(self.get(name).is_none(), "`{name}` given twice");
        self.0.push((Cow::Borrowed(name), value));
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_ref(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The data as a JSON object.
    pub fn into_json(self) -> Value {
        Value::Object(
            self.0
                .into_iter()
                .map(|(n, v)| (n.into_owned(), v))
                .collect(),
        )
    }

    /// The same data as a JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }
}

/// An object's fields; any other value has none.
impl From<Value> for Data {
    fn from(v: Value) -> Self {
        match v {
            Value::Object(m) => Data(m.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect()),
            _ => Data::default(),
        }
    }
}

/// Equal as JSON objects are: the same fields, in whatever order.
impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl PartialEq<Value> for Data {
    fn eq(&self, other: &Value) -> bool {
        other
            .as_object()
            .is_some_and(|m| m.len() == self.len() && self.iter().all(|(k, v)| m.get(k) == Some(v)))
    }
}

/// `data["field"]`, null when it has none, as for a JSON object.
impl std::ops::Index<&str> for Data {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(name).unwrap_or(&NULL)
    }
}

/// Compact JSON, as a JSON object displays.
impl std::fmt::Display for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            map.serialize_entry(n.as_ref(), v)?;
        }
        map.end()
    }
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
    pub(crate) fn to_record(&self) -> crate::workflow::record::Record {
        use crate::workflow::record::{Record, Slot};
        Record::new(vec![
            ("code".into(), Slot::text(&self.code)),
            ("message".into(), Slot::text(&self.message)),
            ("operation".into(), Slot::text(&self.operation)),
            (
                "channel".into(),
                self.channel.as_deref().map_or_else(Slot::null, Slot::text),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn data_serialises_and_compares_as_the_json_object_it_stands_for() {
        let mut d = Data::with_capacity(2);
        d.insert("channel", json!("voice"));
        d.insert("state", json!("NotReady"));
        d.insert("channel", json!("chat"));
        assert_eq!(d.to_string(), r#"{"channel":"chat","state":"NotReady"}"#);
        assert_eq!(d, json!({ "state": "NotReady", "channel": "chat" }));
        assert_eq!(
            d,
            Data::from(json!({ "state": "NotReady", "channel": "chat" }))
        );
        assert_ne!(d, json!({ "channel": "chat" }));
        assert_eq!(d["state"], "NotReady");
        assert_eq!(d["nothing"], Value::Null);
        assert_eq!(
            d.to_json(),
            json!({ "channel": "chat", "state": "NotReady" })
        );
    }
}
