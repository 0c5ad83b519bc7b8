//! What hisflow knows of switches: the adapter trait, the operation catalog
//! and adapter kinds, and the simulated switch.

pub mod adapter;
pub mod catalog;
pub mod sim;

pub use adapter::{Adapter, OpOutcome, OpResult, Operation, Reply, SwitchError};
pub use catalog::{ADAPTERS, AdapterSpec, ArgSpec, OPERATIONS, OperationSpec, Provider};
