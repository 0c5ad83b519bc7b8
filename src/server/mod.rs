//! The WebSocket transport: one connection per MediaBar, JSON text frames,
//! the MediaBar page at `/`.

pub mod config;
pub mod listener;
pub mod protocol;
pub mod switch;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::his::metrics::Metrics;
use crate::his::{Closing, His, Messages, Out};
use crate::platform::{Inbound, InboundRequest};

/// The largest text frame a client may send; larger ones close the connection.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How long requests under way may take to finish once HIS is told to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The close code of a connection whose session another connection took
/// over (a resume, a new login of the agent); in the range RFC 6455 leaves
/// to applications.
pub const TAKEN_OVER: u16 = 4001;

/// How the transport behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_frame: usize,
    pub shutdown_grace: Duration,
    /// Origins (`https://crm.example.com`) whose pages may open the
    /// WebSocket besides HIS's own; a browser's upgrade from any other is
    /// refused with 403, so that a page on another site cannot act as the
    /// agent.
    pub allowed_origins: Vec<String>,
    /// Connections held at once; one more is closed at once.
    pub max_connections: usize,
    /// How long a client has to send its HTTP request head.
    pub header_timeout: Duration,
    /// No frame from a client for this long (it answers pings, sent at a
    /// third of it) closes its connection with 1001; the session outlives
    /// it, as for any dropped connection.
    pub idle_timeout: Duration,
    /// Serve HTTPS and WSS: the TLS side of the listener
    /// ([`listener::tls_acceptor`]).
    pub tls: Option<listener::Tls>,
    /// The switch's webhook endpoint (TaskRouter's Event Callbacks), served
    /// at its own path beside the MediaBar's.
    pub inbound: Option<Arc<dyn Inbound>>,
    /// What `/metrics` reports; the adapter HIS drives may count into it
    /// too ([`crate::his::metrics::Metered`]).
    pub metrics: Arc<Metrics>,
}

/// [`Settings::idle_timeout`] by default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_frame: MAX_FRAME_BYTES,
            shutdown_grace: SHUTDOWN_GRACE,
            allowed_origins: Vec::new(),
            max_connections: listener::MAX_CONNECTIONS,
            header_timeout: listener::HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            tls: None,
            inbound: None,
            metrics: Metrics::new(),
        }
    }
}

#[derive(Clone)]
struct App {
    his: Arc<His>,
    max_frame: usize,
    /// No frame for this long closes a connection (pings are sent at a
    /// third of it).
    idle: Duration,
    allowed_origins: Arc<[String]>,
    /// Becomes true when every connection is to close: HIS is stopping.
    going_away: watch::Receiver<bool>,
    /// Held by every connection's task: the server knows when all ended.
    alive: mpsc::Sender<()>,
    metrics: Arc<Metrics>,
    /// Open connections, for `/metrics`.
    connections: Arc<AtomicUsize>,
}

/// Serves HIS on `listener` until `shutdown` completes. Then it accepts no
/// connection and HIS no request; the requests under way get
/// `shutdown_grace` to finish and send their responses; then every
/// connection is closed with 1001 (going away).
pub async fn serve(
    listener: TcpListener,
    his: Arc<His>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (going_tx, going_away) = watch::channel(false);
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let mut app = Router::new()
        .route("/", get(index))
        .route("/ws", get(upgrade))
        .route("/mediabar.json", get(page_options))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if let Some(inbound) = settings.inbound.clone() {
        app = app.route(
            inbound.path(),
            axum::routing::post({
                let inbound = inbound.clone();
                move |req: axum::extract::Request| webhook(inbound, req)
            }),
        );
    }
    let app = app.with_state(App {
        his: his.clone(),
        max_frame: settings.max_frame,
        idle: settings.idle_timeout.max(Duration::from_millis(30)),
        allowed_origins: settings.allowed_origins.clone().into(),
        going_away,
        alive,
        metrics: settings.metrics.clone(),
        connections: Arc::new(AtomicUsize::new(0)),
    });
    let listener = listener::Guarded::new(
        listener,
        settings.max_connections,
        settings.header_timeout,
        settings.tls.clone(),
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
        // The server stopped by itself: an error of its listener.
        done = &mut server => {
            return done.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        }
        () = shutdown => {}
    }
    his.shut();
    // No new connection from now on. The server's own wait for its HTTP
    // connections is not ours: a client that never finishes its request
    // headers must not hold HIS up.
    let _ = stop_tx.send(true);
    let left = his.drain(settings.shutdown_grace).await;
    if left > 0 {
        tracing::warn!(
            requests = left,
            "requests still under way after the shutdown grace are abandoned"
        );
    }
    let _ = going_tx.send(true);
    // Each connection sends what it has, then its close frame.
    let _ = tokio::time::timeout(Duration::from_secs(2), all_gone.recv()).await;
    if tokio::time::timeout(Duration::from_secs(1), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    Ok(())
}

/// How long a webhook's body may take to arrive.
const WEBHOOK_BODY_TIME: Duration = Duration::from_secs(10);

/// A request of the switch: its body read up to the endpoint's limit, then
/// handed to the adapter, which checks and answers it.
async fn webhook(
    inbound: Arc<dyn Inbound>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    // Unauthenticated until the adapter checked it: a body sent slowly
    // must not hold a connection for long.
    let read = tokio::time::timeout(
        WEBHOOK_BODY_TIME,
        axum::body::to_bytes(body, inbound.max_body()),
    );
    let body = match read.await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return (axum::http::StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
        }
        Err(_) => {
            return (axum::http::StatusCode::REQUEST_TIMEOUT, "body too slow").into_response();
        }
    };
    let reply = inbound.receive(InboundRequest {
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    });
    (reply.status, reply.body).into_response()
}

/// Alive: the process serves HTTP.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready for agents: the switch answers, as far as its adapter can tell.
/// (A stopping HIS takes no new connection at all.)
async fn readyz(State(app): State<App>) -> axum::response::Response {
    if app.his.switch_reachable() == Some(false) {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the switch cannot be reached\n",
        )
            .into_response();
    }
    if !app.his.store_healthy() {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the session store cannot be written\n",
        )
            .into_response();
    }
    "ready\n".into_response()
}

async fn metrics(State(app): State<App>) -> axum::response::Response {
    let text = app.metrics.render(
        app.his.session_count(),
        app.connections.load(Ordering::Relaxed),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

/// What the MediaBar page shows: the fields a login must carry (`auth`:
/// `none`, `password` or `jwt`, and the token claim naming the agent),
/// whether the simulator's panel works, and what the platform lets an agent
/// do: the media whose channels it can (de)activate
/// (`deactivatable_media`), and whether Not Ready may go without a reason
/// (`not_ready_reason`: `optional` or `if_configured`).
async fn page_options(State(app): State<App>) -> axum::Json<serde_json::Value> {
    let settings = &app.his.platform().settings;
    let mut options = serde_json::json!({
        "auth": app.his.auth_kind(),
        "simulator_controls": app.his.simulator_controls(),
        "deactivatable_media": settings
            .get("deactivatable_media")
            .filter(|m| m.is_array())
            .cloned()
            .unwrap_or_else(|| serde_json::json!([])),
        "not_ready_reason": settings
            .get("not_ready_reason")
            .and_then(|r| r.as_str())
            .unwrap_or("optional"),
    });
    if let Some(claim) = app.his.agent_claim() {
        options["agent_claim"] = claim.into();
    }
    axum::Json(options)
}

/// Whether a browser page of `origin` may open the WebSocket: HIS's own
/// (the host the request was sent to), or one the configuration allows. A
/// client that sends no `Origin` is no browser page, and is let in.
fn origin_allowed(headers: &axum::http::HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

/// Whether the request was sent to this machine by a name of its own. A
/// page whose name an attacker rebinds to 127.0.0.1 sends its own name:
/// where agents are not authenticated, that is the only thing that keeps
/// it from acting as any agent.
fn sent_to_loopback(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn upgrade(
    ws: WebSocketUpgrade,
    headers: axum::http::HeaderMap,
    State(app): State<App>,
) -> axum::response::Response {
    if app.his.auth_kind() == "none" && !sent_to_loopback(&headers) {
        tracing::warn!(host = ?headers.get(axum::http::header::HOST), "WebSocket upgrade for another host name refused: agents are not authenticated");
        return (
            axum::http::StatusCode::FORBIDDEN,
            "without authentication, HIS answers only to localhost",
        )
            .into_response();
    }
    if !origin_allowed(&headers, &app.allowed_origins) {
        tracing::warn!(origin = ?headers.get(axum::http::header::ORIGIN), "WebSocket upgrade from a page of another origin refused");
        return (
            axum::http::StatusCode::FORBIDDEN,
            "this page's origin may not open HIS's WebSocket",
        )
            .into_response();
    }
    // Frames up to twice the limit reach us, so that we can close with a
    // reason; anything larger the WebSocket layer refuses outright.
    // Frames are small: 4 KiB buffers instead of the default 128 KiB keep a
    // connected agent's cost in the kilobytes (benches/load.rs measures it).
    ws.max_message_size(app.max_frame * 2)
        .max_frame_size(app.max_frame * 2)
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .on_upgrade(move |socket| connection(socket, app))
        .into_response()
}

/// How many queued messages go out in one write.
const BATCH: usize = 64;

/// The requests of one connection still to be answered, for the metrics:
/// the name they count under and when their frame came.
struct Asked<'a> {
    metrics: &'a Metrics,
    waiting: HashMap<String, (String, Instant)>,
}

impl Asked<'_> {
    fn answered(&mut self, out: &Out) {
        let Out::Response { id: Some(id), body } = out else {
            return;
        };
        let Some((name, at)) = self.waiting.remove(id) else {
            return;
        };
        let outcome = if body["ok"] == true {
            "ok"
        } else {
            body["error"]["code"].as_str().unwrap_or("error")
        };
        self.metrics.request(&name, outcome, at.elapsed());
    }
}

/// Counts a connection while it lasts.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(socket: WebSocket, mut app: App) {
    let _alive = app.alive.clone();
    app.connections.fetch_add(1, Ordering::Relaxed);
    let _open = Open(app.connections.clone());
    let metrics = app.metrics.clone();
    let mut asked = Asked {
        metrics: &metrics,
        waiting: HashMap::new(),
    };
    let (mut tx, mut rx) = socket.split();
    let (mut conn, mut outbox) = app.his.connect();
    if *app.going_away.borrow() {
        let _ = tx.send(encode(Out::Close(Closing::GoingAway))).await;
        return;
    }
    // A connection whose other end is gone (a laptop lid shut, a NAT that
    // forgot it) is found by pings: no frame at all for `idle` closes it.
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + app.idle / 3, app.idle / 3);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            // A client that sends faster than it reads waits: its outbox
            // keeps room for what its next request sends.
            msg = rx.next(), if conn.has_room() => {
                let msg = match msg {
                    Some(Ok(msg)) => msg,
                    // A frame the WebSocket layer would not read (over twice
                    // the limit; the listener reads and drops the rest of it,
                    // so that this close frame is not lost to a reset), or a
                    // broken one.
                    Some(Err(e)) => {
                        let oversize = e.to_string().contains("too long");
                        tracing::debug!("a client's frame could not be read: {e}");
                        if oversize {
                            let reason = format!("frame over the limit of {} bytes", app.max_frame);
                            close(&mut tx, close_code::SIZE, reason).await;
                        }
                        break;
                    }
                    None => break,
                };
                heard = tokio::time::Instant::now();
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Binary(_) => {
                        conn.reply(None, invalid("binary frames are not part of the protocol; send JSON text"));
                        continue;
                    }
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if text.len() > app.max_frame {
                    let reason = format!(
                        "frame of {} bytes is over the limit of {}",
                        text.len(),
                        app.max_frame
                    );
                    close(&mut tx, close_code::SIZE, reason).await;
                    break;
                }
                match protocol::parse(&text) {
                    Err((id, message)) => conn.reply(id.as_deref(), invalid(&message)),
                    Ok(req) => {
                        tracing::debug!(agent = ?conn.agent().unwrap_or("-"), name = ?req.name, id = ?req.id, "request");
                        asked
                            .waiting
                            .insert(req.id.clone(), (app.his.request_label(&req.name), Instant::now()));
                        if req.name == crate::his::LOGIN {
                            app.his.authenticate(&mut conn, &req.params).await;
                        }
                        if req.name == crate::his::LOGIN || req.name == crate::his::RESUME {
                            // Boxed: a connection's task holds what NATS'
                            // calls need only while they run, not for as
                            // long as it lives (benches/load.rs measures
                            // a connection's memory).
                            Box::pin(app.his.locate(&mut conn, &req.name, &req.params)).await;
                        }
                        // HIS queues the request and answers through the
                        // outbox: the next frame is read meanwhile, and a
                        // request runs to its end even if the client goes
                        // away, so a logout is never left half done.
                        app.his.request(&mut conn, &req.id, &req.name, &req.params);
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= app.idle {
                    let reason = format!("no frame for {} s: the connection is taken for dead", app.idle.as_secs());
                    close(&mut tx, close_code::AWAY, reason).await;
                    break;
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            out = outbox.recv() => {
                let Some(out) = out else { break };
                if !write(&mut tx, out, &mut outbox, &mut asked).await {
                    break;
                }
            }
            Ok(()) = app.going_away.changed() => {
                if *app.going_away.borrow() {
                    // What the requests that finished sent goes first.
                    let mut open = true;
                    while open && let Some(out) = outbox.try_recv() {
                        open = write(&mut tx, out, &mut outbox, &mut asked).await;
                    }
                    if open {
                        let _ = tx.send(encode(Out::Close(Closing::GoingAway))).await;
                    }
                    break;
                }
            }
        }
    }
}

/// Ends a connection from HIS's side with `code` and `reason`; a client
/// already gone is no error.
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

/// Writes `first` and whatever else is queued, flushing once; false when
/// the connection is over (a close frame went out, or the client is gone).
async fn write<S>(tx: &mut S, first: Out, outbox: &mut Messages, asked: &mut Asked<'_>) -> bool
where
    S: futures_util::Sink<Message> + Unpin,
{
    let mut next = Some(first);
    let mut n = 0;
    while let Some(out) = next.take() {
        asked.answered(&out);
        let msg = encode(out);
        let last = matches!(msg, Message::Close(_));
        if tx.feed(msg).await.is_err() {
            return false;
        }
        if last {
            let _ = tx.flush().await;
            return false;
        }
        n += 1;
        if n < BATCH {
            next = outbox.try_recv();
        }
    }
    tx.flush().await.is_ok()
}

/// The frame for a message of HIS: events and responses as JSON text, the
/// end of the connection as a close frame with its code and reason.
fn encode(out: Out) -> Message {
    let (code, reason) = match out {
        Out::Event(e) => {
            return Message::Text(protocol::event(&e.name, &e.data).into());
        }
        Out::Response { id, body } => {
            return Message::Text(protocol::response(id.as_deref(), &body).to_string().into());
        }
        Out::Close(closing) => {
            let code = match &closing {
                Closing::Ended(_) => close_code::NORMAL,
                Closing::TakenOver(_) => TAKEN_OVER,
                Closing::GoingAway => close_code::AWAY,
            };
            (code, close_reason(closing.reason()))
        }
        Out::Overflow => (
            close_code::POLICY,
            "the client did not read its messages; some were lost".to_string(),
        ),
    };
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The body of an `InvalidRequest` response.
fn invalid(message: &str) -> serde_json::Value {
    serde_json::json!({ "ok": false, "error": { "code": "InvalidRequest", "message": message } })
}

/// A close frame's reason holds at most 123 bytes: longer ones are cut at a
/// character boundary. Control characters (from a switch's data) become
/// spaces.
fn close_reason(reason: &str) -> String {
    const MAX: usize = 123;
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_lost_messages_is_closed_with_a_policy_code() {
        let Message::Close(Some(f)) = encode(Out::Overflow) else {
            panic!("a close frame")
        };
        assert_eq!(f.code, close_code::POLICY);
        assert!(f.reason.contains("did not read"));
        let Message::Close(Some(f)) = encode(Out::Close(Closing::Ended("logged out".into())))
        else {
            panic!("a close frame")
        };
        assert_eq!(
            (f.code, f.reason.as_str()),
            (close_code::NORMAL, "logged out")
        );
        let Message::Close(Some(f)) = encode(Out::Close(Closing::TakenOver("elsewhere".into())))
        else {
            panic!("a close frame")
        };
        assert_eq!(f.code, TAKEN_OVER);
        let Message::Close(Some(f)) = encode(Out::Close(Closing::GoingAway)) else {
            panic!("a close frame")
        };
        assert_eq!(f.code, close_code::AWAY);
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("logged out"), "logged out");
        assert_eq!(close_reason("by\r\nsupervisor"), "by  supervisor");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
