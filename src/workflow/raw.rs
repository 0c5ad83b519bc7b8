//! The files as written: serde types that mirror the YAML, every user-facing
//! scalar wrapped in [`Sp`] so diagnostics can point at it. The JSON Schemas in
//! `schemas/` are generated from these same types.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::workflow::IndexMap;
use marked_yaml::{Marker, Spanned};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

/// A value with the place it was written. Equality and hashing look at the
/// value only, so `Sp<String>` works as a map key.
#[derive(Debug, Clone)]
pub struct Sp<T>(pub Spanned<T>);

impl<T> Sp<T> {
    pub fn new(marker: Option<Marker>, value: T) -> Self {
        let span = match marker {
            Some(m) => marked_yaml::Span::new_start(m),
            None => marked_yaml::Span::new_blank(),
        };
        Sp(Spanned::new(span, value))
    }

    /// Where the value starts in its file, when known.
    pub fn marker(&self) -> Option<Marker> {
        self.0.span().start().copied()
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: PartialEq> PartialEq for Sp<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for Sp<T> {}

impl<T: Hash> Hash for Sp<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::borrow::Borrow<str> for Sp<String> {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::deserialize(d).map(Sp)
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A CEL expression, compiled once at validation.
pub type Expr = Sp<String>;

/// Schema of a CEL expression: YAML may write it as text, a number or a
/// boolean (`when: true`); all are CEL source.
fn cel(_: &mut SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": ["string", "number", "boolean"],
        "description": "A CEL expression (https://github.com/google/cel-spec). Text literals are quoted inside it: 'like this'."
    })
}

/// Schema of a mapping of names to CEL expressions.
fn cel_map(g: &mut SchemaGenerator) -> Schema {
    let value = cel(g);
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": value
    })
}

/// A mapping of names to CEL expressions (operation arguments, event data,
/// response results).
pub type ExprMap = IndexMap<Sp<String>, Expr>;

/// Schema of a switch event's name: one of the catalog's.
fn switch_event(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = crate::platform::EVENTS.iter().map(|e| e.name).collect();
    schemars::json_schema!({
        "type": "string",
        "enum": names,
        "description": "A switch event of the catalog (`hisflow events`)."
    })
}

/// The top of a workflow file, without `states` (each state is loaded on its
/// own so that every bad state is reported in one run).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWorkflowHeader {
    /// Name other workflows `call` it by and platforms map requests to.
    pub workflow: Sp<String>,
    /// What the workflow does, for renders and docs.
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// The use-case flows its states belong to: tag → title (`basic: Basic Flow`,
    /// `AF1: Logout Reason`, …). Renders group states by them.
    #[serde(default)]
    pub flows: IndexMap<Sp<String>, Sp<String>>,
    /// The request parameters the workflow reads, as `request.<name>`.
    #[serde(default)]
    pub input: IndexMap<Sp<String>, RawInput>,
    /// Values the workflow keeps between states, read as `vars.<name>` and
    /// written by a state's `set:`.
    #[serde(default)]
    pub vars: IndexMap<Sp<String>, RawVar>,
    /// The state the workflow begins in.
    pub start: Sp<String>,
}

/// Key names of a workflow file, for unknown-key diagnostics.
pub const WORKFLOW_KEYS: &[&str] = &[
    "workflow",
    "description",
    "flows",
    "input",
    "vars",
    "start",
    "states",
];

/// The top of an overrides file: a profile's changes to a workflow it
/// inherits, without `states` (loaded like a workflow's).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOverridesHeader {
    /// The inherited workflow this file changes.
    pub overrides: Sp<String>,
    /// Replaces the workflow's description.
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Flows added, or retitled, by the changed states.
    #[serde(default)]
    pub flows: IndexMap<Sp<String>, Sp<String>>,
    /// Request parameters added or redeclared.
    #[serde(default)]
    pub input: IndexMap<Sp<String>, RawInput>,
    /// Variables added or redeclared.
    #[serde(default)]
    pub vars: IndexMap<Sp<String>, RawVar>,
    /// A new first state.
    #[serde(default)]
    pub start: Option<Sp<String>>,
    /// Inherited states this profile does without.
    #[serde(default)]
    pub remove: Vec<Sp<String>>,
}

/// Key names of an overrides file, for unknown-key diagnostics.
pub const OVERRIDES_KEYS: &[&str] = &[
    "overrides",
    "description",
    "flows",
    "input",
    "vars",
    "start",
    "remove",
    "states",
];

/// A workflow variable.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVar {
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// CEL expression giving its value when the workflow starts; without
    /// one, a state must `set` it before any reads it.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub initial: Option<Expr>,
}

/// A request parameter a workflow reads.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    #[serde(rename = "type")]
    pub ty: Sp<InputType>,
    #[serde(default)]
    pub required: Option<Sp<bool>>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Bool,
    Int,
    List,
    Any,
}

/// One state. Exactly one of `op`, `choice`, `foreach`, `call`, `emit`,
/// `respond`, `wait` says what kind it is; the other keys depend on the kind.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// The use-case flow this state belongs to (a key of `flows`); `basic` by default.
    #[serde(default)]
    pub flow: Option<Sp<String>>,
    /// The use-case step this state carries out.
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Any kind: workflow variables to set on entering the state, before it
    /// acts; each a CEL expression, which reads the variables as they were.
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub set: Option<ExprMap>,

    /// op: the operation to call.
    #[serde(default)]
    pub op: Option<Sp<String>>,
    /// op, call: arguments, each a CEL expression.
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub args: Option<ExprMap>,
    /// op: how long the switch may take (`5s`, `250ms`); wait: how long to wait.
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// op: tries again on the listed outcomes.
    #[serde(default)]
    pub retry: Option<Sp<RawRetry>>,
    /// op: session field the operation's result is stored in.
    #[serde(default)]
    pub save: Option<Sp<String>>,

    /// choice: guards tried in order; the first true one is taken.
    #[serde(default)]
    pub choice: Option<Sp<Vec<RawBranch>>>,

    /// foreach: CEL expression giving the list of items.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub foreach: Option<Expr>,
    /// foreach: the name each item is bound to.
    #[serde(default, rename = "as")]
    pub binding: Option<Sp<String>>,
    /// foreach: what runs for each item: an `op` or a `call`.
    #[serde(default, rename = "do")]
    pub body: Option<Sp<RawBody>>,
    /// foreach: `abort` stops at the first failing item; `continue` runs them all.
    #[serde(default)]
    pub on_failure: Option<Sp<FailurePolicy>>,

    /// call: the workflow to run; its response becomes this state's outcome.
    #[serde(default)]
    pub call: Option<Sp<String>>,

    /// emit: the event name, `<entity>.event.<what>`.
    #[serde(default)]
    pub emit: Option<Sp<String>>,
    /// emit: the event's data, each field a CEL expression.
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub data: Option<ExprMap>,

    /// respond: ends the workflow with a response.
    #[serde(default)]
    pub respond: Option<Sp<RawRespond>>,

    /// wait: the switch event to wait for (`agent.event.loggedOut`).
    #[serde(default)]
    #[schemars(schema_with = "switch_event")]
    pub wait: Option<Sp<String>>,
    /// wait: a CEL guard on the event (`event.<field>`); events it refuses are
    /// left for after the request.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub when: Option<Expr>,

    /// op, foreach, call, wait: outcome → next state.
    #[serde(default)]
    pub on: Option<IndexMap<Sp<String>, Sp<String>>>,
    /// op, call, choice, wait: where every outcome (or guard) not listed goes.
    #[serde(default)]
    pub otherwise: Option<Sp<String>>,
    /// emit: the next state; op, foreach, call, wait: shorthand for
    /// `on: {ok|done|received: …}`.
    #[serde(default)]
    pub next: Option<Sp<String>>,
}

/// A state's keys, in the order of [`RawState`]'s fields (its `as` and
/// `do` renamed): the loader reads them in this order.
pub const STATE_FIELDS: [&str; 22] = [
    "flow",
    "description",
    "set",
    "op",
    "args",
    "timeout",
    "retry",
    "save",
    "choice",
    "foreach",
    "as",
    "do",
    "on_failure",
    "call",
    "emit",
    "data",
    "respond",
    "wait",
    "when",
    "on",
    "otherwise",
    "next",
];

/// Key names of a state, for unknown-key diagnostics.
pub const STATE_KEYS: &[&str] = &STATE_FIELDS;

/// The keys that make a state one kind or another.
pub const KIND_KEYS: &[&str] = &["op", "choice", "foreach", "call", "emit", "respond", "wait"];

/// One guarded branch of a choice.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    /// CEL guard.
    #[schemars(schema_with = "cel")]
    pub when: Expr,
    pub next: Sp<String>,
}

/// The body of a foreach: one operation or one workflow call per item.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBody {
    #[serde(default)]
    pub op: Option<Sp<String>>,
    #[serde(default)]
    pub call: Option<Sp<String>>,
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub args: Option<ExprMap>,
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    #[serde(default)]
    pub retry: Option<Sp<RawRetry>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    Abort,
    Continue,
}

/// How an operation is tried again.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Tries in all, the first included (1–10).
    pub attempts: Sp<u32>,
    /// Wait before the second try (`100ms`); multiplied by `backoff` after each.
    #[serde(default)]
    pub delay: Option<Sp<String>>,
    /// Factor between waits, at least 1.0.
    #[serde(default)]
    pub backoff: Option<Sp<f64>>,
    /// Outcomes that are retried; `[timeout]` by default.
    #[serde(default)]
    pub outcomes: Option<Vec<Sp<String>>>,
}

/// The response a `respond` state ends the workflow with.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawRespond {
    /// Success, with an optional result.
    Ok(RawOk),
    /// Failure, with a protocol error code and the message the agent reads.
    Error(RawError),
    /// The request lacks a parameter: the client asks the user and resubmits.
    NeedInfo(Box<RawNeedInfo>),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOk {
    /// Result fields, each a CEL expression.
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub result: Option<ExprMap>,
    /// Close the client's connection after the response (end of logout).
    #[serde(default)]
    pub close: Option<Sp<bool>>,
    /// Why the connection closes, for the agent to read; `${expr}` inserts a
    /// value. Implies `close`. `logged out` by default.
    #[serde(default)]
    pub close_reason: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawError {
    /// A protocol error code (`NotReadyFailed`, `InvalidState`, …).
    pub code: Sp<String>,
    /// Text for the agent; `${expr}` inserts the value of a CEL expression.
    pub message: Sp<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNeedInfo {
    /// The request parameter the client must supply.
    pub field: Sp<String>,
    /// Text for the agent; `${expr}` inserts the value of a CEL expression.
    #[serde(default)]
    pub message: Option<Sp<String>>,
    /// CEL expression giving the values the agent may choose from.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub choices: Option<Expr>,
    /// CEL expression: whether the agent may type a value that is not among the choices.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub free_text: Option<Expr>,
    /// CEL expression: whether the agent may decline to give a value; the
    /// client then resubmits the field empty (`""`).
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub optional: Option<Expr>,
}

/// A hisflow workflow: one request's handling as a graph of states. See
/// docs/workflow-language.md.
#[derive(JsonSchema)]
#[schemars(title = "hisflow workflow", deny_unknown_fields)]
#[allow(dead_code)]
pub struct WorkflowFile {
    #[serde(flatten)]
    header: RawWorkflowHeader,
    /// The states, keyed by name.
    states: IndexMap<String, RawState>,
}

/// A profile's changes to a workflow it inherits: states replaced (same
/// name), added (new name) or removed. See docs/workflow-language.md.
#[derive(JsonSchema)]
#[schemars(title = "hisflow workflow overrides", deny_unknown_fields)]
#[allow(dead_code)]
pub struct OverridesFile {
    #[serde(flatten)]
    header: RawOverridesHeader,
    /// States replacing the inherited ones of the same name, or added.
    #[serde(default)]
    states: IndexMap<String, RawState>,
}

/// The top of a platform manifest (`platform.yaml`), without `settings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlatformHeader {
    /// The platform's name; by convention its folder's name.
    pub platform: Sp<String>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// A sibling platform folder whose workflows, settings and requests this
    /// one inherits; its own files override workflows of the same name.
    #[serde(default)]
    pub extends: Option<Sp<String>>,
    /// The switch adapter; inherited when absent.
    #[serde(default)]
    pub adapter: Option<RawAdapter>,
    /// Request name → workflow name; merged over the inherited mapping.
    #[serde(default)]
    pub requests: IndexMap<Sp<String>, Sp<String>>,
    /// Switch event → the workflow that handles it, or `ignore`; merged over
    /// the inherited mapping. Events a machine hears need no entry.
    #[serde(default)]
    #[schemars(schema_with = "event_routes")]
    pub events: IndexMap<Sp<String>, Sp<String>>,
}

/// Schema of `events:`: catalog names to a workflow name or `ignore`.
fn event_routes(g: &mut SchemaGenerator) -> Schema {
    let name = switch_event(g);
    schemars::json_schema!({
        "type": "object",
        "propertyNames": name,
        "additionalProperties": {
            "type": "string",
            "description": "A workflow of the platform, or `ignore`."
        }
    })
}

/// The route that drops an event on purpose.
pub const IGNORE: &str = "ignore";

pub const PLATFORM_KEYS: &[&str] = &[
    "platform",
    "description",
    "extends",
    "adapter",
    "requests",
    "events",
    "declare",
    "settings",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAdapter {
    /// The adapter kind (`sim`).
    pub kind: Sp<String>,
    /// Switch operations this switch does not have, though the adapter kind
    /// does: workflows of the platform may not call them.
    #[serde(default)]
    pub lacks: Vec<Sp<String>>,
    /// How the simulated switch behaves when it stands in for this
    /// platform's (scenarios and `hisflow serve`): what a scenario's
    /// `switch:` says, merged under it. Read by the loader as written.
    #[serde(default)]
    #[schemars(with = "Option<crate::platform::sim::SwitchState>")]
    pub switch: Option<serde::de::IgnoredAny>,
}

/// A hisflow platform manifest (platform.yaml): the switch adapter, the
/// settings workflows read, and the workflow behind each request.
#[derive(JsonSchema)]
#[schemars(title = "hisflow platform", deny_unknown_fields)]
#[allow(dead_code)]
pub struct PlatformFile {
    #[serde(flatten)]
    header: RawPlatformHeader,
    /// What this platform adds to the language of its workflows: typed
    /// settings and error codes.
    #[serde(default)]
    declare: Option<DeclareFile>,
    /// Values of the settings declared by this platform or one it extends;
    /// workflows read them as `platform.<name>`.
    #[serde(default)]
    settings: IndexMap<String, serde_json::Value>,
}

/// `declare:` of a platform manifest.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct DeclareFile {
    /// Settings workflows read as `platform.<name>`: each with a type, a
    /// default and a description. Platforms that extend this one set
    /// values under `settings:`.
    settings: Option<IndexMap<String, SettingDeclFile>>,
    /// Error codes the platform's workflows may answer with, beside the
    /// protocol's: `Code: what it means`.
    errors: Option<IndexMap<String, String>>,
}

/// The type names of settings.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum TypeName {
    Text,
    Bool,
    Integer,
    Duration,
    List,
    Enum,
    Record,
}

/// A type: its name, or a mapping for a list, an enum or a record.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TypeFile {
    Name(TypeName),
    Full(Box<TypeSpecFile>),
}

/// A type written as a mapping.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct TypeSpecFile {
    #[serde(rename = "type")]
    ty: TypeName,
    /// list: the items' type.
    of: Option<TypeFile>,
    /// enum: the values.
    values: Option<Vec<String>>,
    /// record: the fields and their types.
    fields: Option<IndexMap<String, TypeFile>>,
}

/// One setting's declaration.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct SettingDeclFile {
    #[serde(rename = "type")]
    ty: TypeName,
    /// list: the items' type.
    of: Option<TypeFile>,
    /// enum: the values.
    values: Option<Vec<String>>,
    /// record: the fields and their types.
    fields: Option<IndexMap<String, TypeFile>>,
    /// The value when no platform sets one; without it, every platform must.
    default: Option<serde_json::Value>,
    /// What the setting changes, for integrators.
    description: Option<String>,
}

/// What a machine is the state of: one instance per channel, or one per
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Channel,
    Session,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Channel => "channel",
            Entity::Session => "session",
        }
    }
}

/// The top of a machine file, without `on` and `states` (loaded node by
/// node, so every bad transition is reported in one run).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMachineHeader {
    /// The machine's name, for renders and reports.
    pub machine: Sp<String>,
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// What it is the state of: `channel` (one instance per channel, its
    /// state is `channel.state`) or `session` (`session.state`).
    pub entity: Sp<Entity>,
    /// The state a new instance begins in.
    pub initial: Sp<String>,
}

/// Key names of a machine file.
pub const MACHINE_KEYS: &[&str] = &[
    "machine",
    "description",
    "entity",
    "initial",
    "on",
    "states",
];

/// Key names of a machine's state.
pub const MACHINE_STATE_KEYS: &[&str] = &["description", "on"];

/// One transition of a machine, as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTransition {
    /// CEL guard: the transition is taken only when it holds.
    #[serde(default)]
    #[schemars(schema_with = "cel")]
    pub when: Option<Expr>,
    /// The state to go to: a state's name, or `${expr}` for the state an
    /// expression names (`${event.state}`). Absent: the state stays.
    #[serde(default)]
    pub to: Option<Sp<String>>,
    /// Fields of the entity to change, each a CEL expression
    /// (`active`, `interactions` of a channel).
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub set: Option<ExprMap>,
    /// An event for the client, `<entity>.event.<what>`.
    #[serde(default)]
    pub emit: Option<Sp<String>>,
    /// The emitted event's data, each field a CEL expression.
    #[serde(default)]
    #[schemars(schema_with = "cel_map")]
    pub data: Option<ExprMap>,
}

/// The transitions one trigger fires, tried in order.
#[derive(Debug)]
pub struct RawTrigger {
    /// An operation (`agent.set_ready`: it succeeded) or a switch event.
    pub trigger: Sp<String>,
    pub branches: Vec<RawTransition>,
}

/// One state of a machine, as loaded.
#[derive(Debug)]
pub struct RawMachineState {
    pub description: Option<Sp<String>>,
    pub on: Vec<RawTrigger>,
}

/// Schema of an `on:` mapping of a machine: trigger → a state name, one
/// transition, or transitions tried in order.
fn machine_on(g: &mut SchemaGenerator) -> Schema {
    let transition = g.subschema_for::<RawTransition>();
    let triggers: Vec<&str> = crate::platform::OPERATIONS
        .iter()
        .filter(|o| o.provider() == crate::platform::Provider::Switch)
        .map(|o| o.name)
        .chain(crate::platform::EVENTS.iter().map(|e| e.name))
        .collect();
    schemars::json_schema!({
        "type": "object",
        "description": "Trigger → transition. A trigger is a switch operation (it succeeded) or a switch event.",
        "propertyNames": { "enum": triggers },
        "additionalProperties": {
            "anyOf": [
                { "type": "string", "description": "The state to go to." },
                transition,
                { "type": "array", "items": transition }
            ]
        }
    })
}

/// A state of a machine, for the JSON Schema.
#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
#[allow(dead_code)]
struct MachineStateFile {
    description: Option<String>,
    /// Transitions in this state, tried before the machine's own `on`.
    #[schemars(schema_with = "machine_on", default)]
    on: Option<()>,
}

/// A hisflow machine: the long-lived state of a channel or session, and how
/// operations and switch events change it. See docs/workflow-language.md.
#[derive(JsonSchema)]
#[schemars(title = "hisflow machine", deny_unknown_fields)]
#[allow(dead_code)]
pub struct MachineFile {
    #[serde(flatten)]
    header: RawMachineHeader,
    /// Transitions in every state, tried after the current state's own.
    #[schemars(schema_with = "machine_on", default)]
    on: Option<()>,
    /// The states, keyed by name.
    states: IndexMap<String, MachineStateFile>,
}
