//! What hisflow knows of switches: the adapter trait, the operation and
//! switch-event catalogs and adapter kinds, the simulated switch, and the TaskRouter adapter.

pub mod adapter;
pub mod catalog;
pub mod deploy;
pub mod events;
pub mod inbound;
pub mod sim;
pub mod twilio;

pub use adapter::{
    Adapter, Answer, ChannelReport, ControlReply, Controls, OpOutcome, OpResult, Operation, Reply,
    SwitchError,
};
pub use catalog::{
    ADAPTERS, AdapterSpec, ArgSpec, HisOp, OPERATIONS, OpKind, OperationSpec, Provider, SwitchOp,
};
pub use events::{EVENTS, EventSink, EventSpec, SwitchEvent};
pub use inbound::{Inbound, InboundReply, InboundRequest};
