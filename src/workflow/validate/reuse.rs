//! Checks a run has already made, for the platforms that would make them
//! again: each platform checks every workflow and machine it inherits in its
//! own context, and platforms extending one another mostly share it. A check
//! is reused only when all it reads of its platform is the same, and only
//! when it found nothing: a finding may name the platform it was found in.
//!
//! What a check reads is narrower than its platform: the operations, events
//! and error codes its states name, the workflows it calls, the machines'
//! states, and of the settings only those its expressions name. Platforms
//! that differ elsewhere (another adapter, other settings) share the check.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::workflow::IndexMap;

use super::{Callee, Env, Vocab};
use crate::workflow::expr::Programs;
use crate::workflow::load::RawWorkflow;
use crate::workflow::model::{Machine, Workflow};
use crate::workflow::raw::RawRespond;
use crate::workflow::source::FileId;
use crate::workflow::vocab::{ERROR_CODES, Shape, States};

/// What the check of one workflow reads of its platform, but its settings:
/// those depend on the expressions it compiled ([`SettingsRead`]).
#[derive(PartialEq)]
pub struct WorkflowTerms {
    /// For each operation a state names: whether the platform can run it.
    ops: Vec<bool>,
    /// For each switch event a state waits for: whether the adapter
    /// delivers it (`None`: not an event of the catalog).
    events: Vec<Option<bool>>,
    /// For each error code a state answers with: whether it is known.
    codes: Vec<bool>,
    states: States,
    /// The workflows it calls, as the platform has them.
    calls: Vec<(String, Option<Callee>)>,
}

impl WorkflowTerms {
    pub fn of(raw: &RawWorkflow, env: &Env<'_>) -> Self {
        let mut terms = WorkflowTerms {
            ops: Vec::new(),
            events: Vec::new(),
            codes: Vec::new(),
            states: env.vocab.states.clone(),
            calls: Vec::new(),
        };
        for s in raw.states.values().filter_map(|s| s.raw.as_ref()) {
            let body = s.body.as_deref();
            for op in s.op.iter().chain(body.and_then(|b| b.op.as_ref())) {
                terms.ops.push(env.lacks(op).is_none());
            }
            for w in s.call.iter().chain(body.and_then(|b| b.call.as_ref())) {
                terms.calls.push((w.to_string(), env.callee(w).cloned()));
            }
            if let Some(e) = &s.wait {
                terms.events.push(
                    crate::platform::events::event(e)
                        .map(|spec| env.adapter.is_none_or(|a| a.events.contains(&spec.name))),
                );
            }
            if let Some(RawRespond::Error(e)) = s.respond.as_deref() {
                let code = e.code.as_str();
                terms.codes.push(
                    ERROR_CODES.iter().any(|(c, _)| *c == code)
                        || env.vocab.error_codes.iter().any(|c| c == code),
                );
            }
        }
        terms
    }
}

/// The settings a check's expressions name: `platform.<name>`, or the
/// whole of `platform` when one reads it otherwise (`size(platform)`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SettingsRead {
    whole: bool,
    names: Vec<String>,
}

impl SettingsRead {
    /// Adds what `source` names. Text that merely looks like a read (in a
    /// quoted string, a field of something else) only makes reuse rarer.
    fn scan(&mut self, source: &str) {
        const NAME: &str = "platform";
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let bytes = source.as_bytes();
        let skip_space = |mut i: usize| {
            while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
            i
        };
        for at in crate::workflow::source::occurrences(source, NAME) {
            let from = at + NAME.len();
            if (at > 0 && ident(bytes[at - 1])) || bytes.get(from).is_some_and(|b| ident(*b)) {
                continue;
            }
            let dot = skip_space(from);
            if bytes.get(dot) != Some(&b'.') {
                self.whole = true;
                continue;
            }
            let start = skip_space(dot + 1);
            let mut end = start;
            while bytes.get(end).is_some_and(|b| ident(*b)) {
                end += 1;
            }
            if end == start || bytes[start].is_ascii_digit() {
                self.whole = true;
                continue;
            }
            let name = &source[start..end];
            if !self.names.iter().any(|n| n == name) {
                self.names.push(name.to_string());
            }
        }
    }

    /// Records what every expression parsed until [`SettingsRead::stop`]
    /// names.
    pub fn start(programs: &Programs) -> Rc<RefCell<SettingsRead>> {
        let read = Rc::new(RefCell::new(SettingsRead::default()));
        let sink = read.clone();
        programs.observe(Some(Box::new(move |s: &str| sink.borrow_mut().scan(s))));
        read
    }

    pub fn stop(programs: &Programs, read: Rc<RefCell<SettingsRead>>) -> SettingsRead {
        programs.observe(None);
        Rc::try_unwrap(read).map_or_else(|r| r.borrow().clone(), RefCell::into_inner)
    }

    /// Every setting, as a read of the whole of `platform`.
    pub fn whole() -> Self {
        SettingsRead {
            whole: true,
            names: Vec::new(),
        }
    }

    /// The values of these settings among `settings`: all an expression
    /// specialised for them reads of them.
    pub fn values(&self, settings: &IndexMap<String, serde_json::Value>) -> SettingValues {
        if self.whole {
            SettingValues::Whole(settings.clone())
        } else {
            SettingValues::Names(
                self.names
                    .iter()
                    .map(|n| settings.get(n).cloned())
                    .collect(),
            )
        }
    }

    /// What these settings are in `vocab`: the shapes a check sees.
    fn seen(&self, vocab: &Vocab) -> Seen {
        match &vocab.platform {
            Some(Shape::Record(fields)) if !self.whole => Seen::Names(
                self.names
                    .iter()
                    .map(|n| fields.iter().find(|(f, _)| f == n).map(|(_, s)| s.clone()))
                    .collect(),
            ),
            other => Seen::Whole(other.clone()),
        }
    }
}

/// The values of the settings something reads, in one platform.
#[derive(PartialEq)]
pub enum SettingValues {
    Names(Vec<Option<serde_json::Value>>),
    Whole(IndexMap<String, serde_json::Value>),
}

/// The shapes of the settings a check read, in its platform.
#[derive(PartialEq)]
enum Seen {
    Names(Vec<Option<Shape>>),
    Whole(Option<Shape>),
}

/// One clean check: what it read, what that was, and its result.
struct Entry<K, T> {
    terms: K,
    read: SettingsRead,
    seen: Seen,
    result: Arc<T>,
}

/// Checks without findings, by the file checked. Each file is loaded once
/// per run, so its id names its content.
#[derive(Default)]
pub struct Checked {
    workflows: HashMap<FileId, Vec<Entry<WorkflowTerms, Workflow>>>,
    /// Machines read only the platform's vocabulary: the states, and the
    /// settings their expressions name.
    machines: HashMap<FileId, Vec<Entry<States, Machine>>>,
}

impl Checked {
    pub fn workflow(
        &self,
        file: FileId,
        terms: &WorkflowTerms,
        vocab: &Vocab,
    ) -> Option<(Arc<Workflow>, SettingsRead)> {
        self.workflows
            .get(&file)?
            .iter()
            .find(|e| e.terms == *terms && e.seen == e.read.seen(vocab))
            .map(|e| (e.result.clone(), e.read.clone()))
    }

    pub fn add_workflow(
        &mut self,
        file: FileId,
        terms: WorkflowTerms,
        read: SettingsRead,
        vocab: &Vocab,
        w: Arc<Workflow>,
    ) {
        let seen = read.seen(vocab);
        self.workflows.entry(file).or_default().push(Entry {
            terms,
            read,
            seen,
            result: w,
        });
    }

    pub fn machine(&self, file: FileId, vocab: &Vocab) -> Option<(Arc<Machine>, SettingsRead)> {
        self.machines
            .get(&file)?
            .iter()
            .find(|e| e.terms == vocab.states && e.seen == e.read.seen(vocab))
            .map(|e| (e.result.clone(), e.read.clone()))
    }

    pub fn add_machine(
        &mut self,
        file: FileId,
        read: SettingsRead,
        vocab: &Vocab,
        m: Arc<Machine>,
    ) {
        let seen = read.seen(vocab);
        self.machines.entry(file).or_default().push(Entry {
            terms: vocab.states.clone(),
            read,
            seen,
            result: m,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::SettingsRead;

    fn read(sources: &[&str]) -> SettingsRead {
        let mut r = SettingsRead::default();
        sources.iter().for_each(|s| r.scan(s));
        r
    }

    #[test]
    fn the_settings_an_expression_names_are_read() {
        let r = read(&[
            "platform.logout_reason == 'required' && !platform . free_text",
            "size(platform.media) > 0 && platforms.x && my_platform.y",
            "platform.logout_reason != 'none'",
        ]);
        assert!(!r.whole);
        assert_eq!(r.names, ["logout_reason", "free_text", "media"]);
    }

    #[test]
    fn platform_read_otherwise_is_read_whole() {
        for s in [
            "size(platform)",
            "platform['x']",
            "'a' in platform",
            "platform.",
            "platform.1",
        ] {
            assert!(read(&[s]).whole, "{s}");
        }
        assert!(!read(&["request.reason", "x.platformy > 0 && 'platforms' != ''"]).whole);
    }
}
