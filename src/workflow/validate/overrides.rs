//! A profile's overrides of an inherited workflow, merged into the workflow
//! the profile runs: states replaced in place, added at the end, removed.
//! The merge is then validated whole, like any workflow; each state keeps the
//! place it was written, so a diagnostic points at the file that wrote it.

use crate::workflow::IndexMap;

use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::load::{Ctx, RawOverrides, RawWorkflow};

/// `base` as `ov` changes it; `None` when either did not load far enough to
/// say what it is (already reported).
pub(super) fn merge(
    cx: Ctx<'_>,
    base: &RawWorkflow,
    ov: &RawOverrides,
    diags: &mut Diagnostics,
) -> Option<RawWorkflow> {
    let (Some(bh), Some(oh)) = (&base.header, &ov.header) else {
        return None;
    };
    let changes_nothing = ov.states.is_empty()
        && oh.remove.is_empty()
        && oh.start.is_none()
        && oh.flows.is_empty()
        && oh.input.is_empty()
        && oh.vars.is_empty();
    if changes_nothing {
        diags.push(
            Diagnostic::new(
                Rule::BadOverride,
                cx.span_of(&oh.overrides),
                format!(
                    "this file overrides `{}` but changes nothing",
                    oh.overrides.as_str()
                ),
            )
            .label("no states, removals, start, flows, input or vars")
            .help("write the states it replaces or adds under `states:`, or delete the file"),
        );
    }
    let mut header = bh.clone();
    if let Some(d) = &oh.description {
        header.description = Some(d.clone());
    }
    if let Some(s) = &oh.start {
        header.start = s.clone();
    }
    extend(&mut header.flows, &oh.flows);
    extend(&mut header.input, &oh.input);
    extend(&mut header.vars, &oh.vars);

    let mut states = base.states.clone();
    for name in &oh.remove {
        if let Some(again) = ov.states.keys().find(|k| *k == name) {
            diags.push(
                Diagnostic::new(
                    Rule::BadOverride,
                    cx.span_of(again),
                    format!("state `{}` is both removed and written", name.as_str()),
                )
                .label("written here")
                .related(cx.span_of(name), "removed here")
                .help("writing a state replaces the inherited one: drop it from `remove`"),
            );
            continue;
        }
        if states.shift_remove(name).is_none() {
            diags.push(
                Diagnostic::new(
                    Rule::BadOverride,
                    cx.span_of(name),
                    format!(
                        "`{}` has no state `{}` to remove",
                        bh.workflow.as_str(),
                        name.as_str()
                    ),
                )
                .label("no such state")
                .help(
                    did_you_mean(name, base.states.keys().map(|k| k.as_str())).unwrap_or_else(
                        || {
                            format!(
                                "its states: {}",
                                base.states
                                    .keys()
                                    .map(|k| k.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
                    ),
                ),
            );
        }
    }
    for (name, state) in &ov.states {
        replace(&mut states, name.clone(), state.clone());
    }
    // A flow whose every state the profile removed is one its switch does
    // not have (TaskRouter never defers a logout): its declaration goes
    // with them, unless the profile declares it again.
    let flows_of = |states: &IndexMap<_, std::rc::Rc<crate::workflow::load::LoadedState>>| {
        states
            .values()
            .filter_map(|s| {
                s.raw
                    .as_ref()?
                    .flow
                    .as_ref()
                    .map(|f| f.as_str().to_string())
            })
            .collect::<std::collections::HashSet<String>>()
    };
    if !oh.remove.is_empty() {
        let before = flows_of(&base.states);
        let after = flows_of(&states);
        header.flows.retain(|tag, _| {
            let gone = before.contains(tag.as_str()) && !after.contains(tag.as_str());
            !gone || oh.flows.contains_key(tag)
        });
    }
    Some(RawWorkflow {
        file: base.file,
        header: Some(header),
        states,
        states_key: base.states_key.clone(),
    })
}

/// Inserts `key` → `value`; a key already there keeps its place but takes
/// the new key's position in the source, so diagnostics about the entry
/// point at the file that wrote it last.
fn replace<K: std::hash::Hash + Eq, V>(map: &mut IndexMap<K, V>, key: K, value: V) {
    match map.get_index_of(&key) {
        Some(i) => {
            map.shift_remove_index(i);
            map.shift_insert(i, key, value);
        }
        None => {
            map.insert(key, value);
        }
    }
}

fn extend<K: std::hash::Hash + Eq + Clone, V: Clone>(
    into: &mut IndexMap<K, V>,
    from: &IndexMap<K, V>,
) {
    for (k, v) in from {
        replace(into, k.clone(), v.clone());
    }
}
