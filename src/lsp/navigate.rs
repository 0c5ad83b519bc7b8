//! Go-to-definition and rename.

use super::index::{self, Place};
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
    #[error("this workflow already has a state `{0}`")]
    Taken(String),
    #[error("`{0}` is declared in another file; rename it there")]
    Elsewhere(String),
}

/// The edits that rename the state under the cursor to `new`: its key and
/// every target in the file that names it.
pub fn rename(
    file: &File<'_>,
    line: usize,
    col: usize,
    new: &str,
) -> Result<Vec<Token>, RenameError> {
    let at = file.at(line, col).ok_or(RenameError::NotAState)?;
    if !matches!(at.slot, Slot::StateKey | Slot::StateTarget) {
        return Err(RenameError::NotAState);
    }
    let old = at.token.text.clone();
    if new.is_empty() || !new.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Err(RenameError::BadName(new.to_string()));
    }
    let own = index::states(&file.path, &file.text, &file.outline);
    if !own.contains_key(&old) {
        return Err(RenameError::Elsewhere(old));
    }
    if new != old && file.states().contains_key(new) {
        return Err(RenameError::Taken(new.to_string()));
    }
    Ok(references(file, &old))
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
