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
/// in the order the file writes them. Hashed without a random seed, which
/// SipHash's set-up cost validation a few percent: its keys come from
/// workflow files, never from a network client, so a file crafted for its
/// names to collide slows down only its own validation, which the size
/// limit on files bounds.
pub type IndexMap<K, V> = indexmap::IndexMap<K, V, rustc_hash::FxBuildHasher>;
