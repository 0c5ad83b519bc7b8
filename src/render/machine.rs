//! Diagrams of a machine: its states, the transitions each state has, and the
//! machine's own transitions drawn from an "any state" node. A transition
//! whose target an expression names leads to a node showing the expression;
//! one that keeps the state is a loop.

use std::fmt;

use super::dot::{edges, quote};
use super::mermaid::{state_id, text, text_wrapped, transitions};
use crate::workflow::model::{Machine, MachineTransition, Target};

/// `Display` a machine as a Mermaid state diagram.
pub struct MachineMermaid<'a>(pub &'a Machine);

/// `Display` a machine as a DOT digraph.
pub struct MachineDot<'a>(pub &'a Machine);

/// A transition's label: trigger, guard, and what it changes or emits.
fn label(m: &Machine, t: &MachineTransition) -> String {
    let mut out = m.label(t);
    let sets: Vec<&str> = t.set.iter().map(|(k, _)| *k).collect();
    if !sets.is_empty() {
        out.push_str(&format!(" / set {}", sets.join(", ")));
    }
    if let Some(e) = &t.emit {
        out.push_str(&format!(" / emit {}", e.event));
    }
    out
}

const ANY: &str = "any_state";

fn dynamic(i: usize) -> String {
    format!("to_{i}")
}

impl fmt::Display for MachineMermaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        let id = |i: usize| state_id(m.states[i].name, i);
        writeln!(f, "---")?;
        writeln!(
            f,
            "title: {}",
            serde_json::Value::from(text(&format!("{} ({} machine)", m.name, m.entity.as_str())))
        )?;
        writeln!(f, "---")?;
        writeln!(f, "stateDiagram-v2")?;
        writeln!(
            f,
            "    classDef any fill:#f3f4f6,stroke:#4b5563,stroke-dasharray:4"
        )?;
        // Every state is declared, so that one only a computed target
        // reaches is drawn too.
        for (i, s) in m.states.iter().enumerate() {
            if id(i) != s.name {
                writeln!(
                    f,
                    "    state \"{}\" as {}",
                    text(s.name).replace('"', "'"),
                    id(i)
                )?;
            }
            // A bare `state X` draws nothing in Mermaid 11; a description does.
            writeln!(f, "    {} : {}", id(i), text(s.name))?;
        }
        if m.transitions.iter().any(|t| t.from.is_none()) {
            writeln!(f, "    state \"(any state)\" as {ANY}")?;
            writeln!(f, "    class {ANY} any")?;
        }
        writeln!(f, "    [*] --> {}", id(m.initial))?;
        let mut edges = Vec::new();
        for (i, t) in m.transitions.iter().enumerate() {
            let from = t.from.map_or_else(|| ANY.to_string(), id);
            let to = match &t.to {
                Target::Stay => from.clone(),
                Target::State(s) => id(*s),
                Target::Dynamic(tpl) => {
                    writeln!(
                        f,
                        "    state \"{}\" as {}",
                        text(&tpl.display()).replace('"', "'"),
                        dynamic(i)
                    )?;
                    writeln!(f, "    class {} any", dynamic(i))?;
                    dynamic(i)
                }
            };
            edges.push((from, to, text_wrapped(&label(m, t))));
        }
        transitions(f, &edges)
    }
}

impl fmt::Display for MachineDot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        writeln!(f, "digraph {} {{", quote(&m.name))?;
        let title = format!("{} ({} machine)", m.name, m.entity.as_str());
        writeln!(
            f,
            "  label={};",
            quote(&match &m.description {
                Some(d) => format!("{title}: {d}"),
                None => title,
            })
        )?;
        writeln!(f, "  labelloc=t;")?;
        writeln!(f, "  fontname=\"Helvetica\";")?;
        writeln!(
            f,
            "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#dbeafe\", color=\"#1d4ed8\", fontname=\"Helvetica\", fontsize=11];"
        )?;
        writeln!(f, "  edge [fontname=\"Helvetica\", fontsize=9];")?;
        writeln!(
            f,
            "  __start [shape=circle, label=\"\", width=0.2, style=filled, fillcolor=black];"
        )?;
        for (i, s) in m.states.iter().enumerate() {
            let tooltip = s
                .description
                .as_deref()
                .map(|d| format!(", tooltip={}", quote(d)))
                .unwrap_or_default();
            writeln!(f, "  n{i} [label={}{tooltip}];", quote(s.name))?;
        }
        if m.transitions.iter().any(|t| t.from.is_none()) {
            writeln!(
                f,
                "  {ANY} [label=\"(any state)\", style=\"rounded,dashed\", fillcolor=white];"
            )?;
        }
        let mut drawn = vec![("__start".into(), format!("n{}", m.initial), String::new())];
        for (i, t) in m.transitions.iter().enumerate() {
            let from = t.from.map_or_else(|| ANY.to_string(), |s| format!("n{s}"));
            let to = match &t.to {
                Target::Stay => from.clone(),
                Target::State(s) => format!("n{s}"),
                Target::Dynamic(tpl) => {
                    writeln!(
                        f,
                        "  {} [label={}, style=\"rounded,dashed\", fillcolor=white];",
                        dynamic(i),
                        quote(&tpl.display())
                    )?;
                    dynamic(i)
                }
            };
            drawn.push((from, to, label(m, t)));
        }
        edges(f, &drawn)?;
        writeln!(f, "}}")
    }
}
