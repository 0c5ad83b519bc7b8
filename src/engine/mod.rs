//! The interpreter: runs validated workflows against a platform adapter.

mod observer;
mod outcome;
mod run;
mod session;
pub mod values;

pub use observer::{Both, Coverage, NoObserver, Observer, Trace, TraceEntry};
pub use outcome::{Event, Outcome, Response};
pub use run::Engine;
pub use session::{Channel, Interaction, Session};
