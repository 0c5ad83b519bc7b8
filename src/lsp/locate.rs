//! What the cursor is on: a state's name, a transition's target, an
//! operation, a setting read in an expression… by the key path of its line
//! and the kind of file.

use std::path::{Path, PathBuf};

use super::index::{self, Declared, Docs, Kind};
use super::outline::{Outline, Token, flow_items, flow_pairs};

/// The meaning of the token under the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A state's own key under `states`.
    StateKey,
    /// A value that names a state: `next`, `on`, `otherwise`, `start`,
    /// `remove`, a machine's `to` and `initial`.
    StateTarget,
    /// A value that names a workflow: `call`, `overrides`, a request's or
    /// an event's route.
    Workflow,
    Operation,
    /// A key under an operation's `args`.
    Argument {
        op: Option<String>,
    },
    /// A switch event: `wait`, a machine's trigger, a route's key.
    Event,
    /// A machine's trigger: a switch event or an operation.
    Trigger,
    ErrorCode,
    Extends,
    Flow,
    /// `platform.<name>` in an expression; the token is the name.
    Setting,
}

#[derive(Debug, Clone)]
pub struct At {
    pub slot: Slot,
    /// The text the slot holds, which a completion replaces.
    pub token: Token,
}

/// A file open in the editor, with what it needs to answer about itself.
pub struct File<'a> {
    pub docs: &'a Docs,
    pub path: PathBuf,
    pub text: String,
    pub outline: Outline,
    pub kind: Kind,
    pub chain: Vec<PathBuf>,
    /// Where each line starts: a rename asks for a line per entry, which
    /// must not rescan the text each time.
    line_starts: Vec<usize>,
}

impl<'a> File<'a> {
    pub fn new(docs: &'a Docs, path: &Path) -> Option<File<'a>> {
        let text = docs.text(path)?;
        let outline = Outline::parse(&text);
        let kind = index::kind(&outline);
        let dir = path.parent()?;
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Some(File {
            docs,
            path: path.to_path_buf(),
            chain: index::chain(docs, dir),
            line_starts,
            text,
            outline,
            kind,
        })
    }

    /// The states a target in this file may name: its own, and for an
    /// overrides file those of the workflow it changes.
    pub fn states(&self) -> crate::workflow::IndexMap<String, Declared> {
        let mut own = index::states(&self.path, &self.text, &self.outline);
        if let Some(base) = self.base() {
            for (name, d) in base {
                own.entry(name).or_insert(d);
            }
        }
        own
    }

    /// Whether the workflow an overrides file changes has a state `name`.
    pub fn base_has(&self, name: &str) -> bool {
        self.base().is_some_and(|b| b.contains_key(name))
    }

    /// The states of the workflow an overrides file changes.
    fn base(&self) -> Option<crate::workflow::IndexMap<String, Declared>> {
        if self.kind != Kind::Overrides {
            return None;
        }
        let name = self.outline.top("overrides")?;
        let inherited = index::workflows(self.docs, self.chain.get(1..)?);
        let at = &inherited.get(name)?.at;
        let text = self.docs.text(&at.path)?;
        Some(index::states(&at.path, &text, &Outline::parse(&text)))
    }

    pub fn line(&self, n: usize) -> &str {
        let Some(&start) = self.line_starts.get(n) else {
            return "";
        };
        let l = self.text[start..].split('\n').next().unwrap_or("");
        l.strip_suffix('\r').unwrap_or(l)
    }

    /// What is at `line`, byte column `col`.
    pub fn at(&self, line: usize, col: usize) -> Option<At> {
        let text = self.line(line);
        if let Some(setting) = setting_word(text, line, col) {
            return Some(At {
                slot: Slot::Setting,
                token: setting,
            });
        }
        let o = &self.outline;
        let Some(i) = o.at_line(line) else {
            // A key being typed: its parent from the indentation.
            let indent = text.len() - text.trim_start().len();
            let parent = o.parent_for(line, indent)?;
            let mut path: Vec<String> = o.path(parent).iter().map(|s| s.to_string()).collect();
            let token = word(text, line, col);
            path.push(token.text.clone());
            let slot = self.classify(&path, true, Some(parent))?;
            return Some(At { slot, token });
        };
        let e = &o.entries[i];
        let mut path: Vec<String> = o.path(i).iter().map(|s| s.to_string()).collect();
        if let Some(k) = &e.key
            && k.contains(col)
        {
            let slot = self.classify(&path, true, e.parent)?;
            return Some(At {
                slot,
                token: k.clone(),
            });
        }
        let value = match &e.value {
            Some(v) => v.clone(),
            // Nothing written after the colon yet.
            None => Token {
                text: String::new(),
                line,
                start: col.min(text.len()),
                end: col.min(text.len()),
            },
        };
        if value.text.starts_with('{') {
            for (k, v) in flow_pairs(&value) {
                if k.contains(col) {
                    path.push(k.text.clone());
                    let slot = self.classify(&path, true, Some(i))?;
                    return Some(At { slot, token: k });
                }
                if v.contains(col) {
                    path.push(k.text.clone());
                    let slot = self.classify(&path, false, Some(i))?;
                    return Some(At { slot, token: v });
                }
            }
            return None;
        }
        if value.text.starts_with('[') {
            let item = flow_items(&value).into_iter().find(|t| t.contains(col))?;
            let slot = self.classify(&path, false, e.parent)?;
            return Some(At { slot, token: item });
        }
        if !value.contains(col) && e.value.is_some() {
            return None;
        }
        let slot = self.classify(&path, false, e.parent)?;
        Some(At { slot, token: value })
    }

    /// The slot a key (`key`) or a value at `path` is, in this kind of file.
    /// `parent` is the entry the path's last key sits under.
    fn classify(&self, path: &[String], key: bool, parent: Option<usize>) -> Option<Slot> {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let last = *p.last()?;
        match (self.kind, key, p.as_slice()) {
            (Kind::Workflow | Kind::Overrides | Kind::Machine, true, ["states", _]) => {
                Some(Slot::StateKey)
            }
            (Kind::Workflow | Kind::Overrides, false, ["start"] | ["remove"]) => {
                Some(Slot::StateTarget)
            }
            (Kind::Workflow | Kind::Overrides, false, ["states", _, "next" | "otherwise"])
            | (Kind::Workflow | Kind::Overrides, false, ["states", _, "on", _])
            | (Kind::Workflow | Kind::Overrides, false, ["states", _, "choice", "next"]) => {
                Some(Slot::StateTarget)
            }
            (Kind::Overrides, false, ["overrides"]) => Some(Slot::Workflow),
            (Kind::Workflow | Kind::Overrides, false, ["states", .., "call"]) => {
                Some(Slot::Workflow)
            }
            (Kind::Workflow | Kind::Overrides, false, ["states", .., "op"]) => {
                Some(Slot::Operation)
            }
            (Kind::Workflow | Kind::Overrides, true, ["states", .., "args", _]) => {
                Some(Slot::Argument {
                    op: self.sibling(parent, "op"),
                })
            }
            (Kind::Workflow | Kind::Overrides, false, ["states", _, "wait"]) => Some(Slot::Event),
            (
                Kind::Workflow | Kind::Overrides,
                false,
                ["states", _, "respond", "error", "code"],
            ) => Some(Slot::ErrorCode),
            (Kind::Workflow | Kind::Overrides, false, ["states", _, "flow"]) => Some(Slot::Flow),
            (Kind::Machine, false, ["initial"]) => Some(Slot::StateTarget),
            (Kind::Machine, false, _) if last == "to" => Some(Slot::StateTarget),
            (Kind::Machine, false, ["on", _] | ["states", _, "on", _]) => Some(Slot::StateTarget),
            (Kind::Machine, true, ["on", _] | ["states", _, "on", _]) => Some(Slot::Trigger),
            (Kind::Platform, false, ["extends"]) => Some(Slot::Extends),
            (Kind::Platform, false, ["requests", _] | ["events", _]) => Some(Slot::Workflow),
            (Kind::Platform, true, ["events", _]) => Some(Slot::Event),
            // A value set for a setting some platform of the chain declares.
            (Kind::Platform, true, ["settings", _]) => Some(Slot::Setting),
            _ => None,
        }
    }

    /// The value of `key` beside the keys under `parent`'s parent: the
    /// `op` of the state whose `args` the cursor is in.
    fn sibling(&self, parent: Option<usize>, key: &str) -> Option<String> {
        let o = &self.outline;
        let owner = o.entries[parent?].parent;
        o.children(owner)
            .find(|&c| o.entries[c].key.as_ref().is_some_and(|k| k.text == key))
            .and_then(|c| o.entries[c].value.as_ref())
            .map(|v| v.text.clone())
    }
}

/// The dotted word around `col` (`agent.set_ready`, `platform.media`), or
/// an empty token at `col`.
pub fn word(text: &str, line: usize, col: usize) -> Token {
    let col = col.min(text.len());
    let is = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == '-';
    let start = text[..col]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is(*c))
        .last()
        .map_or(col, |(i, _)| i);
    let end = text[col..]
        .char_indices()
        .find(|(_, c)| !is(*c))
        .map_or(text.len(), |(i, _)| col + i);
    Token {
        text: text[start..end].to_string(),
        line,
        start,
        end,
    }
}

/// The setting's name when the cursor is on `platform.<name>` in an
/// expression (or just after `platform.`, where a name is to come).
fn setting_word(text: &str, line: usize, col: usize) -> Option<Token> {
    let w = word(text, line, col);
    let at = w.text.find("platform.")?;
    // `platform.` must start the word, not end another name.
    if at != 0 {
        return None;
    }
    let start = w.start + "platform.".len();
    if col < start {
        return None;
    }
    let rest = &w.text["platform.".len()..];
    let name = rest.split('.').next().unwrap_or("");
    Some(Token {
        text: name.to_string(),
        line,
        start,
        end: start + name.len(),
    })
}
