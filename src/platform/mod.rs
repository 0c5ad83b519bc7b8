//! What hisflow knows of switches: the adapter trait, the operation and
//! switch-event catalogs and adapter kinds, and the simulated switch.

pub mod adapter;
pub mod catalog;
pub mod events;
pub mod sim;

pub use adapter::{
    Adapter, ChannelReport, Controls, OpOutcome, OpResult, Operation, Reply, SwitchError,
};
pub use catalog::{ADAPTERS, AdapterSpec, ArgSpec, OPERATIONS, OperationSpec, Provider};
pub use events::{EVENTS, EventSink, EventSpec, SwitchEvent};
