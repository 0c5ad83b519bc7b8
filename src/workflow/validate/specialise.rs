//! A platform's workflows and machines specialised for its settings, as
//! [`Platform::specialise`] makes them, but each once per run for what it
//! depends on: the model checked, the values of the settings its
//! expressions name and where its calls' callees sit. Platforms that share a
//! check mostly differ in settings it does not read; specialising it again
//! for each (a copy of the whole workflow, every expression folded) cost a
//! tenth of validating the workflows/ tree.
//!
//! Validation itself does not specialise: `hisflow validate` and the
//! language server never run a workflow. What runs one asks for it with
//! [`Report::prepare`] ([`super::load_platform`] does).

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::Report;
use super::reuse::{SettingValues, SettingsRead};
use crate::workflow::expr::CompiledExpr;
use crate::workflow::model::{Machine, Platform, Workflow, WorkflowCall, specialise_workflow};

/// What a specialisation depends on besides the model checked.
#[derive(PartialEq)]
struct Inputs {
    settings: SettingValues,
    /// Each call's callee's place among the platform's workflows.
    calls: Vec<Option<usize>>,
}

struct Made<T> {
    /// Kept, so that no other model takes its address while it is a key.
    checked: Arc<T>,
    inputs: Inputs,
    made: Arc<T>,
}

impl<T> Made<T> {
    fn find<'a>(made: &'a [Made<T>], checked: &Arc<T>, inputs: &Inputs) -> Option<&'a Arc<T>> {
        made.iter()
            .find(|m| Arc::ptr_eq(&m.checked, checked) && m.inputs == *inputs)
            .map(|m| &m.made)
    }
}

/// What a platform's models read of its settings, as validation found it.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// The settings each workflow's expressions name, by the workflow's name.
    pub workflows: HashMap<String, SettingsRead>,
    /// Each machine's, in the platform's order.
    pub machines: Vec<SettingsRead>,
}

impl Report {
    /// Readies the platforms for running: in every expression of their
    /// workflows and machines, works out what the platform's settings alone
    /// decide, and notes where each call's callee sits. Platforms that read
    /// the same settings of a model with the same values share its
    /// specialisation. A platform runs the same without it, more slowly.
    pub fn prepare(&mut self) {
        // Twice would work out again what the first time decided.
        let Some(reads) = self.reads.take() else {
            return;
        };
        let mut made = Specialised::default();
        let none = Reads::default();
        for p in &mut self.platforms {
            made.platform(p, reads.get(&p.dir).unwrap_or(&none));
        }
    }
}

/// The specialisations a run has made.
#[derive(Default)]
struct Specialised {
    workflows: Vec<Made<Workflow>>,
    machines: Vec<Made<Machine>>,
}

fn calls(w: &Workflow) -> impl Iterator<Item = &WorkflowCall> {
    w.graph.node_weights().filter_map(|s| s.kind.call())
}

impl Specialised {
    /// Does what [`Platform::specialise`] does to `p`, taking what an
    /// earlier platform made where it depends on the same. A model without
    /// its reads is taken to read all the settings.
    fn platform(&mut self, p: &mut Platform, reads: &Reads) {
        let Reads {
            workflows: reads,
            machines: machine_reads,
        } = reads;
        let index = p.workflow_index();
        let all = SettingsRead::whole();
        let inputs: Vec<Inputs> = p
            .workflows
            .iter()
            .map(|(name, w)| Inputs {
                settings: reads.get(name).unwrap_or(&all).values(&p.settings),
                calls: calls(w).map(|c| index.get(&c.workflow).copied()).collect(),
            })
            .collect();
        let machine_inputs: Vec<Inputs> = (0..p.machines.len())
            .map(|i| Inputs {
                settings: machine_reads.get(i).unwrap_or(&all).values(&p.settings),
                calls: Vec::new(),
            })
            .collect();
        let made: Vec<Option<Arc<Workflow>>> = p
            .workflows
            .values()
            .zip(&inputs)
            .map(|(w, i)| Made::find(&self.workflows, w, i).cloned())
            .collect();
        let machines_made: Vec<Option<Arc<Machine>>> = p
            .machines
            .iter()
            .zip(&machine_inputs)
            .map(|(m, i)| Made::find(&self.machines, m, i).cloned())
            .collect();
        #[cfg(test)]
        let fresh = tests::FRESH.get();
        #[cfg(not(test))]
        let fresh = false;
        // Nothing made already: the platform's own way, its results kept.
        if fresh || (made.iter().all(Option::is_none) && machines_made.iter().all(Option::is_none))
        {
            let checked: Vec<Arc<Workflow>> = p.workflows.values().cloned().collect();
            let machines: Vec<Arc<Machine>> = p.machines.clone();
            p.specialise();
            for ((checked, inputs), made) in
                checked.into_iter().zip(inputs).zip(p.workflows.values())
            {
                self.workflows.push(Made {
                    checked,
                    inputs,
                    made: made.clone(),
                });
            }
            for ((checked, inputs), made) in
                machines.into_iter().zip(machine_inputs).zip(&p.machines)
            {
                self.machines.push(Made {
                    checked,
                    inputs,
                    made: made.clone(),
                });
            }
            return;
        }
        // What [`Platform::specialise`] does, to those not made already.
        let settings = p.settings_value();
        let mut f = |e: &mut CompiledExpr| e.specialise(settings.as_ref());
        for ((w, inputs), made) in p.workflows.values_mut().zip(inputs).zip(made) {
            if let Some(made) = made {
                *w = made;
                continue;
            }
            let checked = w.clone();
            specialise_workflow(Arc::make_mut(w), &mut f, &index);
            self.workflows.push(Made {
                checked,
                inputs,
                made: w.clone(),
            });
        }
        for ((m, inputs), made) in p.machines.iter_mut().zip(machine_inputs).zip(machines_made) {
            if let Some(made) = made {
                *m = made;
                continue;
            }
            let checked = m.clone();
            Arc::make_mut(m).exprs_mut(&mut f);
            self.machines.push(Made {
                checked,
                inputs,
                made: m.clone(),
            });
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;
    use std::path::PathBuf;

    thread_local! {
        /// Specialise every platform afresh, with [`Platform::specialise`].
        pub static FRESH: Cell<bool> = const { Cell::new(false) };
    }

    /// Each platform's models, as text: workflows by their graph and
    /// variables (their name index is a hash map, printed in any order).
    fn models(fresh: bool) -> Vec<String> {
        FRESH.set(fresh);
        let tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let report = super::super::validate_paths(&[tree]).map(|mut r| {
            r.prepare();
            r
        });
        FRESH.set(false);
        let report = report.unwrap();
        assert!(!report.diagnostics.has_errors());
        report
            .platforms
            .iter()
            .map(|p| {
                let workflows: Vec<String> = p
                    .workflows
                    .values()
                    .map(|w| format!("{:?} {:?}", w.graph, w.vars))
                    .collect();
                format!("{}: {workflows:?} {:?}", p.name, p.machines)
            })
            .collect()
    }

    #[test]
    fn what_is_specialised_once_is_what_each_platform_would_make() {
        let (reused, fresh) = (models(false), models(true));
        assert_eq!(reused.len(), fresh.len());
        for (r, f) in reused.iter().zip(&fresh) {
            assert!(r == f, "{}", &r[..r.len().min(200)]);
        }
    }
}
