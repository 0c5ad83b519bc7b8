//! A contract fake of Twilio TaskRouter v1: a real HTTP server on loopback
//! serving one Workspace's REST API, and sending its signed Event Callbacks.
//!
//! Paths, parameters and resource properties follow Twilio's OpenAPI
//! description of TaskRouter v1: `spec/json/twilio_taskrouter_v1.json` in
//! twilio/twilio-oai at commit f5ca84676bc377fc83d2f6b7e707293c0c6fab70
//! (<https://github.com/twilio/twilio-oai/blob/f5ca84676bc377fc83d2f6b7e707293c0c6fab70/spec/json/twilio_taskrouter_v1.json>).
//! The spec has no error responses; errors take the body of "Twilio API
//! responses" (<https://www.twilio.com/docs/usage/twilios-response>), the
//! events the parameters of the Event reference
//! (<https://www.twilio.com/docs/taskrouter/api/event/reference>), and the
//! `X-Twilio-Signature` the algorithm of
//! <https://www.twilio.com/docs/usage/security>, implemented here
//! independently of the adapter's so that one cannot hide a mistake of the
//! other.
//!
//! Where the documents are silent the fake chooses, and says so: bad
//! parameters are 400 with code 20001, a known path with another method is
//! 405 with code 20004, page tokens are `PT` and an offset.
//!
//! The server and the event sender run on a runtime of their own, on their
//! own thread, so the fake answers whatever runtime a test drives it from
//! (a paused clock included) and stops when the [`Fake`] is dropped.

mod events;
mod model;
mod rest;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};

use model::{Outgoing, State};

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000f4ce00";
pub const AUTH_TOKEN: &str = "3f1e5a9c0b7d4e2a8c6f0d1b2e3a4c5d";
pub const API_KEY: &str = "SK00000000000000000000000000f4ce00";
pub const API_SECRET: &str = "hisflowTestApiSecret0123456789ab";
pub const WORKSPACE_SID: &str = "WS00000000000000000000000000f4ce00";

/// An error the next `times` requests matching `method` and a path ending
/// with `path_ends_with` answer, before they reach the Workspace.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub method: String,
    pub path_ends_with: String,
    pub status: u16,
    pub code: u32,
    pub message: String,
    pub times: usize,
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    /// The HTTP Basic user name, when there was one.
    pub user: Option<String>,
    /// None while [`Fake::hang`] kept the request unanswered.
    pub status: Option<u16>,
    pub at: Instant,
}

/// An Event Callback the fake sent.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub event_type: String,
    pub url: String,
    pub params: Vec<(String, String)>,
    pub signature: String,
    /// None when the receiver could not be reached or did not answer in 15 s.
    pub status: Option<u16>,
}

impl Delivered {
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }
}

/// A Worker as the fake holds it, for tests to assert on.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub sid: String,
    pub friendly_name: String,
    pub attributes: serde_json::Value,
    pub activity_sid: String,
    pub activity_name: String,
    pub available: bool,
    /// Task channel unique name → the worker channel's `available`.
    pub channels: BTreeMap<String, bool>,
    /// Task channel unique name → the worker channel's configured capacity.
    pub capacities: BTreeMap<String, u32>,
    /// (reservation sid, task sid, task channel unique name, reservation status).
    pub reservations: Vec<(String, String, String, String)>,
}

/// The first value of `name` among form or query pairs.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `YYYY-MM-DDThh:mm:ssZ` of a Unix time, as TaskRouter writes its dates.
pub fn iso8601(unix_secs: u64) -> String {
    // Howard Hinnant's days-to-civil, for the proleptic Gregorian calendar.
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = unix_secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// What the server, the event sender and the test share.
struct Shared {
    state: Mutex<State>,
    queue: mpsc::UnboundedSender<Outgoing>,
    /// Events queued and not yet delivered.
    pending: watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not turn every
        // later request into a second panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, then queues the events it emitted, still under
    /// the lock, so that events leave in the order their changes were made;
    /// and after `f` has produced its answer, as TaskRouter sends them only
    /// once a change is done.
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut s = self.lock();
        let r = f(&mut s);
        let out = std::mem::take(&mut s.outbox);
        if !out.is_empty() {
            self.pending.send_modify(|n| *n += out.len());
            for o in out {
                if self.queue.send(o).is_err() {
                    self.pending.send_modify(|n| *n -= 1);
                }
            }
        }
        r
    }
}

/// A running fake. Dropping it stops the server and the event sender, and
/// returns once they are gone: a test that drops it to take the service
/// away must not have its next request served by a server still stopping.
pub struct Fake {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let base_url = format!("http://{}", listener.local_addr().expect("its address"));
        let (queue, queued) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&base_url)),
            queue,
            pending: watch::channel(0).0,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name("taskrouter-fake".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the fake's runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    tokio::spawn(events::deliver(server.clone(), queued));
                    let app = axum::Router::new()
                        .fallback(rest::handle)
                        .with_state(server);
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stopped => {}
                    }
                });
                // Requests kept hanging must not keep the thread alive.
                rt.shutdown_background();
            })
            .expect("the fake's thread");
        Fake {
            base_url,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A Worker in the default Activity (Offline), with an available worker
    /// channel of capacity 1 on every task channel. Sends no event, as the
    /// Worker exists before the test begins.
    pub fn add_worker(&self, friendly_name: &str, attributes: serde_json::Value) -> String {
        self.shared
            .with(|s| s.add_worker(friendly_name, &attributes.to_string()))
    }

    pub fn set_callback(&self, url: &str) {
        self.shared.with(|s| s.callback = Some(url.to_string()));
    }

    /// The sid of the default Activity named `name` (Offline, Available,
    /// Unavailable, Break).
    pub fn activity_sid(&self, name: &str) -> String {
        self.shared.with(|s| {
            let a = s
                .activity_by_name(name)
                .unwrap_or_else(|| panic!("no Activity {name}"));
            s.activities[a].sid.clone()
        })
    }

    pub fn worker(&self, sid: &str) -> WorkerView {
        self.shared.with(|s| s.view(s.worker_index(sid)))
    }

    /// A pending Reservation for the Worker of a new Task on `channel`
    /// (reserved).
    pub fn offer(&self, worker_sid: &str, channel: &str) -> (String, String) {
        self.shared.with(|s| {
            let w = s.worker_index(worker_sid);
            let c = s
                .channel_by_name(channel)
                .unwrap_or_else(|| panic!("no task channel {channel}"));
            s.offer(w, c)
        })
    }

    pub fn accept(&self, reservation_sid: &str) {
        self.shared
            .with(|s| s.accept(s.reservation_index(reservation_sid)));
    }

    pub fn wrapup(&self, reservation_sid: &str) {
        self.shared
            .with(|s| s.wrapup(s.reservation_index(reservation_sid)));
    }

    pub fn complete(&self, reservation_sid: &str) {
        self.shared
            .with(|s| s.complete(s.reservation_index(reservation_sid)));
    }

    pub fn cancel_task(&self, task_sid: &str) {
        self.shared.with(|s| s.cancel_task(s.task_index(task_sid)));
    }

    /// The Reservation times out; as in TaskRouter, the Worker moves to the
    /// Workspace's timeout Activity (Offline).
    pub fn time_out(&self, reservation_sid: &str) {
        self.shared
            .with(|s| s.time_out(s.reservation_index(reservation_sid)));
    }

    /// Changes the Worker's Activity outside the API, as a supervisor would.
    pub fn set_activity(&self, worker_sid: &str, activity_name: &str) {
        self.shared.with(|s| {
            let w = s.worker_index(worker_sid);
            let a = s
                .activity_by_name(activity_name)
                .unwrap_or_else(|| panic!("no Activity {activity_name}"));
            s.set_activity(w, a);
        });
    }

    pub fn refuse(&self, rule: Refusal) {
        self.shared.with(|s| s.refusals.push(rule));
    }

    pub fn throttle(&self, times: usize, retry_after: Option<u64>) {
        self.shared.with(|s| {
            s.throttle = times;
            s.retry_after = retry_after;
        });
    }

    pub fn hang(&self, on: bool) {
        self.shared.with(|s| s.hang = on);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.with(|s| s.requests.clone())
    }

    pub fn deliveries(&self) -> Vec<Delivered> {
        self.shared.with(|s| s.deliveries.clone())
    }

    /// Waits until every event queued so far has been delivered (or failed).
    pub async fn settled(&self) {
        let mut pending = self.shared.pending.subscribe();
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Posts `params` as a form to `url`, with `signature` as
    /// `X-Twilio-Signature` when given; returns the receiver's status.
    pub async fn send_event_raw(
        &self,
        url: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> u16 {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let mut request = client.post(url).form(params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        match request.send().await {
            Ok(r) => r.status().as_u16(),
            Err(e) => panic!("{url} could not be reached: {e}"),
        }
    }

    /// `X-Twilio-Signature` of a form POST of `params` to `url`.
    pub fn sign(url: &str, params: &[(String, String)], token: &str) -> String {
        events::sign(url, params, token)
    }
}
