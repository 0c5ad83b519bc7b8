//! The WebSocket transport: one connection per MediaBar, JSON text frames,
//! the MediaBar page at `/`.

pub mod config;
pub mod protocol;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

use crate::his::{His, Out};

/// The largest text frame a client may send; larger ones close the connection.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct App {
    his: Arc<His>,
    max_frame: usize,
}

/// Serves HIS on `listener` until `shutdown` completes, then lets the
/// connections' running requests finish.
pub async fn serve(
    listener: TcpListener,
    his: Arc<His>,
    max_frame: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(index))
        .route("/ws", get(upgrade))
        .with_state(App { his, max_frame });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../web/index.html"))
}

async fn upgrade(ws: WebSocketUpgrade, State(app): State<App>) -> impl IntoResponse {
    // Frames up to twice the limit reach us, so that we can close with a
    // reason; anything larger the WebSocket layer refuses outright.
    // Frames are small: 4 KiB buffers instead of the default 128 KiB keep a
    // connected agent's cost in the kilobytes (benches/load.rs measures it).
    ws.max_message_size(app.max_frame * 2)
        .max_frame_size(app.max_frame * 2)
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .on_upgrade(move |socket| connection(socket, app))
}

async fn connection(socket: WebSocket, app: App) {
    let (mut tx, mut rx) = socket.split();
    let (mut conn, mut outbox) = app.his.connect();
    loop {
        tokio::select! {
            // A client that sends faster than it reads waits: its outbox
            // keeps room for what its next request sends.
            msg = rx.next(), if conn.has_room() => {
                let Some(Ok(msg)) = msg else { break };
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
                    let _ = tx
                        .send(Message::Close(Some(CloseFrame {
                            code: close_code::SIZE,
                            reason: reason.into(),
                        })))
                        .await;
                    break;
                }
                match protocol::parse(&text) {
                    Err((id, message)) => conn.reply(id.as_deref(), invalid(&message)),
                    Ok(req) => {
                        tracing::debug!(agent = conn.agent().unwrap_or("-"), name = %req.name, id = %req.id, "request");
                        // HIS queues the request and answers through the
                        // outbox: the next frame is read meanwhile, and a
                        // request runs to its end even if the client goes
                        // away, so a logout is never left half done.
                        app.his.request(&mut conn, &req.id, &req.name, &req.params);
                    }
                }
            }
            out = outbox.recv() => {
                let Some(out) = out else { break };
                let msg = encode(out);
                let last = matches!(msg, Message::Close(_));
                if tx.send(msg).await.is_err() || last {
                    break;
                }
            }
        }
    }
}

/// The frame for a message of HIS: events and responses as JSON text, the
/// end of the connection as a close frame with its reason.
fn encode(out: Out) -> Message {
    let (code, reason) = match out {
        Out::Event(e) => {
            return Message::Text(protocol::event(&e.name, &e.data).to_string().into());
        }
        Out::Response { id, body } => {
            return Message::Text(protocol::response(id.as_deref(), &body).to_string().into());
        }
        Out::Close(reason) => (close_code::NORMAL, close_reason(&reason)),
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
        let Message::Close(Some(f)) = encode(Out::Close("logged out".into())) else {
            panic!("a close frame")
        };
        assert_eq!(
            (f.code, f.reason.as_str()),
            (close_code::NORMAL, "logged out")
        );
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
