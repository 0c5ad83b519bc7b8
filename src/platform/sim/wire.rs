//! The simulated switch's own protocol, between `hisflow switch` (the
//! switch in a process of its own, `server::switch`) and the HIS nodes that
//! drive it ([`super::remote::RemoteSim`]): JSON text frames over one
//! WebSocket at [`PATH`], described in docs/adapters.md.
//!
//! ```text
//! client → switch  {"id": 1, "call": {"agent": "a1", "op": {"op": "agent.login", "channel": "voice"}}}
//! client → switch  {"id": 2, "control": {"agent": "a1", "name": "sim.request.forceLogout", "params": {}}}
//! switch → client  {"id": 1, "ok": null}
//! switch → client  {"id": 2, "error": {"code": "AgentNotLoggedIn", "message": "…"}}
//! switch → client  {"event": {"agent": "a1", "name": "agent.event.loggedOut", "data": {…}}}
//! ```
//!
//! Both ends read frames from the other process: a frame that is not one
//! is a [`Malformed`], never a panic.

use serde::Deserialize as _;
use serde_json::{Map, Value as Json, json};

use crate::platform::adapter::{Operation, SwitchError};
use crate::platform::events::SwitchEvent;

/// Where the switch serves its WebSocket.
pub const PATH: &str = "/switch";

/// The largest frame either end takes; a larger one ends the connection.
/// An operation, a control or an event is a few hundred bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// The longest agent id the switch takes, as HIS's own limit.
pub const MAX_AGENT_ID: usize = 128;

/// What a client asks the switch.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// Carry out an operation for an agent.
    Call { agent: String, op: Operation },
    /// Carry out one of the switch's controls (`sim.request.*`) for an
    /// agent; `params` is an object.
    Control {
        agent: String,
        name: String,
        params: Json,
    },
}

/// A client's frame: what it asks, and the id the answer carries back.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: u64,
    pub ask: Ask,
}

/// A frame of the switch.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The answer to request `id`: an operation's result (`null`, a list,
    /// a channel's report) or a control's, or the switch's refusal.
    Reply {
        id: u64,
        result: Result<Json, SwitchError>,
    },
    /// Something the switch did; every client hears every event.
    Event(SwitchEvent),
}

/// A frame that is not one of the protocol's: why, and the id it carried
/// if it had one (then the sender is answered; otherwise only logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Malformed {
    pub id: Option<u64>,
    pub message: String,
}

impl Malformed {
    fn new(id: Option<u64>, message: impl Into<String>) -> Self {
        Malformed {
            id,
            message: message.into(),
        }
    }
}

/// The frame's JSON object, and its id if it has a usable one.
fn object(text: &str) -> Result<(Map<String, Json>, Option<u64>), Malformed> {
    let v: Json =
        serde_json::from_str(text).map_err(|e| Malformed::new(None, format!("not JSON: {e}")))?;
    let Json::Object(map) = v else {
        return Err(Malformed::new(None, "a frame is a JSON object"));
    };
    let id = map.get("id").and_then(Json::as_u64);
    if map.contains_key("id") && id.is_none() {
        return Err(Malformed::new(
            None,
            "`id` must be a whole number from 0 up",
        ));
    }
    Ok((map, id))
}

/// Refuses any key of `map` beyond `known`.
fn only(
    map: &Map<String, Json>,
    known: &[&str],
    what: &str,
    id: Option<u64>,
) -> Result<(), Malformed> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(Malformed::new(
            id,
            format!("{what} has no field `{k}`; fields: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The `agent` of a call or control: text of 1 to [`MAX_AGENT_ID`]
/// characters, none a control character.
fn agent(body: &Map<String, Json>, id: u64) -> Result<String, Malformed> {
    let Some(agent) = body.get("agent").and_then(Json::as_str) else {
        return Err(Malformed::new(
            Some(id),
            "`agent` is required and must be text",
        ));
    };
    let n = agent.chars().count();
    if n == 0 || n > MAX_AGENT_ID || agent.chars().any(char::is_control) {
        return Err(Malformed::new(
            Some(id),
            format!(
                "`agent` must have 1 to {MAX_AGENT_ID} characters, none of them a control character"
            ),
        ));
    }
    Ok(agent.to_string())
}

impl Request {
    pub fn call(id: u64, agent: &str, op: &Operation) -> Request {
        Request {
            id,
            ask: Ask::Call {
                agent: agent.to_string(),
                op: op.clone(),
            },
        }
    }

    pub fn control(id: u64, agent: &str, name: &str, params: &Json) -> Request {
        Request {
            id,
            ask: Ask::Control {
                agent: agent.to_string(),
                name: name.to_string(),
                params: params.clone(),
            },
        }
    }

    /// The frame's text.
    pub fn to_text(&self) -> String {
        let body = match &self.ask {
            Ask::Call { agent, op } => json!({ "call": { "agent": agent, "op": op } }),
            Ask::Control {
                agent,
                name,
                params,
            } => json!({ "control": { "agent": agent, "name": name, "params": params } }),
        };
        let mut frame = json!({ "id": self.id });
        if let (Json::Object(f), Json::Object(b)) = (&mut frame, body) {
            f.extend(b);
        }
        frame.to_string()
    }

    /// Reads a client's frame.
    pub fn parse(text: &str) -> Result<Request, Malformed> {
        let (map, id) = object(text)?;
        let Some(id) = id else {
            return Err(Malformed::new(None, "a request has an `id`"));
        };
        only(&map, &["id", "call", "control"], "a request", Some(id))?;
        let body = |key: &str| -> Result<Option<&Map<String, Json>>, Malformed> {
            match map.get(key) {
                None => Ok(None),
                Some(Json::Object(b)) => Ok(Some(b)),
                Some(_) => Err(Malformed::new(
                    Some(id),
                    format!("`{key}` must be an object"),
                )),
            }
        };
        let ask = match (body("call")?, body("control")?) {
            (Some(call), None) => {
                only(call, &["agent", "op"], "`call`", Some(id))?;
                let agent = agent(call, id)?;
                let op = call
                    .get("op")
                    .ok_or_else(|| Malformed::new(Some(id), "`call` needs an `op`"))?;
                let op = Operation::deserialize(op).map_err(|e| {
                    Malformed::new(Some(id), format!("`op` is not an operation: {e}"))
                })?;
                Ask::Call { agent, op }
            }
            (None, Some(control)) => {
                only(control, &["agent", "name", "params"], "`control`", Some(id))?;
                let agent = agent(control, id)?;
                let Some(name) = control.get("name").and_then(Json::as_str) else {
                    return Err(Malformed::new(
                        Some(id),
                        "`name` is required and must be text",
                    ));
                };
                let params = match control.get("params") {
                    None | Some(Json::Null) => json!({}),
                    Some(p @ Json::Object(_)) => p.clone(),
                    Some(_) => {
                        return Err(Malformed::new(Some(id), "`params` must be an object"));
                    }
                };
                Ask::Control {
                    agent,
                    name: name.to_string(),
                    params,
                }
            }
            _ => {
                return Err(Malformed::new(
                    Some(id),
                    "a request has either `call` or `control`",
                ));
            }
        };
        Ok(Request { id, ask })
    }
}

impl Frame {
    /// The frame's text.
    pub fn to_text(&self) -> String {
        match self {
            Frame::Reply { id, result: Ok(v) } => json!({ "id": id, "ok": v }),
            Frame::Reply { id, result: Err(e) } => json!({ "id": id, "error": e }),
            Frame::Event(e) => json!({ "event": {
                "agent": e.agent,
                "name": e.name,
                "data": e.data,
            } }),
        }
        .to_string()
    }

    /// Reads a frame of the switch.
    pub fn parse(text: &str) -> Result<Frame, Malformed> {
        let (map, id) = object(text)?;
        if let Some(event) = map.get("event") {
            only(&map, &["event"], "an event frame", id)?;
            return parse_event(event).map(Frame::Event);
        }
        let Some(id) = id else {
            return Err(Malformed::new(
                None,
                "a frame is a reply with an `id`, or an `event`",
            ));
        };
        only(&map, &["id", "ok", "error"], "a reply", Some(id))?;
        match (map.get("ok"), map.get("error")) {
            (Some(ok), None) => Ok(Frame::Reply {
                id,
                result: Ok(ok.clone()),
            }),
            (None, Some(error)) => SwitchError::deserialize(error)
                .map(|e| Frame::Reply { id, result: Err(e) })
                .map_err(|e| {
                    Malformed::new(Some(id), format!("`error` is not a switch error: {e}"))
                }),
            _ => Err(Malformed::new(
                Some(id),
                "a reply has either `ok` or `error`",
            )),
        }
    }
}

/// An event as the switch sends it: `agent` (absent or null for every
/// agent), `name`, `data` (an object). Whether it fits the catalog is
/// HIS's to check, as for any adapter's event.
fn parse_event(v: &Json) -> Result<SwitchEvent, Malformed> {
    let Json::Object(e) = v else {
        return Err(Malformed::new(None, "`event` must be an object"));
    };
    only(e, &["agent", "name", "data"], "`event`", None)?;
    let agent = match e.get("agent") {
        None | Some(Json::Null) => None,
        Some(Json::String(a)) => Some(a.as_str()),
        Some(_) => return Err(Malformed::new(None, "an event's `agent` must be text")),
    };
    let Some(name) = e.get("name").and_then(Json::as_str) else {
        return Err(Malformed::new(
            None,
            "an event's `name` is required and must be text",
        ));
    };
    let data = match e.get("data") {
        None | Some(Json::Null) => json!({}),
        Some(d @ Json::Object(_)) => d.clone(),
        Some(_) => return Err(Malformed::new(None, "an event's `data` must be an object")),
    };
    Ok(SwitchEvent::new(agent, name, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::adapter::{ChannelReport, OpResult};

    #[test]
    fn operations_are_tagged_with_their_catalog_name_and_round_trip() {
        let ops = [
            Operation::Login {
                channel: "voice".into(),
            },
            Operation::Logout { reason: None },
            Operation::Logout {
                reason: Some("Lunch".into()),
            },
            Operation::SetReady { channel: None },
            Operation::SetNotReady {
                channel: Some("voice".into()),
                reason: Some("Break".into()),
                reject_pending: false,
            },
            Operation::ReasonCodes {
                category: "logout".into(),
            },
            Operation::Activate {
                channel: "email".into(),
            },
            Operation::Deactivate {
                channel: "email".into(),
            },
            Operation::State {
                channel: "chat".into(),
            },
        ];
        for op in ops {
            let v = serde_json::to_value(&op).unwrap();
            assert_eq!(v["op"], op.name(), "{v}");
            assert_eq!(serde_json::from_value::<Operation>(v).unwrap(), op);
        }
        assert_eq!(
            serde_json::to_value(Operation::SetNotReady {
                channel: Some("voice".into()),
                reason: Some("Break".into()),
                reject_pending: false,
            })
            .unwrap(),
            json!({"op":"agent.set_not_ready","channel":"voice","reason":"Break","reject_pending":false})
        );
        // What may be left out is.
        assert_eq!(
            serde_json::from_value::<Operation>(json!({"op": "agent.set_not_ready"})).unwrap(),
            Operation::SetNotReady {
                channel: None,
                reason: None,
                reject_pending: false
            }
        );
    }

    #[test]
    fn results_are_what_expressions_read_and_round_trip() {
        for r in [
            OpResult::Done,
            OpResult::List(vec!["Lunch".into()]),
            OpResult::State(ChannelReport {
                state: "Talking".into(),
                active: true,
                interactions: vec!["c1".into()],
            }),
        ] {
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(Some(&v), r.to_json().as_ref().or(Some(&Json::Null)));
            assert_eq!(serde_json::from_value::<OpResult>(v).unwrap(), r);
        }
        assert!(serde_json::from_value::<OpResult>(json!({"state": "Ready"})).is_err());
        assert!(serde_json::from_value::<OpResult>(json!(7)).is_err());
    }

    #[test]
    fn requests_and_frames_round_trip() {
        let requests = [
            Request::call(
                1,
                "a1",
                &Operation::SetNotReady {
                    channel: Some("voice".into()),
                    reason: Some("Break".into()),
                    reject_pending: false,
                },
            ),
            Request::control(
                2,
                "a1",
                "sim.request.forceLogout",
                &json!({"reason": "Shift"}),
            ),
        ];
        for r in requests {
            assert_eq!(Request::parse(&r.to_text()).unwrap(), r);
        }
        assert_eq!(
            Request::parse(&Request::call(1, "a1", &Operation::Logout { reason: None }).to_text())
                .map(|r| r.to_text()),
            Ok(r#"{"id":1,"call":{"agent":"a1","op":{"op":"agent.logout"}}}"#.to_string())
        );
        let frames = [
            Frame::Reply {
                id: 1,
                result: Ok(Json::Null),
            },
            Frame::Reply {
                id: 2,
                result: Err(SwitchError::new("InvalidState", "no")),
            },
            Frame::Event(SwitchEvent::new(
                Some("a1"),
                "agent.event.loggedOut",
                json!({"reason": "Shift", "cause": "supervisor"}),
            )),
            Frame::Event(SwitchEvent::new(None, "link.event.up", json!({}))),
        ];
        for f in frames {
            assert_eq!(Frame::parse(&f.to_text()).unwrap(), f);
        }
    }

    #[test]
    fn a_malformed_request_is_answered_when_it_has_an_id() {
        let no_id = |text: &str| {
            let m = Request::parse(text).unwrap_err();
            assert_eq!(m.id, None, "{text}: {m}");
            m.message
        };
        assert!(no_id("not json").contains("not JSON"));
        assert!(no_id("[1]").contains("object"));
        assert!(no_id(r#"{"call":{}}"#).contains("`id`"));
        assert!(no_id(r#"{"id":-1,"call":{}}"#).contains("`id`"));
        assert!(no_id(r#"{"id":"x","call":{}}"#).contains("`id`"));
        assert!(no_id(r#"{"id":1.5,"call":{}}"#).contains("`id`"));
        let answered = |text: &str| {
            let m = Request::parse(text).unwrap_err();
            assert_eq!(m.id, Some(7), "{text}: {m}");
            m.message
        };
        assert!(answered(r#"{"id":7}"#).contains("either"));
        assert!(answered(r#"{"id":7,"call":{},"control":{}}"#).contains("either"));
        assert!(answered(r#"{"id":7,"call":[]}"#).contains("object"));
        assert!(answered(r#"{"id":7,"cal":{}}"#).contains("no field `cal`"));
        assert!(answered(r#"{"id":7,"call":{"op":{"op":"agent.logout"}}}"#).contains("`agent`"));
        assert!(
            answered(r#"{"id":7,"call":{"agent":"","op":{"op":"agent.logout"}}}"#)
                .contains("1 to 128")
        );
        let long = "a".repeat(129);
        assert!(
            answered(&format!(
                r#"{{"id":7,"call":{{"agent":"{long}","op":{{"op":"agent.logout"}}}}}}"#
            ))
            .contains("1 to 128")
        );
        assert!(
            answered(r#"{"id":7,"call":{"agent":"a\n","op":{"op":"agent.logout"}}}"#)
                .contains("control")
        );
        assert!(answered(r#"{"id":7,"call":{"agent":"a"}}"#).contains("`op`"));
        assert!(
            answered(r#"{"id":7,"call":{"agent":"a","op":{"op":"agent.lunch"}}}"#)
                .contains("not an operation")
        );
        assert!(
            answered(r#"{"id":7,"call":{"agent":"a","op":{"op":"agent.login"}}}"#)
                .contains("channel")
        );
        assert!(
            answered(
                r#"{"id":7,"call":{"agent":"a","op":{"op":"agent.login","channel":"v","x":1}}}"#
            )
            .contains("x")
        );
        assert!(
            answered(r#"{"id":7,"call":{"agent":"a","op":"agent.login"}}"#)
                .contains("not an operation")
        );
        assert!(
            answered(
                r#"{"id":7,"call":{"agent":"a","op":{"op":"agent.login","channel":"v"},"more":1}}"#
            )
            .contains("`more`")
        );
        assert!(answered(r#"{"id":7,"control":{"agent":"a"}}"#).contains("`name`"));
        assert!(
            answered(r#"{"id":7,"control":{"agent":"a","name":"sim.request.faults","params":[]}}"#)
                .contains("`params`")
        );
        // No params are empty ones.
        assert_eq!(
            Request::parse(r#"{"id":7,"control":{"agent":"a","name":"sim.request.faults"}}"#)
                .unwrap(),
            Request::control(7, "a", "sim.request.faults", &json!({}))
        );
    }

    #[test]
    fn a_malformed_frame_of_the_switch_is_refused() {
        for (text, id, said) in [
            ("{", None, "not JSON"),
            (r#"{"ok":null}"#, None, "`id`"),
            (r#"{"id":1}"#, Some(1), "either"),
            (r#"{"id":1,"ok":null,"error":{}}"#, Some(1), "either"),
            (
                r#"{"id":1,"error":{"code":"X"}}"#,
                Some(1),
                "not a switch error",
            ),
            (r#"{"id":1,"ok":null,"extra":1}"#, Some(1), "`extra`"),
            (r#"{"event":[]}"#, None, "object"),
            (r#"{"event":{"name":7}}"#, None, "`name`"),
            (r#"{"event":{"name":"x","agent":1}}"#, None, "`agent`"),
            (r#"{"event":{"name":"x","data":"y"}}"#, None, "`data`"),
            (r#"{"event":{"name":"x","who":"y"}}"#, None, "`who`"),
            (r#"{"event":{"name":"x"},"id":3}"#, Some(3), "`id`"),
        ] {
            let m = Frame::parse(text).unwrap_err();
            assert_eq!(m.id, id, "{text}: {m}");
            assert!(m.message.contains(said), "{text}: {m}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_text_makes_either_end_panic(text in ".{0,200}") {
            let _ = Request::parse(&text);
            let _ = Frame::parse(&text);
        }

        #[test]
        fn no_json_made_of_the_protocols_words_makes_either_end_panic(
            keys in proptest::collection::vec(
                proptest::sample::select(vec!["id", "call", "control", "agent", "op", "name", "params", "ok", "error", "event", "data", "code", "message", "channel"]),
                0..6,
            ),
            values in proptest::collection::vec(
                proptest::sample::select(vec!["1", "-1", "null", "\"a\"", "{}", "[]", "true", "{\"op\":\"agent.login\"}", "{\"code\":\"X\",\"message\":\"y\"}"]),
                0..6,
            ),
        ) {
            let body: Vec<String> = keys.iter().zip(values.iter()).map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let flat = format!("{{{}}}", body.join(","));
            let _ = Request::parse(&flat);
            let _ = Frame::parse(&flat);
            for k in ["call", "control", "event"] {
                let nested = format!("{{\"id\":1,\"{k}\":{flat}}}");
                let _ = Request::parse(&nested);
                let _ = Frame::parse(&nested);
            }
        }
    }
}
