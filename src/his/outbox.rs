//! What HIS sends a connection, in order: events, responses, and the close
//! that ends it. The transport (`server`) turns them into frames; the
//! scenario runner reads them as a MediaBar would.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// HIS ends the connection, with a reason the agent can read.
    Close(String),
}

/// How many messages may wait for a connection that does not read them.
pub const OUTBOX_CAPACITY: usize = 1024;

/// The sending end of a connection's messages. Sending never waits: a
/// connection that lets `OUTBOX_CAPACITY` messages pile up has stopped
/// reading, and loses the rest (its transport closes it).
#[derive(Debug, Clone)]
pub struct Outbox {
    id: u64,
    // Boxed: a channel's first block is allocated per connection, idle or
    // not, and a box keeps it small.
    tx: mpsc::Sender<Box<Out>>,
}

/// The receiving end: what the transport sends the client, in order.
#[derive(Debug)]
pub struct Messages(mpsc::Receiver<Box<Out>>);

impl Messages {
    /// The next message; `None` once no outbox can send any more.
    pub async fn recv(&mut self) -> Option<Out> {
        self.0.recv().await.map(|b| *b)
    }

    /// The next message if one is there.
    pub fn try_recv(&mut self) -> Option<Out> {
        self.0.try_recv().ok().map(|b| *b)
    }
}

impl Outbox {
    pub fn new() -> (Outbox, Messages) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (
            Outbox {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                tx,
            },
            Messages(rx),
        )
    }

    /// Queues `out`; false when the connection is gone or not reading.
    pub fn send(&self, out: Out) -> bool {
        match self.tx.try_send(Box::new(out)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    connection = self.id,
                    "a connection stopped reading; its messages are dropped"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether two outboxes lead to the same connection.
    pub fn same(&self, other: &Outbox) -> bool {
        self.id == other.id
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
