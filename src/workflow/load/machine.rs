//! Loading machine files: the header with serde, then every state and every
//! transition node on its own, so each bad one is reported in one run.

use crate::workflow::IndexMap;
use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::convert::Convert;
use super::{Ctx, from_node, key_span, known_keys, scalar};
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule};
use crate::workflow::raw::{
    MACHINE_KEYS, MACHINE_STATE_KEYS, RawMachineHeader, RawMachineState, RawTransition, RawTrigger,
    Sp,
};
use crate::workflow::source::{FileId, Span};

/// A machine file as loaded.
#[derive(Debug)]
pub struct RawMachine {
    pub file: FileId,
    pub header: Option<RawMachineHeader>,
    /// Transitions in every state.
    pub on: Vec<RawTrigger>,
    pub states: IndexMap<Sp<String>, RawMachineState>,
    /// Where `states:` is written, or the file's first key.
    pub states_key: Span,
}

pub(super) fn machine(
    cx: Ctx<'_>,
    top: MarkedMappingNode,
    diags: &mut Diagnostics,
) -> Option<RawMachine> {
    let mut top = known_keys(cx, top, MACHINE_KEYS, "a machine", diags);
    let file_span = top
        .keys()
        .next()
        .map_or_else(|| cx.span_bytes(0, 0), |k| key_span(cx, k));
    let states_entry = top.remove_entry("states");
    let on_entry = top.remove_entry("on");
    let header = from_node::<RawMachineHeader>(
        cx,
        &Node::Mapping(top),
        file_span.clone(),
        "the machine",
        diags,
    );
    let on = on_entry
        .map(|(_, node)| triggers(cx, &node, diags))
        .unwrap_or_default();
    let mut states = IndexMap::default();
    let states_key = match states_entry {
        None => {
            diags.push(
                Diagnostic::new(
                    Rule::MissingKey,
                    file_span.clone(),
                    "the machine has no `states`",
                )
                .label("`states` is required")
                .help("add `states:` with the entity's states, keyed by name"),
            );
            file_span
        }
        Some((key, node)) => {
            let key_at = key_span(cx, &key);
            match node {
                Node::Mapping(map) if map.is_empty() => diags.push(
                    Diagnostic::new(
                        Rule::MissingKey,
                        key_at.clone(),
                        "the machine has no states",
                    )
                    .label("empty")
                    .help("add at least the initial state"),
                ),
                Node::Mapping(map) => {
                    for (name, node) in map.iter() {
                        let name_sp =
                            Sp::new(name.span().start().copied(), name.as_str().to_string());
                        // A state whose body is wrong (reported) still
                        // exists: transitions to it are not undefined.
                        let s = state(cx, &name_sp, node, diags).unwrap_or(RawMachineState {
                            description: None,
                            on: Vec::new(),
                        });
                        states.insert(name_sp, s);
                    }
                }
                other => diags.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        cx.span(other.span().start().copied()),
                        "`states` must be a mapping of state names to states",
                    )
                    .label("not a mapping")
                    .help("write `states:` followed by indented `<name>: { on: … }` entries"),
                ),
            }
            key_at
        }
    };
    Some(RawMachine {
        file: cx.file,
        header,
        on,
        states,
        states_key,
    })
}

fn state(
    cx: Ctx<'_>,
    name: &Sp<String>,
    node: &Node,
    diags: &mut Diagnostics,
) -> Option<RawMachineState> {
    let map = match node {
        Node::Mapping(m) => m.clone(),
        // `Ready: {}` and `Ready:` both declare a state with no transitions
        // of its own.
        Node::Scalar(s) if s.as_str().is_empty() => MarkedMappingNode::new_empty(*s.span()),
        other => {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    cx.span(other.span().start().copied()),
                    format!("state `{}` must be a mapping", name.as_str()),
                )
                .label("expected `on:` or `description:` here")
                .help("a machine state is a mapping such as `{ on: { agent.set_ready: Ready } }`, or `{}`"),
            );
            return None;
        }
    };
    let map = known_keys(cx, map, MACHINE_STATE_KEYS, "a machine state", diags);
    let description = map.get_node("description").and_then(scalar);
    let on = map
        .get_node("on")
        .map(|n| triggers(cx, n, diags))
        .unwrap_or_default();
    Some(RawMachineState { description, on })
}

/// An `on:` mapping: trigger → a state name, one transition, or a list.
fn triggers(cx: Ctx<'_>, node: &Node, diags: &mut Diagnostics) -> Vec<RawTrigger> {
    let Node::Mapping(map) = node else {
        diags.push(
            Diagnostic::new(
                Rule::InvalidValue,
                cx.span(node.span().start().copied()),
                "`on` must be a mapping of triggers to transitions",
            )
            .label("not a mapping")
            .help("write e.g. `on: { agent.set_ready: Ready }`"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map.iter() {
        let trigger = Sp::new(k.span().start().copied(), k.as_str().to_string());
        let what = format!("the transition on `{}`", k.as_str());
        let branches = match v {
            Node::Scalar(_) => vec![RawTransition {
                to: scalar(v),
                ..RawTransition::default()
            }],
            Node::Mapping(_) => RawTransition::convert(v)
                .or_else(|| from_node(cx, v, key_span(cx, k), &what, diags))
                .into_iter()
                .collect(),
            Node::Sequence(seq) => seq
                .iter()
                .filter_map(|b| match b {
                    Node::Mapping(_) => RawTransition::convert(b)
                        .or_else(|| from_node(cx, b, key_span(cx, k), &what, diags)),
                    other => {
                        diags.push(
                            Diagnostic::new(
                                Rule::InvalidValue,
                                cx.span(other.span().start().copied()),
                                format!("a branch of {what} must be a mapping"),
                            )
                            .label("expected `{ when: …, to: … }`"),
                        );
                        None
                    }
                })
                .collect(),
        };
        out.push(RawTrigger { trigger, branches });
    }
    out
}
