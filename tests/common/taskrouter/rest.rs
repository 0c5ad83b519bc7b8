//! The REST API: one handler reads every request, so that nothing (a bad
//! body, an unknown path, a wrong method) is answered by anything but a
//! Twilio error body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State as Axum};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::model::State;
use super::{ACCOUNT_SID, API_KEY, API_SECRET, AUTH_TOKEN, Recorded, Shared, WORKSPACE_SID, param};

/// The largest body the fake reads; TaskRouter's forms are far smaller.
const BODY_LIMIT: usize = 1 << 20;

struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    /// Set when a POST carries a body that is not a form.
    not_a_form: bool,
    credentials: Option<(String, String)>,
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Body::from(self.body.to_string())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

/// A Twilio error: `{code, message, more_info, status}`.
struct ApiError {
    status: u16,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: u16, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, 20001, message)
    }

    /// Twilio names the resource by its path without the version.
    fn not_found(path: &str) -> ApiError {
        let resource = path.strip_prefix("/v1").unwrap_or(path);
        ApiError::new(
            404,
            20404,
            format!("The requested resource {resource} was not found"),
        )
    }

    fn answer(self) -> Answer {
        Answer {
            status: self.status,
            body: json!({
                "code": self.code,
                "message": self.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
                "status": self.status,
            }),
            retry_after: None,
        }
    }
}

type Reply = Result<Answer, ApiError>;

fn ok(body: Value) -> Reply {
    Ok(Answer {
        status: 200,
        body,
        retry_after: None,
    })
}

pub(super) async fn handle(Axum(shared): Axum<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let incoming = read(request).await;
    let answer = shared.with(|s| {
        let record = |s: &mut State, status| {
            s.requests.push(Recorded {
                method: incoming.method.clone(),
                path: incoming.path.clone(),
                query: incoming.query.clone(),
                form: incoming.form.clone(),
                user: incoming.credentials.as_ref().map(|(user, _)| user.clone()),
                status,
                at,
            })
        };
        if s.hang {
            record(s, None);
            return None;
        }
        let answer = answer(s, &incoming);
        record(s, Some(answer.status));
        Some(answer)
    });
    match answer {
        Some(answer) => answer.into_response(),
        None => std::future::pending().await,
    }
}

async fn read(request: Request) -> Incoming {
    let (parts, body) = request.into_parts();
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let is_form = content_type.as_deref() == Some("application/x-www-form-urlencoded");
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await;
    let (form, not_a_form) = match bytes {
        Ok(bytes) if is_form => (form_urlencoded::parse(&bytes).into_owned().collect(), false),
        // A bodiless POST is an update of nothing, not a bad one.
        Ok(bytes) => (Vec::new(), !bytes.is_empty() || content_type.is_some()),
        Err(_) => (Vec::new(), true),
    };
    Incoming {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        form,
        not_a_form: not_a_form && parts.method == axum::http::Method::POST,
        credentials: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic),
    }
}

fn basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Authentication first, as a request Twilio cannot attribute to an account
/// never reaches its limits; then the faults the test injected; then the
/// Workspace.
fn answer(s: &mut State, incoming: &Incoming) -> Answer {
    let authorized = matches!(
        &incoming.credentials,
        Some((user, password))
            if (user == ACCOUNT_SID && password == AUTH_TOKEN)
                || (user == API_KEY && password == API_SECRET)
    );
    if !authorized {
        return ApiError::new(401, 20003, "Authenticate").answer();
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        let mut answer = ApiError::new(429, 20429, "Too Many Requests").answer();
        answer.retry_after = s.retry_after;
        return answer;
    }
    let refusal = s.refusals.iter().position(|r| {
        r.times > 0
            && r.method.eq_ignore_ascii_case(&incoming.method)
            && incoming.path.ends_with(r.path_ends_with.as_str())
    });
    if let Some(i) = refusal {
        let r = &mut s.refusals[i];
        r.times -= 1;
        return ApiError::new(r.status, r.code, r.message.clone()).answer();
    }
    route(s, incoming).unwrap_or_else(ApiError::answer)
}

fn route(s: &mut State, incoming: &Incoming) -> Reply {
    let path = incoming.path.as_str();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let ["v1", "Workspaces", workspace, rest @ ..] = segments.as_slice() else {
        return Err(ApiError::not_found(path));
    };
    if *workspace != WORKSPACE_SID {
        return Err(ApiError::not_found(&format!("/Workspaces/{workspace}")));
    }
    if incoming.not_a_form {
        return Err(ApiError::bad(
            "A POST body must be application/x-www-form-urlencoded",
        ));
    }
    let (query, form) = (&incoming.query, &incoming.form);
    let worker = |s: &State, sid: &str| {
        s.worker_by_sid(sid).ok_or_else(|| {
            ApiError::not_found(&format!("/Workspaces/{WORKSPACE_SID}/Workers/{sid}"))
        })
    };
    match (incoming.method.as_str(), rest) {
        ("GET", []) => ok(s.workspace_json()),
        ("GET", ["Activities"]) => list_activities(s, incoming),
        ("GET", ["Activities", sid]) => match s.activity_by_sid(sid) {
            Some(a) => ok(s.activity_json(a)),
            None => Err(ApiError::not_found(path)),
        },
        ("GET", ["TaskChannels"]) => {
            let items = (0..s.task_channels.len())
                .map(|c| s.task_channel_json(c))
                .collect();
            page(s, incoming, "channels", items)
        }
        ("GET", ["TaskChannels", id]) => match s.channel_by_sid_or_name(id) {
            Some(c) => ok(s.task_channel_json(c)),
            None => Err(ApiError::not_found(path)),
        },
        ("GET", ["Workers"]) => list_workers(s, incoming),
        ("GET", ["Workers", sid]) => ok(s.worker_json(worker(s, sid)?, true)),
        ("POST", ["Workers", sid]) => update_worker(s, worker(s, sid)?, form),
        ("GET", ["Workers", sid, "Channels"]) => {
            let w = worker(s, sid)?;
            let items = (0..s.workers[w].channels.len())
                .map(|c| s.worker_channel_json(w, c))
                .collect();
            page(s, incoming, "channels", items)
        }
        (method @ ("GET" | "POST"), ["Workers", sid, "Channels", id]) => {
            let w = worker(s, sid)?;
            let c = s
                .worker_channel(w, id)
                .ok_or_else(|| ApiError::not_found(path))?;
            if method == "POST" {
                update_channel(s, w, c, form)?;
            }
            ok(s.worker_channel_json(w, c))
        }
        ("GET", ["Workers", sid, "Reservations"]) => {
            let w = worker(s, sid)?;
            let status = param(query, "ReservationStatus");
            if let Some(status) = status.filter(|st| !RESERVATION_STATUSES.contains(st)) {
                return Err(ApiError::bad(format!(
                    "Invalid ReservationStatus: {status}"
                )));
            }
            let items = (0..s.reservations.len())
                .filter(|&r| s.reservations[r].worker == w)
                .filter(|&r| status.is_none_or(|st| s.reservations[r].status == st))
                .map(|r| s.reservation_json(r))
                .collect();
            page(s, incoming, "reservations", items)
        }
        ("GET", ["Workers", sid, "Reservations", id]) => {
            let w = worker(s, sid)?;
            match s
                .reservation_by_sid(id)
                .filter(|&r| s.reservations[r].worker == w)
            {
                Some(r) => ok(s.reservation_json(r)),
                None => Err(ApiError::not_found(path)),
            }
        }
        ("GET", ["Tasks", sid]) => match s.task_by_sid(sid) {
            Some(t) => ok(s.task_json(t)),
            None => Err(ApiError::not_found(path)),
        },
        (_, rest) if known(rest) => Err(ApiError::new(
            405,
            20004,
            format!("Method {} not allowed on {path}", incoming.method),
        )),
        _ => Err(ApiError::not_found(path)),
    }
}

/// `worker_reservation_enum_status` of the spec.
const RESERVATION_STATUSES: [&str; 8] = [
    "pending",
    "accepted",
    "rejected",
    "timeout",
    "canceled",
    "rescinded",
    "wrapping",
    "completed",
];

/// Paths the fake serves with some method.
fn known(rest: &[&str]) -> bool {
    matches!(
        rest,
        [] | ["Activities" | "TaskChannels" | "Workers"]
            | ["Activities" | "TaskChannels" | "Workers" | "Tasks", _]
            | ["Workers", _, "Channels" | "Reservations"]
            | ["Workers", _, "Channels" | "Reservations", _]
    )
}

/// `true`, `1` and `yes` select the available ones; anything else the
/// unavailable ones, as the spec describes `Available`.
fn wants_available(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

fn list_activities(s: &State, incoming: &Incoming) -> Reply {
    let name = param(&incoming.query, "FriendlyName");
    let available = param(&incoming.query, "Available").map(wants_available);
    let items = (0..s.activities.len())
        .filter(|&a| name.is_none_or(|n| s.activities[a].name == n))
        .filter(|&a| available.is_none_or(|v| s.activities[a].available == v))
        .map(|a| s.activity_json(a))
        .collect();
    page(s, incoming, "activities", items)
}

fn list_workers(s: &State, incoming: &Incoming) -> Reply {
    let query = &incoming.query;
    let name = param(query, "FriendlyName");
    let activity_name = param(query, "ActivityName");
    let activity_sid = param(query, "ActivitySid");
    let available = param(query, "Available").map(wants_available);
    let target = param(query, "TargetWorkersExpression")
        .map(Target::parse)
        .transpose()?;
    let items = (0..s.workers.len())
        .filter(|&w| {
            let worker = &s.workers[w];
            let activity = &s.activities[worker.activity];
            name.is_none_or(|n| worker.friendly_name.eq_ignore_ascii_case(n))
                && activity_name.is_none_or(|n| activity.name == n)
                && activity_sid.is_none_or(|sid| activity.sid == sid)
                && available.is_none_or(|v| activity.available == v)
                && target
                    .as_ref()
                    .is_none_or(|t| t.matches(&worker.attributes))
        })
        .map(|w| s.worker_json(w, false))
        .collect();
    page(s, incoming, "workers", items)
}

/// The one form of TargetWorkersExpression the fake evaluates:
/// `attribute == "value"` (or `'value'`), the attribute a dotted path into
/// the Worker's attributes and compared as a string.
struct Target {
    path: Vec<String>,
    value: String,
}

impl Target {
    fn parse(text: &str) -> Result<Target, ApiError> {
        let invalid = || {
            ApiError::bad(format!(
                "Invalid TargetWorkersExpression: {text} (the fake supports only attribute == \"value\")"
            ))
        };
        let (left, right) = text.split_once("==").ok_or_else(invalid)?;
        let (left, right) = (left.trim(), right.trim());
        let identifier = !left.is_empty()
            && left.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        let quote = right.chars().next().filter(|q| *q == '"' || *q == '\'');
        let value = quote
            .and_then(|q| right.strip_prefix(q)?.strip_suffix(q))
            .filter(|v| !v.contains(['"', '\'']))
            .ok_or_else(invalid)?;
        if !identifier || right.len() < 2 {
            return Err(invalid());
        }
        Ok(Target {
            path: left.split('.').map(str::to_string).collect(),
            value: value.to_string(),
        })
    }

    fn matches(&self, attributes: &str) -> bool {
        let Ok(mut v) = serde_json::from_str::<Value>(attributes) else {
            return false;
        };
        for key in &self.path {
            v = match v.get(key) {
                Some(inner) => inner.clone(),
                None => return false,
            };
        }
        v.as_str() == Some(self.value.as_str())
    }
}

/// Twilio's booleans in forms.
fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad(format!(
            "{name} must be true or false, not {value}"
        ))),
    }
}

/// Every field is checked before any is applied, so a refused update
/// changes nothing.
fn update_worker(s: &mut State, w: usize, form: &[(String, String)]) -> Reply {
    let activity = match param(form, "ActivitySid") {
        Some(sid) => Some(s.activity_by_sid(sid).ok_or_else(|| {
            ApiError::bad(format!(
                "Invalid ActivitySid: {sid} is not an Activity of this Workspace"
            ))
        })?),
        None => None,
    };
    let attributes = param(form, "Attributes");
    if let Some(text) = attributes
        && serde_json::from_str::<serde_json::Map<String, Value>>(text).is_err()
    {
        return Err(ApiError::bad("Attributes must be a JSON object"));
    }
    let name = param(form, "FriendlyName");
    if let Some(name) = name {
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ApiError::bad("FriendlyName must be 1 to 64 characters"));
        }
        if s.worker_by_name(name).is_some_and(|other| other != w) {
            return Err(ApiError::bad(format!("A Worker is already named {name}")));
        }
    }
    let reject = match param(form, "RejectPendingReservations") {
        Some(v) => boolean("RejectPendingReservations", v)?,
        None => false,
    };
    let target = activity.unwrap_or(s.workers[w].activity);
    if reject && s.activities[target].available {
        return Err(ApiError::bad(
            "RejectPendingReservations is only valid when the Worker's new Activity is unavailable",
        ));
    }
    if let Some(name) = name {
        s.rename(w, name);
    }
    if let Some(text) = attributes {
        s.set_attributes(w, text);
    }
    // Rejected before the Activity changes, as the option exists to let a
    // Worker with pending Reservations go unavailable.
    if reject {
        s.reject_pending(w);
    }
    if let Some(a) = activity {
        s.set_activity(w, a);
    }
    ok(s.worker_json(w, true))
}

fn update_channel(
    s: &mut State,
    w: usize,
    c: usize,
    form: &[(String, String)],
) -> Result<(), ApiError> {
    let capacity = match param(form, "Capacity") {
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            ApiError::bad(format!("Capacity must be a non-negative integer, not {v}"))
        })?),
        None => None,
    };
    let available = match param(form, "Available") {
        Some(v) => Some(boolean("Available", v)?),
        None => None,
    };
    s.update_channel(w, c, capacity, available);
    Ok(())
}

/// Pages of `items`, `PageSize` at a time (50 by default): `Page` counts
/// from 0 and `PageToken`, when given, wins; the meta URLs carry the
/// request's filters, on the fake's own base.
fn page(s: &State, incoming: &Incoming, key: &str, items: Vec<Value>) -> Reply {
    let query = &incoming.query;
    let size = match param(query, "PageSize") {
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "PageSize must be an integer from 1 to 1000, not {v}"
                ))
            })?,
        None => 50,
    };
    let page_number =
        match param(query, "Page") {
            Some(v) => Some(v.parse::<usize>().map_err(|_| {
                ApiError::bad(format!("Page must be a non-negative integer, not {v}"))
            })?),
            None => None,
        };
    let token = param(query, "PageToken");
    let offset = match token {
        Some(t) => t
            .strip_prefix("PT")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| ApiError::bad(format!("Invalid PageToken: {t}")))?,
        None => page_number.unwrap_or(0).saturating_mul(size),
    };
    let number = page_number.unwrap_or(offset / size);
    let filters: Vec<&(String, String)> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "PageSize" | "Page" | "PageToken"))
        .collect();
    let url = |number: usize, token: Option<String>| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters {
            q.append_pair(k, v);
        }
        q.append_pair("PageSize", &size.to_string());
        q.append_pair("Page", &number.to_string());
        if let Some(token) = token {
            q.append_pair("PageToken", &token);
        }
        format!("{}{}?{}", s.base, incoming.path, q.finish())
    };
    let end = offset.saturating_add(size).min(items.len());
    let next = (end < items.len()).then(|| url(number + 1, Some(format!("PT{end}"))));
    let previous = (number > 0 && offset > 0).then(|| {
        url(
            number - 1,
            Some(format!("PT{}", offset.saturating_sub(size))),
        )
    });
    let this: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    ok(json!({
        key: this,
        "meta": {
            "first_page_url": url(0, None),
            "key": key,
            "next_page_url": next,
            "page": number,
            "page_size": size,
            "previous_page_url": previous,
            "url": url(number, token.map(str::to_string)),
        },
    }))
}
