//! The raw types built straight from their YAML nodes. Serde's generic
//! machinery (a struct visitor, a deserializer per value, the span passed as
//! a map of nine entries for every `Sp`) cost as much as a third of parsing
//! the YAML; a state is built here by a walk of its mapping instead.
//!
//! The result is what serde builds, spans included. Whenever serde might
//! answer otherwise — an error, or a form it reads in a way of its own (a
//! struct from a list, `~` for a map) — a conversion gives `None` and the
//! caller asks serde, which also says what is wrong.

use crate::workflow::IndexMap;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{Node, Spanned};
use serde::de::DeserializeOwned;

use crate::workflow::raw::{RawBranch, RawState, RawTransition, Sp};

/// A raw type that may be built without serde. Headers, read once per
/// file, are left to serde.
pub trait Convert: Sized {
    /// `self` as serde would build it from `node`, or `None`: then ask serde.
    fn convert(node: &Node) -> Option<Self>;
}

fn text(s: &MarkedScalarNode) -> Sp<String> {
    Sp(Spanned::new(*s.span(), s.as_str().to_string()))
}

/// `Sp<String>`: any scalar, as text.
fn string(node: &Node) -> Option<Sp<String>> {
    node.as_scalar().map(text)
}

/// Name → text (`args`, `data`, `on`): a mapping of scalars, or nothing
/// written (a plain empty scalar), which serde reads as no entries.
fn string_map(node: &Node) -> Option<IndexMap<Sp<String>, Sp<String>>> {
    match node {
        Node::Mapping(m) => {
            let mut out = IndexMap::with_capacity_and_hasher(m.len(), Default::default());
            for (k, v) in m.iter() {
                // Two keys of one text would keep the first key's place
                // and the last value: serde's way, left to serde.
                if out.insert(text(k), string(v)?).is_some() {
                    return None;
                }
            }
            Some(out)
        }
        Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => Some(IndexMap::default()),
        _ => None,
    }
}

/// A type left to serde, read from its own node: what serde does for a
/// field of that type.
fn serde<T: DeserializeOwned>(node: &Node) -> Option<T> {
    T::deserialize(marked_yaml::spanned_serde::NodeDeserializer::new(node)).ok()
}

/// The fields of a mapping in `keys`, each once, or `None` for any other.
fn fields<'a, const N: usize>(
    map: &'a MarkedMappingNode,
    keys: [&str; N],
) -> Option<[Option<&'a Node>; N]> {
    let mut out = [None; N];
    for (k, v) in map.iter() {
        let i = keys.iter().position(|key| *key == k.as_str())?;
        if out[i].replace(v).is_some() {
            return None;
        }
    }
    Some(out)
}

/// Applies `f` to a field that is there; `None` when it fails.
fn opt<T>(node: Option<&Node>, f: impl FnOnce(&Node) -> Option<T>) -> Option<Option<T>> {
    match node {
        None => Some(None),
        Some(n) => f(n).map(Some),
    }
}

impl Convert for RawBranch {
    fn convert(node: &Node) -> Option<Self> {
        let [when, next] = fields(node.as_mapping()?, ["when", "next"])?;
        Some(RawBranch {
            when: string(when?)?,
            next: string(next?)?,
        })
    }
}

/// `choice:`: a list of branches, or nothing written.
fn branches(node: &Node) -> Option<Sp<Vec<RawBranch>>> {
    let items = match node {
        Node::Sequence(seq) => seq
            .iter()
            .map(RawBranch::convert)
            .collect::<Option<Vec<_>>>()?,
        Node::Scalar(s) if s.as_str().is_empty() && s.may_coerce() => Vec::new(),
        Node::Scalar(_) | Node::Mapping(_) => return None,
    };
    Some(Sp(Spanned::new(*node.span(), items)))
}

impl Convert for RawState {
    fn convert(node: &Node) -> Option<Self> {
        let [
            flow,
            description,
            set,
            op,
            args,
            timeout,
            retry,
            save,
            choice,
            foreach,
            binding,
            body,
            on_failure,
            call,
            emit,
            data,
            respond,
            wait,
            when,
            on,
            otherwise,
            next,
        ] = fields(node.as_mapping()?, crate::workflow::raw::STATE_FIELDS)?;
        Some(RawState {
            flow: opt(flow, string)?,
            description: opt(description, string)?,
            set: opt(set, string_map)?,
            op: opt(op, string)?,
            args: opt(args, string_map)?,
            timeout: opt(timeout, string)?,
            retry: opt(retry, serde)?,
            save: opt(save, string)?,
            choice: opt(choice, branches)?,
            foreach: opt(foreach, string)?,
            binding: opt(binding, string)?,
            body: opt(body, serde)?,
            on_failure: opt(on_failure, serde)?,
            call: opt(call, string)?,
            emit: opt(emit, string)?,
            data: opt(data, string_map)?,
            respond: opt(respond, serde)?,
            wait: opt(wait, string)?,
            when: opt(when, string)?,
            on: opt(on, string_map)?,
            otherwise: opt(otherwise, string)?,
            next: opt(next, string)?,
        })
    }
}

impl Convert for RawTransition {
    fn convert(node: &Node) -> Option<Self> {
        let [when, to, set, emit, data] =
            fields(node.as_mapping()?, ["when", "to", "set", "emit", "data"])?;
        Some(RawTransition {
            when: opt(when, string)?,
            to: opt(to, string)?,
            set: opt(set, string_map)?,
            emit: opt(emit, string)?,
            data: opt(data, string_map)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Convert;
    use crate::workflow::raw::{RawState, RawTransition};
    use marked_yaml::Node;
    use std::path::{Path, PathBuf};

    /// Every mapping of every YAML file under `dir` that serde reads as `T`
    /// or the conversion does: the two must agree, spans included.
    fn agree<T: Convert + serde::de::DeserializeOwned + std::fmt::Debug>(
        node: &Node,
        counts: &mut (usize, usize),
    ) {
        let fast = T::convert(node).map(|v| format!("{v:?}"));
        let slow = marked_yaml::from_node::<T>(node)
            .ok()
            .map(|v| format!("{v:?}"));
        if let Some(f) = &fast {
            counts.0 += 1;
            assert_eq!(Some(f), slow.as_ref(), "{node:?}");
        } else if slow.is_some() {
            counts.1 += 1;
        }
    }

    fn walk(node: &Node, states: &mut (usize, usize), transitions: &mut (usize, usize)) {
        match node {
            Node::Scalar(_) => {}
            Node::Sequence(seq) => seq.iter().for_each(|n| walk(n, states, transitions)),
            Node::Mapping(map) => {
                agree::<RawState>(node, states);
                agree::<RawTransition>(node, transitions);
                map.values().for_each(|n| walk(n, states, transitions));
            }
        }
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }

    #[test]
    fn conversions_build_what_serde_builds() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        for dir in [
            "workflows",
            "tests/fixtures",
            "fuzz/corpus",
            "fuzz/regressions",
        ] {
            files(&root.join(dir), &mut paths);
        }
        let (mut states, mut transitions) = ((0, 0), (0, 0));
        for path in paths {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Ok(node) =
                marked_yaml::parse_yaml_with_options(0, &text, super::super::loader_options())
            {
                walk(&node, &mut states, &mut transitions);
            }
        }
        // Most well-formed states must not need serde.
        assert!(states.0 > 300 && states.0 > 10 * states.1, "{states:?}");
        assert!(transitions.0 > 10, "{transitions:?}");
    }
}
