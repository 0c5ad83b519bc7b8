//! The validated model: what the interpreter runs and the renderers draw.
//! Only the validator builds it, so a `Workflow` never names an undefined
//! state, an unknown operation or an uncompiled expression.

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::workflow::IndexMap;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::expr::{CompiledExpr, Template};
use super::source::Span;
use crate::platform::{EventSpec, OperationSpec};

mod machine;
mod settings;

pub use super::raw::{FailurePolicy, InputType};
pub use machine::{
    Entity, Machine, MachineState, MachineTransition, MachineTrigger, Target, settable,
};
pub use settings::{SettingDecl, SettingType, TYPE_NAMES};

/// A state's index in its workflow's graph. Only the validator makes them.
pub type StateId = NodeIndex;

/// One request's workflow, validated.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub name: String,
    pub description: Option<String>,
    /// Its file: for a workflow a profile overrides, the overrides file.
    pub path: PathBuf,
    /// The workflow file a profile's overrides change, if they do.
    pub base: Option<PathBuf>,
    /// Flow tag → title, in file order (`basic` first when declared so).
    pub flows: IndexMap<String, String>,
    pub inputs: Vec<Input>,
    /// Its variables, in declaration order (`vars.<name>`).
    pub vars: Vec<Var>,
    pub graph: DiGraph<State, Transition>,
    pub start: StateId,
    pub(crate) by_name: HashMap<String, StateId>,
}

impl Workflow {
    pub fn state(&self, id: StateId) -> &State {
        &self.graph[id]
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        self.by_name.get(name).copied()
    }

    /// States in file order.
    pub fn states(&self) -> impl Iterator<Item = (StateId, &State)> {
        self.graph.node_indices().map(|i| (i, &self.graph[i]))
    }

    /// Transitions out of a state, in the order they are written.
    pub fn transitions(&self, id: StateId) -> Vec<(&Transition, StateId)> {
        let mut out: Vec<_> = self
            .graph
            .edges(id)
            .map(|e| (e.weight(), e.target(), e.id()))
            .collect();
        out.sort_by_key(|(_, _, e)| *e);
        out.into_iter().map(|(t, s, _)| (t, s)).collect()
    }

    /// The state a trigger leads to from `id`, falling back to `otherwise`.
    pub fn next(&self, id: StateId, trigger: &Trigger) -> Option<StateId> {
        self.edge(id, trigger).map(|(_, to)| to)
    }

    /// The transition a trigger takes from `id` (its own, or `otherwise`).
    pub fn edge(&self, id: StateId, trigger: &Trigger) -> Option<(&Transition, StateId)> {
        let mut fallback = None;
        for e in self.graph.edges(id) {
            if &e.weight().trigger == trigger {
                return Some((e.weight(), e.target()));
            }
            if e.weight().trigger == Trigger::Otherwise {
                fallback = Some((e.weight(), e.target()));
            }
        }
        fallback
    }

    pub fn state_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Every expression of the workflow, to change in place.
    pub(crate) fn exprs_mut(&mut self, f: &mut dyn FnMut(&mut CompiledExpr)) {
        for v in &mut self.vars {
            v.initial.iter_mut().for_each(&mut *f);
        }
        for s in self.graph.node_weights_mut() {
            s.set.iter_mut().for_each(|(_, e)| f(e));
            match &mut s.kind {
                StateKind::Op(call) => args_mut(&mut call.args, f),
                StateKind::Choice(guards) => guards.iter_mut().for_each(&mut *f),
                StateKind::Foreach(each) => {
                    f(&mut each.items);
                    match &mut each.body {
                        Body::Op(call) => args_mut(&mut call.args, f),
                        Body::Call(call) => args_mut(&mut call.args, f),
                    }
                }
                StateKind::Call(call) => args_mut(&mut call.args, f),
                StateKind::Emit(e) => args_mut(&mut e.data, f),
                StateKind::Wait(w) => w.guard.iter_mut().for_each(&mut *f),
                StateKind::Respond(Response::Ok { result, close }) => {
                    args_mut(result, f);
                    close.iter_mut().for_each(|t| template_mut(t, f));
                }
                StateKind::Respond(Response::Error { message, .. }) => template_mut(message, f),
                StateKind::Respond(Response::NeedInfo {
                    message,
                    choices,
                    free_text,
                    optional,
                    ..
                }) => {
                    message.iter_mut().for_each(|t| template_mut(t, f));
                    for e in [choices, free_text, optional].into_iter().flatten() {
                        f(e);
                    }
                }
            }
        }
    }
}

impl StateKind {
    /// The workflow a state calls, itself or as a foreach's body.
    pub fn call(&self) -> Option<&WorkflowCall> {
        match self {
            StateKind::Call(c)
            | StateKind::Foreach(Foreach {
                body: Body::Call(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    fn call_mut(&mut self) -> Option<&mut WorkflowCall> {
        match self {
            StateKind::Call(c)
            | StateKind::Foreach(Foreach {
                body: Body::Call(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }
}

/// One workflow of a platform specialised: `f` folds each expression for
/// the platform's settings, and each call finds its callee's place in
/// `index`.
pub(crate) fn specialise_workflow(
    w: &mut Workflow,
    f: &mut dyn FnMut(&mut CompiledExpr),
    index: &HashMap<String, usize>,
) {
    w.exprs_mut(f);
    for s in w.graph.node_weights_mut() {
        if let Some(call) = s.kind.call_mut() {
            call.index = index.get(&call.workflow).copied();
        }
    }
}

pub(crate) fn args_mut(args: &mut Args, f: &mut dyn FnMut(&mut CompiledExpr)) {
    args.iter_mut().for_each(|(_, e)| f(e));
}

pub(crate) fn template_mut(t: &mut Template, f: &mut dyn FnMut(&mut CompiledExpr)) {
    for part in &mut t.parts {
        if let super::expr::TemplatePart::Expr(e) = part {
            f(e);
        }
    }
}

/// A request parameter the workflow reads.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub ty: InputType,
    pub required: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub flow: String,
    pub description: Option<String>,
    /// Variables set on entering the state, by index into the workflow's
    /// `vars`.
    pub set: Vec<(usize, CompiledExpr)>,
    pub kind: StateKind,
    pub span: Span,
    /// The file the state is written in, and the line of its name: what a
    /// trace points a reader at, without the run's sources. Shared by the
    /// states of a file, and by each copy a platform specialises.
    pub file: Arc<Path>,
    pub line: usize,
    /// A profile's overrides wrote it (replaced or added).
    pub changed: bool,
}

/// A workflow variable.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub description: Option<String>,
    /// Its value when the workflow starts; null without one (a read before
    /// a `set` is refused at validation).
    pub initial: Option<CompiledExpr>,
}

impl State {
    pub fn is_terminal(&self) -> bool {
        matches!(self.kind, StateKind::Respond(_))
    }
}

#[derive(Debug, Clone)]
pub enum StateKind {
    Op(OpCall),
    /// Guards in order; guard `i` leads along the edge `Trigger::Guard(i)`.
    Choice(Vec<CompiledExpr>),
    Foreach(Foreach),
    Call(WorkflowCall),
    Emit(Emit),
    Respond(Response),
    Wait(Wait),
}

impl StateKind {
    pub fn name(&self) -> &'static str {
        match self {
            StateKind::Op(_) => "op",
            StateKind::Choice(_) => "choice",
            StateKind::Foreach(_) => "foreach",
            StateKind::Call(_) => "call",
            StateKind::Emit(_) => "emit",
            StateKind::Respond(_) => "respond",
            StateKind::Wait(_) => "wait",
        }
    }
}

/// Arguments, each a compiled expression, in the order written.
/// The names are [interned](crate::workflow::intern): a value built from
/// them copies a pointer.
pub type Args = Vec<(&'static str, CompiledExpr)>;

#[derive(Debug, Clone)]
pub struct OpCall {
    pub op: &'static OperationSpec,
    pub args: Args,
    pub timeout: Duration,
    pub retry: Option<Retry>,
    /// Session field the result is stored in.
    pub save: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
    pub backoff: f64,
    pub outcomes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Foreach {
    pub items: CompiledExpr,
    pub binding: String,
    pub body: Body,
    pub policy: FailurePolicy,
}

#[derive(Debug, Clone)]
pub enum Body {
    Op(OpCall),
    Call(WorkflowCall),
}

#[derive(Debug, Clone)]
pub struct WorkflowCall {
    pub workflow: String,
    pub args: Args,
    /// Where the callee sits among its platform's workflows, once the
    /// platform is readied to run ([`crate::Report::prepare`]): a call finds
    /// it without looking its name up. `None` before: found by name.
    pub index: Option<usize>,
}

/// A state that waits for a switch event.
#[derive(Debug, Clone)]
pub struct Wait {
    pub event: &'static EventSpec,
    /// Events it refuses are left for after the request.
    pub guard: Option<CompiledExpr>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Emit {
    /// [Interned](crate::workflow::intern): each event emitted names it
    /// without a copy.
    pub event: &'static str,
    pub data: Args,
}

#[derive(Debug, Clone)]
pub enum Response {
    Ok {
        result: Args,
        /// Close the client's connection afterwards, with this reason.
        close: Option<Template>,
    },
    Error {
        code: String,
        message: Template,
    },
    NeedInfo {
        field: String,
        message: Option<Template>,
        choices: Option<CompiledExpr>,
        free_text: Option<CompiledExpr>,
        optional: Option<CompiledExpr>,
    },
}

impl Response {
    /// The outcome a caller sees when this response ends a called workflow.
    pub fn outcome(&self) -> &'static str {
        match self {
            Response::Ok { .. } => "ok",
            Response::Error { .. } => "error",
            Response::NeedInfo { .. } => "need_info",
        }
    }
}

/// What makes a transition fire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// An outcome of an operation (`ok`, `error`, `timeout`), a call (`ok`,
    /// `error`, `need_info`), a foreach (`done`, `failed`) or a wait
    /// (`received`, `timeout`).
    Outcome(&'static str),
    /// The guard of a choice branch, by index.
    Guard(usize),
    /// Whatever no other transition of the state handles.
    Otherwise,
    /// The single successor of an emit.
    Next,
}

#[derive(Debug, Clone)]
pub struct Transition {
    pub trigger: Trigger,
    /// Where the transition is written, for coverage reports.
    pub span: Span,
}

impl Transition {
    /// The edge label renders show.
    pub fn label(&self, from: &State) -> String {
        match (&self.trigger, &from.kind) {
            (Trigger::Outcome(o), _) => o.to_string(),
            (Trigger::Guard(i), StateKind::Choice(guards)) => guards
                .get(*i)
                .map_or_else(String::new, |g| g.source().to_string()),
            (Trigger::Guard(i), _) => format!("guard {i}"),
            (Trigger::Otherwise, _) => "otherwise".into(),
            (Trigger::Next, _) => String::new(),
        }
    }
}

/// What a platform does with a switch event no wait took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRoute {
    /// Runs this workflow, after the machines heard the event.
    Workflow(String),
    /// Only the machines hear it.
    Ignore,
}

/// A platform profile: the adapter, the settings and the workflow behind each
/// request, with inherited parts resolved.
#[derive(Debug)]
pub struct Platform {
    pub name: String,
    pub description: Option<String>,
    pub dir: PathBuf,
    /// The folders of the platforms it extends, the nearest first.
    pub ancestors: Vec<PathBuf>,
    pub adapter: String,
    /// How the simulated switch behaves when it stands in for this
    /// platform's (`adapter.switch:`), checked by the adapter.
    pub switch: Option<serde_json::Value>,
    /// Switch operations the adapter kind has but this switch lacks.
    pub lacks: Vec<String>,
    /// Values workflows read as `platform.<name>`, in declaration order.
    pub settings: IndexMap<String, serde_json::Value>,
    /// What each setting is, declared by this platform or one it extends.
    pub declared: IndexMap<String, SettingDecl>,
    /// Error codes the platform's workflows may answer with, beside the
    /// protocol's own: code → what it means.
    pub error_codes: IndexMap<String, String>,
    /// Request name → workflow name.
    pub requests: IndexMap<String, String>,
    /// Switch event name → what runs for it besides the machines.
    pub events: IndexMap<String, EventRoute>,
    pub workflows: IndexMap<String, Arc<Workflow>>,
    /// The machines of the entities the platform tracks.
    pub machines: Vec<Arc<Machine>>,
}

impl Platform {
    /// The media its agents log in on (its `media` setting).
    pub fn media(&self) -> Vec<String> {
        self.settings
            .get("media")
            .and_then(|m| m.as_array())
            .map(|m| {
                m.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn workflow(&self, name: &str) -> Option<&Arc<Workflow>> {
        self.workflows.get(name)
    }

    /// The workflow a call runs.
    pub fn callee(&self, call: &WorkflowCall) -> Option<&Arc<Workflow>> {
        match call.index.and_then(|i| self.workflows.get_index(i)) {
            Some((name, w)) if *name == call.workflow => Some(w),
            _ => self.workflow(&call.workflow),
        }
    }

    /// The workflow that handles a request.
    pub fn handler(&self, request: &str) -> Option<&Arc<Workflow>> {
        self.requests
            .get(request)
            .and_then(|w| self.workflows.get(w))
    }

    /// The workflow a switch event runs, if it runs one.
    pub fn event_handler(&self, event: &str) -> Option<&Arc<Workflow>> {
        match self.events.get(event)? {
            EventRoute::Workflow(w) => self.workflows.get(w),
            EventRoute::Ignore => None,
        }
    }

    /// The machine of an entity, when the platform has one.
    pub fn machine(&self, entity: Entity) -> Option<&Arc<Machine>> {
        self.machines.iter().find(|m| m.entity == entity)
    }

    /// Its settings as expressions read them (`platform.*`), in
    /// declaration order.
    pub fn settings_value(&self) -> Box<dyn cel::common::value::Val> {
        Box::new(self.settings_record())
    }

    /// [`Platform::settings_value`], as the engine keeps it.
    pub fn settings_record(&self) -> super::record::Record {
        super::record::Record::from_json_fields(&self.settings)
    }

    /// Each workflow's place among the platform's, by name: where a call
    /// finds its callee ([`WorkflowCall::index`]).
    pub(crate) fn workflow_index(&self) -> HashMap<String, usize> {
        self.workflows
            .keys()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect()
    }

    /// Works out, in every expression of its workflows and machines, what
    /// its settings alone decide: done once, when the platform is readied to
    /// run ([`crate::Report::prepare`] shares it between platforms).
    pub(crate) fn specialise(&mut self) {
        let settings = self.settings_value();
        let mut f = |e: &mut CompiledExpr| e.specialise(settings.as_ref());
        let index = self.workflow_index();
        for w in self.workflows.values_mut() {
            // A check another platform reuses holds the same workflow: each
            // is specialised for its own platform's settings.
            specialise_workflow(Arc::make_mut(w), &mut f, &index);
        }
        for m in &mut self.machines {
            Arc::make_mut(m).exprs_mut(&mut f);
        }
    }
}
