//! Graphviz DOT. Each flow is a cluster, so `dot` lays the basic flow apart
//! from the alternate and error flows. A cluster's title is a node of its
//! own above the flow's states rather than the cluster's label: `dot` routes
//! edges around nodes but straight across cluster labels, so failure edges
//! would strike through the titles.

use std::fmt;

use super::{
    DOT_LINE, flow_colour, flow_stroke, merge_loops, resubmissions, resubmitted, summary, wrap,
};
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
fn quote_wrapped(text: &str) -> String {
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

/// Writes each `(from, to, label)` as an edge; a node's loops as one edge
/// listing each label (`• ` before every one), see [`merge_loops`]. A loop
/// of a node no other edge enters (a machine's "any state") goes above it,
/// its label clear of the edges leaving the node sideways and below.
pub(super) fn edges(f: &mut fmt::Formatter<'_>, edges: &[(String, String, String)]) -> fmt::Result {
    for (from, to, labels) in merge_loops(edges) {
        let entered = edges.iter().any(|(a, b, _)| b == to && a != to);
        let ports = if from == to && !entered {
            ", tailport=n, headport=n"
        } else {
            ""
        };
        let label = match labels.as_slice() {
            [] if ports.is_empty() => {
                writeln!(f, "  {from} -> {to};")?;
                continue;
            }
            [] => quote(""),
            [one] => quote_wrapped(one),
            many => {
                let lines: Vec<String> = many
                    .iter()
                    .flat_map(|l| {
                        wrap(l, DOT_LINE - 2)
                            .into_iter()
                            .enumerate()
                            .map(|(i, line)| if i == 0 { format!("• {line}") } else { line })
                    })
                    .collect();
                quote_lines(&lines)
            }
        };
        writeln!(f, "  {from} -> {to} [label={label}{ports}];")?;
    }
    Ok(())
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
        let mut plain = vec![(
            "__start".into(),
            format!("n{}", w.start.index()),
            String::new(),
        )];
        for (id, s) in w.states() {
            for (t, to) in w.transitions(id) {
                plain.push((
                    format!("n{}", id.index()),
                    format!("n{}", to.index()),
                    t.label(s),
                ));
            }
        }
        edges(f, &plain)?;
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
