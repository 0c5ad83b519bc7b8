//! `hisflow switch`'s server: the simulated switch alone, in a process of
//! its own, so that it outlives a HIS that crashes and serves several HIS
//! nodes. Each client — a HIS node's [`RemoteSim`], a test — opens one
//! WebSocket at `/switch` and speaks the switch's protocol
//! ([`crate::platform::sim::wire`]): operations and controls, each
//! answered by id, and every event of the switch, whichever client caused
//! it. Which node handles an agent is HIS's business, not the switch's.
//!
//! [`RemoteSim`]: crate::platform::sim::remote::RemoteSim

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::listener;
use crate::platform::adapter::{Adapter, Answer, OpOutcome, SwitchError};
use crate::platform::events::EventSink;
use crate::platform::sim::SimSwitch;
use crate::platform::sim::wire::{Ask, Frame, MAX_FRAME_BYTES, PATH, Request};

/// Where `hisflow switch` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7412";

/// How the switch's server behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Connections held at once; one more is closed at once. A switch has
    /// a few HIS nodes for clients.
    pub max_connections: usize,
    /// How long a client has to send its HTTP request head.
    pub header_timeout: Duration,
    /// No frame from a client for this long (HIS pings every 5 s) closes
    /// its connection.
    pub idle_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_connections: 256,
            header_timeout: listener::HEADER_TIMEOUT,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Frames that may wait for one client; one that lets more pile up has
/// lost some, and is closed.
const CLIENT_QUEUE: usize = 4096;

/// How long one write to a client may wait for it to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Operations of one client the switch may hold unanswered at once (those
/// with a latency, or a fault that never answers).
pub const MAX_IN_FLIGHT: usize = 1024;

/// The way to one client's connection: every frame for it, in the order
/// the switch made them.
#[derive(Clone)]
struct Peer {
    tx: mpsc::Sender<String>,
    /// Set when a frame found the queue full: the client no longer knows
    /// all the switch said.
    lost: Arc<AtomicBool>,
}

impl Peer {
    fn send(&self, frame: &Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame.to_text()) {
            self.lost.store(true, Ordering::Release);
        }
    }
}

#[derive(Clone)]
struct App {
    sim: Arc<SimSwitch>,
    peers: Arc<Mutex<HashMap<u64, Peer>>>,
    next: Arc<AtomicU64>,
    idle: Duration,
    going_away: watch::Receiver<bool>,
    /// Held by every connection's task: the server knows when all ended.
    alive: mpsc::Sender<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave it torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `sim` on `listener` until `shutdown` completes; then every
/// client is closed with 1001 (going away).
pub async fn serve(
    listener: TcpListener,
    sim: SimSwitch,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sim = Arc::new(sim);
    let peers: Arc<Mutex<HashMap<u64, Peer>>> = Arc::default();
    // The switch's events reach every client, each in the order the switch
    // made them: the sink runs under the switch's lock.
    let everyone = peers.clone();
    sim.subscribe(EventSink::new(move |e| {
        let frame = Frame::Event(e);
        for peer in lock(&everyone).values() {
            peer.send(&frame);
        }
    }));
    let (going_tx, going_away) = watch::channel(false);
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let app = Router::new().route(PATH, get(upgrade)).with_state(App {
        sim,
        peers,
        next: Arc::default(),
        idle: settings.idle_timeout.max(Duration::from_millis(30)),
        going_away,
        alive,
    });
    let listener = listener::Guarded::new(
        listener,
        settings.max_connections,
        settings.header_timeout,
        None,
    );
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    tokio::select! {
        done = &mut server => {
            return done.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        }
        () = shutdown => {}
    }
    let _ = stop_tx.send(true);
    let _ = going_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), all_gone.recv()).await;
    if tokio::time::timeout(Duration::from_secs(1), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    Ok(())
}

async fn upgrade(
    ws: WebSocketUpgrade,
    headers: axum::http::HeaderMap,
    State(app): State<App>,
) -> axum::response::Response {
    // A browser sends the page's origin with every WebSocket it opens, to
    // any address: without this, any web page an operator visits could
    // log agents out. HIS and tests send none.
    if headers.contains_key(axum::http::header::ORIGIN) {
        tracing::warn!(origin = ?headers.get(axum::http::header::ORIGIN), "a browser page's WebSocket refused");
        return (
            axum::http::StatusCode::FORBIDDEN,
            "the simulated switch answers no web page",
        )
            .into_response();
    }
    // Frames up to twice the limit reach us, so that we can close with a
    // reason; anything larger the WebSocket layer refuses outright.
    ws.max_message_size(MAX_FRAME_BYTES * 2)
        .max_frame_size(MAX_FRAME_BYTES * 2)
        .on_upgrade(move |socket| connection(socket, app))
        .into_response()
}

/// Unregisters a client when its connection ends.
struct Gone<'a>(&'a App, u64);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        lock(&self.0.peers).remove(&self.1);
    }
}

async fn connection(socket: WebSocket, app: App) {
    let _alive = app.alive.clone();
    let id = app.next.fetch_add(1, Ordering::Relaxed);
    let (tx, mut queue) = mpsc::channel(CLIENT_QUEUE);
    let peer = Peer {
        tx,
        lost: Arc::default(),
    };
    lock(&app.peers).insert(id, peer.clone());
    let _gone = Gone(&app, id);
    tracing::info!(client = id, "a client connected");
    let (mut tx, mut rx) = socket.split();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut idle = tokio::time::interval(app.idle / 3);
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    let mut going_away = app.going_away.clone();
    let why = loop {
        tokio::select! {
            msg = rx.next() => {
                heard = tokio::time::Instant::now();
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        tracing::warn!(client = id, "a binary frame ignored: the protocol is JSON text");
                        continue;
                    }
                    Some(Ok(Message::Close(_))) | None => break "it closed the connection".to_string(),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        if e.to_string().contains("too long") {
                            close(&mut tx, close_code::SIZE, format!("frame over the limit of {MAX_FRAME_BYTES} bytes")).await;
                        }
                        break format!("its connection failed: {e}");
                    }
                };
                if text.len() > MAX_FRAME_BYTES {
                    close(&mut tx, close_code::SIZE, format!("frame of {} bytes is over the limit of {MAX_FRAME_BYTES}", text.len())).await;
                    break "it sent a frame over the limit".to_string();
                }
                take(&app.sim, &peer, &mut in_flight, id, &text);
            }
            Some(frame) = queue.recv() => {
                // A client that does not read must not hold its task for
                // ever: its frames pile up and are lost meanwhile anyway.
                let sent = tokio::time::timeout(WRITE_TIMEOUT, tx.send(Message::Text(frame.into()))).await;
                if !matches!(sent, Ok(Ok(()))) {
                    break "it is gone, or does not read".to_string();
                }
                if peer.lost.load(Ordering::Acquire) {
                    close(&mut tx, close_code::POLICY, "the client did not read the switch's frames; some were lost".into()).await;
                    break "it did not read its frames".to_string();
                }
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = idle.tick() => {
                if heard.elapsed() >= app.idle {
                    close(&mut tx, close_code::AWAY, format!("no frame for {} s: the connection is taken for dead", app.idle.as_secs())).await;
                    break "it said nothing".to_string();
                }
            }
            Ok(()) = going_away.changed() => {
                if *going_away.borrow() {
                    close(&mut tx, close_code::AWAY, "the switch is stopping".into()).await;
                    break "the switch is stopping".to_string();
                }
            }
        }
    };
    tracing::info!(client = id, "a client went away: {why}");
}

/// Ends a connection from the switch's side; a client already gone is no
/// error.
async fn close<S>(tx: &mut S, code: u16, reason: String)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

/// Carries out one frame of a client; its answer goes to the client's
/// queue, behind the events the switch made while carrying it out.
fn take(
    sim: &Arc<SimSwitch>,
    peer: &Peer,
    in_flight: &mut tokio::task::JoinSet<()>,
    client: u64,
    text: &str,
) {
    let request = match Request::parse(text) {
        Ok(r) => r,
        Err(m) => {
            match m.id {
                Some(id) => peer.send(&Frame::Reply {
                    id,
                    result: Err(SwitchError::new("InvalidRequest", m.message)),
                }),
                None => tracing::warn!(client, "a frame without an id ignored: {m}"),
            }
            return;
        }
    };
    let id = request.id;
    match request.ask {
        Ask::Call { agent, op } => match sim.call(&agent, &op) {
            Answer::Ready(outcome) => peer.send(&reply(id, outcome)),
            Answer::Pending(_) if in_flight.len() >= MAX_IN_FLIGHT => peer.send(&Frame::Reply {
                id,
                result: Err(SwitchError::new(
                    "Busy",
                    format!(
                        "the switch holds {MAX_IN_FLIGHT} unanswered operations of this client"
                    ),
                )),
            }),
            Answer::Pending(later) => {
                let peer = peer.clone();
                in_flight.spawn(async move { peer.send(&reply(id, later.await)) });
            }
        },
        Ask::Control {
            agent,
            name,
            params,
        } => peer.send(&Frame::Reply {
            id,
            result: sim.run_control(&agent, &name, &params),
        }),
    }
}

/// The reply to an operation: its result as expressions read it.
fn reply(id: u64, outcome: OpOutcome) -> Frame {
    Frame::Reply {
        id,
        result: outcome.map(|r| r.to_json().unwrap_or(Json::Null)),
    }
}
