//! Transition coverage: which transitions of each workflow and machine file
//! no scenario took.

use std::collections::{BTreeMap, HashMap};
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
    /// The file that wrote the transition: for a workflow a profile
    /// overrides, the states it kept are in the inherited file.
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub struct WorkflowCoverage {
    pub path: PathBuf,
    pub workflow: String,
    /// Transitions a scenario can take: those the platforms' settings rule
    /// out are not counted.
    pub total: usize,
    pub uncovered: Vec<Uncovered>,
    /// Transitions no platform that runs the file can take, with why.
    pub impossible: Vec<(Uncovered, String)>,
}

impl WorkflowCoverage {
    pub fn covered(&self) -> usize {
        self.total - self.uncovered.len()
    }
}

/// Why platforms rule out each transition of a file, one reason per platform.
type Reasons = HashMap<(String, Trigger), Vec<String>>;

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
        // Per file: each transition's reasons, one per platform that rules
        // it out, and how many platforms run the file.
        let mut ruled_out: HashMap<PathBuf, (usize, Reasons)> = HashMap::new();
        let mut machine_ruled_out: HashMap<PathBuf, (usize, HashMap<usize, Vec<String>>)> =
            HashMap::new();
        for p in platforms {
            for w in p.workflows.values() {
                by_path.entry(w.path.clone()).or_insert_with(|| w.clone());
                let (runs, reasons) = ruled_out.entry(w.path.clone()).or_default();
                *runs += 1;
                for i in super::settled::impossible(p, w) {
                    reasons
                        .entry((i.from, i.trigger))
                        .or_default()
                        .push(i.reason);
                }
            }
            for m in &p.machines {
                machines.entry(m.path.clone()).or_insert_with(|| m.clone());
                let (runs, reasons) = machine_ruled_out.entry(m.path.clone()).or_default();
                *runs += 1;
                for (i, why) in super::settled::impossible_in_machine(p, m) {
                    reasons.entry(i).or_default().push(why);
                }
            }
        }
        let machines = machines.into_values().map(|m| {
            let (runs, reasons) = &machine_ruled_out[&m.path];
            // Impossible only where every platform running the file rules
            // it out.
            let why = |i: usize| reasons.get(&i).filter(|r| r.len() == *runs);
            let mut impossible = Vec::new();
            let uncovered: Vec<Uncovered> = m
                .transitions
                .iter()
                .enumerate()
                .filter(|(i, _)| !taken.machines.contains(&(m.path.clone(), *i)))
                .map(|(i, t)| {
                    let written = sources.get(t.span.file);
                    let (line, column) = written.line_col(t.span.range.start);
                    let u = Uncovered {
                        from: t.from.map_or_else(
                            || "(any state)".to_string(),
                            |s| m.states[s].name.to_string(),
                        ),
                        on: m.label(t),
                        to: match &t.to {
                            Target::Stay => "(stays)".to_string(),
                            Target::State(s) => m.states[*s].name.to_string(),
                            Target::Dynamic(tpl) => tpl.display(),
                        },
                        file: written.path().to_path_buf(),
                        line,
                        column,
                    };
                    (i, u)
                })
                .filter_map(|(i, u)| match why(i) {
                    Some(r) => {
                        impossible.push((u, r.join("; ")));
                        None
                    }
                    None => Some(u),
                })
                .collect();
            WorkflowCoverage {
                path: m.path.clone(),
                workflow: m.name.clone(),
                total: m.transitions.len() - impossible.len(),
                uncovered,
                impossible,
            }
        });
        let workflows = by_path
            .into_values()
            .map(|w| {
                let mut total = 0;
                let mut uncovered = Vec::new();
                let mut impossible = Vec::new();
                let (runs, reasons) = &ruled_out[&w.path];
                for (sid, s) in w.states() {
                    for (t, to) in w.transitions(sid) {
                        let took = taken.taken.contains(&(
                            w.path.clone(),
                            s.name.clone(),
                            t.trigger.clone(),
                        ));
                        // Impossible only where every platform running the
                        // file rules it out.
                        let why = reasons
                            .get(&(s.name.clone(), t.trigger.clone()))
                            .filter(|r| r.len() == *runs && !took);
                        if why.is_none() {
                            total += 1;
                        }
                        if !took {
                            let written = sources.get(t.span.file);
                            let (line, column) = written.line_col(t.span.range.start);
                            let u = Uncovered {
                                from: s.name.clone(),
                                on: match &t.trigger {
                                    Trigger::Guard(i) => format!("guard {}", i + 1),
                                    other => t.label(s).if_empty(other),
                                },
                                to: w.state(to).name.clone(),
                                file: written.path().to_path_buf(),
                                line,
                                column,
                            };
                            match why {
                                Some(r) => impossible.push((u, r.join("; "))),
                                None => uncovered.push(u),
                            }
                        }
                    }
                }
                WorkflowCoverage {
                    path: w.path.clone(),
                    workflow: w.name.clone(),
                    total,
                    uncovered,
                    impossible,
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
