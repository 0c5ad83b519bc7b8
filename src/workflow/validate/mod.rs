//! Raw files → validated model. Every problem is reported, each at its token;
//! a model is built only for a workflow with no errors.

mod graph;
mod group;
mod machine;
mod overrides;
mod reuse;
mod settings;
mod specialise;
mod states;
mod vars;

use rustc_hash::FxHashMap as HashMap;
use std::path::PathBuf;

use crate::workflow::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};

pub use group::{
    MANIFEST, MAX_EXTENDS, Report, load_platform, validate_paths, validate_paths_with,
};
pub use states::{DEFAULT_TIMEOUT, parse_duration, unknown_event};

use super::diagnostic::{Diagnostic, Diagnostics, Rule, closest};
use super::expr::Scope;
use super::load::{Ctx, LoadedState, RawWorkflow};
use super::model::Trigger;
use super::model::{Input, State, Transition, Workflow};
use super::raw::RawRespond;
use super::vocab::{Shape, States};
use crate::platform::AdapterSpec;

/// What a workflow calling another needs to know of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Callee {
    /// Input name, required.
    pub inputs: Vec<(String, bool)>,
    /// The outcomes its responses give a caller: `ok`, `error`, `need_info`.
    pub outcomes: Vec<&'static str>,
}

impl Callee {
    pub fn of(raw: &RawWorkflow) -> Callee {
        let inputs = raw
            .header
            .iter()
            .flat_map(|h| h.input.iter())
            .map(|(n, i)| (n.to_string(), i.required.as_ref().is_some_and(|r| **r)))
            .collect();
        let mut outcomes = Vec::new();
        for state in raw.states.values().filter_map(|s| s.raw.as_ref()) {
            let o = match state.respond.as_deref() {
                Some(RawRespond::Ok(_)) => "ok",
                Some(RawRespond::Error(_)) => "error",
                Some(RawRespond::NeedInfo(_)) => "need_info",
                None => continue,
            };
            if !outcomes.contains(&o) {
                outcomes.push(o);
            }
        }
        outcomes.sort_by_key(|o| ["ok", "error", "need_info"].iter().position(|x| x == o));
        Callee { inputs, outcomes }
    }
}

/// The names a platform adds to the language, for checking expressions and
/// responses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vocab {
    /// `platform`: its settings and their shapes; `None` for a folder
    /// without a manifest (anything goes).
    pub platform: Option<Shape>,
    /// The states of its machines.
    pub states: States,
    /// Error codes it declares, beside the protocol's.
    pub error_codes: Vec<String>,
}

impl Vocab {
    /// What `platform` reads as.
    pub fn platform_shape(&self) -> Shape {
        self.platform.clone().unwrap_or(Shape::Any)
    }
}

/// The surroundings a workflow is checked in: its platform (or its folder,
/// for files without a manifest) and the workflows it may call.
pub struct Env<'a> {
    /// Name of the platform, `None` for a folder without `platform.yaml`.
    pub platform: Option<&'a str>,
    pub adapter: Option<&'static AdapterSpec>,
    pub lacks: &'a [String],
    /// What the platform names: its settings, states and error codes.
    pub vocab: Vocab,
    pub workflows: &'a IndexMap<String, Callee>,
    /// Inputs of the workflow being checked.
    pub inputs: Vec<String>,
}

impl Env<'_> {
    /// Why the platform cannot run switch operation `op`, if it cannot.
    fn lacks(&self, op: &str) -> Option<String> {
        let adapter = self.adapter?;
        if !adapter.operations.contains(&op) {
            Some(format!(
                "the `{}` adapter has no such operation",
                adapter.kind
            ))
        } else if self.lacks.iter().any(|l| l == op) {
            Some("platform.yaml lists it under `adapter.lacks`".to_string())
        } else {
            None
        }
    }

    fn platform_name(&self) -> &str {
        self.platform.unwrap_or("?")
    }

    fn where_(&self) -> String {
        match self.platform {
            Some(p) => format!("in platform `{p}`"),
            None => "in this folder".to_string(),
        }
    }

    fn callee(&self, name: &str) -> Option<&Callee> {
        self.workflows.get(name)
    }

    fn workflow_names(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i == name)
    }
}

/// Checks one loaded workflow in `env`; returns the model when it has no errors.
pub fn workflow(
    cx: Ctx<'_>,
    raw: &RawWorkflow,
    env: &Env<'_>,
    path: PathBuf,
    out: &mut Diagnostics,
) -> Option<Workflow> {
    let mut diags = Diagnostics::new();
    let header = raw.header.as_ref();
    let inputs: Option<Vec<String>> =
        header.map(|h| h.input.keys().map(|k| k.to_string()).collect());
    // The inputs' names are the keys of the records its callers build: kept
    // before its expressions are compiled, `request.<input>` is read by
    // pointer whichever workflow is checked first.
    for name in inputs.iter().flatten() {
        crate::workflow::intern::name(name);
    }
    let (platform_shape, session) = (env.vocab.platform_shape(), env.vocab.states.session());
    let scope = match &inputs {
        Some(i) => Scope::new(i.clone(), platform_shape, session),
        None => Scope::new(Vec::new(), platform_shape, session).with("request", Shape::Any),
    };
    let env = Env {
        platform: env.platform,
        adapter: env.adapter,
        lacks: env.lacks,
        vocab: env.vocab.clone(),
        workflows: env.workflows,
        inputs: inputs.clone().unwrap_or_default(),
    };

    // Variables: their initial values read the request, not each other.
    let mut var_names: Vec<String> = Vec::new();
    let mut model_vars = Vec::new();
    let mut initial = std::collections::BTreeSet::new();
    for (name, v) in header.iter().flat_map(|h| h.vars.iter()) {
        let ok = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            diags.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    cx.span_of(name),
                    format!("`{}` is not a variable name", name.as_str()),
                )
                .label("expected a name like `failure` or `reason_code`")
                .help("variable names are lower-case letters, digits and `_`"),
            );
        }
        let init = v
            .initial
            .as_ref()
            .and_then(|e| super::expr::compile(cx, e, &scope, &mut diags))
            .map(|(e, _)| e);
        if init.is_some() {
            initial.insert(var_names.len());
        }
        var_names.push(name.to_string());
        model_vars.push(super::model::Var {
            name: name.to_string(),
            description: v.description.as_ref().map(|d| d.to_string()),
            initial: init,
        });
    }
    let scope = scope.with_vars(&var_names);
    let mut uses: Vec<vars::Uses> = Vec::with_capacity(raw.states.len());
    let mut sets: Vec<Vec<(usize, super::expr::CompiledExpr)>> = Vec::new();

    let mut flows: IndexMap<String, String> = header
        .map(|h| {
            h.flows
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    if flows.is_empty() {
        flows.insert("basic".into(), "Basic Flow".into());
    }
    let mut used_flows = vec![false; flows.len()];

    if raw.states.is_empty() && raw.states_key.is_some() {
        diags.push(
            Diagnostic::new(
                Rule::MissingKey,
                raw.states_key.clone().expect("checked"),
                "the workflow has no states",
            )
            .label("empty")
            .help("add at least one state, keyed by name"),
        );
    }

    let mut nodes = Vec::with_capacity(raw.states.len());
    let mut kinds = Vec::with_capacity(raw.states.len());
    let mut flow_of = Vec::with_capacity(raw.states.len());
    let mut unknown_flows = Vec::new();
    for (name, loaded) in &raw.states {
        let Some(state) = &loaded.raw else {
            nodes.push(graph::Node {
                name,
                terminal: false,
                broken: true,
                edges: written(loaded),
                hints: loaded.stray.clone(),
            });
            uses.push(vars::Uses::default());
            sets.push(Vec::new());
            kinds.push(None);
            flow_of.push("basic".to_string());
            continue;
        };
        let flow = state
            .flow
            .as_ref()
            .map_or("basic", |f| f.as_str())
            .to_string();
        match flows.get_index_of(&flow) {
            Some(i) => used_flows[i] = true,
            None => {
                let at = state
                    .flow
                    .as_ref()
                    .map_or_else(|| cx.span_of(name), |f| cx.span_of(f));
                let suggestion = closest(&flow, flows.keys().map(String::as_str));
                diags.push(
                    Diagnostic::new(
                        Rule::UnknownFlow,
                        at,
                        format!("flow `{flow}` is not declared"),
                    )
                    .label("not a key of `flows`")
                    .help(match &suggestion {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("declare it: `flows: {{ {flow}: <title> }}`"),
                    }),
                );
                unknown_flows.extend(suggestion);
            }
        }
        // Reads are recorded only where they can name a variable: a
        // workflow without any has none to check, a state without `set:`
        // nothing read before it acts.
        let recording = |reads: bool| {
            if reads && !var_names.is_empty() {
                let (s, r) = scope.recording();
                (s, Some(r))
            } else {
                (scope.clone(), None)
            }
        };
        // `set:` first: it runs on entering the state, before it acts.
        let (set_scope, reads_before) = recording(state.set.is_some());
        let mut used = vars::Uses::default();
        let mut set = Vec::new();
        for (var, e) in state.set.iter().flatten() {
            let compiled = super::expr::compile(cx, e, &set_scope, &mut diags);
            match var_names.iter().position(|n| n == var.as_str()) {
                Some(i) => {
                    used.set.insert(i);
                    if let Some((c, _)) = compiled {
                        set.push((i, c));
                    }
                }
                None => diags.push(
                    Diagnostic::new(
                        Rule::UnknownField,
                        cx.span_of(var),
                        format!("`{}` is not a variable of this workflow", var.as_str()),
                    )
                    .label("undeclared variable")
                    .help(
                        super::diagnostic::did_you_mean(var, var_names.iter().map(String::as_str))
                            .unwrap_or_else(|| {
                                format!("declare it: `vars: {{ {}: {{}} }}`", var.as_str())
                            }),
                    ),
                ),
            }
        }
        let (state_scope, reads_after) = recording(true);
        let (kind, edges) = states::state(
            cx,
            &env,
            &state_scope,
            name,
            state,
            loaded.unknown_keys,
            &mut diags,
        );
        let index = |reads: &Option<super::expr::Reads>| -> Vec<(usize, super::expr::ReadAt)> {
            let Some(reads) = reads else {
                return Vec::new();
            };
            reads
                .borrow()
                .iter()
                .filter_map(|(n, at)| {
                    var_names
                        .iter()
                        .position(|v| v == n)
                        .map(|i| (i, at.clone()))
                })
                .collect()
        };
        used.reads_before = index(&reads_before);
        used.reads_after = index(&reads_after);
        uses.push(used);
        sets.push(set);
        // A state with unknown keys may have misspelt a transition key: its
        // written targets and stray values stand in for its edges.
        let broken = kind.is_none() || loaded.unknown_keys;
        nodes.push(graph::Node {
            name,
            terminal: state.respond.is_some(),
            broken,
            edges: if broken { written(loaded) } else { edges },
            hints: loaded.stray.clone(),
        });
        kinds.push(kind);
        flow_of.push(flow);
    }

    if let Some(h) = header {
        for ((tag, _), used) in h.flows.iter().zip(&used_flows) {
            // A misspelt tag elsewhere already says this one is meant.
            if !used && !unknown_flows.iter().any(|u| *u == tag.as_str()) {
                diags.push(
                    Diagnostic::new(
                        Rule::UnusedFlow,
                        cx.span_of(tag),
                        format!("flow `{}` has no states", tag.as_str()),
                    )
                    .label("declared but unused")
                    .help("tag the states of this flow with `flow:`, or remove the declaration"),
                );
            }
        }
    }

    let (start, edges) = graph::check(
        cx,
        &nodes,
        header.map(|h| &h.start),
        raw.states_key.as_ref(),
        &mut diags,
    );
    // Reads before a `set` are judged only on an otherwise sound graph.
    if let Some(start) = start.filter(|_| !diags.has_errors()) {
        vars::check(cx, &var_names, &initial, &uses, &edges, start, &mut diags);
    }
    let failed = diags.has_errors();
    out.extend(diags);
    if failed {
        return None;
    }
    let header = header?;
    let start = start?;

    let mut g = DiGraph::with_capacity(nodes.len(), edges.len());
    let mut by_name = HashMap::with_capacity_and_hasher(nodes.len(), Default::default());
    // The states of a workflow are mostly of one file (a profile's
    // overrides mix two): its path is made once for a run of them.
    let mut file: Option<(
        crate::workflow::source::FileId,
        std::sync::Arc<std::path::Path>,
    )> = None;
    for (((node, kind), flow), set) in nodes.iter().zip(kinds).zip(flow_of).zip(sets) {
        let raw_state = raw
            .states
            .get(node.name.as_str())
            .and_then(|s| s.raw.as_ref());
        let span = cx.span_of(node.name);
        let id = g.add_node(State {
            name: node.name.to_string(),
            flow,
            description: raw_state
                .and_then(|s| s.description.as_ref())
                .map(|d| d.to_string()),
            set,
            kind: kind?,
            span: span.clone(),
            file: match &file {
                Some((id, path)) if *id == span.file => path.clone(),
                _ => file
                    .insert((span.file, cx.sources.get(span.file).path().into()))
                    .1
                    .clone(),
            },
            line: cx.sources.get(span.file).line_col(span.range.start).0,
            changed: false,
        });
        by_name.insert(node.name.to_string(), id);
    }
    for e in edges {
        g.add_edge(
            NodeIndex::new(e.from),
            NodeIndex::new(e.to),
            Transition {
                trigger: e.trigger,
                span: e.span,
            },
        );
    }
    Some(Workflow {
        name: header.workflow.to_string(),
        description: header.description.as_ref().map(|d| d.to_string()),
        path,
        base: None,
        flows,
        inputs: header
            .input
            .iter()
            .map(|(n, i)| Input {
                name: n.to_string(),
                ty: *i.ty,
                required: i.required.as_ref().is_some_and(|r| **r),
                description: i.description.as_ref().map(|d| d.to_string()),
            })
            .collect(),
        vars: model_vars,
        graph: g,
        start: NodeIndex::new(start),
        by_name,
    })
}

/// The transitions a state's YAML names, whatever its kind.
fn written(loaded: &LoadedState) -> states::Edges {
    loaded
        .written_targets
        .iter()
        .map(|t| (Trigger::Otherwise, t.clone()))
        .collect()
}
