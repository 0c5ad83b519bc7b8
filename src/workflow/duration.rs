//! A duration written in a configuration as in workflows (`500ms`, `30s`,
//! `2m`): `serve`'s settings, HIS's authentication, an adapter's.

use schemars::JsonSchema;
use serde::Deserialize;

/// A duration written as in workflows: `500ms`, `30s`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span(pub std::time::Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        crate::workflow::validate::parse_duration(&text)
            .map(Span)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration (e.g. `500ms`, `30s`, `2m`)"
                ))
            })
    }
}

impl JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m)$",
            "description": "A duration: `500ms`, `30s`, `2m`."
        })
    }
}
