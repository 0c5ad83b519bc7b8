//! Go-to-definition and rename.

use std::path::PathBuf;

use super::index::{self, Kind, Place};
use super::locate::{File, Slot};
use super::outline::{Token, flow_items, flow_pairs};
use crate::workflow::validate::MANIFEST;

/// Where what the cursor is on is declared.
pub fn definition(file: &File<'_>, line: usize, col: usize) -> Option<Place> {
    let at = file.at(line, col)?;
    let name = at.token.text.as_str();
    match at.slot {
        Slot::StateTarget | Slot::StateKey => file.states().get(name).map(|d| d.at.clone()),
        Slot::Workflow => index::workflows(file.docs, &file.chain)
            .get(name)
            .map(|d| d.at.clone()),
        Slot::Setting => index::settings(file.docs, &file.chain)
            .get(name)
            .map(|d| d.at.clone()),
        Slot::Extends => {
            let path = file.path.parent()?.parent()?.join(name).join(MANIFEST);
            let text = file.docs.text(&path)?;
            let o = super::outline::Outline::parse(&text);
            let token = o.entries[o.find(&["platform"])?].key.clone()?;
            Some(Place { path, token })
        }
        _ => None,
    }
}

/// Why a rename was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenameError {
    #[error("only a state's name can be renamed here")]
    NotAState,
    #[error("`{0}` is not a state name: use letters, digits and `_`")]
    BadName(String),
    #[error("`{0}` already names a state of this workflow")]
    Taken(String),
    #[error("`{0}` is declared in the workflow this file overrides; rename it there")]
    Elsewhere(String),
    #[error(
        "{0} writes a flow mapping or list over several lines, or one inside another, \
         where a rename could miss a transition; rename by hand"
    )]
    Unsure(String),
}

/// The edits that rename the state under the cursor to `new`, by file: its
/// key and every transition that names it, in this file and in the
/// overrides files of the platforms that extend this one.
pub fn rename(
    file: &File<'_>,
    line: usize,
    col: usize,
    new: &str,
) -> Result<Vec<(PathBuf, Vec<Token>)>, RenameError> {
    let at = file.at(line, col).ok_or(RenameError::NotAState)?;
    if !matches!(at.slot, Slot::StateKey | Slot::StateTarget) {
        return Err(RenameError::NotAState);
    }
    let old = at.token.text.clone();
    if new.is_empty() || !new.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(RenameError::BadName(new.to_string()));
    }
    let own = index::states(&file.path, &file.text, &file.outline);
    // A key of an overrides file that the base also has replaces that
    // state: its name is the base's.
    if !own.contains_key(&old) || (file.kind == Kind::Overrides && file.base_has(&old)) {
        return Err(RenameError::Elsewhere(old));
    }
    let mut files = vec![(file.path.clone(), references(file, &old))];
    // The base's states, for an overrides file, are its own too.
    let taken = file.kind == Kind::Overrides && file.base_has(new) || own.contains_key(new);
    if new != old && taken {
        return Err(RenameError::Taken(new.to_string()));
    }
    check_flows(file)?;
    if file.kind == Kind::Workflow {
        for other in overriding(file) {
            let Some(o) = File::new(file.docs, &other) else {
                continue;
            };
            if new != old && o.states().contains_key(new) {
                return Err(RenameError::Taken(new.to_string()));
            }
            let refs = references(&o, &old);
            if !refs.is_empty() {
                check_flows(&o)?;
                files.push((other, refs));
            }
        }
    }
    Ok(files)
}

/// The overrides files, in the folders beside this workflow's, of the
/// platforms that extend this one and change this workflow.
fn overriding(file: &File<'_>) -> Vec<PathBuf> {
    let (Some(name), Some(dir)) = (file.outline.top("workflow"), file.path.parent()) else {
        return Vec::new();
    };
    let Some(base) = dir.parent() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(base) else {
        return out;
    };
    let mut folders: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.as_path() != dir)
        .collect();
    folders.sort();
    for folder in folders {
        if !index::chain(file.docs, &folder)
            .iter()
            .skip(1)
            .any(|c| c == dir)
        {
            continue;
        }
        for path in index::yaml_files(&folder, file.docs) {
            let Some(text) = file.docs.text(&path) else {
                continue;
            };
            let o = super::outline::Outline::parse(&text);
            if index::kind(&o) == Kind::Overrides && o.top("overrides") == Some(name) {
                out.push(path);
            }
        }
    }
    out
}

/// Refuses a file whose transitions the outline may not all see.
fn check_flows(file: &File<'_>) -> Result<(), RenameError> {
    let tangled = file.outline.entries.iter().any(|e| {
        e.value.as_ref().is_some_and(|v| {
            (v.text.starts_with('{') || v.text.starts_with('['))
                && !super::outline::flat_flow(&v.text)
        })
    });
    if tangled {
        let name = file
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        return Err(RenameError::Unsure(name));
    }
    Ok(())
}

/// The tokens in `file` that name the state `name`: its key and each target.
pub fn references(file: &File<'_>, name: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for e in &file.outline.entries {
        let mut candidates: Vec<(usize, Token)> = Vec::new();
        if let Some(k) = &e.key {
            candidates.push((k.start, k.clone()));
        }
        if let Some(v) = &e.value {
            if v.text.starts_with('{') {
                candidates.extend(flow_pairs(v).into_iter().map(|(_, v)| (v.start, v)));
            } else if v.text.starts_with('[') {
                candidates.extend(flow_items(v).into_iter().map(|t| (t.start, t)));
            } else {
                candidates.push((v.start, v.clone()));
            }
        }
        for (col, token) in candidates {
            if token.text != name {
                continue;
            }
            if file
                .at(e.line, col)
                .is_some_and(|a| matches!(a.slot, Slot::StateKey | Slot::StateTarget))
            {
                out.push(token);
            }
        }
    }
    out
}
