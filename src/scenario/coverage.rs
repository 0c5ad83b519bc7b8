//! Transition coverage: which transitions of each workflow and machine file
//! no scenario took.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::Coverage;
use crate::workflow::model::{Platform, Target, Trigger};
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
    /// Coverage of every workflow and machine file the platforms use, each
    /// file once.
    pub fn of(platforms: &[&Platform], taken: &Coverage, sources: &Sources) -> Self {
        let mut by_path = BTreeMap::new();
        let mut machines = BTreeMap::new();
        for p in platforms {
            for w in p.workflows.values() {
                by_path.entry(w.path.clone()).or_insert_with(|| w.clone());
            }
            for m in &p.machines {
                machines.entry(m.path.clone()).or_insert_with(|| m.clone());
            }
        }
        let machines = machines.into_values().map(|m| {
            let uncovered = m
                .transitions
                .iter()
                .enumerate()
                .filter(|(i, _)| !taken.machines.contains(&(m.path.clone(), *i)))
                .map(|(_, t)| {
                    let (line, column) = sources.get(t.span.file).line_col(t.span.range.start);
                    Uncovered {
                        from: t.from.map_or_else(
                            || "(any state)".to_string(),
                            |s| m.states[s].name.clone(),
                        ),
                        on: m.label(t),
                        to: match &t.to {
                            Target::Stay => "(stays)".to_string(),
                            Target::State(s) => m.states[*s].name.clone(),
                            Target::Dynamic(tpl) => tpl.display(),
                        },
                        line,
                        column,
                    }
                })
                .collect();
            WorkflowCoverage {
                path: m.path.clone(),
                workflow: m.name.clone(),
                total: m.transitions.len(),
                uncovered,
            }
        });
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
            .chain(machines)
            .collect::<Vec<_>>();
        let mut workflows = workflows;
        workflows.sort_by(|a, b| a.path.cmp(&b.path));
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
