//! Requests a switch sends HIS over HTTP: webhooks such as TaskRouter's
//! Event Callbacks. The server mounts an adapter's [`Inbound`] at the path it
//! names and knows nothing else of it: the adapter checks the request is the
//! switch's (its signature), turns it into switch events and answers.

use http::{HeaderMap, StatusCode, Uri};

/// One webhook request as it reached HIS.
#[derive(Debug)]
pub struct InboundRequest<'a> {
    /// The request target as received: path and query.
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// What HIS answers a webhook: a status and a short plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundReply {
    pub status: StatusCode,
    pub body: String,
}

impl InboundReply {
    pub fn new(status: StatusCode, body: impl Into<String>) -> Self {
        InboundReply {
            status,
            body: body.into(),
        }
    }
}

/// An adapter's webhook endpoint.
pub trait Inbound: Send + Sync + std::fmt::Debug {
    /// The path HIS serves it at (`/taskrouter/events`).
    fn path(&self) -> &str;

    /// The largest body it takes; a longer one is refused with 413 before
    /// [`Inbound::receive`] sees it.
    fn max_body(&self) -> usize {
        64 * 1024
    }

    /// Checks and takes one request. Never blocks: events go to the sink
    /// the adapter was given.
    fn receive(&self, request: InboundRequest<'_>) -> InboundReply;
}
