//! Checks on the shape of a workflow's graph: every target and the start
//! exist, every state is reachable, and every state can still finish.

use rustc_hash::FxHashMap as HashMap;

use petgraph::Direction;
// Kosaraju, not Tarjan: petgraph's Tarjan recurses once per state, and a
// long chain of states overflowed the stack.
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Dfs, EdgeRef, Reversed};

use super::states::Edges;
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, closest, did_you_mean};
use crate::workflow::load::Ctx;
use crate::workflow::model::Trigger;
use crate::workflow::raw::Sp;
use crate::workflow::source::Span;

/// What the graph checks know of one state.
pub struct Node<'a> {
    pub name: &'a Sp<String>,
    pub terminal: bool,
    /// The state itself failed to check: its edges are incomplete, so nothing
    /// is concluded from their absence.
    pub broken: bool,
    pub edges: Edges,
    /// Names that may be targets (values of misspelt keys): edges when they
    /// name a state, silently dropped otherwise.
    pub hints: Vec<Sp<String>>,
}

/// A transition with its target resolved to a state index.
pub struct Resolved {
    pub from: usize,
    pub trigger: Trigger,
    pub to: usize,
    pub span: Span,
}

pub fn check(
    cx: Ctx<'_>,
    nodes: &[Node<'_>],
    start: Option<&Sp<String>>,
    states_key: Option<&Span>,
    diags: &mut Diagnostics,
) -> (Option<usize>, Vec<Resolved>) {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let names = || nodes.iter().map(|n| n.name.as_str());
    let mut graph = DiGraph::<usize, ()>::with_capacity(nodes.len(), nodes.len() * 2);
    for i in 0..nodes.len() {
        graph.add_node(i);
    }
    let mut resolved = Vec::new();
    let mut unresolved = vec![false; nodes.len()];
    // States a misspelt target most likely meant: already named in that
    // diagnostic's help, so not reported again as unreachable.
    let mut meant = Vec::new();
    for (from, n) in nodes.iter().enumerate() {
        for hint in &n.hints {
            if let Some(&to) = index.get(hint.as_str()) {
                graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
            }
        }
        for (trigger, target) in &n.edges {
            let span = cx.span_of(target);
            match index.get(target.as_str()) {
                Some(&to) => {
                    graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
                    resolved.push(Resolved {
                        from,
                        trigger: trigger.clone(),
                        to,
                        span,
                    });
                }
                None => {
                    unresolved[from] = true;
                    let suggestion = closest(target, names());
                    diags.push(
                        Diagnostic::new(
                            Rule::UndefinedTarget,
                            span,
                            format!("transition to undefined state `{}`", target.as_str()),
                        )
                        .label("no state of this name")
                        .help(match suggestion {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("states: {}", names().collect::<Vec<_>>().join(", ")),
                        }),
                    );
                    meant.extend(suggestion.and_then(|s| index.get(s).copied()));
                }
            }
        }
    }

    let start_ix = start.and_then(|s| match index.get(s.as_str()) {
        Some(&i) => Some(i),
        None => {
            diags.push(
                Diagnostic::new(
                    Rule::UndefinedStart,
                    cx.span_of(s),
                    format!("start state `{}` is not defined", s.as_str()),
                )
                .label("no state of this name")
                .help(did_you_mean(s, names()).unwrap_or_else(|| {
                    format!("states: {}", names().collect::<Vec<_>>().join(", "))
                })),
            );
            None
        }
    });

    if let Some(s) = start_ix {
        let mut reached = vec![false; nodes.len()];
        let mut bfs = Bfs::new(&graph, NodeIndex::new(s));
        while let Some(n) = bfs.next(&graph) {
            reached[n.index()] = true;
        }
        unreachable(cx, nodes, &graph, reached, &meant, diags);
    }

    // States that may finish: terminals, and (to avoid cascades) states whose
    // transitions could not all be checked.
    let finishing: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].terminal || nodes[i].broken || unresolved[i])
        .collect();
    let mut can_finish = vec![false; nodes.len()];
    let reversed = Reversed(&graph);
    // One walk for all: what an earlier start reached is not walked again.
    let mut walk = Dfs::empty(reversed);
    for &f in &finishing {
        if can_finish[f] {
            continue;
        }
        walk.move_to(NodeIndex::new(f));
        while let Some(n) = walk.next(reversed) {
            can_finish[n.index()] = true;
        }
    }

    let no_terminal = !nodes.is_empty() && nodes.iter().all(|n| !n.terminal && !n.broken);
    if no_terminal {
        let at = states_key.cloned().unwrap_or_else(|| cx.span_bytes(0, 0));
        diags.push(
            Diagnostic::new(Rule::NoTerminalPath, at, "no state ends the workflow")
                .label("no `respond` state among these")
                .help("every run must end in a `respond` state: add one with `respond: { ok: {} }` or an error"),
        );
        return (start_ix, resolved);
    }

    for (i, n) in nodes.iter().enumerate() {
        if !can_finish[i]
            && graph
                .edges_directed(NodeIndex::new(i), Direction::Outgoing)
                .next()
                .is_none()
        {
            diags.push(
                Diagnostic::new(
                    Rule::DeadEnd,
                    cx.span_of(n.name),
                    format!("state `{}` has no transition out", n.name.as_str()),
                )
                .label("the workflow would stop here without a response")
                .help("add `next:`/`on:`/`otherwise:`, or end with a `respond` state"),
            );
        }
    }

    for scc in kosaraju_scc(&graph) {
        // Most states are a component of their own, in no loop.
        if let [only] = scc[..]
            && !graph.contains_edge(only, only)
        {
            continue;
        }
        // In file order, whatever order the algorithm found them in.
        let mut members: Vec<usize> = scc.iter().map(|n| n.index()).collect();
        members.sort_unstable();
        let looped = members.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !looped || members.iter().any(|&m| can_finish[m]) {
            continue;
        }
        let inside: std::collections::HashSet<_> = scc.iter().copied().collect();
        let exits = scc
            .iter()
            .any(|&n| graph.edges(n).any(|e| !inside.contains(&e.target())));
        if exits {
            continue;
        }
        let first = *members.iter().min().expect("non-empty scc");
        let mut d = Diagnostic::new(Rule::CycleWithoutExit, cx.span_of(nodes[first].name), format!("states {} loop forever", list(nodes, &members)))
            .label("this loop has no way out")
            .help("add a transition that leaves the loop (e.g. a choice branch with a bound, or an error outcome) to a respond state");
        for &m in members.iter().filter(|&&m| m != first) {
            d = d.related(cx.span_of(nodes[m].name), "part of the loop");
        }
        diags.push(d);
    }

    if let Some(s) = start_ix
        && !can_finish[s]
    {
        diags.push(
            Diagnostic::new(
                Rule::NoTerminalPath,
                cx.span_of(start.expect("start resolved")),
                "no path from the start state reaches a `respond` state",
            )
            .label("every run from here stops without a response")
            .help(
                "connect the states after the dead end or loop reported here to a `respond` state",
            ),
        );
    }
    (start_ix, resolved)
}

/// Reports each unreachable region once, at its entry: a state no other
/// state leads to (or, for a closed loop, its first state), with the number of
/// states that are unreachable only because of it.
fn unreachable(
    cx: Ctx<'_>,
    nodes: &[Node<'_>],
    graph: &DiGraph<usize, ()>,
    mut covered: Vec<bool>,
    meant: &[usize],
    diags: &mut Diagnostics,
) {
    let has_pred = |i: usize| {
        graph
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .any(|p| p.index() != i)
    };
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|&i| !covered[i] && !has_pred(i))
        .collect();
    let candidates = roots.into_iter().chain(0..nodes.len());
    for root in candidates {
        if covered[root] {
            continue;
        }
        let mut after = 0;
        let mut bfs = Bfs::new(graph, NodeIndex::new(root));
        while let Some(n) = bfs.next(graph) {
            if !covered[n.index()] {
                covered[n.index()] = true;
                after += 1;
            }
        }
        if meant.contains(&root) {
            continue;
        }
        let n = &nodes[root];
        let label = match after - 1 {
            0 => "no path from the start state leads here".to_string(),
            1 => "no path from the start state leads here, nor to the 1 state after it".to_string(),
            k => format!("no path from the start state leads here, nor to the {k} states after it"),
        };
        diags.push(
            Diagnostic::new(
                Rule::UnreachableState,
                cx.span_of(n.name),
                format!("state `{}` is unreachable", n.name.as_str()),
            )
            .label(label)
            .help("add a transition to it, or delete it"),
        );
    }
}

fn list(nodes: &[Node<'_>], members: &[usize]) -> String {
    let mut names: Vec<&str> = members.iter().map(|&m| nodes[m].name.as_str()).collect();
    names.sort_unstable();
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
