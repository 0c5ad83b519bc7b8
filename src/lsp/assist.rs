//! Completion and hover: what may be written where the cursor is, and what
//! a name means, from the folder's files and the catalogs.

use std::fmt::Write;

use super::index::{self, Declared};
use super::locate::{At, File, Slot};
use crate::platform::{EVENTS, OPERATIONS, catalog, events};
use crate::workflow::validate::MANIFEST;

/// One completion: the text, a one-line detail, and its documentation.
#[derive(Debug, Clone)]
pub struct Item {
    pub label: String,
    pub detail: Option<String>,
    pub doc: Option<String>,
}

pub fn complete(file: &File<'_>, line: usize, col: usize) -> Option<(At, Vec<Item>)> {
    let at = file.at(line, col)?;
    let items = match &at.slot {
        Slot::StateTarget => declared(file.states()),
        // A state's key is a new name: nothing to offer.
        Slot::StateKey => Vec::new(),
        Slot::Workflow => declared(index::workflows(file.docs, &file.chain)),
        Slot::Setting => declared(index::settings(file.docs, &file.chain)),
        Slot::Operation => OPERATIONS
            .iter()
            .map(|op| Item {
                label: op.name.to_string(),
                detail: Some(op.summary.to_string()),
                doc: Some(operation_doc(op)),
            })
            .collect(),
        Slot::Argument { op } => op
            .as_deref()
            .and_then(catalog::operation)
            .map(|op| {
                op.args
                    .iter()
                    .map(|a| Item {
                        label: a.name.to_string(),
                        detail: Some(if a.required { "required" } else { "optional" }.to_string()),
                        doc: Some(a.summary.to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Slot::Event => event_items(),
        Slot::Trigger => {
            let mut items = event_items();
            items.extend(catalog::switch_operations().map(|op| Item {
                label: op.name.to_string(),
                detail: Some(op.summary.to_string()),
                doc: Some(operation_doc(op)),
            }));
            items
        }
        Slot::ErrorCode => index::error_codes(file.docs, &file.chain)
            .into_iter()
            .map(|(code, means)| Item {
                label: code,
                detail: Some(means),
                doc: None,
            })
            .collect(),
        Slot::Extends => sibling_platforms(file),
        Slot::Flow => file
            .outline
            .keys_under(&["flows"])
            .into_iter()
            .map(|(i, k)| Item {
                label: k.text.clone(),
                detail: file.outline.entries[i]
                    .value
                    .as_ref()
                    .map(|v| v.text.clone()),
                doc: None,
            })
            .collect(),
    };
    Some((at, items))
}

pub fn hover(file: &File<'_>, line: usize, col: usize) -> Option<(At, String)> {
    let at = file.at(line, col)?;
    let name = at.token.text.as_str();
    let text = match &at.slot {
        Slot::StateTarget | Slot::StateKey => describe("state", name, file.states().get(name)?),
        Slot::Workflow => describe(
            "workflow",
            name,
            index::workflows(file.docs, &file.chain).get(name)?,
        ),
        Slot::Setting => describe(
            "setting",
            &format!("platform.{name}"),
            index::settings(file.docs, &file.chain).get(name)?,
        ),
        Slot::Operation => operation_doc(catalog::operation(name)?),
        Slot::Trigger => match catalog::operation(name) {
            Some(op) => operation_doc(op),
            None => event_doc(events::event(name)?),
        },
        Slot::Event => event_doc(events::event(name)?),
        Slot::Argument { op } => {
            let op = catalog::operation(op.as_deref()?)?;
            let a = op.arg(name)?;
            format!(
                "`{}` of `{}` ({})\n\n{}",
                a.name,
                op.name,
                if a.required { "required" } else { "optional" },
                a.summary
            )
        }
        Slot::ErrorCode => {
            let (code, means) = index::error_codes(file.docs, &file.chain)
                .into_iter()
                .find(|(c, _)| c == name)?;
            format!("error code `{code}`\n\n{means}")
        }
        Slot::Extends | Slot::Flow => return None,
    };
    Some((at, text))
}

fn declared(map: crate::workflow::IndexMap<String, Declared>) -> Vec<Item> {
    map.into_iter()
        .map(|(name, d)| Item {
            label: name,
            detail: d.detail.clone(),
            doc: d.description,
        })
        .collect()
}

fn describe(what: &str, name: &str, d: &Declared) -> String {
    let mut out = format!("{what} `{name}`");
    if let Some(detail) = &d.detail {
        let _ = write!(out, " ({detail})");
    }
    if let Some(desc) = &d.description {
        let _ = write!(out, "\n\n{desc}");
    }
    out
}

fn operation_doc(op: &catalog::OperationSpec) -> String {
    let mut out = format!("operation `{}`\n\n{}", op.name, op.summary);
    let args = op.args.iter().map(|a| (a.name, a.required, a.summary));
    bullets(&mut out, "Arguments", args);
    let _ = write!(out, "\n\nOutcomes: {}", op.outcomes.join(", "));
    if let Some(r) = op.result {
        let _ = write!(out, "\n\nReturns: {r}");
    }
    out
}

fn event_doc(e: &events::EventSpec) -> String {
    let mut out = format!("switch event `{}`\n\n{}", e.name, e.summary);
    let fields = e.fields.iter().map(|f| (f.name, f.required, f.summary));
    bullets(&mut out, "Data", fields);
    out
}

/// A titled list of names, each marked optional unless required.
fn bullets<'a>(
    out: &mut String,
    title: &str,
    items: impl ExactSizeIterator<Item = (&'a str, bool, &'a str)>,
) {
    if items.len() == 0 {
        return;
    }
    let _ = write!(out, "\n\n{title}:");
    for (name, required, summary) in items {
        let optional = if required { "" } else { " (optional)" };
        let _ = write!(out, "\n- `{name}`{optional}: {summary}");
    }
}

fn event_items() -> Vec<Item> {
    EVENTS
        .iter()
        .map(|e| Item {
            label: e.name.to_string(),
            detail: Some(e.summary.to_string()),
            doc: Some(event_doc(e)),
        })
        .collect()
}

fn sibling_platforms(file: &File<'_>) -> Vec<Item> {
    let Some(base) = file.path.parent().and_then(|d| d.parent()) else {
        return Vec::new();
    };
    let mut out: Vec<Item> = std::fs::read_dir(base)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join(MANIFEST).is_file())
                .filter(|e| Some(e.path().as_path()) != file.path.parent())
                .map(|e| Item {
                    label: e.file_name().to_string_lossy().into_owned(),
                    detail: None,
                    doc: None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}
