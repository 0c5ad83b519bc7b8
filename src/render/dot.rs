//! Graphviz DOT. Each flow is a cluster, so `dot` lays the basic flow apart
//! from the alternate and error flows. A cluster's title is a node of its
//! own above the flow's states rather than the cluster's label: `dot` routes
//! edges around nodes but straight across cluster labels, so failure edges
//! would strike through the titles.

use std::fmt;

use super::{DOT_LINE, flow_colour, flow_stroke, resubmissions, resubmitted, summary, wrap};
use crate::workflow::model::{StateKind, Workflow};

/// `Display` a workflow as a DOT digraph.
pub struct Dot<'a>(pub &'a Workflow);

pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A quoted label of `text` wrapped into lines ([`wrap`]), each ended by
/// `\l` so a wrapped expression reads left-aligned like code.
pub(super) fn quote_wrapped(text: &str) -> String {
    quote_lines(&wrap(text, DOT_LINE))
}

/// A quoted label of `lines`: more than one, each ended by `\l`.
fn quote_lines(lines: &[String]) -> String {
    if lines.len() < 2 {
        return quote(&lines.concat());
    }
    let body: String = lines
        .iter()
        .map(|l| {
            let q = quote(l);
            format!("{}\\l", &q[1..q.len() - 1])
        })
        .collect();
    format!("\"{body}\"")
}

impl fmt::Display for Dot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0;
        writeln!(f, "digraph {} {{", quote(&w.name))?;
        writeln!(
            f,
            "  label={};",
            quote(&{
                let mut label = match &w.description {
                    Some(d) => format!("{}: {d}", w.name),
                    None => w.name.clone(),
                };
                if let Some(base) = &w.base {
                    label.push_str(&format!(
                        "\nbold: states {} changes in {}",
                        super::rel(&w.path),
                        super::rel(base)
                    ));
                }
                label
            })
        )?;
        writeln!(f, "  labelloc=t;")?;
        writeln!(f, "  fontname=\"Helvetica\";")?;
        writeln!(
            f,
            "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];"
        )?;
        writeln!(f, "  edge [fontname=\"Helvetica\", fontsize=9];")?;
        writeln!(
            f,
            "  __start [shape=circle, label=\"\", width=0.2, style=filled, fillcolor=black];"
        )?;
        for (i, (tag, title)) in w.flows.iter().enumerate() {
            let members: Vec<_> = w.states().filter(|(_, s)| &s.flow == tag).collect();
            if members.is_empty() {
                continue;
            }
            writeln!(f, "  subgraph cluster_{i} {{")?;
            // Without a label of its own a cluster inherits the graph's.
            writeln!(
                f,
                "    label=\"\"; style=\"rounded,dashed\"; color={};",
                quote(flow_stroke(tag))
            )?;
            writeln!(
                f,
                "    title_{i} [label={}, shape=plaintext, style=\"\", fontsize=13];",
                quote(&format!("{tag}: {title}"))
            )?;
            // Invisible edges keep the title above every state of its flow;
            // only those to the flow's entries pull it close, so the
            // states' own layout is not stretched towards it.
            for (id, _) in &members {
                let entry = !w
                    .graph
                    .neighbors_directed(*id, petgraph::Direction::Incoming)
                    .any(|from| w.state(from).flow == *tag);
                let weight = if entry { 1 } else { 0 };
                writeln!(
                    f,
                    "    title_{i} -> n{} [style=invis, weight={weight}];",
                    id.index()
                )?;
            }
            for (id, s) in members {
                let shape = match s.kind {
                    StateKind::Choice(_) => ", shape=diamond, style=filled",
                    StateKind::Respond(_) => ", peripheries=2",
                    _ => "",
                };
                let tooltip = s
                    .description
                    .as_deref()
                    .map(|d| format!(", tooltip={}", quote(d)))
                    .unwrap_or_default();
                let changed = if s.changed { ", penwidth=3" } else { "" };
                writeln!(
                    f,
                    "    n{} [label={}, fillcolor={}, color={}{shape}{tooltip}{changed}];",
                    id.index(),
                    quote(&format!("{}\n{}", s.name, summary(s))),
                    quote(flow_colour(&s.flow)),
                    quote(flow_stroke(&s.flow)),
                )?;
            }
            writeln!(f, "  }}")?;
        }
        writeln!(f, "  __start -> n{};", w.start.index())?;
        for (id, s) in w.states() {
            for (t, to) in w.transitions(id) {
                let label = t.label(s);
                if label.is_empty() {
                    writeln!(f, "  n{} -> n{};", id.index(), to.index())?;
                } else {
                    writeln!(
                        f,
                        "  n{} -> n{} [label={}];",
                        id.index(),
                        to.index(),
                        quote_wrapped(&label)
                    )?;
                }
            }
        }
        // Back to the start, without pulling the start down to the
        // response: `constraint=false` keeps the flow's ranks as they are.
        for (id, field) in resubmissions(w) {
            let stroke = quote(flow_stroke(&w.state(id).flow));
            writeln!(
                f,
                "  n{} -> n{} [label={}, style=dashed, color={stroke}, fontcolor={stroke}, constraint=false];",
                id.index(),
                w.start.index(),
                quote(&resubmitted(field))
            )?;
        }
        writeln!(f, "}}")
    }
}
