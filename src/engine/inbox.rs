//! Where a `wait` state takes switch events from. HIS gives each request its
//! session's queue; a run without one (a test, a bench) waits in vain until
//! the deadline.

use std::future::Future;
use std::pin::Pin;

use tokio::time::Instant;

use crate::platform::SwitchEvent;

/// The switch events of one session, in arrival order.
pub trait Inbox: Send {
    /// The next event, or `None` once `deadline` has passed (or when no
    /// event can come any more).
    fn next(
        &mut self,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Option<SwitchEvent>> + Send + '_>>;

    /// How many events a run may leave for after it: the session queue's
    /// bound, so that a storm during a wait costs no more memory than one
    /// outside it.
    fn limit(&self) -> usize {
        usize::MAX
    }
}

/// No events at all: every wait times out.
pub struct NoInbox;

impl Inbox for NoInbox {
    fn next(
        &mut self,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Option<SwitchEvent>> + Send + '_>> {
        Box::pin(async move {
            tokio::time::sleep_until(deadline).await;
            None
        })
    }
}

/// Events fed by hand, then nothing: for tests.
impl Inbox for std::collections::VecDeque<SwitchEvent> {
    fn next(
        &mut self,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Option<SwitchEvent>> + Send + '_>> {
        Box::pin(async move {
            match self.pop_front() {
                Some(e) => Some(e),
                None => {
                    tokio::time::sleep_until(deadline).await;
                    None
                }
            }
        })
    }
}
