//! The interpreter: runs validated workflows against a platform adapter, and
//! the platform's machines on what the switch does.

mod inbox;
mod machine;
mod observer;
mod outcome;
mod run;
mod session;
pub mod values;

pub use inbox::{Inbox, NoInbox};
pub use observer::{Both, Coverage, NoObserver, Observer, Trace, TraceEntry, TraceError};
pub use outcome::{Data, Event, Failure, Outcome, Response};
pub use run::{Engine, ParamLimits, STEP_BUDGET};
pub use session::{Channel, Interaction, Session};
