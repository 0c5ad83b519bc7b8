//! Workflow variables: declared under `vars:`, written by a state's `set:`,
//! read as `vars.<name>`. A read must follow a `set` on every path from
//! `start` (or the variable has an `initial` value): a must-be-assigned
//! analysis over the workflow's graph, as compilers check locals.

use std::collections::BTreeSet;

use super::graph::Resolved;
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule};
use crate::workflow::expr::ReadAt;
use crate::workflow::load::Ctx;

/// What one state does with variables, by variable index.
#[derive(Default)]
pub struct Uses {
    /// Set on entering the state.
    pub set: BTreeSet<usize>,
    /// Read by its `set` expressions: before its own sets.
    pub reads_before: Vec<(usize, ReadAt)>,
    /// Read by the rest of the state: after its own sets.
    pub reads_after: Vec<(usize, ReadAt)>,
}

/// Reports every read that some path from `start` reaches with the
/// variable never set. `initial`: variables set when the workflow starts.
pub fn check(
    cx: Ctx<'_>,
    names: &[String],
    initial: &BTreeSet<usize>,
    uses: &[Uses],
    edges: &[Resolved],
    start: usize,
    diags: &mut Diagnostics,
) {
    // Nothing read, nothing to prove: most workflows have no variables.
    if uses
        .iter()
        .all(|u| u.reads_before.is_empty() && u.reads_after.is_empty())
    {
        return;
    }
    let n = uses.len();
    // `None`: not reached (yet). Sets only shrink once reached: the
    // intersection over the paths that reach the state.
    let mut assigned: Vec<Option<BTreeSet<usize>>> = vec![None; n];
    assigned[start] = Some(initial.clone());
    let mut changed = true;
    while changed {
        changed = false;
        for e in edges {
            let Some(at_from) = &assigned[e.from] else {
                continue;
            };
            let out: BTreeSet<usize> = at_from.union(&uses[e.from].set).copied().collect();
            let next = match &assigned[e.to] {
                None => out,
                Some(cur) => cur.intersection(&out).copied().collect(),
            };
            if assigned[e.to].as_ref() != Some(&next) {
                assigned[e.to] = Some(next);
                changed = true;
            }
        }
    }
    for (i, u) in uses.iter().enumerate() {
        let Some(before) = &assigned[i] else { continue };
        let after: BTreeSet<usize> = before.union(&u.set).copied().collect();
        for (reads, set) in [(&u.reads_before, before), (&u.reads_after, &after)] {
            for (var, at) in reads {
                if set.contains(var) {
                    continue;
                }
                let name = &names[*var];
                diags.push(
                    Diagnostic::new(
                        Rule::UnassignedVariable,
                        at.span(cx),
                        format!("`vars.{name}` may be read here before it is set"),
                    )
                    .label("not set on every path to here")
                    .help(format!(
                        "set it (`set: {{ {name}: … }}`) in a state on every path from `start`, or declare it with an `initial:` value"
                    )),
                );
            }
        }
    }
}
