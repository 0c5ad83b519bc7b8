//! Typed settings: what a platform declares its workflows may read as
//! `platform.<name>`, and the declared error codes beside the protocol's.

use std::fmt;

use serde_json::Value as Json;

/// The type of a setting (or of a list's items, a record's fields).
#[derive(Debug, Clone, PartialEq)]
pub enum SettingType {
    Text,
    Bool,
    Integer,
    /// Written as in workflows: `500ms`, `3s`, `2m`; read as that text.
    Duration,
    List(Box<SettingType>),
    /// Text that is one of the values, in declaration order.
    Enum(Vec<String>),
    /// Named fields, each required, in declaration order.
    Record(Vec<(String, SettingType)>),
}

/// The type names a declaration may use.
pub const TYPE_NAMES: &[&str] = &[
    "text", "bool", "integer", "duration", "list", "enum", "record",
];

impl fmt::Display for SettingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingType::Text => f.write_str("text"),
            SettingType::Bool => f.write_str("bool"),
            SettingType::Integer => f.write_str("integer"),
            SettingType::Duration => f.write_str("duration"),
            SettingType::List(of) => write!(f, "list of {of}"),
            SettingType::Enum(values) => write!(f, "one of {}", values.join(", ")),
            SettingType::Record(fields) => {
                f.write_str("{ ")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// One declared setting.
#[derive(Debug, Clone)]
pub struct SettingDecl {
    pub name: String,
    pub ty: SettingType,
    /// The value when no platform of the chain sets one.
    pub default: Option<Json>,
    pub description: Option<String>,
    /// The platform whose manifest declares it.
    pub platform: String,
}
