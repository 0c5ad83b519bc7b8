//! TaskRouter's REST API, as much of it as the adapter uses: the Workspace,
//! its Activities and task channels, Workers, their Worker Channels and
//! Reservations, and Tasks. Shapes follow Twilio's OpenAPI description of
//! TaskRouter v1 (`spec/json/twilio_taskrouter_v1.json` in the public
//! repository twilio/twilio-oai). Requests TaskRouter throttles (429) or
//! fails (5xx), and requests that could not be sent, are tried again with
//! a growing delay, or the one `Retry-After` asks for.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::config::{Config, ConfigError, Keys};

#[derive(Debug, Clone, Deserialize)]
pub struct Workspace {
    pub sid: String,
    pub friendly_name: String,
    #[serde(default)]
    pub event_callback_url: Option<String>,
    #[serde(default)]
    pub events_filter: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    pub sid: String,
    pub friendly_name: String,
    /// Whether Workers in it may be offered work.
    #[serde(default)]
    pub available: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Worker {
    pub sid: String,
    pub friendly_name: String,
    #[serde(default)]
    pub activity_sid: Option<String>,
    #[serde(default)]
    pub activity_name: Option<String>,
    #[serde(default)]
    pub available: bool,
    /// JSON text.
    #[serde(default)]
    pub attributes: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkerChannel {
    pub sid: String,
    pub task_channel_unique_name: String,
    /// Whether TaskRouter offers the Worker tasks of this channel.
    #[serde(default)]
    pub available: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    pub sid: String,
    pub reservation_status: String,
    pub task_sid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub sid: String,
    #[serde(default)]
    pub assignment_status: Option<String>,
    #[serde(default)]
    pub task_channel_unique_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskChannel {
    pub sid: String,
    pub unique_name: String,
}

/// A list page: its items under the resource's key, and where the next is.
#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(default)]
    next_page_url: Option<String>,
}

/// Twilio's error body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
}

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// TaskRouter answered with an error status.
    #[error("TaskRouter refused ({status}{}): {}", .error.code.map(|c| format!(", error {c}")).unwrap_or_default(), .error.message.as_deref().unwrap_or("no message"))]
    Refused { status: u16, error: ApiError },
    /// No answer: connection refused, reset, or the request timed out.
    #[error("TaskRouter could not be reached at {base}: {reason}")]
    Unreachable { base: String, reason: String },
    /// An answer hisflow cannot read.
    #[error("TaskRouter answered {what} that hisflow cannot read: {reason}")]
    Unreadable { what: String, reason: String },
}

impl Failure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The REST client of one Workspace.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    workspace: String,
    keys: Keys,
    attempts: u32,
    /// The first retry's delay; each next one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Rest {
    pub fn new(config: &Config, keys: Keys) -> Result<Rest, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .connect_timeout(config.request_timeout().min(Duration::from_secs(5)))
            .user_agent(concat!("hisflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError(format!("cannot set up the HTTPS client: {e}")))?;
        Ok(Rest {
            http,
            base: config.base_url.trim_end_matches('/').to_string(),
            workspace: config.workspace_sid.clone(),
            keys,
            attempts: config.attempts(),
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/Workspaces/{}{path}", self.base, self.workspace)
    }

    /// Sends a request, trying again on 429, 5xx and transport errors.
    async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<Body, Failure> {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url)
                .basic_auth(&self.keys.user, Some(self.keys.password.expose()))
                .header("Accept", "application/json");
            if !query.is_empty() {
                req = req.query(query);
            }
            if !form.is_empty() {
                req = req.form(form);
            }
            let outcome = req.send().await;
            let (again, wait, failure) = match outcome {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = resp.bytes().await.map_err(|e| Failure::Unreachable {
                        base: self.base.clone(),
                        reason: e.to_string(),
                    });
                    match body {
                        Ok(body) if status.is_success() => return Ok(Body(body.to_vec())),
                        Ok(body) => {
                            let error: ApiError = serde_json::from_slice(&body).unwrap_or_default();
                            let retry =
                                status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                            (
                                retry,
                                retry_after,
                                Failure::Refused {
                                    status: status.as_u16(),
                                    error,
                                },
                            )
                        }
                        Err(f) => (true, None, f),
                    }
                }
                Err(e) => (
                    true,
                    None,
                    Failure::Unreachable {
                        base: self.base.clone(),
                        reason: transport_reason(&e),
                    },
                ),
            };
            if !again || attempt >= self.attempts {
                return Err(failure);
            }
            let pause = wait.unwrap_or(delay).min(self.max_delay.max(delay));
            tracing::debug!(%url, attempt, ?pause, %failure, "TaskRouter: trying again");
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(self.max_delay);
            attempt += 1;
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, Failure> {
        let url = self.url(path);
        let body = self.send(Method::GET, &url, query, &[]).await?;
        body.json(path)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<T, Failure> {
        let url = self.url(path);
        let body = self.send(Method::POST, &url, &[], form).await?;
        body.json(path)
    }

    /// Every item of a list, following `next_page_url`.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        key: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, Failure> {
        let mut query: Vec<(&str, &str)> = query.to_vec();
        query.push(("PageSize", "200"));
        let mut url = self.url(path);
        let mut out = Vec::new();
        // A Workspace has few of what the adapter lists; a server that
        // pages forever must not hold a request forever.
        for page in 0..50 {
            let body = if page == 0 {
                self.send(Method::GET, &url, &query, &[]).await?
            } else {
                self.send(Method::GET, &url, &[], &[]).await?
            };
            let mut value: serde_json::Value = body.json(path)?;
            let items = value
                .get_mut(key)
                .map(serde_json::Value::take)
                .ok_or_else(|| Failure::Unreadable {
                    what: path.to_string(),
                    reason: format!("no `{key}` list"),
                })?;
            let items: Vec<T> = serde_json::from_value(items).map_err(|e| Failure::Unreadable {
                what: path.to_string(),
                reason: e.to_string(),
            })?;
            out.extend(items);
            let meta: Option<Meta> = value
                .get("meta")
                .and_then(|m| serde_json::from_value(m.clone()).ok());
            match meta.and_then(|m| m.next_page_url) {
                Some(next) if !next.is_empty() => url = self.follow(&next)?,
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// A next page's URL, kept on the configured host: TaskRouter names
    /// its own, which a proxy may not be; and the credentials go nowhere
    /// else.
    fn follow(&self, next: &str) -> Result<String, Failure> {
        match next.find("/v1/") {
            Some(i) => Ok(format!("{}{}", self.base, &next[i..])),
            None => Err(Failure::Unreadable {
                what: "a list".into(),
                reason: format!("its next page `{next}` is not one of TaskRouter's"),
            }),
        }
    }

    pub async fn workspace(&self) -> Result<Workspace, Failure> {
        self.get("", &[]).await
    }

    pub async fn activities(&self) -> Result<Vec<Activity>, Failure> {
        self.list("/Activities", "activities", &[]).await
    }

    pub async fn task_channels(&self) -> Result<Vec<TaskChannel>, Failure> {
        self.list("/TaskChannels", "channels", &[]).await
    }

    /// Workers whose friendly name is `name`.
    pub async fn workers_named(&self, name: &str) -> Result<Vec<Worker>, Failure> {
        self.list("/Workers", "workers", &[("FriendlyName", name)])
            .await
    }

    /// Workers matching a TaskRouter expression.
    pub async fn workers_where(&self, expression: &str) -> Result<Vec<Worker>, Failure> {
        self.list(
            "/Workers",
            "workers",
            &[("TargetWorkersExpression", expression)],
        )
        .await
    }

    pub async fn worker(&self, sid: &str) -> Result<Worker, Failure> {
        self.get(&format!("/Workers/{sid}"), &[]).await
    }

    /// Moves a Worker to an Activity.
    pub async fn set_activity(
        &self,
        worker: &str,
        activity: &str,
        reject_pending: bool,
    ) -> Result<Worker, Failure> {
        let mut form = vec![("ActivitySid", activity)];
        if reject_pending {
            form.push(("RejectPendingReservations", "true"));
        }
        self.post(&format!("/Workers/{worker}"), &form).await
    }

    pub async fn worker_channels(&self, worker: &str) -> Result<Vec<WorkerChannel>, Failure> {
        self.list(&format!("/Workers/{worker}/Channels"), "channels", &[])
            .await
    }

    /// One Worker Channel, by its task channel's unique name.
    pub async fn worker_channel(
        &self,
        worker: &str,
        channel: &str,
    ) -> Result<WorkerChannel, Failure> {
        self.get(&format!("/Workers/{worker}/Channels/{channel}"), &[])
            .await
    }

    pub async fn set_channel_available(
        &self,
        worker: &str,
        channel: &str,
        available: bool,
    ) -> Result<WorkerChannel, Failure> {
        self.post(
            &format!("/Workers/{worker}/Channels/{channel}"),
            &[("Available", if available { "true" } else { "false" })],
        )
        .await
    }

    pub async fn reservations(
        &self,
        worker: &str,
        status: &str,
    ) -> Result<Vec<Reservation>, Failure> {
        self.list(
            &format!("/Workers/{worker}/Reservations"),
            "reservations",
            &[("ReservationStatus", status)],
        )
        .await
    }

    pub async fn task(&self, sid: &str) -> Result<Task, Failure> {
        self.get(&format!("/Tasks/{sid}"), &[]).await
    }
}

/// A transport error in a few words, without the URL's query.
fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "no answer in time"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the connection failed"
    };
    // The source chain says why (refused, reset, certificate) without the
    // URL, which reqwest's own message repeats.
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({cause})")
    }
}

/// A response body, decoded on demand.
struct Body(Vec<u8>);

impl Body {
    fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, Failure> {
        serde_json::from_slice(&self.0).map_err(|e| Failure::Unreadable {
            what: if what.is_empty() {
                "the Workspace".into()
            } else {
                what.to_string()
            },
            reason: e.to_string(),
        })
    }
}
