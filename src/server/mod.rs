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

use crate::his::{Connection, His};

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
    let mut conn = Connection::default();
    while let Some(Ok(msg)) = rx.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Binary(_) => {
                let r = protocol::response(
                    None,
                    &serde_json::json!({ "ok": false, "error": { "code": "InvalidRequest", "message": "binary frames are not part of the protocol; send JSON text" } }),
                );
                if tx.send(Message::Text(r.to_string().into())).await.is_err() {
                    break;
                }
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
        let (frames, close) = match protocol::parse(&text) {
            Err(response) => (vec![response], false),
            Ok(req) => {
                let span = tracing::info_span!("connection", agent = conn.agent().unwrap_or("-"));
                let _in = span.enter();
                tracing::debug!(name = %req.name, id = %req.id, "request");
                drop(_in);
                // The request runs to its end even if the client goes away
                // meanwhile: a logout is never left half done.
                let reply = app.his.request(&mut conn, &req.name, &req.params).await;
                let mut frames: Vec<_> = reply
                    .events
                    .iter()
                    .map(|e| protocol::event(&e.name, &e.data))
                    .collect();
                frames.push(protocol::response(Some(&req.id), &reply.response));
                (frames, reply.close)
            }
        };
        let mut gone = false;
        for f in frames {
            if tx.send(Message::Text(f.to_string().into())).await.is_err() {
                gone = true;
                break;
            }
        }
        if gone {
            break;
        }
        if close {
            let _ = tx
                .send(Message::Close(Some(CloseFrame {
                    code: close_code::NORMAL,
                    reason: "logged out".into(),
                })))
                .await;
            break;
        }
    }
}
