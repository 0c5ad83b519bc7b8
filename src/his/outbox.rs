//! What HIS sends a connection, in order: events, responses, and the close
//! that ends it. The transport (`server`) turns them into frames; the
//! scenario runner reads them as a MediaBar would.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::engine::Event;

/// One message for a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Event(Event),
    /// The one response to request `id`, in the protocol's shape:
    /// `{ok, result}` or `{ok: false, error}`; `id` is `None` for a frame
    /// too malformed to have one.
    Response {
        id: Option<String>,
        body: Json,
    },
    /// HIS ends the connection.
    Close(Closing),
    /// The connection let messages pile up until some were lost: the
    /// transport ends it, since "one response per request" no longer holds.
    Overflow,
}

/// Why HIS ends a connection; each has its own close code on the
/// WebSocket (docs/client-connectivity.md).
#[derive(Debug, Clone, PartialEq)]
pub enum Closing {
    /// The session ended — a logout, the switch's word — with a reason the
    /// agent can read.
    Ended(String),
    /// Another connection resumed the session or logged the agent in: this
    /// one no longer speaks for it.
    TakenOver(String),
    /// HIS is shutting down; the session stays as the switch has it.
    GoingAway,
}

impl Closing {
    /// What the agent reads.
    pub fn reason(&self) -> &str {
        match self {
            Closing::Ended(r) | Closing::TakenOver(r) => r,
            Closing::GoingAway => "HIS is shutting down",
        }
    }
}

/// How many messages may wait for a connection that does not read them.
pub const OUTBOX_CAPACITY: usize = 1024;

/// Room the transport keeps free before it reads a client's next frame: a
/// request's events and response always fit.
pub const RESERVE: usize = 256;

/// The sending end of a connection's messages. Sending never waits. The
/// transport stops reading a client whose outbox is nearly full, so its own
/// requests cannot overflow it; one that does not read what the switch says
/// loses the rest, and the transport then closes it ([`Out::Overflow`]).
#[derive(Debug, Clone)]
pub struct Outbox {
    id: u64,
    // Boxed: a channel's first block is allocated per connection, idle or
    // not, and a box keeps it small.
    tx: mpsc::Sender<Box<Out>>,
    overflowed: Arc<AtomicBool>,
}

/// The receiving end: what the transport sends the client, in order.
#[derive(Debug)]
pub struct Messages {
    rx: mpsc::Receiver<Box<Out>>,
    overflowed: Arc<AtomicBool>,
}

impl Messages {
    /// The next message; `None` once no outbox can send any more. After an
    /// overflow, what was queued, then [`Out::Overflow`].
    pub async fn recv(&mut self) -> Option<Out> {
        if let Some(out) = self.try_recv() {
            return Some(out);
        }
        self.rx.recv().await.map(|b| *b)
    }

    /// The next message if one is there.
    pub fn try_recv(&mut self) -> Option<Out> {
        match self.rx.try_recv() {
            Ok(out) => Some(*out),
            Err(_) if self.overflowed.swap(false, Ordering::AcqRel) => Some(Out::Overflow),
            Err(_) => None,
        }
    }
}

impl Outbox {
    pub fn new() -> (Outbox, Messages) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        let overflowed = Arc::new(AtomicBool::new(false));
        (
            Outbox {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                tx,
                overflowed: overflowed.clone(),
            },
            Messages { rx, overflowed },
        )
    }

    /// Queues `out`; false when the connection is gone or not reading.
    pub fn send(&self, out: Out) -> bool {
        match self.tx.try_send(Box::new(out)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.overflowed.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        connection = self.id,
                        "a connection stopped reading; it loses its messages and is closed"
                    );
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether two outboxes lead to the same connection.
    pub fn same(&self, other: &Outbox) -> bool {
        self.id == other.id
    }

    /// Whether a request's events and response would still fit.
    pub fn has_room(&self) -> bool {
        self.tx.capacity() > RESERVE
    }
}
