//! The simulated switch in another process (`hisflow switch`), driven over
//! its WebSocket ([`super::wire`]): the same adapter kind, `sim`, whose
//! switch outlives a HIS that crashes and serves several HIS nodes at once.
//!
//! The link is this adapter's to keep: while the connection is down every
//! call fails at once with `SwitchUnavailable`, HIS hears `link.event.down`,
//! and the adapter connects again by itself, waiting 250 ms, then twice as
//! long each time up to 5 s; once it is back HIS hears `link.event.up`
//! (and the reference platform reads every channel's state again).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::PREFIX;
use super::wire::{Frame, MAX_FRAME_BYTES, Request};
use crate::platform::adapter::{
    Adapter, Answer, ControlReply, Controls, OpResult, Operation, Reply, SwitchError,
};
use crate::platform::events::{EventSink, SwitchEvent};

/// The first wait before connecting again; each failed attempt doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one attempt may take, connection and handshake: a host that
/// drops packets must not hold the next attempt up.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How often the switch is pinged while it says nothing.
const PING_EVERY: Duration = Duration::from_secs(5);
/// No frame for this long, pongs included, and the connection is taken for
/// dead (a switch whose host vanished sends no close).
const SILENCE: Duration = Duration::from_secs(15);
/// Frames waiting to be written to the switch; past it a call fails at
/// once rather than queue without end.
const QUEUE: usize = 1024;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("`{url}` is not the address of a switch: {why} (e.g. ws://127.0.0.1:7412/switch)")]
    BadUrl { url: String, why: String },
    #[error(
        "the simulated switch at {url} cannot be reached: {why}; start it with `hisflow switch`"
    )]
    Unreachable { url: String, why: String },
}

/// The adapter.
pub struct RemoteSim {
    shared: Arc<Shared>,
    driver: tokio::task::AbortHandle,
}

struct Shared {
    url: String,
    link: Mutex<Link>,
    sink: RwLock<EventSink>,
    /// Whether the connection is up, as `reachable` says.
    up: AtomicBool,
    next: AtomicU64,
}

#[derive(Default)]
struct Link {
    /// Where frames for the switch go; `None` while the connection is down.
    out: Option<mpsc::Sender<Message>>,
    /// Requests sent and not yet answered, by id.
    waiting: HashMap<u64, oneshot::Sender<Result<Json, SwitchError>>>,
}

fn unavailable(why: impl Into<String>) -> SwitchError {
    SwitchError::new("SwitchUnavailable", why)
}

/// Checks that `url` is one the adapter can connect to: `ws://host:port/path`.
fn check_url(url: &str) -> Result<(), RemoteError> {
    let bad = |why: &str| RemoteError::BadUrl {
        url: url.to_string(),
        why: why.to_string(),
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(bad(
                "the switch speaks plain WebSocket (ws://); it listens on loopback or a private network",
            ));
        }
        _ => return Err(bad("it must start with ws://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    Ok(())
}

/// One attempt to open the switch's WebSocket.
async fn attempt(url: &str) -> Result<Ws, String> {
    // Frames up to twice the limit are read, so that one over it is
    // refused by the wire rather than by the WebSocket layer.
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES * 2))
        .max_frame_size(Some(MAX_FRAME_BYTES * 2));
    let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(ATTEMPT, connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", ATTEMPT.as_secs())),
    }
}

impl RemoteSim {
    /// Connects to the switch at `url` (`ws://127.0.0.1:7412/switch`),
    /// trying again with backoff for up to `within`: a switch started at the
    /// same time as HIS has that long to listen. From then on the adapter
    /// keeps the link itself.
    pub async fn connect(url: &str, within: Duration) -> Result<RemoteSim, RemoteError> {
        check_url(url)?;
        let deadline = Instant::now() + within;
        let mut delay = FIRST_BACKOFF;
        let mut why = None;
        let ws = loop {
            match tokio::time::timeout_at(deadline, attempt(url)).await {
                Ok(Ok(ws)) => break ws,
                Ok(Err(e)) => why = Some(e),
                // The last attempt, cut short by the deadline, does not
                // hide why the others failed.
                Err(_) => {
                    why.get_or_insert_with(|| {
                        format!("no answer within {} s", within.as_secs_f32())
                    });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(RemoteError::Unreachable {
                    url: url.to_string(),
                    why: why.unwrap_or_default(),
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        };
        let shared = Arc::new(Shared {
            url: url.to_string(),
            link: Mutex::default(),
            sink: RwLock::new(EventSink::none()),
            up: AtomicBool::new(true),
            next: AtomicU64::new(1),
        });
        let out = shared.open();
        let driver = tokio::spawn(drive(shared.clone(), ws, out)).abort_handle();
        Ok(RemoteSim { shared, driver })
    }

    /// The switch's address.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Sends the switch a request; its answer comes with the reply frame of
    /// the same id.
    fn ask(&self, request: impl FnOnce(u64) -> Request) -> Answer<Result<Json, SwitchError>> {
        let id = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut link = self.shared.link();
            let Some(out) = &link.out else {
                return Answer::Ready(Err(unavailable(format!(
                    "the simulated switch at {} cannot be reached",
                    self.shared.url
                ))));
            };
            match out.try_send(Message::Text(request(id).to_text().into())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Answer::Ready(Err(unavailable(
                        "the simulated switch is not reading what HIS sends it",
                    )));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Answer::Ready(Err(unavailable(
                        "the connection to the simulated switch dropped",
                    )));
                }
            }
            link.waiting.insert(id, tx);
        }
        // A caller that stops waiting (its state's timeout) leaves nothing
        // behind.
        let forget = Forget {
            shared: Arc::downgrade(&self.shared),
            id,
        };
        Answer::Pending(Box::pin(async move {
            let _forget = forget;
            rx.await.unwrap_or_else(|_| {
                Err(unavailable(
                    "the connection to the simulated switch dropped",
                ))
            })
        }))
    }
}

impl Drop for RemoteSim {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Removes an unanswered request when its caller stops waiting.
struct Forget {
    shared: Weak<Shared>,
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.link().waiting.remove(&self.id);
        }
    }
}

/// The connection's life: it serves until it drops, then the adapter tries
/// again until the switch is back, for as long as the adapter lives.
async fn drive(shared: Arc<Shared>, mut ws: Ws, mut out: mpsc::Receiver<Message>) {
    loop {
        let why = shared.serve(ws, &mut out).await;
        shared.down(&why);
        ws = shared.reconnect().await;
        out = shared.open();
        shared.back();
    }
}

impl Shared {
    fn link(&self) -> MutexGuard<'_, Link> {
        // Plain data: a panic elsewhere cannot leave it torn.
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, e: SwitchEvent) {
        let sink = self.sink.read().unwrap_or_else(|e| e.into_inner()).clone();
        sink.deliver(e);
    }

    /// Opens the way for calls over a new connection.
    fn open(&self) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.link().out = Some(tx);
        rx
    }

    /// Reads and writes one connection until it drops; why it did. Reading
    /// never waits for a write: a switch blocked sending its events while
    /// HIS is blocked sending its calls would otherwise wait for ever.
    async fn serve(&self, ws: Ws, out: &mut mpsc::Receiver<Message>) -> String {
        let (mut tx, mut rx) = ws.split();
        let write = async {
            let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let msg = tokio::select! {
                    Some(msg) = out.recv() => msg,
                    // The switch answers pings: its silence is then news.
                    _ = ping.tick() => Message::Ping(Default::default()),
                };
                if let Err(e) = tx.send(msg).await {
                    return format!("the connection to the switch failed: {e}");
                }
            }
        };
        let read = async {
            loop {
                let Ok(frame) = tokio::time::timeout(SILENCE, rx.next()).await else {
                    return format!("the switch said nothing for {} s", SILENCE.as_secs());
                };
                match frame {
                    Some(Ok(Message::Text(text))) => self.heard(&text),
                    Some(Ok(Message::Close(Some(f)))) if !f.reason.is_empty() => {
                        return format!("the switch closed the connection: {}", f.reason);
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        return "the switch closed the connection".into();
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return format!("the connection to the switch failed: {e}"),
                }
            }
        };
        tokio::select! {
            why = write => why,
            why = read => why,
        }
    }

    /// A frame of the switch: an answer to its caller, an event to HIS.
    fn heard(&self, text: &str) {
        if text.len() > MAX_FRAME_BYTES {
            tracing::warn!(
                bytes = text.len(),
                "a frame of the simulated switch over the limit was dropped"
            );
            return;
        }
        match Frame::parse(text) {
            Ok(Frame::Event(e)) => self.deliver(e),
            Ok(Frame::Reply { id, result }) => self.answer(id, result),
            Err(m) => {
                tracing::warn!("a frame of the simulated switch could not be read: {m}");
                // Its caller is told rather than left to its timeout.
                if let Some(id) = m.id {
                    self.answer(
                        id,
                        Err(SwitchError::new(
                            "SwitchFailure",
                            format!("the switch's answer could not be read: {m}"),
                        )),
                    );
                }
            }
        }
    }

    fn answer(&self, id: u64, result: Result<Json, SwitchError>) {
        // Nobody waits for an answer whose caller gave up.
        if let Some(tx) = self.link().waiting.remove(&id) {
            let _ = tx.send(result);
        }
    }

    /// The connection dropped: calls fail from now on, those unanswered
    /// too, and HIS hears it.
    fn down(&self, why: &str) {
        let waiting = {
            let mut link = self.link();
            link.out = None;
            std::mem::take(&mut link.waiting)
        };
        for (_, tx) in waiting {
            let _ = tx.send(Err(unavailable(format!(
                "the simulated switch could not answer: {why}"
            ))));
        }
        if self.up.swap(false, Ordering::SeqCst) {
            tracing::warn!(url = %self.url, reason = why, "the simulated switch cannot be reached");
            self.deliver(SwitchEvent::new(
                None,
                "link.event.down",
                json!({ "reason": why }),
            ));
        }
    }

    /// The connection is back.
    fn back(&self) {
        if !self.up.swap(true, Ordering::SeqCst) {
            tracing::info!(url = %self.url, "the simulated switch answers again");
            self.deliver(SwitchEvent::new(None, "link.event.up", json!({})));
        }
    }

    /// Tries to connect until it succeeds, waiting longer each time.
    async fn reconnect(&self) -> Ws {
        let mut delay = FIRST_BACKOFF;
        loop {
            tokio::time::sleep(delay).await;
            match attempt(&self.url).await {
                Ok(ws) => return ws,
                Err(why) => {
                    tracing::debug!(url = %self.url, "the simulated switch is still away: {why}")
                }
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }
}

/// An operation's result as the switch's reply carries it.
fn result_of(v: Result<Json, SwitchError>) -> Result<OpResult, SwitchError> {
    serde_json::from_value(v?).map_err(|e| {
        SwitchError::new(
            "SwitchFailure",
            format!("the switch's answer is not an operation's result: {e}"),
        )
    })
}

impl Adapter for RemoteSim {
    fn kind(&self) -> &str {
        "sim"
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        self.ask(|id| Request::call(id, agent, op)).map(result_of)
    }

    fn subscribe(&self, events: EventSink) {
        *self.shared.sink.write().unwrap_or_else(|e| e.into_inner()) = events;
    }

    fn controls(&self) -> Option<&dyn Controls> {
        Some(self)
    }

    fn reachable(&self) -> Option<bool> {
        Some(self.shared.up.load(Ordering::SeqCst))
    }
}

impl Controls for RemoteSim {
    fn prefix(&self) -> &str {
        PREFIX
    }

    fn control(&self, agent: &str, name: &str, params: &Json) -> ControlReply {
        self.ask(|id| Request::control(id, agent, name, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_websocket_address_is_taken() {
        assert!(check_url("ws://127.0.0.1:7412/switch").is_ok());
        for (url, said) in [
            ("http://127.0.0.1:7412/switch", "ws://"),
            ("wss://127.0.0.1:7412/switch", "plain WebSocket"),
            ("127.0.0.1:7412", "ws://"),
            ("ws://", ""),
            ("not a url", ""),
        ] {
            let e = check_url(url).unwrap_err().to_string();
            assert!(e.contains(url) && e.contains(said), "{url}: {e}");
        }
    }

    #[test]
    fn a_switch_that_is_not_there_is_named_when_it_cannot_be_reached() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // A port nothing listens on: bound, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}/switch");
        let e = rt
            .block_on(RemoteSim::connect(&url, Duration::from_millis(600)))
            .err()
            .expect("nothing listens");
        let e = e.to_string();
        assert!(e.contains(&url) && e.contains("hisflow switch"), "{e}");
    }
}
