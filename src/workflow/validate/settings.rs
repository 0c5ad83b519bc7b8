//! Typed settings. A platform declares, under `declare: settings:`, what its
//! workflows read as `platform.<name>` — a type, a default, a description —
//! and every platform of an `extends` chain sets values under `settings:`.
//! A value is checked against its declaration at its token; an expression
//! reading `platform.*` is checked against the declarations.

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use serde_json::Value as Json;

use super::parse_duration;
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::load::{self, Ctx, check_keys, key_span};
use crate::workflow::model::{SettingType, TYPE_NAMES};
use crate::workflow::raw::Sp;
use crate::workflow::vocab::Shape;

/// Keys of `declare:`.
const DECLARE_KEYS: &[&str] = &["settings", "errors"];
/// Keys of one setting's declaration.
const DECL_KEYS: &[&str] = &["type", "of", "values", "fields", "default", "description"];
/// Keys of a type written as a mapping (a list's items, a record's field).
const TYPE_KEYS: &[&str] = &["type", "of", "values", "fields"];

/// One setting as a manifest declares it.
pub struct Declared {
    pub name: Sp<String>,
    pub ty: SettingType,
    pub default: Option<Json>,
    pub description: Option<String>,
}

/// What `declare:` holds.
#[derive(Default)]
pub struct Declarations {
    pub settings: Vec<Declared>,
    /// Error codes: code → meaning.
    pub errors: Vec<(Sp<String>, String)>,
    /// Settings whose declaration is wrong (reported).
    pub broken: Vec<String>,
}

fn at(cx: Ctx<'_>, node: &Node) -> crate::workflow::source::Span {
    cx.span(node.span().start().copied())
}

/// Reads `declare:` of a manifest.
pub fn declarations(cx: Ctx<'_>, node: &Node, diags: &mut Diagnostics) -> Declarations {
    let mut out = Declarations::default();
    let Some(map) = node.as_mapping() else {
        diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                at(cx, node),
                "`declare` must be a mapping",
            )
            .label("not a mapping")
            .help("write `declare:` with `settings:` and `errors:` under it"),
        );
        return out;
    };
    check_keys(cx, map, DECLARE_KEYS, "`declare`", diags);
    if let Some(settings) = map.get_node("settings") {
        match settings.as_mapping() {
            Some(m) => {
                for (k, v) in m.iter() {
                    let name = Sp::new(k.span().start().copied(), k.as_str().to_string());
                    match declaration(cx, name, v, diags) {
                        Some(d) => out.settings.push(d),
                        None => out.broken.push(k.as_str().to_string()),
                    }
                }
            }
            None => diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    at(cx, settings),
                    "`declare: settings` must be a mapping of names to declarations",
                )
                .label("not a mapping")
                .help("write `<name>: { type: text, default: …, description: … }` entries"),
            ),
        }
    }
    if let Some(errors) = map.get_node("errors") {
        match errors.as_mapping() {
            Some(m) => {
                for (k, v) in m.iter() {
                    let code = Sp::new(k.span().start().copied(), k.as_str().to_string());
                    let ok = !code.is_empty()
                        && code.starts_with(|c: char| c.is_ascii_uppercase())
                        && code.chars().all(|c| c.is_ascii_alphanumeric());
                    if !ok {
                        diags.push(
                            Diagnostic::new(
                                Rule::InvalidValue,
                                key_span(cx, k),
                                format!("`{}` is not an error code", code.as_str()),
                            )
                            .label("expected a word in UpperCamelCase")
                            .help("error codes are written like the protocol's: `LogoutPending`, `PartialDeactivation`"),
                        );
                        continue;
                    }
                    let meaning = load::scalar(v).map(|s| s.to_string()).unwrap_or_default();
                    out.errors.push((code, meaning));
                }
            }
            None => diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    at(cx, errors),
                    "`declare: errors` must be a mapping of codes to their meaning",
                )
                .label("not a mapping")
                .help("write `<Code>: <what it means>` entries"),
            ),
        }
    }
    out
}

fn declaration(
    cx: Ctx<'_>,
    name: Sp<String>,
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<Declared> {
    let Some(map) = node.as_mapping() else {
        diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                at(cx, node),
                format!("the declaration of `{}` must be a mapping", name.as_str()),
            )
            .label("not a mapping")
            .help("write `{ type: text, default: …, description: … }`"),
        );
        return None;
    };
    check_keys(cx, map, DECL_KEYS, "a setting's declaration", diags);
    let ty = setting_type(cx, map, &name, diags)?;
    let default = match map.get_node("default") {
        Some(d) => Some(value(cx, &ty, d, name.as_str(), diags)?),
        None => None,
    };
    let description = map
        .get_node("description")
        .and_then(load::scalar)
        .map(|d| d.to_string());
    Some(Declared {
        name,
        ty,
        default,
        description,
    })
}

/// A type written in a mapping: `type` with `of`, `values` or `fields`.
fn setting_type(
    cx: Ctx<'_>,
    map: &MarkedMappingNode,
    name: &Sp<String>,
    diags: &mut Diagnostics,
) -> Option<SettingType> {
    let anchor = cx.span_of(name);
    let Some(ty_node) = map.get_node("type") else {
        diags.push(
            Diagnostic::new(
                Rule::MissingKey,
                anchor,
                format!("`{}` has no `type`", name.as_str()),
            )
            .label("`type` is required")
            .help(format!("add `type:` — one of {}", TYPE_NAMES.join(", "))),
        );
        return None;
    };
    let Some(ty) = load::scalar(ty_node) else {
        diags.push(
            Diagnostic::new(Rule::InvalidValue, at(cx, ty_node), "`type` must be a name")
                .label("not a type name")
                .help(format!("types: {}", TYPE_NAMES.join(", "))),
        );
        return None;
    };
    // The keys each type takes; the others are misplaced.
    let takes: &[&str] = match ty.as_str() {
        "list" => &["of"],
        "enum" => &["values"],
        "record" => &["fields"],
        _ => &[],
    };
    for key in ["of", "values", "fields"] {
        if let Some((k, _)) = map.get_key_value(key).filter(|_| !takes.contains(&key)) {
            diags.push(
                Diagnostic::new(
                    Rule::MisplacedKey,
                    key_span(cx, k),
                    format!("`{key}` does not belong to a `{}`", ty.as_str()),
                )
                .label("not used by this type")
                .help(match key {
                    "of" => "`of` gives a list's item type".to_string(),
                    "values" => "`values` lists an enum's values".to_string(),
                    _ => "`fields` gives a record's fields".to_string(),
                }),
            );
        }
    }
    let need = |key: &str, diags: &mut Diagnostics| -> Option<&Node> {
        let n = map.get_node(key);
        if n.is_none() {
            diags.push(
                Diagnostic::new(
                    Rule::MissingKey,
                    cx.span_of(&ty),
                    format!("a `{}` needs `{key}`", ty.as_str()),
                )
                .label(format!("`{key}` missing"))
                .help(match key {
                    "of" => "add e.g. `of: text`",
                    "values" => "add e.g. `values: [none, optional, required]`",
                    _ => "add e.g. `fields: { code: integer, label: text }`",
                }),
            );
        }
        n
    };
    Some(match ty.as_str() {
        "text" => SettingType::Text,
        "bool" => SettingType::Bool,
        "integer" => SettingType::Integer,
        "duration" => SettingType::Duration,
        "list" => SettingType::List(Box::new(item_type(cx, need("of", diags)?, diags)?)),
        "enum" => {
            let node = need("values", diags)?;
            let values: Vec<String> = node
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(load::scalar)
                        .map(|v| v.to_string())
                        .collect()
                })
                .unwrap_or_default();
            if values.is_empty() {
                diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        at(cx, node),
                        "an enum needs a list of values",
                    )
                    .label("no values")
                    .help("write e.g. `values: [none, optional, required]`"),
                );
                return None;
            }
            SettingType::Enum(values)
        }
        "record" => {
            let node = need("fields", diags)?;
            let Some(fields) = node.as_mapping().filter(|m| !m.is_empty()) else {
                diags.push(
                    Diagnostic::new(Rule::InvalidValue, at(cx, node), "a record needs fields")
                        .label("not a mapping of fields")
                        .help("write e.g. `fields: { code: integer, label: text }`"),
                );
                return None;
            };
            let mut out = Vec::new();
            for (k, v) in fields.iter() {
                out.push((k.as_str().to_string(), item_type(cx, v, diags)?));
            }
            SettingType::Record(out)
        }
        other => {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    cx.span_of(&ty),
                    format!("`{other}` is not a setting type"),
                )
                .label("unknown type")
                .help(
                    did_you_mean(other, TYPE_NAMES.iter().copied())
                        .unwrap_or_else(|| format!("types: {}", TYPE_NAMES.join(", "))),
                ),
            );
            return None;
        }
    })
}

/// A list's item type or a record's field type: a type name, or a mapping.
fn item_type(cx: Ctx<'_>, node: &Node, diags: &mut Diagnostics) -> Option<SettingType> {
    match node {
        Node::Scalar(s) => {
            let name = Sp::new(s.span().start().copied(), "item".to_string());
            let mut map = MarkedMappingNode::new_empty(*node.span());
            map.insert(
                marked_yaml::types::MarkedScalarNode::new(*s.span(), "type"),
                node.clone(),
            );
            setting_type(cx, &map, &name, diags)
        }
        Node::Mapping(m) => {
            check_keys(cx, m, TYPE_KEYS, "a type", diags);
            let name = Sp::new(node.span().start().copied(), "item".to_string());
            setting_type(cx, m, &name, diags)
        }
        Node::Sequence(_) => {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    at(cx, node),
                    "a type is a name or a mapping",
                )
                .label("not a type")
                .help("write e.g. `text`, or `{ type: enum, values: [a, b] }`"),
            );
            None
        }
    }
}

/// A value written for a setting of type `ty`, as JSON; every problem is
/// a diagnostic at its token.
pub fn value(
    cx: Ctx<'_>,
    ty: &SettingType,
    node: &Node,
    setting: &str,
    diags: &mut Diagnostics,
) -> Option<Json> {
    let wrong = |diags: &mut Diagnostics, expected: &str| {
        diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                at(cx, node),
                format!("`{setting}` is {ty}: this is not {expected}"),
            )
            .label(format!("expected {expected}"))
            .help(format!("the platform declares `{setting}` as {ty}")),
        );
        None
    };
    let scalar = node.as_scalar();
    match ty {
        SettingType::Text => match scalar {
            Some(s) if !(s.may_coerce() && matches!(s.as_str(), "null" | "~" | "")) => {
                Some(Json::String(s.as_str().to_string()))
            }
            _ => wrong(diags, "text"),
        },
        SettingType::Bool => match scalar.filter(|s| s.may_coerce()).map(|s| s.as_str()) {
            Some("true") => Some(Json::Bool(true)),
            Some("false") => Some(Json::Bool(false)),
            _ => wrong(diags, "`true` or `false`"),
        },
        SettingType::Integer => match scalar.and_then(|s| s.as_str().parse::<i64>().ok()) {
            Some(n) => Some(Json::from(n)),
            None => wrong(diags, "a whole number"),
        },
        SettingType::Duration => match scalar.filter(|s| parse_duration(s.as_str()).is_some()) {
            Some(s) => Some(Json::String(s.as_str().to_string())),
            None => wrong(diags, "a duration such as `500ms`, `3s` or `2m`"),
        },
        SettingType::Enum(values) => {
            let Some(s) = scalar else {
                return wrong(diags, "one of the values");
            };
            if values.iter().any(|v| v == s.as_str()) {
                return Some(Json::String(s.as_str().to_string()));
            }
            diags.push(
                Diagnostic::new(
                    Rule::UnknownValue,
                    at(cx, node),
                    format!("`{}` is not a value of `{setting}`", s.as_str()),
                )
                .label("not one of the declared values")
                .help(
                    did_you_mean(s.as_str(), values.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("its values: {}", values.join(", "))),
                ),
            );
            None
        }
        SettingType::List(of) => {
            let Some(items) = node.as_sequence() else {
                return wrong(diags, "a list");
            };
            let mut out = Vec::new();
            let mut ok = true;
            for item in items.iter() {
                match value(cx, of, item, setting, diags) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            ok.then_some(Json::Array(out))
        }
        SettingType::Record(fields) => {
            let Some(map) = node.as_mapping() else {
                return wrong(diags, "a mapping of its fields");
            };
            let mut out = serde_json::Map::new();
            let mut ok = true;
            for (k, v) in map.iter() {
                match fields.iter().find(|(n, _)| n == k.as_str()) {
                    Some((_, t)) => match value(cx, t, v, setting, diags) {
                        Some(j) => {
                            out.insert(k.as_str().to_string(), j);
                        }
                        None => ok = false,
                    },
                    None => {
                        ok = false;
                        diags.push(
                            Diagnostic::new(
                                Rule::UnknownField,
                                key_span(cx, k),
                                format!("`{setting}` has no field `{}`", k.as_str()),
                            )
                            .label("not a declared field")
                            .help(
                                did_you_mean(k.as_str(), fields.iter().map(|(n, _)| n.as_str()))
                                    .unwrap_or_else(|| {
                                        format!(
                                            "its fields: {}",
                                            fields
                                                .iter()
                                                .map(|(n, _)| n.as_str())
                                                .collect::<Vec<_>>()
                                                .join(", ")
                                        )
                                    }),
                            ),
                        );
                    }
                }
            }
            for (n, _) in fields {
                if !map.contains_key(n.as_str()) {
                    ok = false;
                    diags.push(
                        Diagnostic::new(
                            Rule::MissingKey,
                            at(cx, node),
                            format!("`{setting}` needs field `{n}`"),
                        )
                        .label(format!("`{n}` missing"))
                        .help(format!("add `{n}: …`")),
                    );
                }
            }
            // In declaration order, whatever order they were written in.
            ok.then(|| {
                Json::Object(
                    fields
                        .iter()
                        .filter_map(|(n, _)| out.remove(n).map(|v| (n.clone(), v)))
                        .collect(),
                )
            })
        }
    }
}

/// What an expression reading a value of type `ty` may do with it.
pub fn shape(ty: &SettingType, setting: &str) -> Shape {
    match ty {
        SettingType::List(of) => Shape::list(shape(of, setting)),
        SettingType::Enum(values) => Shape::enumeration(
            values.clone(),
            &format!("a value of `platform.{setting}`"),
            "declare the value under the setting's `values:`",
        ),
        SettingType::Record(fields) => Shape::record(
            fields
                .iter()
                .map(|(n, t)| (n.clone(), shape(t, setting)))
                .collect(),
        ),
        _ => Shape::Scalar,
    }
}
