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
