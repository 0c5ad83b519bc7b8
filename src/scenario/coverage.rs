//! Transition coverage: which transitions of each workflow file no scenario
//! took.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::Coverage;
use crate::workflow::model::{Platform, Trigger};
use crate::workflow::source::Sources;

/// A transition no scenario took.
#[derive(Debug, Clone)]
pub struct Uncovered {
    pub from: String,
    pub on: String,
    pub to: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub struct WorkflowCoverage {
    pub path: PathBuf,
    pub workflow: String,
    pub total: usize,
    pub uncovered: Vec<Uncovered>,
}

impl WorkflowCoverage {
    pub fn covered(&self) -> usize {
        self.total - self.uncovered.len()
    }
}

#[derive(Debug, Clone, Default)]
pub struct CoverageReport {
    pub workflows: Vec<WorkflowCoverage>,
}

impl CoverageReport {
    /// Coverage of every workflow file the platforms use, each file once.
    pub fn of(platforms: &[&Platform], taken: &Coverage, sources: &Sources) -> Self {
        let mut by_path = BTreeMap::new();
        for p in platforms {
            for w in p.workflows.values() {
                by_path.entry(w.path.clone()).or_insert_with(|| w.clone());
            }
        }
        let workflows = by_path
            .into_values()
            .map(|w| {
                let mut total = 0;
                let mut uncovered = Vec::new();
                for (sid, s) in w.states() {
                    for (t, to) in w.transitions(sid) {
                        total += 1;
                        if !taken.taken.contains(&(
                            w.path.clone(),
                            s.name.clone(),
                            t.trigger.clone(),
                        )) {
                            let (line, column) =
                                sources.get(t.span.file).line_col(t.span.range.start);
                            uncovered.push(Uncovered {
                                from: s.name.clone(),
                                on: match &t.trigger {
                                    Trigger::Guard(i) => format!("guard {}", i + 1),
                                    other => t.label(s).if_empty(other),
                                },
                                to: w.state(to).name.clone(),
                                line,
                                column,
                            });
                        }
                    }
                }
                WorkflowCoverage {
                    path: w.path.clone(),
                    workflow: w.name.clone(),
                    total,
                    uncovered,
                }
            })
            .collect();
        CoverageReport { workflows }
    }

    pub fn complete(&self) -> bool {
        self.workflows.iter().all(|w| w.uncovered.is_empty())
    }

    pub fn totals(&self) -> (usize, usize) {
        self.workflows
            .iter()
            .fold((0, 0), |(c, t), w| (c + w.covered(), t + w.total))
    }
}

trait IfEmpty {
    fn if_empty(self, t: &Trigger) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, t: &Trigger) -> String {
        if self.is_empty() && *t == Trigger::Next {
            "next".into()
        } else {
            self
        }
    }
}
