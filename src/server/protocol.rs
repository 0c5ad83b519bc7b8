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

/// Parses a text frame. The error is the response to send (with the
/// request's id when it had one).
pub fn parse(text: &str) -> Result<Request, Json> {
    let value: Json = serde_json::from_str(text)
        .map_err(|e| invalid(None, &format!("the frame is not JSON: {e}")))?;
    let Some(frame) = value.as_object() else {
        return Err(invalid(None, "the frame must be a JSON object"));
    };
    let id = frame.get("id").and_then(Json::as_str).map(str::to_string);
    if frame.get("type").and_then(Json::as_str) != Some("request") {
        return Err(invalid(id.as_deref(), "`type` must be \"request\""));
    }
    let Some(id) = id else {
        return Err(invalid(None, "`id` is required and must be text"));
    };
    let Some(name) = frame.get("name").and_then(Json::as_str) else {
        return Err(invalid(Some(&id), "`name` is required and must be text"));
    };
    let params = match frame.get("params") {
        None | Some(Json::Null) => json!({}),
        Some(p @ Json::Object(_)) => p.clone(),
        Some(_) => return Err(invalid(Some(&id), "`params` must be an object")),
    };
    Ok(Request {
        id,
        name: name.to_string(),
        params,
    })
}

fn invalid(id: Option<&str>, message: &str) -> Json {
    response(
        id,
        &json!({ "ok": false, "error": { "code": "InvalidRequest", "message": message } }),
    )
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

pub fn event(name: &str, data: &Json) -> Json {
    json!({ "type": "event", "name": name, "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Request, Json>) -> (Option<String>, String) {
        let e = r.unwrap_err();
        (
            e["id"].as_str().map(str::to_string),
            e["error"]["code"].as_str().unwrap().to_string(),
        )
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
