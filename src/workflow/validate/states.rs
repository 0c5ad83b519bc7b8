//! Checks one state and compiles it: its kind, the keys that go with the kind,
//! operations and their arguments, expressions, and which outcomes its
//! transitions handle.

use std::collections::BTreeSet;
use std::time::Duration;

use marked_yaml::Marker;

use super::Env;
use crate::platform::{EventSpec, OperationSpec, Provider, catalog, events};
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::expr::{self, CompiledExpr, Scope};
use crate::workflow::load::Ctx;
use crate::workflow::model::{
    Args, Body, Emit, Foreach, OpCall, Response, Retry, StateKind, Trigger, Wait, WorkflowCall,
};
use crate::workflow::raw::{
    ExprMap, FailurePolicy, KIND_KEYS, RawBody, RawRespond, RawRetry, RawState, Sp,
};
use crate::workflow::source::Span;
use crate::workflow::vocab::{self, ERROR_CODES, Shape, WRITABLE_SESSION_FIELDS};

/// Time a switch operation may take when the state does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_ATTEMPTS: u32 = 10;

/// A state's transitions as written: trigger, target name.
pub type Edges = Vec<(Trigger, Sp<String>)>;

/// Keys each kind of state accepts, besides `flow` and `description`.
fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "op" => &[
            "op",
            "args",
            "timeout",
            "retry",
            "save",
            "on",
            "otherwise",
            "next",
        ],
        "choice" => &["choice", "otherwise"],
        "foreach" => &["foreach", "as", "do", "on_failure", "on", "next"],
        "call" => &["call", "args", "on", "otherwise", "next"],
        "emit" => &["emit", "data", "next"],
        "wait" => &["wait", "when", "timeout", "on", "otherwise", "next"],
        _ => &["respond"],
    }
}

/// The outcomes of a `wait`.
const WAIT_OUTCOMES: &[&str] = &["received", "timeout"];

/// The keys a state has, with where each is written.
fn present(raw: &RawState) -> smallvec::SmallVec<[(&'static str, Option<Marker>); 6]> {
    fn m<T>(v: &Option<Sp<T>>) -> Option<Option<Marker>> {
        v.as_ref().map(Sp::marker)
    }
    fn map<V>(v: &Option<crate::workflow::IndexMap<Sp<String>, V>>) -> Option<Option<Marker>> {
        v.as_ref().map(|m| m.keys().next().and_then(Sp::marker))
    }
    [
        ("op", m(&raw.op)),
        ("choice", m(&raw.choice)),
        ("foreach", m(&raw.foreach)),
        ("call", m(&raw.call)),
        ("emit", m(&raw.emit)),
        ("respond", m(&raw.respond)),
        ("wait", m(&raw.wait)),
        ("when", m(&raw.when)),
        ("args", map(&raw.args)),
        ("timeout", m(&raw.timeout)),
        ("retry", m(&raw.retry)),
        ("save", m(&raw.save)),
        ("as", m(&raw.binding)),
        ("do", m(&raw.body)),
        ("on_failure", m(&raw.on_failure)),
        ("data", map(&raw.data)),
        ("on", map(&raw.on)),
        ("otherwise", m(&raw.otherwise)),
        ("next", m(&raw.next)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|m| (k, m)))
    .collect()
}

/// Checks the state `name`; returns its compiled kind and its transitions,
/// both only when every part of it is valid (the caller takes the written
/// targets of a broken state instead).
/// `suspect`: the state had unknown keys (a misspelt `otherwise`, say), so
/// which outcomes it handles is not judged.
pub fn state(
    cx: Ctx<'_>,
    env: &Env<'_>,
    scope: &Scope,
    name: &Sp<String>,
    raw: &RawState,
    suspect: bool,
    diags: &mut Diagnostics,
) -> (Option<StateKind>, Edges) {
    let name_span = cx.span_of(name);
    let keys = present(raw);
    let kinds: smallvec::SmallVec<[_; 2]> =
        keys.iter().filter(|(k, _)| KIND_KEYS.contains(k)).collect();
    let kind = match kinds.as_slice() {
        [] => {
            diags.push(
                Diagnostic::new(Rule::StateKind, name_span, format!("state `{}` has no kind", name.as_str()))
                    .label("needs one of op, choice, foreach, call, emit, respond, wait")
                    .help("add the key that says what the state does, e.g. `op: agent.logout` or `respond: { ok: {} }`"),
            );
            return (None, Vec::new());
        }
        [(k, _)] => *k,
        [(first, _), (second, at), ..] => {
            diags.push(
                Diagnostic::new(
                    Rule::StateKind,
                    cx.span(*at),
                    format!("state `{}` is both `{first}` and `{second}`", name.as_str()),
                )
                .label(format!("second kind `{second}`"))
                .help("a state does one thing: split it into two states joined by a transition"),
            );
            return (None, Vec::new());
        }
    };
    let mut ok = true;
    for (key, at) in &keys {
        if !allowed(kind).contains(key) {
            ok = false;
            let owner = KIND_KEYS
                .iter()
                .copied()
                .filter(|k| allowed(k).contains(key))
                .collect::<Vec<_>>()
                .join(", ");
            diags.push(
                Diagnostic::new(
                    Rule::MisplacedKey,
                    at.map_or(name_span.clone(), |m| cx.span(Some(m))),
                    format!("`{key}` does not belong in a `{kind}` state"),
                )
                .label(format!("not a key of `{kind}`"))
                .help(format!(
                    "`{key}` is used by: {owner}; a `{kind}` state takes: {}",
                    allowed(kind).join(", ")
                )),
            );
        }
    }
    let mut s = StateCheck {
        cx,
        env,
        diags,
        ok,
        suspect,
    };
    let (compiled, edges) = match kind {
        "op" => s.op_state(raw, scope),
        "choice" => s.choice(raw, scope),
        "foreach" => s.foreach(raw, scope, &name_span),
        "call" => s.call_state(raw, scope),
        "emit" => s.emit(raw, scope),
        "wait" => s.wait(raw, scope, &name_span),
        _ => s.respond(raw, scope),
    };
    (compiled.filter(|_| s.ok), edges)
}

struct StateCheck<'a, 'd> {
    cx: Ctx<'a>,
    env: &'a Env<'a>,
    diags: &'d mut Diagnostics,
    ok: bool,
    suspect: bool,
}

impl StateCheck<'_, '_> {
    fn push(&mut self, d: Diagnostic) {
        if d.severity == crate::workflow::diagnostic::Severity::Error {
            self.ok = false;
        }
        self.diags.push(d);
    }

    fn expr(&mut self, e: &Sp<String>, scope: &Scope) -> Option<(CompiledExpr, Shape)> {
        let r = expr::compile(self.cx, e, scope, self.diags);
        self.ok &= r.is_some();
        r
    }

    fn exprs(&mut self, map: Option<&ExprMap>, scope: &Scope) -> Args {
        let mut out = Vec::new();
        for (k, v) in map.into_iter().flatten() {
            if let Some((e, _)) = self.expr(v, scope) {
                out.push((crate::workflow::intern::name(k), e));
            }
        }
        out
    }

    fn template(&mut self, t: &Sp<String>, scope: &Scope) -> Option<expr::Template> {
        let r = expr::template(self.cx, t, scope, self.diags);
        self.ok &= r.is_some();
        r
    }

    fn duration(&mut self, d: &Sp<String>, what: &str) -> Option<Duration> {
        match parse_duration(d.as_str()) {
            Some(v) if v <= MAX_TIMEOUT => Some(v),
            Some(_) => {
                self.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        self.cx.span_of(d),
                        format!("{what} `{}` is longer than 10 minutes", d.as_str()),
                    )
                    .label("too long")
                    .help("switch operations answer in seconds; use a shorter duration"),
                );
                None
            }
            None => {
                self.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        self.cx.span_of(d),
                        format!("`{}` is not a duration", d.as_str()),
                    )
                    .label("expected a number with a unit")
                    .help("write e.g. `250ms`, `5s` or `1m`"),
                );
                None
            }
        }
    }

    /// The operation named `op`, if the platform's adapter has it.
    fn operation(&mut self, op: &Sp<String>) -> Option<&'static OperationSpec> {
        let span = self.cx.span_of(op);
        let Some(spec) = catalog::operation(op.as_str()) else {
            let help = did_you_mean(op.as_str(), catalog::OPERATIONS.iter().map(|o| o.name))
                .unwrap_or_else(|| "run `hisflow operations` to list the catalog".to_string());
            self.push(
                Diagnostic::new(
                    Rule::UnknownOperation,
                    span,
                    format!("unknown operation `{}`", op.as_str()),
                )
                .label("not in the operation catalog")
                .help(help),
            );
            return None;
        };
        if spec.provider() == Provider::Switch
            && let Some(reason) = self.env.lacks(spec.name)
        {
            self.push(
                    Diagnostic::new(Rule::UnknownOperation, span, format!("operation `{}` is not available on platform `{}`", spec.name, self.env.platform_name()))
                        .label(reason)
                        .help(format!(
                            "this switch cannot do it: give platform `{}` its own version of this workflow (a file with the same `workflow:` name in its folder) that does not call it",
                            self.env.platform_name()
                        )),
                );
            return None;
        }
        Some(spec)
    }

    fn op_args(&mut self, spec: &OperationSpec, args: Option<&ExprMap>, at: &Span) {
        let names: Vec<&str> = spec.args.iter().map(|a| a.name).collect();
        for k in args.into_iter().flat_map(|a| a.keys()) {
            if spec.arg(k).is_none() {
                let help = did_you_mean(k, names.iter().copied()).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("`{}` takes no arguments", spec.name)
                    } else {
                        format!("`{}` takes: {}", spec.name, names.join(", "))
                    }
                });
                self.push(
                    Diagnostic::new(
                        Rule::UnknownArgument,
                        self.cx.span_of(k),
                        format!("`{}` has no argument `{}`", spec.name, k.as_str()),
                    )
                    .label("unknown argument")
                    .help(help),
                );
            }
        }
        for a in spec.args.iter().filter(|a| a.required) {
            if !args.is_some_and(|m| m.contains_key(a.name)) {
                self.push(
                    Diagnostic::new(
                        Rule::MissingArgument,
                        at.clone(),
                        format!("`{}` needs argument `{}`", spec.name, a.name),
                    )
                    .label(format!("`{}` missing", a.name))
                    .help(format!("add `args: {{ {}: … }}` ({})", a.name, a.summary)),
                );
            }
        }
    }

    fn retry(&mut self, retry: &Sp<RawRetry>, failures: &[&str]) -> Option<Retry> {
        let attempts = *retry.attempts;
        if !(1..=MAX_ATTEMPTS).contains(&attempts) {
            self.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    self.cx.span_of(&retry.attempts),
                    format!("`attempts: {attempts}` is out of range"),
                )
                .label("must be 1 to 10")
                .help("attempts counts every try, the first included"),
            );
        }
        let delay = retry
            .delay
            .as_ref()
            .and_then(|d| self.duration(d, "retry delay"))
            .unwrap_or(Duration::from_millis(100));
        let backoff = retry.backoff.as_ref().map_or(2.0, |b| **b);
        if let Some(b) = &retry.backoff
            && !(1.0..=10.0).contains(&**b)
        {
            self.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    self.cx.span_of(b),
                    format!("`backoff: {}` is out of range", **b),
                )
                .label("must be 1.0 to 10.0")
                .help("backoff multiplies the delay after each try"),
            );
        }
        let mut outcomes = Vec::new();
        for o in retry.outcomes.iter().flatten() {
            if failures.contains(&o.as_str()) {
                outcomes.push(o.to_string());
            } else {
                self.push(
                    Diagnostic::new(
                        Rule::UnknownOutcome,
                        self.cx.span_of(o),
                        format!("cannot retry on `{}`", o.as_str()),
                    )
                    .label("not a failure outcome of this operation")
                    .help(format!("retry on: {}", failures.join(", "))),
                );
            }
        }
        if retry.outcomes.is_none() {
            outcomes.push("timeout".to_string());
        }
        Some(Retry {
            attempts,
            delay,
            backoff,
            outcomes,
        })
    }

    fn op_call(
        &mut self,
        op: &Sp<String>,
        args: Option<&ExprMap>,
        timeout: Option<&Sp<String>>,
        retry: Option<&Sp<RawRetry>>,
        scope: &Scope,
    ) -> Option<OpCall> {
        let spec = self.operation(op);
        let compiled = self.exprs(args, scope);
        let timeout = timeout.and_then(|t| self.duration(t, "timeout"));
        let spec = spec?;
        self.op_args(spec, args, &self.cx.span_of(op));
        let failures: Vec<&str> = spec
            .outcomes
            .iter()
            .copied()
            .filter(|o| *o != "ok")
            .collect();
        let retry = retry.and_then(|r| self.retry(r, &failures));
        Some(OpCall {
            op: spec,
            args: compiled,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
            retry,
            save: None,
        })
    }

    /// Checks the `on` / `otherwise` / `next` transitions of a state whose
    /// possible outcomes are `outcomes`; `success` is what `next` stands for.
    fn outcomes(
        &mut self,
        raw: &RawState,
        outcomes: &[&'static str],
        success: &'static str,
        at: &Span,
    ) -> Edges {
        let mut edges = Vec::new();
        if raw.on.is_none() && raw.next.is_none() && raw.otherwise.is_none() {
            // No transition at all: the graph checks report the dead end once.
            return edges;
        }
        let mut handled = BTreeSet::new();
        for (o, target) in raw.on.iter().flatten() {
            if outcomes.contains(&o.as_str()) {
                handled.insert(o.to_string());
                let name = outcomes
                    .iter()
                    .copied()
                    .find(|x| *x == o.as_str())
                    .expect("checked above");
                edges.push((Trigger::Outcome(name), target.clone()));
            } else {
                self.push(
                    Diagnostic::new(
                        Rule::UnknownOutcome,
                        self.cx.span_of(o),
                        format!("this state never has outcome `{}`", o.as_str()),
                    )
                    .label("not a possible outcome")
                    .help(
                        did_you_mean(o, outcomes.iter().copied()).unwrap_or_else(|| {
                            format!("its outcomes are: {}", outcomes.join(", "))
                        }),
                    ),
                );
            }
        }
        if let Some(next) = &raw.next {
            if handled.contains(success) {
                self.push(
                    Diagnostic::new(
                        Rule::InvalidValue,
                        self.cx.span_of(next),
                        format!(
                            "`next` and `on: {{{success}: …}}` both give the `{success}` transition"
                        ),
                    )
                    .label("second transition for the same outcome")
                    .help(format!(
                        "keep one: `next` is shorthand for `on: {{{success}: …}}`"
                    )),
                );
            } else if outcomes.contains(&success) {
                handled.insert(success.to_string());
                edges.push((Trigger::Outcome(success), next.clone()));
            }
        }
        if let Some(other) = &raw.otherwise {
            edges.push((Trigger::Otherwise, other.clone()));
        } else if !self.suspect {
            let missing: Vec<&str> = outcomes
                .iter()
                .copied()
                .filter(|o| !handled.contains(*o))
                .collect();
            if !missing.is_empty() {
                let list = missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.push(
                    Diagnostic::new(
                        Rule::UnhandledOutcome,
                        at.clone(),
                        format!(
                            "outcome{} {list} not handled",
                            if missing.len() > 1 { "s" } else { "" }
                        ),
                    )
                    .label("can end this way with nowhere to go")
                    .help(if raw.foreach.is_some() {
                        // A foreach takes no `otherwise`.
                        format!("add `on: {{ {}: <state> }}`", missing[0])
                    } else {
                        format!(
                            "add `on: {{ {}: <state> }}`, or `otherwise: <state>` for all the rest",
                            missing[0]
                        )
                    }),
                );
            }
        }
        edges
    }

    fn op_state(&mut self, raw: &RawState, scope: &Scope) -> (Option<StateKind>, Edges) {
        let op = raw.op.as_ref().expect("kind op");
        let call = self.op_call(
            op,
            raw.args.as_ref(),
            raw.timeout.as_ref(),
            raw.retry.as_ref(),
            scope,
        );
        let spec = call.as_ref().map(|c| c.op);
        let outcomes: Vec<&str> =
            spec.map_or_else(|| vec!["ok", "error", "timeout"], |s| s.outcomes.to_vec());
        let edges = if spec.is_some() {
            self.outcomes(raw, &outcomes, "ok", &self.cx.span_of(op))
        } else {
            Vec::new()
        };
        let save = raw.save.as_ref().and_then(|s| self.save(s, spec));
        let kind = call.map(|mut c| {
            c.save = save;
            StateKind::Op(c)
        });
        (kind, edges)
    }

    fn save(&mut self, s: &Sp<String>, spec: Option<&OperationSpec>) -> Option<String> {
        if !WRITABLE_SESSION_FIELDS.contains(&s.as_str()) {
            self.push(
                Diagnostic::new(
                    Rule::UnknownSessionField,
                    self.cx.span_of(s),
                    format!("cannot save into `session.{}`", s.as_str()),
                )
                .label("not a writable session field")
                .help(
                    did_you_mean(s, WRITABLE_SESSION_FIELDS.iter().copied()).unwrap_or_else(|| {
                        format!("writable fields: {}", WRITABLE_SESSION_FIELDS.join(", "))
                    }),
                ),
            );
            return None;
        }
        if let Some(spec) = spec
            && spec.result.is_none()
        {
            self.push(
                Diagnostic::new(
                    Rule::InvalidValue,
                    self.cx.span_of(s),
                    format!("`{}` returns nothing to save", spec.name),
                )
                .label("nothing to save")
                .help("remove `save`"),
            );
            return None;
        }
        Some(s.to_string())
    }

    fn choice(&mut self, raw: &RawState, scope: &Scope) -> (Option<StateKind>, Edges) {
        let branches = raw.choice.as_ref().expect("kind choice");
        let mut guards = Vec::new();
        let mut edges = Vec::new();
        if branches.is_empty() {
            self.push(
                Diagnostic::new(Rule::InvalidValue, self.cx.span_of(branches), "a choice needs at least one branch")
                    .label("empty")
                    .help("add `- when: <guard>\n  next: <state>`, or make this an `emit`/`op` with `next`"),
            );
        }
        for (i, b) in branches.iter().enumerate() {
            if let Some((g, _)) = self.expr(&b.when, scope) {
                guards.push(g);
            }
            edges.push((Trigger::Guard(i), b.next.clone()));
        }
        match &raw.otherwise {
            Some(o) => edges.push((Trigger::Otherwise, o.clone())),
            None if self.suspect => {}
            None => self.push(
                Diagnostic::new(
                    Rule::UnhandledOutcome,
                    self.cx.span_of(branches),
                    "choice has no `otherwise`",
                )
                .label("when no guard holds, the workflow has nowhere to go")
                .help("add `otherwise: <state>` for the case no guard covers"),
            ),
        }
        (Some(StateKind::Choice(guards)), edges)
    }

    fn body(&mut self, body: &Sp<RawBody>, scope: &Scope) -> Option<(Body, Vec<&'static str>)> {
        match (&body.op, &body.call) {
            (Some(op), None) => {
                let call = self.op_call(
                    op,
                    body.args.as_ref(),
                    body.timeout.as_ref(),
                    body.retry.as_ref(),
                    scope,
                )?;
                let outcomes = call.op.outcomes.to_vec();
                Some((Body::Op(call), outcomes))
            }
            (None, Some(w)) => {
                if let Some(t) = &body.timeout {
                    self.misplaced_in_body("timeout", t.marker());
                }
                if let Some(r) = &body.retry {
                    self.misplaced_in_body("retry", r.marker());
                }
                let (call, outcomes) = self.workflow_call(w, body.args.as_ref(), scope)?;
                Some((Body::Call(call), outcomes))
            }
            (a, _) => {
                let at = a
                    .as_ref()
                    .and_then(|a| a.marker())
                    .or_else(|| body.marker());
                self.push(
                    Diagnostic::new(Rule::StateKind, self.cx.span(at), "a foreach body needs exactly one of `op` or `call`")
                        .label(if a.is_some() { "both op and call" } else { "neither op nor call" })
                        .help("write `do: { op: <operation>, args: {…} }` or `do: { call: <workflow>, args: {…} }`"),
                );
                None
            }
        }
    }

    fn misplaced_in_body(&mut self, key: &str, at: Option<Marker>) {
        self.push(
            Diagnostic::new(
                Rule::MisplacedKey,
                self.cx.span(at),
                format!("`{key}` applies to operations, not to calls"),
            )
            .label("not used by a call")
            .help("set it on the operation inside the called workflow"),
        );
    }

    fn foreach(
        &mut self,
        raw: &RawState,
        scope: &Scope,
        name_span: &Span,
    ) -> (Option<StateKind>, Edges) {
        let items = raw.foreach.as_ref().expect("kind foreach");
        let compiled = self.expr(items, scope);
        let Some(binding) = &raw.binding else {
            self.push(
                Diagnostic::new(
                    Rule::MissingKey,
                    self.cx.span_of(items),
                    "foreach needs `as`, the name each item is bound to",
                )
                .label("no binding name")
                .help("add e.g. `as: channel`"),
            );
            return (None, Vec::new());
        };
        if scope.is_bound(binding) {
            self.push(
                Diagnostic::new(
                    Rule::ShadowedName,
                    self.cx.span_of(binding),
                    format!(
                        "`{}` hides a name expressions already use",
                        binding.as_str()
                    ),
                )
                .label("already defined")
                .help("pick another name, e.g. `item` or `channel`"),
            );
        }
        let elem = match compiled.as_ref().map(|(_, s)| s) {
            Some(Shape::List(e)) => (**e).clone(),
            _ => Shape::Any,
        };
        let inner = scope.with_item(binding, elem);
        let Some(body_raw) = &raw.body else {
            self.push(
                Diagnostic::new(Rule::MissingKey, name_span.clone(), "foreach needs `do`, what runs for each item")
                    .label("no body")
                    .help("add `do: { op: <operation>, args: {…} }` or `do: { call: <workflow>, args: {…} }`"),
            );
            return (None, Vec::new());
        };
        let body = self.body(body_raw, &inner);
        let policy = raw
            .on_failure
            .as_ref()
            .map_or(FailurePolicy::Abort, |p| **p);
        let Some((body, body_outcomes)) = body else {
            return (None, Vec::new());
        };
        let can_fail = body_outcomes.iter().any(|o| *o != "ok");
        let outcomes: &[&str] = if can_fail {
            &["done", "failed"]
        } else {
            &["done"]
        };
        let edges = self.outcomes(raw, outcomes, "done", &self.cx.span_of(items));
        let kind = compiled.map(|(items, _)| {
            StateKind::Foreach(Foreach {
                items,
                binding: binding.to_string(),
                body,
                policy,
            })
        });
        (kind, edges)
    }

    fn workflow_call(
        &mut self,
        w: &Sp<String>,
        args: Option<&ExprMap>,
        scope: &Scope,
    ) -> Option<(WorkflowCall, Vec<&'static str>)> {
        let compiled = self.exprs(args, scope);
        let Some(callee) = self.env.callee(w.as_str()) else {
            let help = did_you_mean(w, self.env.workflow_names()).unwrap_or_else(|| {
                format!(
                    "workflows here: {}",
                    self.env.workflow_names().collect::<Vec<_>>().join(", ")
                )
            });
            self.push(
                Diagnostic::new(
                    Rule::UnknownWorkflow,
                    self.cx.span_of(w),
                    format!("no workflow `{}` {}", w.as_str(), self.env.where_()),
                )
                .label("unknown workflow")
                .help(help),
            );
            return None;
        };
        let names: Vec<&str> = callee.inputs.iter().map(|(n, _)| n.as_str()).collect();
        for k in args.into_iter().flat_map(|a| a.keys()) {
            if !names.contains(&k.as_str()) {
                self.push(
                    Diagnostic::new(
                        Rule::UnknownArgument,
                        self.cx.span_of(k),
                        format!("workflow `{}` has no input `{}`", w.as_str(), k.as_str()),
                    )
                    .label("unknown argument")
                    .help(
                        did_you_mean(k, names.iter().copied())
                            .unwrap_or_else(|| format!("its inputs are: {}", names.join(", "))),
                    ),
                );
            }
        }
        for (n, required) in &callee.inputs {
            if *required && !args.is_some_and(|a| a.contains_key(n.as_str())) {
                self.push(
                    Diagnostic::new(
                        Rule::MissingArgument,
                        self.cx.span_of(w),
                        format!("workflow `{}` needs input `{n}`", w.as_str()),
                    )
                    .label(format!("`{n}` missing"))
                    .help(format!("add `args: {{ {n}: … }}`")),
                );
            }
        }
        Some((
            WorkflowCall {
                workflow: w.to_string(),
                args: compiled,
                index: None,
            },
            callee.outcomes.clone(),
        ))
    }

    fn call_state(&mut self, raw: &RawState, scope: &Scope) -> (Option<StateKind>, Edges) {
        let w = raw.call.as_ref().expect("kind call");
        match self.workflow_call(w, raw.args.as_ref(), scope) {
            Some((call, outcomes)) => {
                let edges = self.outcomes(raw, &outcomes, "ok", &self.cx.span_of(w));
                (Some(StateKind::Call(call)), edges)
            }
            None => (None, Vec::new()),
        }
    }

    fn emit(&mut self, raw: &RawState, scope: &Scope) -> (Option<StateKind>, Edges) {
        let event = raw.emit.as_ref().expect("kind emit");
        if !vocab::is_event_name(event) {
            self.push(
                Diagnostic::new(Rule::InvalidEventName, self.cx.span_of(event), format!("`{}` is not an event name", event.as_str()))
                    .label("expected `<entity>.event.<what>`")
                    .help("events are named like `channel.event.stateChanged` or `session.event.disposed`"),
            );
        }
        let data = self.exprs(raw.data.as_ref(), scope);
        let edges = raw
            .next
            .iter()
            .map(|n| (Trigger::Next, n.clone()))
            .collect();
        (
            Some(StateKind::Emit(Emit {
                event: crate::workflow::intern::name(event),
                data,
            })),
            edges,
        )
    }

    fn respond(&mut self, raw: &RawState, scope: &Scope) -> (Option<StateKind>, Edges) {
        let respond = raw.respond.as_ref().expect("kind respond");
        let response = match &**respond {
            RawRespond::Ok(ok) => {
                let result = self.exprs(ok.result.as_ref(), scope);
                let close = match (&ok.close, &ok.close_reason) {
                    (Some(c), Some(_)) if !**c => {
                        self.push(
                            Diagnostic::new(
                                Rule::InvalidValue,
                                self.cx.span_of(c),
                                "`close: false` with a `close_reason`",
                            )
                            .label("the reason says the connection closes")
                            .help("remove `close: false`, or the `close_reason`"),
                        );
                        None
                    }
                    (_, Some(r)) => match self.template(r, scope) {
                        Some(t) => Some(t),
                        None => return (None, Vec::new()),
                    },
                    (Some(c), None) if **c => Some(expr::Template::text(vocab::LOGGED_OUT)),
                    _ => None,
                };
                Response::Ok { result, close }
            }
            RawRespond::Error(e) => {
                let codes = || {
                    ERROR_CODES
                        .iter()
                        .map(|(c, _)| *c)
                        .chain(self.env.vocab.error_codes.iter().map(String::as_str))
                };
                if !codes().any(|c| c == e.code.as_str()) {
                    let help = did_you_mean(&e.code, codes()).unwrap_or_else(|| {
                        format!(
                            "codes: {}; a platform declares its own under `declare: errors:`",
                            codes().collect::<Vec<_>>().join(", ")
                        )
                    });
                    let help = if e.code.as_str() == vocab::NEED_INFO {
                        "use `respond: { need_info: {…} }` to ask for a missing parameter"
                            .to_string()
                    } else {
                        help
                    };
                    self.push(
                        Diagnostic::new(
                            Rule::UnknownErrorCode,
                            self.cx.span_of(&e.code),
                            format!("unknown error code `{}`", e.code.as_str()),
                        )
                        .label("not a protocol error code")
                        .help(help),
                    );
                }
                let message = self.template(&e.message, scope);
                match message {
                    Some(message) => Response::Error {
                        code: e.code.to_string(),
                        message,
                    },
                    None => return (None, Vec::new()),
                }
            }
            RawRespond::NeedInfo(n) => {
                if !self.env.has_input(&n.field) {
                    self.push(
                        Diagnostic::new(Rule::UnknownField, self.cx.span_of(&n.field), format!("`{}` is not an input of this workflow", n.field.as_str()))
                            .label("the client cannot resubmit it")
                            .help(format!("declare it under `input:` (e.g. `{}: {{ type: string, required: false }}`)", n.field.as_str())),
                    );
                }
                let message = n.message.as_ref().and_then(|m| self.template(m, scope));
                let choices = n
                    .choices
                    .as_ref()
                    .and_then(|c| self.expr(c, scope))
                    .map(|(e, _)| e);
                let free_text = n
                    .free_text
                    .as_ref()
                    .and_then(|c| self.expr(c, scope))
                    .map(|(e, _)| e);
                let optional = n
                    .optional
                    .as_ref()
                    .and_then(|c| self.expr(c, scope))
                    .map(|(e, _)| e);
                Response::NeedInfo {
                    field: n.field.to_string(),
                    message,
                    choices,
                    free_text,
                    optional,
                }
            }
        };
        (Some(StateKind::Respond(response)), Vec::new())
    }
}

impl StateCheck<'_, '_> {
    fn wait(
        &mut self,
        raw: &RawState,
        scope: &Scope,
        name_span: &Span,
    ) -> (Option<StateKind>, Edges) {
        let name = raw.wait.as_ref().expect("kind wait");
        let spec = self.switch_event(name);
        let guard_scope = scope.with_event(spec.map_or_else(expr::any_event, expr::event_shape));
        let guard = raw
            .when
            .as_ref()
            .and_then(|w| self.expr(w, &guard_scope))
            .map(|(g, _)| g);
        let timeout = match &raw.timeout {
            Some(t) => self.duration(t, "timeout"),
            None => {
                self.push(
                    Diagnostic::new(
                        Rule::MissingKey,
                        name_span.clone(),
                        "a `wait` needs a `timeout`",
                    )
                    .label("would wait forever, holding the session")
                    .help("add e.g. `timeout: 3s`, and where to go `on: { timeout: … }`"),
                );
                None
            }
        };
        let edges = self.outcomes(raw, WAIT_OUTCOMES, "received", &self.cx.span_of(name));
        let kind = match (spec, timeout) {
            (Some(event), Some(timeout)) => Some(StateKind::Wait(Wait {
                event,
                guard,
                timeout,
            })),
            _ => None,
        };
        (kind, edges)
    }

    /// The switch event named `name`, if the catalog has it and the
    /// platform's adapter delivers it.
    fn switch_event(&mut self, name: &Sp<String>) -> Option<&'static EventSpec> {
        let span = self.cx.span_of(name);
        let Some(spec) = events::event(name) else {
            self.push(unknown_event(span, name));
            return None;
        };
        if let Some(a) = self.env.adapter
            && !a.events.contains(&spec.name)
        {
            self.push(
                Diagnostic::new(
                    Rule::UnknownEvent,
                    span,
                    format!("the `{}` adapter never delivers `{}`", a.kind, spec.name),
                )
                .label("this would always time out")
                .help(format!("it delivers: {}", a.events.join(", "))),
            );
            return None;
        }
        Some(spec)
    }
}

/// The diagnostic for a name that is no switch event of the catalog.
pub fn unknown_event(span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        Rule::UnknownEvent,
        span,
        format!("unknown switch event `{name}`"),
    )
    .label("not in the switch-event catalog")
    .help(
        did_you_mean(name, events::EVENTS.iter().map(|e| e.name))
            .unwrap_or_else(|| "run `hisflow events` to list the catalog".to_string()),
    )
}

/// `250ms`, `5s`, `1m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5h"), None);
        assert_eq!(parse_duration("99999999999999999999s"), None);
    }
}
