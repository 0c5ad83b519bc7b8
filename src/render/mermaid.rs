//! Mermaid `stateDiagram-v2`, as GitHub renders it. States are coloured by
//! flow with one `classDef` per flow.

use std::fmt;

use super::{
    MERMAID_LINE, flow_colour, flow_stroke, merge_loops, resubmissions, resubmitted, summary, wrap,
};
use crate::workflow::model::{StateId, Workflow};

/// `Display` a workflow as a Mermaid state diagram.
pub struct Mermaid<'a>(pub &'a Workflow);

const KEYWORDS: &[&str] = &[
    "state",
    "end",
    "direction",
    "note",
    "class",
    "classDef",
    "click",
    "style",
    "as",
    "TB",
    "LR",
];

/// Mermaid ids must be plain words; other state names get a positional id and
/// keep their name as the label.
fn id(w: &Workflow, s: StateId) -> String {
    state_id(&w.state(s).name, s.index())
}

/// `name` as a Mermaid id when it can be one, else `s<index>`.
pub(super) fn state_id(name: &str, index: usize) -> String {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if plain && !KEYWORDS.contains(&name) {
        name.to_string()
    } else {
        format!("s{index}")
    }
}

/// Text safe inside a Mermaid state description or edge label. Checked
/// against mermaid 11: a label is HTML, so `<` before anything but a space
/// would open a tag and swallow the rest; a zero-width space after it keeps
/// it text without changing what the reader sees. `;` ends a statement (so
/// it becomes a full-width `；`) and a line break ends the label. Entity
/// codes cannot help: their `;` is a statement's end, and `#lt;` is not
/// decoded in state diagrams.
pub(super) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ';' => out.push('；'),
            '\n' | '\r' => out.push(' '),
            '<' => {
                out.push('<');
                if chars.peek().is_some_and(|n| !n.is_whitespace()) {
                    out.push('\u{200B}');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A label wrapped into lines ([`wrap`]): Mermaid breaks a label at `<br>`.
pub(super) fn text_wrapped(s: &str) -> String {
    wrap(s, MERMAID_LINE)
        .iter()
        .map(|l| text(l))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Writes each `(from, to, label)` as a transition, labels already [`text`];
/// a state's loops as one transition listing each label (`• ` before every
/// one), see [`merge_loops`].
pub(super) fn transitions(
    f: &mut fmt::Formatter<'_>,
    edges: &[(String, String, String)],
) -> fmt::Result {
    for (from, to, labels) in merge_loops(edges) {
        let label = match labels.as_slice() {
            [] => String::new(),
            [one] => one.to_string(),
            many => many
                .iter()
                .map(|l| format!("• {l}"))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        if label.is_empty() {
            writeln!(f, "    {from} --> {to}")?;
        } else {
            writeln!(f, "    {from} --> {to} : {label}")?;
        }
    }
    Ok(())
}

fn class(flow: &str) -> String {
    let s: String = flow
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("flow_{s}")
}

impl fmt::Display for Mermaid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0;
        writeln!(f, "---")?;
        // JSON strings are valid YAML: the title survives `:` and quotes.
        writeln!(f, "title: {}", serde_json::Value::from(text(&w.name)))?;
        writeln!(f, "---")?;
        writeln!(f, "stateDiagram-v2")?;
        for (tag, _) in &w.flows {
            writeln!(
                f,
                "    classDef {} fill:{},stroke:{},color:#111827",
                class(tag),
                flow_colour(tag),
                flow_stroke(tag)
            )?;
        }
        for (sid, s) in w.states() {
            let i = id(w, sid);
            if i != s.name {
                writeln!(
                    f,
                    "    state \"{}\" as {i}",
                    text(&s.name).replace('"', "'")
                )?;
            }
            writeln!(
                f,
                "    {i} : {}",
                text(&format!("{} — {}", s.name, summary(s)))
            )?;
        }
        writeln!(f, "    [*] --> {}", id(w, w.start))?;
        let mut edges = Vec::new();
        for (sid, s) in w.states() {
            for (t, to) in w.transitions(sid) {
                edges.push((id(w, sid), id(w, to), text_wrapped(&t.label(s))));
            }
            if s.is_terminal() {
                edges.push((id(w, sid), "[*]".into(), String::new()));
            }
        }
        for (sid, field) in resubmissions(w) {
            edges.push((id(w, sid), id(w, w.start), text(&resubmitted(field))));
        }
        transitions(f, &edges)?;
        let changed: Vec<String> = w
            .states()
            .filter(|(_, s)| s.changed)
            .map(|(sid, _)| id(w, sid))
            .collect();
        if let (Some(base), false) = (&w.base, changed.is_empty()) {
            writeln!(f, "    classDef changed stroke-width:4px")?;
            writeln!(f, "    class {} changed", changed.join(","))?;
            writeln!(
                f,
                "    %% changed: states {} writes over {}",
                super::rel(&w.path),
                super::rel(base)
            )?;
        }
        for (tag, title) in &w.flows {
            let members: Vec<String> = w
                .states()
                .filter(|(_, s)| &s.flow == tag)
                .map(|(sid, _)| id(w, sid))
                .collect();
            if !members.is_empty() {
                writeln!(f, "    class {} {}", members.join(","), class(tag))?;
                writeln!(f, "    %% {tag}: {title}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{text, text_wrapped, transitions};

    #[test]
    fn labels_keep_their_characters_but_cannot_end_a_statement() {
        assert_eq!(text("size(x) > 0 && y: 'a'"), "size(x) > 0 && y: 'a'");
        assert_eq!(text("a; b\nc"), "a； b c");
    }

    struct Edges(Vec<(&'static str, &'static str, &'static str)>);

    impl std::fmt::Display for Edges {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let edges: Vec<_> = self
                .0
                .iter()
                .map(|(a, b, l)| (a.to_string(), b.to_string(), l.to_string()))
                .collect();
            transitions(f, &edges)
        }
    }

    #[test]
    fn a_states_loops_are_one_edge_listing_each() {
        let drawn = Edges(vec![
            ("a", "a", "one"),
            ("a", "b", "two"),
            ("b", "b", "three"),
            ("a", "a", "four<br>lines"),
            ("a", "b", "five"),
        ])
        .to_string();
        assert_eq!(
            drawn,
            "    a --> a : • one<br>• four<br>lines\n    a --> b : two\n    b --> b : three\n    a --> b : five\n"
        );
    }

    #[test]
    fn a_less_than_sign_cannot_open_a_tag() {
        assert_eq!(text("a < b"), "a < b");
        assert_eq!(text("a<b || x<br>"), "a<\u{200B}b || x<\u{200B}br>");
    }

    #[test]
    fn wrapped_lines_break_at_br_only() {
        let label = text_wrapped(&format!("{} && b < c", "a".repeat(30)));
        assert_eq!(label, format!("{}<br>&& b < c", "a".repeat(30)));
    }
}
