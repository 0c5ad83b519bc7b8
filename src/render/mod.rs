//! Diagrams of a validated workflow or machine: `Display` wrappers that draw
//! every state and transition; a workflow's states grouped and coloured by
//! their use-case flow.

mod dot;
mod machine;
mod mermaid;

pub use dot::Dot;
pub use machine::{MachineDot, MachineMermaid};
pub use mermaid::Mermaid;

use crate::workflow::model::{Body, Response, State, StateId, StateKind, Workflow};

/// Fill colour of a flow's states: the basic flow blue, alternate flows
/// green, error flows red, anything else grey, so a picture reads like the
/// use case at a glance.
pub(crate) fn flow_colour(flow: &str) -> &'static str {
    let upper = flow.to_ascii_uppercase();
    if flow == "basic" {
        "#dbeafe"
    } else if upper.starts_with("AF") {
        "#dcfce7"
    } else if upper.starts_with("EF") {
        "#fee2e2"
    } else {
        "#f3f4f6"
    }
}

/// Border colour matching [`flow_colour`].
pub(crate) fn flow_stroke(flow: &str) -> &'static str {
    let upper = flow.to_ascii_uppercase();
    if flow == "basic" {
        "#1d4ed8"
    } else if upper.starts_with("AF") {
        "#15803d"
    } else if upper.starts_with("EF") {
        "#b91c1c"
    } else {
        "#4b5563"
    }
}

/// What a state does, in one line.
pub(crate) fn summary(state: &State) -> String {
    match &state.kind {
        StateKind::Op(op) => format!("op {}", op.op.name),
        StateKind::Choice(_) => "choice".into(),
        StateKind::Foreach(f) => {
            let body = match &f.body {
                Body::Op(op) => format!("op {}", op.op.name),
                Body::Call(c) => format!("call {}", c.workflow),
            };
            format!("foreach {}: {body}", f.binding)
        }
        StateKind::Call(c) => format!("call {}", c.workflow),
        StateKind::Emit(e) => format!("emit {}", e.event),
        StateKind::Respond(Response::Ok { close, .. }) => {
            if close.is_some() {
                "respond ok, close".into()
            } else {
                "respond ok".into()
            }
        }
        StateKind::Respond(Response::Error { code, .. }) => format!("respond error {code}"),
        StateKind::Respond(Response::NeedInfo { field, .. }) => {
            format!("respond need_info {field}")
        }
        StateKind::Wait(w) => format!("wait {} ({:?})", w.event.name, w.timeout),
    }
}

/// A DOT label line holds about this many characters (at the edges' 9pt);
/// longer labels (guards mostly) wrap onto more lines. They are never cut:
/// half a guard reads as a different condition.
pub(crate) const DOT_LINE: usize = 40;

/// A Mermaid label line: Mermaid itself rewraps a label wider than 200px,
/// at any space, so lines are kept under that to break where [`wrap`] does.
pub(crate) const MERMAID_LINE: usize = 26;

/// `s` in lines of at most `width` characters, broken at spaces outside
/// quoted strings; a longer word keeps a line of its own. Whitespace runs
/// outside quotes (a folded YAML scalar's) read as one space; a quoted
/// string keeps its own.
pub(crate) fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                word.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for w in words {
        if !line.is_empty() && line.chars().count() + 1 + w.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&w);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Edges `(from, to, label)` with the loops of each node made one, where its
/// first loop was, with the labels of all (empty ones left out). Neither
/// renderer draws several loops of one node legibly: `dot` lays them over
/// one another, each label struck through by the next loop, and Mermaid 11
/// keeps only the last label.
pub(crate) fn merge_loops(edges: &[(String, String, String)]) -> Vec<(&str, &str, Vec<&str>)> {
    let mut out: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for (from, to, label) in edges {
        if from == to
            && let Some(l) = out.iter_mut().find(|(a, b, _)| a == from && b == to)
        {
            if !label.is_empty() {
                l.2.push(label);
            }
            continue;
        }
        let labels = if label.is_empty() {
            Vec::new()
        } else {
            vec![label.as_str()]
        };
        out.push((from, to, labels));
    }
    out
}

/// The states whose `need_info` response a client answers by sending the
/// request again with the field: a new run from the workflow's `start`. For
/// Logout that is AF1's "the basic flow resumes at step 3" (Decision 1), so
/// diagrams draw the edge rather than leave AF1 a dead end.
pub(crate) fn resubmissions(w: &Workflow) -> impl Iterator<Item = (StateId, &str)> {
    w.states().filter_map(|(id, s)| match &s.kind {
        StateKind::Respond(Response::NeedInfo { field, .. }) => Some((id, field.as_str())),
        _ => None,
    })
}

/// The label of a resubmission edge.
pub(crate) fn resubmitted(field: &str) -> String {
    format!("resubmitted with {field}")
}

/// A file's path as the docs link it: `platform/file.yaml`.
fn rel(path: &std::path::Path) -> String {
    path.iter()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|c| c.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A Markdown page with the Mermaid diagram of one platform's workflow, as
/// committed under `docs/diagrams/` (GitHub renders the diagram).
pub fn diagram_page(platform: &crate::Platform, workflow: &crate::Workflow) -> String {
    use std::fmt::Write;
    let file = rel(&workflow.path);
    let own = workflow
        .path
        .parent()
        .and_then(|d| d.canonicalize().ok())
        .is_some_and(|d| d == platform.dir);
    let mut out = String::new();
    let _ = writeln!(out, "# `{}` on `{}`\n", workflow.name, platform.name);
    if let Some(d) = &platform.description {
        let _ = writeln!(out, "{d}\n");
    }
    let origin = if own { "its own file" } else { "inherited" };
    let _ = writeln!(
        out,
        "Workflow: [`workflows/{file}`](../../workflows/{file}) ({origin}).\n"
    );
    let _ = writeln!(
        out,
        "Generated by `cargo run -- diagrams docs/diagrams`; do not edit.\n"
    );
    let _ = writeln!(
        out,
        "Colours: basic flow blue, alternate flows green, error flows red.\n"
    );
    if let Some((_, field)) = resubmissions(workflow).next() {
        let _ = writeln!(
            out,
            "\"{}\": the client asks the agent and sends the request again, which runs the workflow from its start.\n",
            resubmitted(field)
        );
    }
    let _ = writeln!(out, "```mermaid\n{}```", Mermaid(workflow));
    out
}

/// A Markdown page with the Mermaid diagram of a machine of a platform.
pub fn machine_page(platform: &crate::Platform, m: &crate::workflow::model::Machine) -> String {
    use std::fmt::Write;
    let file = rel(&m.path);
    let mut out = String::new();
    let _ = writeln!(out, "# The `{}` machine of `{}`\n", m.name, platform.name);
    if let Some(d) = &m.description {
        let _ = writeln!(out, "{d}\n");
    }
    let _ = writeln!(
        out,
        "Machine: [`workflows/{file}`](../../workflows/{file}); one instance per {}.\n",
        m.entity.as_str()
    );
    let _ = writeln!(
        out,
        "Generated by `cargo run -- diagrams docs/diagrams`; do not edit.\n"
    );
    let _ = writeln!(
        out,
        "Transitions of \"(any state)\" apply in every state; a dashed target is the state an expression names.\n"
    );
    let _ = writeln!(out, "```mermaid\n{}```", MachineMermaid(m));
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    const LINE: usize = 40;

    #[test]
    fn a_long_guard_wraps_at_spaces_and_keeps_every_character() {
        let guard = "platform.busy_logout != 'pending'\n  && session.channels.exists(c, c.active && size(c.interactions) > 0)";
        let lines = wrap(guard, LINE);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= LINE), "{lines:?}");
        assert_eq!(
            lines.join(" "),
            guard.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }

    #[test]
    fn a_word_longer_than_a_line_is_not_cut() {
        let word = "a".repeat(LINE * 2);
        assert_eq!(
            wrap(&format!("x {word} y"), LINE),
            ["x", word.as_str(), "y"]
        );
    }

    #[test]
    fn quoted_strings_keep_their_spaces_and_are_not_broken() {
        let guard = format!("{} == 'two  words here' && y", "x".repeat(LINE - 10));
        let lines = wrap(&guard, LINE);
        assert_eq!(lines[1], "'two  words here' && y", "{lines:?}");
        assert_eq!(
            wrap(r"a == 'it\'s  so' || b", LINE),
            [r"a == 'it\'s  so' || b"]
        );
    }

    #[test]
    fn nothing_to_draw_is_no_line() {
        assert!(wrap("  ", LINE).is_empty());
    }
}
