//! What the editor's files declare, read from their outlines: the states of
//! a workflow, the workflows and settings of a platform and the platforms it
//! extends. Built on each request from the open buffers and the disk, so it
//! is never stale, and it works on files that do not validate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::workflow::IndexMap;

use super::outline::{Outline, Token};
use crate::workflow::load::MAX_FILE_BYTES;
use crate::workflow::validate::MANIFEST;

/// The open buffers, by absolute path; every other file is read from disk.
#[derive(Debug, Default)]
pub struct Docs {
    pub open: HashMap<PathBuf, String>,
}

impl Docs {
    pub fn text(&self, path: &Path) -> Option<String> {
        if let Some(t) = self.open.get(path) {
            return Some(t.clone());
        }
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES as u64 {
            return None;
        }
        std::fs::read_to_string(path).ok()
    }
}

/// A place in a file: a token's line and byte columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub token: Token,
}

/// Something declared, with where and what it is.
#[derive(Debug, Clone)]
pub struct Declared {
    pub at: Place,
    pub description: Option<String>,
    /// More to say in a hover: a setting's type and default, a state's flow.
    pub detail: Option<String>,
}

/// What kind of file an outline is, by its first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Workflow,
    Overrides,
    Machine,
    Platform,
    Scenario,
    Unknown,
}

/// What kind of file an outline is, by the top-level key that names it,
/// wherever in the file it is written.
pub fn kind(outline: &Outline) -> Kind {
    outline
        .children(None)
        .filter_map(|i| outline.entries[i].key.as_ref())
        .find_map(|k| match k.text.as_str() {
            "workflow" => Some(Kind::Workflow),
            "overrides" => Some(Kind::Overrides),
            "machine" => Some(Kind::Machine),
            "platform" => Some(Kind::Platform),
            "scenario" => Some(Kind::Scenario),
            _ => None,
        })
        .unwrap_or(Kind::Unknown)
}

/// The folders whose files a file in `dir` sees: its own, then those of
/// the platforms it extends, nearest first. A scenario's folder stands for
/// its platform's.
pub fn chain(docs: &Docs, dir: &Path) -> Vec<PathBuf> {
    let mut dir = dir.to_path_buf();
    if dir.ends_with(crate::scenario::SCENARIOS)
        && let Some(p) = dir.parent()
    {
        dir = p.to_path_buf();
    }
    let mut out = vec![dir.clone()];
    // As deep as the validator lets platforms extend each other.
    while out.len() <= 16 {
        let Some(text) = docs.text(&dir.join(MANIFEST)) else {
            break;
        };
        let Some(name) = Outline::parse(&text).top("extends").map(str::to_string) else {
            break;
        };
        if name.contains(['/', '\\']) || name == ".." || name == "." {
            break;
        }
        let Some(next) = dir.parent().map(|p| p.join(&name)) else {
            break;
        };
        if out.contains(&next) {
            break;
        }
        out.push(next.clone());
        dir = next;
    }
    out
}

pub fn yaml_files(dir: &Path, docs: &Docs) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect()
        })
        .unwrap_or_default();
    for open in docs.open.keys() {
        if open.parent() == Some(dir) && !files.contains(open) {
            files.push(open.clone());
        }
    }
    files.sort();
    files
}

/// The workflows `chain` holds, by name; a nearer folder's wins.
pub fn workflows(docs: &Docs, chain: &[PathBuf]) -> IndexMap<String, Declared> {
    let mut out = IndexMap::default();
    for dir in chain {
        for path in yaml_files(dir, docs) {
            let Some(text) = docs.text(&path) else {
                continue;
            };
            let o = Outline::parse(&text);
            if kind(&o) != Kind::Workflow {
                continue;
            }
            let Some(i) = o.find(&["workflow"]) else {
                continue;
            };
            let Some(name) = o.entries[i].value.clone() else {
                continue;
            };
            out.entry(name.text.clone()).or_insert_with(|| Declared {
                description: description(&o, &text, Some(i)),
                at: Place {
                    path: path.clone(),
                    token: name,
                },
                detail: None,
            });
        }
    }
    out
}

/// The settings the platforms of `chain` declare, by name.
pub fn settings(docs: &Docs, chain: &[PathBuf]) -> IndexMap<String, Declared> {
    declared(docs, chain, &["declare", "settings"], |o, i| {
        let field = |k: &str| {
            o.children(Some(i))
                .find(|&c| o.entries[c].key.as_ref().is_some_and(|t| t.text == k))
                .and_then(|c| o.entries[c].value.as_ref())
                .map(|v| v.text.clone())
        };
        let mut detail = field("type").unwrap_or_default();
        if let Some(d) = field("default") {
            detail.push_str(&format!(", default `{d}`"));
        }
        Some(detail)
    })
}

/// The error codes a workflow may answer with: the protocol's, then those
/// the platforms of `chain` declare.
pub fn error_codes(docs: &Docs, chain: &[PathBuf]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = crate::workflow::vocab::ERROR_CODES
        .iter()
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .collect();
    for (code, d) in declared(docs, chain, &["declare", "error_codes"], |_, _| None) {
        if !out.iter().any(|(c, _)| *c == code) {
            out.push((code, d.description.unwrap_or_default()));
        }
    }
    out
}

fn declared(
    docs: &Docs,
    chain: &[PathBuf],
    under: &[&str],
    detail: impl Fn(&Outline, usize) -> Option<String>,
) -> IndexMap<String, Declared> {
    let mut out = IndexMap::default();
    for dir in chain {
        let path = dir.join(MANIFEST);
        let Some(text) = docs.text(&path) else {
            continue;
        };
        let o = Outline::parse(&text);
        for (i, key) in o.keys_under(under) {
            // A code declared as `Code: what it means`.
            let inline = o.entries[i].value.as_ref().map(|v| v.text.clone());
            out.entry(key.text.clone()).or_insert_with(|| Declared {
                description: description(&o, &text, Some(i)).or(inline),
                at: Place {
                    path: path.clone(),
                    token: key.clone(),
                },
                detail: detail(&o, i),
            });
        }
    }
    out
}

/// The states of a workflow or machine file: the keys under `states`.
pub fn states(path: &Path, text: &str, o: &Outline) -> IndexMap<String, Declared> {
    o.keys_under(&["states"])
        .into_iter()
        .map(|(i, key)| {
            let flow = o
                .children(Some(i))
                .find(|&c| o.entries[c].key.as_ref().is_some_and(|k| k.text == "flow"))
                .and_then(|c| o.entries[c].value.as_ref())
                .map(|v| format!("flow {}", v.text));
            (
                key.text.clone(),
                Declared {
                    description: description(o, text, Some(i)),
                    at: Place {
                        path: path.to_path_buf(),
                        token: key.clone(),
                    },
                    detail: flow,
                },
            )
        })
        .collect()
}

/// The `description` of `entry` (a folded or literal block read as one
/// text); of a top-level entry (`workflow: name`), the file's.
pub fn description(o: &Outline, text: &str, entry: Option<usize>) -> Option<String> {
    let parent = match entry {
        Some(e) if o.entries[e].parent.is_none() => None,
        e => e,
    };
    let d = o.children(parent).find(|&c| {
        o.entries[c]
            .key
            .as_ref()
            .is_some_and(|k| k.text == "description")
    })?;
    let e = &o.entries[d];
    let v = e.value.as_ref()?;
    if !(v.text.starts_with('>') || v.text.starts_with('|')) {
        return Some(v.text.clone());
    }
    let lines: Vec<&str> = text
        .split('\n')
        .skip(e.line + 1)
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > e.indent)
        .map(str::trim)
        .collect();
    let sep = if v.text.starts_with('|') { "\n" } else { " " };
    Some(lines.join(sep).trim().to_string())
}
