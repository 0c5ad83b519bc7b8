//! The workflow language: files are loaded with spans (`load`), checked and
//! compiled (`validate`) into the model (`model`) that the engine runs.

pub mod diagnostic;
pub mod duration;
pub mod expr;
pub mod functions;
pub mod intern;
pub mod load;
pub mod model;
pub mod native;
pub mod parser;
pub mod raw;
pub mod record;
pub mod rules;
pub mod source;
pub mod validate;
pub mod vocab;

/// A map of names from workflow files (states, settings, arguments, flows),
/// in the order the file writes them. Its keys are the integrator's own
/// names, never a client's, so a fast hash without a random seed is safe;
/// SipHash cost validation a few percent.
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;
