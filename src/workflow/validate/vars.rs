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
    // Sets of variables as bits, `words` to a state, all states in one
    // buffer: the fixed point below unites and intersects them per edge
    // and per round, with nothing allocated.
    let words = names.len().div_ceil(64).max(1);
    let bits = |set: &BTreeSet<usize>, out: &mut [u64]| {
        for v in set {
            out[v / 64] |= 1 << (v % 64);
        }
    };
    let mut sets = vec![0u64; uses.len() * words];
    for (u, out) in uses.iter().zip(sets.chunks_mut(words)) {
        bits(&u.set, out);
    }
    // `reached[i]`: some path reaches state `i`. Once reached, its set only
    // shrinks: the intersection over the paths that reach it.
    let mut reached = vec![false; uses.len()];
    let mut assigned = vec![0u64; uses.len() * words];
    reached[start] = true;
    bits(initial, &mut assigned[start * words..(start + 1) * words]);
    let mut out = vec![0u64; words];
    let mut changed = true;
    while changed {
        changed = false;
        for e in edges {
            if !reached[e.from] {
                continue;
            }
            let from = &assigned[e.from * words..(e.from + 1) * words];
            let own = &sets[e.from * words..(e.from + 1) * words];
            for ((o, a), s) in out.iter_mut().zip(from).zip(own) {
                *o = a | s;
            }
            let to = &mut assigned[e.to * words..(e.to + 1) * words];
            if !reached[e.to] {
                reached[e.to] = true;
                to.copy_from_slice(&out);
                changed = true;
                continue;
            }
            for (t, o) in to.iter_mut().zip(&out) {
                let next = *t & o;
                changed |= next != *t;
                *t = next;
            }
        }
    }
    let has = |set: &[u64], v: usize| set[v / 64] & (1 << (v % 64)) != 0;
    for (i, u) in uses.iter().enumerate() {
        if !reached[i] {
            continue;
        }
        let before = &assigned[i * words..(i + 1) * words];
        let own = &sets[i * words..(i + 1) * words];
        for (reads, after) in [(&u.reads_before, false), (&u.reads_after, true)] {
            for (var, at) in reads {
                if has(before, *var) || (after && has(own, *var)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::expr::Programs;
    use crate::workflow::model::Trigger;
    use crate::workflow::source::{Sources, Span};

    /// The analysis over more variables than one word of bits holds: a
    /// variable set on one branch only is reported where the branches meet,
    /// one set on both or from the start is not.
    #[test]
    fn a_read_after_a_join_needs_a_set_on_both_branches() {
        let mut sources = Sources::new();
        let file = sources.add("w.yaml".into(), "x".repeat(64));
        let programs = Programs::default();
        let cx = Ctx {
            sources: &sources,
            file,
            programs: &programs,
        };
        let at = |n: usize| {
            ReadAt::Span(Span {
                file,
                range: n..n + 1,
            })
        };
        let names: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let uses = vec![
            Uses::default(),
            Uses {
                set: [70, 99].into(),
                ..Uses::default()
            },
            Uses {
                set: [99].into(),
                ..Uses::default()
            },
            Uses {
                set: [3].into(),
                reads_before: vec![(70, at(1)), (99, at(2)), (5, at(3)), (3, at(4))],
                reads_after: vec![(3, at(5)), (64, at(6))],
            },
        ];
        let edge = |from, to| Resolved {
            from,
            trigger: Trigger::Next,
            to,
            span: Span { file, range: 0..0 },
        };
        let edges = [edge(0, 1), edge(0, 2), edge(1, 3), edge(2, 3)];
        let mut diags = Diagnostics::new();
        check(cx, &names, &[5].into(), &uses, &edges, 0, &mut diags);
        let reported: Vec<usize> = diags.iter().map(|d| d.span.range.start).collect();
        // v70 (one branch), v3 before its own set, v64 (never set).
        assert_eq!(reported, [1, 4, 6], "{diags:?}");
    }
}
