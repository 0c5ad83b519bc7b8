//! Checks a run has already made, for the platforms that would make them
//! again: each platform checks every workflow and machine it inherits in its
//! own context, and platforms extending one another mostly share it. A check
//! is reused only when all it reads of its platform is the same, and only
//! when it found nothing: a finding may name the platform it was found in.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Callee, Env, Vocab};
use crate::workflow::load::RawWorkflow;
use crate::workflow::model::{Machine, Workflow};
use crate::workflow::source::FileId;

/// What the check of one workflow reads of its platform.
#[derive(PartialEq)]
pub struct WorkflowTerms {
    adapter: Option<&'static str>,
    lacks: Vec<String>,
    vocab: Vocab,
    /// The workflows it calls, as the platform has them.
    calls: Vec<(String, Option<Callee>)>,
}

impl WorkflowTerms {
    pub fn of(raw: &RawWorkflow, env: &Env<'_>) -> Self {
        let calls = raw
            .states
            .values()
            .filter_map(|s| s.raw.as_ref())
            .flat_map(|s| {
                s.call
                    .iter()
                    .chain(s.body.iter().filter_map(|b| b.call.as_ref()))
            })
            .map(|w| (w.to_string(), env.callee(w).cloned()))
            .collect();
        WorkflowTerms {
            adapter: env.adapter.map(|a| a.kind),
            lacks: env.lacks.to_vec(),
            vocab: env.vocab.clone(),
            calls,
        }
    }
}

/// Checks without findings, by the file checked and the terms it was
/// checked in. Each file is loaded once per run, so its id names its content.
#[derive(Default)]
pub struct Checked {
    workflows: HashMap<FileId, Vec<(WorkflowTerms, Arc<Workflow>)>>,
    /// Machines read only the platform's vocabulary.
    machines: HashMap<FileId, Vec<(Vocab, Arc<Machine>)>>,
}

impl Checked {
    pub fn workflow(&self, file: FileId, terms: &WorkflowTerms) -> Option<Arc<Workflow>> {
        self.workflows
            .get(&file)?
            .iter()
            .find(|(t, _)| t == terms)
            .map(|(_, w)| w.clone())
    }

    pub fn add_workflow(&mut self, file: FileId, terms: WorkflowTerms, w: Arc<Workflow>) {
        self.workflows.entry(file).or_default().push((terms, w));
    }

    pub fn machine(&self, file: FileId, vocab: &Vocab) -> Option<Arc<Machine>> {
        self.machines
            .get(&file)?
            .iter()
            .find(|(v, _)| v == vocab)
            .map(|(_, m)| m.clone())
    }

    pub fn add_machine(&mut self, file: FileId, vocab: Vocab, m: Arc<Machine>) {
        self.machines.entry(file).or_default().push((vocab, m));
    }
}
