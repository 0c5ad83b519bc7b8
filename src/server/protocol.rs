//! The client protocol's frames: JSON text, one request → exactly one
//! response, events in between. A malformed frame gets an `InvalidRequest`
//! response and the connection stays usable.

use serde_json::{Value as Json, json};

/// A request frame, checked.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub id: String,
    pub name: String,
    pub params: Json,
}

/// Parses a text frame. The error is what an `InvalidRequest` response says,
/// with the request's id when it had one.
pub fn parse(text: &str) -> Result<Request, (Option<String>, String)> {
    let value: Json =
        serde_json::from_str(text).map_err(|e| (None, format!("the frame is not JSON: {e}")))?;
    let Some(frame) = value.as_object() else {
        return Err((None, "the frame must be a JSON object".into()));
    };
    let id = frame.get("id").and_then(Json::as_str).map(str::to_string);
    if frame.get("type").and_then(Json::as_str) != Some("request") {
        return Err((id, "`type` must be \"request\"".into()));
    }
    let Some(id) = id else {
        return Err((None, "`id` is required and must be text".into()));
    };
    let Some(name) = frame.get("name").and_then(Json::as_str) else {
        return Err((Some(id), "`name` is required and must be text".into()));
    };
    let params = match frame.get("params") {
        None | Some(Json::Null) => json!({}),
        Some(p @ Json::Object(_)) => p.clone(),
        Some(_) => return Err((Some(id), "`params` must be an object".into())),
    };
    Ok(Request {
        id,
        name: name.to_string(),
        params,
    })
}

/// A response frame for `id` from a response body `{ok, result | error}`.
pub fn response(id: Option<&str>, body: &Json) -> Json {
    let mut frame = json!({ "type": "response", "id": id });
    if let (Some(f), Some(b)) = (frame.as_object_mut(), body.as_object()) {
        for (k, v) in b {
            f.insert(k.clone(), v.clone());
        }
    }
    frame
}

/// An event frame, written straight from the event's data.
pub fn event(name: &str, data: &crate::engine::Data) -> String {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        r#type: &'static str,
        name: &'a str,
        data: &'a crate::engine::Data,
    }
    serde_json::to_string(&Frame {
        r#type: "event",
        name,
        data,
    })
    // A map of text keys and JSON values always serialises; were it not to,
    // the client gets an empty frame, which it ignores, and the log says so.
    .unwrap_or_else(|e| {
        tracing::error!(event = name, error = %e, "an event frame did not serialise");
        String::new()
    })
}

/// The JSON Schema of the frames, client to HIS and HIS to client.
pub fn schema() -> String {
    let schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "hisflow client protocol frame",
        "description": "One WebSocket text frame between a MediaBar and HIS. See docs/client-connectivity.md.",
        "oneOf": [
            { "$ref": "#/definitions/request" },
            { "$ref": "#/definitions/response" },
            { "$ref": "#/definitions/event" }
        ],
        "definitions": {
            "request": {
                "description": "Client → HIS. Every request gets exactly one response with the same id.",
                "type": "object",
                "required": ["type", "id", "name"],
                "additionalProperties": false,
                "properties": {
                    "type": { "const": "request" },
                    "id": { "type": "string", "description": "Chosen by the client; echoed in the response." },
                    "name": { "type": "string", "description": "`<entity>.request.<verb>`, e.g. session.request.logout." },
                    "params": { "type": "object" }
                }
            },
            "response": {
                "description": "HIS → client.",
                "type": "object",
                "required": ["type", "id", "ok"],
                "additionalProperties": false,
                "properties": {
                    "type": { "const": "response" },
                    "id": { "type": ["string", "null"], "description": "The request's id; null when the frame had none." },
                    "ok": { "type": "boolean" },
                    "result": { "type": "object" },
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "additionalProperties": false,
                        "properties": {
                            "code": { "type": "string" },
                            "message": { "type": "string", "description": "For the agent to read." },
                            "need": {
                                "description": "With code NeedInfo: the parameter to add before resubmitting.",
                                "type": "object",
                                "required": ["field", "choices", "free_text", "optional"],
                                "properties": {
                                    "field": { "type": "string" },
                                    "choices": { "type": "array" },
                                    "free_text": { "type": "boolean" },
                                    "optional": { "type": "boolean", "description": "The user may decline: resubmit the field as an empty string." }
                                }
                            }
                        }
                    }
                }
            },
            "event": {
                "description": "HIS → client, before the response of the request that caused it.",
                "type": "object",
                "required": ["type", "name", "data"],
                "additionalProperties": false,
                "properties": {
                    "type": { "const": "event" },
                    "name": { "type": "string", "description": "`<entity>.event.<what>`." },
                    "data": { "type": "object" }
                }
            }
        }
    });
    let mut out = serde_json::to_string_pretty(&schema).expect("the schema serializes");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id an error response carries, and that it is an error at all.
    fn code(r: Result<Request, (Option<String>, String)>) -> (Option<String>, String) {
        let (id, message) = r.unwrap_err();
        assert!(!message.is_empty());
        (id, "InvalidRequest".into())
    }

    #[test]
    fn malformed_frames_are_invalid_requests_with_their_id_when_known() {
        assert_eq!(code(parse("nope")), (None, "InvalidRequest".into()));
        assert_eq!(code(parse("[1]")), (None, "InvalidRequest".into()));
        assert_eq!(
            code(parse(r#"{"type":"request","name":"x"}"#)),
            (None, "InvalidRequest".into())
        );
        assert_eq!(
            code(parse(r#"{"type":"request","id":"7"}"#)),
            (Some("7".into()), "InvalidRequest".into())
        );
        assert_eq!(
            code(parse(
                r#"{"type":"request","id":"7","name":"x","params":[1]}"#
            )),
            (Some("7".into()), "InvalidRequest".into())
        );
        let ok = parse(r#"{"type":"request","id":"7","name":"session.request.logout"}"#).unwrap();
        assert_eq!(ok.params, json!({}));
    }
}
