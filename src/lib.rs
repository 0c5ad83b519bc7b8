//! hisflow: contact-centre request workflows as data.
//!
//! Each agent request (login, Ready / Not Ready, channel activate /
//! deactivate, logout) is a YAML state graph. hisflow loads the files with
//! spans, validates them into a petgraph model with precise diagnostics, and
//! draws them; the interpreter runs the model against a switch adapter.
//!
//! ```
//! use std::path::PathBuf;
//!
//! let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/reference");
//! let report = hisflow::validate_paths(&[dir]).unwrap();
//! assert!(!report.diagnostics.has_errors());
//! let platform = &report.platforms[0];
//! let logout = platform.handler("session.request.logout").unwrap();
//! println!("{}", hisflow::render::Mermaid(logout));
//! ```

pub mod engine;
pub mod his;
pub mod lsp;
pub mod platform;
pub mod render;
pub mod scenario;
pub mod schema;
pub mod server;
pub mod workflow;

use std::path::PathBuf;

pub use workflow::diagnostic::{Diagnostic, Diagnostics, Rule, Severity};
pub use workflow::model::{Platform, Workflow};
pub use workflow::source::{FileId, Overlay, Sources, Span};
pub use workflow::validate::{Report, load_platform, validate_paths, validate_paths_with};

/// What can go wrong before any diagnostic can be given: the paths themselves.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no workflow files (*.yaml) under {}", path.display())]
    NoWorkflows { path: PathBuf },
    #[error("no scenario files (scenarios/*.yaml) under {}", path.display())]
    NoScenarios { path: PathBuf },
    #[error("the workflows have errors")]
    Invalid(Box<Report>),
    #[error("{}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: marked_yaml::FromYamlError,
    },
    /// A configuration value that has the right type but no meaning.
    #[error("{}: {message}", path.display())]
    ConfigValue { path: PathBuf, message: String },
}
