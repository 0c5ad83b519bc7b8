//! What hisflow knows of switches: the operation catalog and the adapter kinds.

pub mod catalog;

pub use catalog::{ADAPTERS, AdapterSpec, ArgSpec, OPERATIONS, OperationSpec, Provider};
