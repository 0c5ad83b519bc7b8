//! Transitions a platform's settings make impossible: a choice guard the
//! settings alone decide (`platform.confirmation == 'event'` on a platform
//! that confirms by event), a foreach whose filter refuses every medium the
//! platform has, and whatever only those lead to. Coverage reports them with
//! the reason instead of asking a scenario to take them.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::visit::EdgeRef;

use crate::workflow::model::{
    Body, Foreach, Machine, MachineTrigger, Platform, StateId, StateKind, Trigger, Workflow,
};

/// A transition the platform's settings rule out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impossible {
    pub from: String,
    pub trigger: Trigger,
    pub reason: String,
}

/// The transitions of `w` that cannot happen on `platform`.
pub fn impossible(platform: &Platform, w: &Workflow) -> Vec<Impossible> {
    let settings = platform.settings_value();
    let media = platform.media();
    let name = &platform.name;
    // Edge → why the settings rule it out.
    let mut ruled_out: HashMap<petgraph::graph::EdgeIndex, String> = HashMap::new();
    for (sid, state) in w.states() {
        let mut edges: Vec<_> = w.graph.edges(sid).collect();
        edges.sort_by_key(|e| e.id());
        match &state.kind {
            StateKind::Choice(guards) => {
                // The first guard the settings make always true takes every
                // run: what comes after it never does.
                let mut decided_true: Option<String> = None;
                for e in &edges {
                    if let Some(first) = &decided_true {
                        ruled_out.insert(
                            e.id(),
                            format!("`{first}` is always true on {name}, and is checked first"),
                        );
                        continue;
                    }
                    let Trigger::Guard(i) = e.weight().trigger else {
                        continue;
                    };
                    let guard = &guards[i];
                    match guard.native().and_then(|n| n.decided(settings.as_ref())) {
                        Some(false) => {
                            ruled_out.insert(
                                e.id(),
                                format!("`{}` is never true on {name}", one_line(guard.source())),
                            );
                        }
                        Some(true) => decided_true = Some(one_line(guard.source())),
                        None => {}
                    }
                }
            }
            StateKind::Call(c) => {
                let Some(outs) = answers(platform, &c.workflow) else {
                    continue;
                };
                let handled = |o: &str| {
                    edges
                        .iter()
                        .any(|e| e.weight().trigger == Trigger::Outcome(answer_name(o)))
                };
                for e in &edges {
                    match e.weight().trigger {
                        Trigger::Outcome(o) if !outs.contains(o) => {
                            ruled_out.insert(
                                e.id(),
                                format!("`{}` never answers {o} on {name}", c.workflow),
                            );
                        }
                        Trigger::Otherwise if outs.iter().all(|o| handled(o)) => {
                            ruled_out.insert(
                                e.id(),
                                format!(
                                    "every answer `{}` gives on {name} has its own transition",
                                    c.workflow
                                ),
                            );
                        }
                        _ => {}
                    }
                }
            }
            StateKind::Foreach(Foreach {
                body: Body::Call(c),
                ..
            }) if answers(platform, &c.workflow).is_some_and(|o| o == HashSet::from(["ok"])) => {
                // A body that only answers ok never fails the foreach.
                let done = edges
                    .iter()
                    .any(|e| e.weight().trigger == Trigger::Outcome("done"));
                for e in &edges {
                    let never = match e.weight().trigger {
                        Trigger::Outcome("failed") => true,
                        Trigger::Otherwise => done,
                        _ => false,
                    };
                    if never {
                        ruled_out.insert(
                            e.id(),
                            format!("`{}` only answers ok on {name}: nothing fails", c.workflow),
                        );
                    }
                }
            }
            StateKind::Foreach(f) => {
                let empty = f
                    .items
                    .native()
                    .is_some_and(|n| n.never_any(settings.as_ref(), &media));
                if !empty {
                    continue;
                }
                // No item: the foreach is done at once, whatever the body.
                let done = edges
                    .iter()
                    .find(|e| e.weight().trigger == Trigger::Outcome("done"))
                    .or_else(|| {
                        edges
                            .iter()
                            .find(|e| e.weight().trigger == Trigger::Otherwise)
                    })
                    .map(|e| e.id());
                for e in &edges {
                    if Some(e.id()) != done {
                        ruled_out.insert(
                            e.id(),
                            format!(
                                "`{}` never has an item on {name}: its filter refuses every medium of the platform",
                                state.name
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // What only ruled-out transitions lead to is never reached.
    let mut reached: HashSet<StateId> = HashSet::from([w.start]);
    let mut queue = VecDeque::from([w.start]);
    while let Some(s) = queue.pop_front() {
        for e in w.graph.edges(s) {
            if !ruled_out.contains_key(&e.id()) && reached.insert(e.target()) {
                queue.push_back(e.target());
            }
        }
    }
    let mut out = Vec::new();
    for (sid, state) in w.states() {
        let mut edges: Vec<_> = w.graph.edges(sid).collect();
        edges.sort_by_key(|e| e.id());
        for e in edges {
            let reason = if !reached.contains(&sid) {
                format!("state `{}` is never reached on {name}", state.name)
            } else if let Some(r) = ruled_out.get(&e.id()) {
                r.clone()
            } else {
                continue;
            };
            out.push(Impossible {
                from: state.name.clone(),
                trigger: e.weight().trigger.clone(),
                reason,
            });
        }
    }
    out
}

/// The transitions of machine `m` that cannot happen on `platform`, by
/// index, with why: a guard its settings alone make false, or an operation
/// the platform lacks.
pub fn impossible_in_machine(platform: &Platform, m: &Machine) -> Vec<(usize, String)> {
    let settings = platform.settings_value();
    let name = &platform.name;
    m.transitions
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            if let MachineTrigger::Op(op) = t.trigger
                && platform.lacks.iter().any(|l| l == op.name)
            {
                return Some((i, format!("{name} lacks `{}`", op.name)));
            }
            let guard = t.guard.as_ref()?;
            (guard.native()?.decided(settings.as_ref()) == Some(false)).then(|| {
                (
                    i,
                    format!("`{}` is never true on {name}", one_line(guard.source())),
                )
            })
        })
        .collect()
}

/// The outcomes workflow `callee` of `platform` can answer with: those of
/// its `respond` states.
fn answers(platform: &Platform, callee: &str) -> Option<HashSet<&'static str>> {
    let w = platform.workflows.get(callee)?;
    Some(
        w.states()
            .filter_map(|(_, s)| match &s.kind {
                StateKind::Respond(r) => Some(r.outcome()),
                _ => None,
            })
            .collect(),
    )
}

/// The trigger name of a call's outcome.
fn answer_name(o: &str) -> &'static str {
    match o {
        "ok" => "ok",
        "error" => "error",
        _ => "need_info",
    }
}

/// A guard as one line, however the YAML folded it.
fn one_line(source: &str) -> String {
    source.split_whitespace().collect::<Vec<_>>().join(" ")
}
