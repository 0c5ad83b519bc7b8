//! Checks one machine file and compiles it: its states, each transition's
//! trigger, guard, changes, target and event, and that every state can be
//! reached from the initial one.

use std::collections::VecDeque;
use std::path::PathBuf;

use super::Env;
use super::states::unknown_event;
use crate::platform::{Provider, catalog, events};
use crate::workflow::diagnostic::{Diagnostic, Diagnostics, Rule, did_you_mean};
use crate::workflow::expr::{self, Scope};
use crate::workflow::load::{Ctx, RawMachine};
use crate::workflow::model::{
    Emit, Entity, Machine, MachineState, MachineTransition, MachineTrigger, Target, settable,
};
use crate::workflow::raw::{RawTransition, RawTrigger, Sp};
use crate::workflow::vocab::{self, Shape};

/// Checks a loaded machine in `env`; returns the model when it has no errors.
pub fn machine(
    cx: Ctx<'_>,
    raw: &RawMachine,
    env: &Env<'_>,
    path: PathBuf,
    out: &mut Diagnostics,
) -> Option<Machine> {
    let mut c = Check {
        cx,
        env,
        diags: Diagnostics::new(),
        names: raw.states.keys().map(|k| k.to_string()).collect(),
    };
    let header = raw.header.as_ref();
    let entity = header.map(|h| *h.entity);
    let initial = header.and_then(|h| c.state_ref(&h.initial, Rule::UndefinedStart));

    let mut transitions = Vec::new();
    let layers = raw
        .states
        .values()
        .enumerate()
        .map(|(i, s)| (Some(i), &s.on))
        .chain(std::iter::once((None, &raw.on)));
    for (from, triggers) in layers {
        for t in triggers {
            c.trigger(t, from, entity, &mut transitions);
        }
    }

    // A broken transition is missing from the list: judging reachability
    // without it would only repeat its error.
    if let Some(start) = initial
        && !c.diags.has_errors()
    {
        c.reachability(raw, start, &transitions);
    }
    let failed = c.diags.has_errors();
    out.extend(c.diags);
    if failed {
        return None;
    }
    let header = header?;
    Some(Machine {
        name: header.machine.to_string(),
        description: header.description.as_ref().map(|d| d.to_string()),
        path,
        entity: *header.entity,
        states: raw
            .states
            .iter()
            .map(|(name, s)| MachineState {
                name: crate::workflow::intern::name(name),
                description: s.description.as_ref().map(|d| d.to_string()),
                span: cx.span_of(name),
            })
            .collect(),
        initial: initial?,
        on: Machine::by_trigger(&transitions),
        transitions,
    })
}

struct Check<'a> {
    cx: Ctx<'a>,
    env: &'a Env<'a>,
    diags: Diagnostics,
    names: Vec<String>,
}

impl Check<'_> {
    /// The index of the state `name` names, or a diagnostic of `rule`.
    fn state_ref(&mut self, name: &Sp<String>, rule: Rule) -> Option<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name.as_str()) {
            return Some(i);
        }
        let what = if rule == Rule::UndefinedStart {
            format!("initial state `{}` is not defined", name.as_str())
        } else {
            format!("transition to undefined state `{}`", name.as_str())
        };
        self.diags.push(
            Diagnostic::new(rule, self.cx.span_of(name), what)
                .label("no state of this name")
                .help(
                    did_you_mean(name, self.names.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("states: {}", self.names.join(", "))),
                ),
        );
        None
    }

    /// What `name` triggers on: a switch operation or a switch event.
    fn resolve(&mut self, name: &Sp<String>) -> Option<MachineTrigger> {
        if let Some(op) = catalog::operation(name) {
            if op.provider() == Provider::Switch {
                return Some(MachineTrigger::Op(op));
            }
            self.diags.push(
                Diagnostic::new(
                    Rule::UnknownOperation,
                    self.cx.span_of(name),
                    format!("`{}` is HIS's own operation, not the switch's", op.name),
                )
                .label("machines do not hear HIS's operations")
                .help("machines change on switch operations and switch events; a workflow that runs an HIS operation says its effect itself"),
            );
            return None;
        }
        if let Some(e) = events::event(name) {
            return Some(MachineTrigger::Event(e));
        }
        let span = self.cx.span_of(name);
        if name.contains(".event.") {
            self.diags.push(unknown_event(span, name));
            return None;
        }
        let triggers = catalog::switch_operations()
            .map(|o| o.name)
            .chain(events::EVENTS.iter().map(|e| e.name));
        self.diags.push(
            Diagnostic::new(
                Rule::UnknownOperation,
                span,
                format!(
                    "`{}` is neither a switch operation nor a switch event",
                    name.as_str()
                ),
            )
            .label("nothing fires this")
            .help(did_you_mean(name, triggers).unwrap_or_else(|| {
                "run `hisflow operations` and `hisflow events` to list the triggers".to_string()
            })),
        );
        None
    }

    fn trigger(
        &mut self,
        t: &RawTrigger,
        from: Option<usize>,
        entity: Option<Entity>,
        out: &mut Vec<MachineTransition>,
    ) {
        let trigger = self.resolve(&t.trigger);
        let event = match trigger {
            Some(MachineTrigger::Event(e)) => expr::event_shape(e),
            Some(MachineTrigger::Op(o)) => Shape::record(
                o.args
                    .iter()
                    .map(|a| (a.name.to_string(), Shape::Scalar))
                    // What it answered, for an operation that answers data.
                    .chain(
                        o.result
                            .map(|_| ("result".to_string(), result_shape(o.name))),
                    )
                    .collect(),
            ),
            None => Shape::Any,
        };
        let this = match entity {
            Some(Entity::Channel) => self.env.vocab.states.channel(),
            Some(Entity::Session) => self.env.vocab.states.session(),
            None => Shape::Any,
        };
        let scope = Scope::machine(
            this,
            event,
            self.env.vocab.platform_shape(),
            self.env.vocab.states.session(),
        );
        for b in &t.branches {
            let compiled = self.branch(b, trigger, entity, &scope);
            if let (Some(trigger), Some((guard, set, to, emit))) = (trigger, compiled) {
                out.push(MachineTransition {
                    from,
                    trigger,
                    guard,
                    set,
                    to,
                    emit,
                    span: self.cx.span_of(&t.trigger),
                });
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn branch(
        &mut self,
        b: &RawTransition,
        trigger: Option<MachineTrigger>,
        entity: Option<Entity>,
        scope: &Scope,
    ) -> Option<(
        Option<expr::CompiledExpr>,
        crate::workflow::model::Args,
        Target,
        Option<Emit>,
    )> {
        let mut ok = true;
        let guard = match &b.when {
            Some(w) => {
                let g = expr::compile(self.cx, w, scope, &mut self.diags).map(|(g, _)| g);
                ok &= g.is_some();
                g
            }
            None => None,
        };
        let mut set = Vec::new();
        for (k, v) in b.set.iter().flatten() {
            if let Some(e) = entity
                && !settable(e).contains(&k.as_str())
            {
                ok = false;
                let fields = settable(e);
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnknownField,
                        self.cx.span_of(k),
                        format!("a {} machine cannot set `{}`", e.as_str(), k.as_str()),
                    )
                    .label("not a field it may change")
                    .help(
                        did_you_mean(k, fields.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "it may set: {}; its state changes with `to:`",
                                fields.join(", ")
                            )
                        }),
                    ),
                );
                continue;
            }
            match expr::compile(self.cx, v, scope, &mut self.diags) {
                Some((e, _)) => set.push((crate::workflow::intern::name(k), e)),
                None => ok = false,
            }
        }
        let to = match &b.to {
            None => Target::Stay,
            Some(t) if t.contains("${") => {
                match expr::template(self.cx, t, scope, &mut self.diags) {
                    Some(tpl) => {
                        ok &= self.covers_reported_states(t, &tpl, trigger);
                        Target::Dynamic(tpl)
                    }
                    None => {
                        ok = false;
                        Target::Stay
                    }
                }
            }
            Some(t) => match self.state_ref(t, Rule::UndefinedTarget) {
                Some(i) => Target::State(i),
                None => {
                    ok = false;
                    Target::Stay
                }
            },
        };
        let emit = match (&b.emit, &b.data) {
            (Some(name), data) => {
                if !vocab::is_event_name(name) {
                    ok = false;
                    self.diags.push(
                        Diagnostic::new(
                            Rule::InvalidEventName,
                            self.cx.span_of(name),
                            format!("`{}` is not an event name", name.as_str()),
                        )
                        .label("expected `<entity>.event.<what>`")
                        .help("client events are named like `channel.event.stateChanged`"),
                    );
                }
                let mut fields = Vec::new();
                for (k, v) in data.iter().flatten() {
                    match expr::compile(self.cx, v, scope, &mut self.diags) {
                        Some((e, _)) => fields.push((crate::workflow::intern::name(k), e)),
                        None => ok = false,
                    }
                }
                Some(Emit {
                    event: crate::workflow::intern::name(name),
                    data: fields,
                })
            }
            (None, Some(d)) => {
                ok = false;
                let at = d
                    .keys()
                    .next()
                    .map_or_else(|| self.cx.span(None), |k| self.cx.span_of(k));
                self.diags.push(
                    Diagnostic::new(Rule::MisplacedKey, at, "`data` without `emit`")
                        .label("no event to carry it")
                        .help("add `emit: <entity>.event.<what>`, or remove `data`"),
                );
                None
            }
            (None, None) => None,
        };
        ok.then_some((guard, set, to, emit))
    }

    /// A machine that takes the state a switch reports
    /// (`to: ${event.state}` on `agent.event.stateChanged`,
    /// `to: ${event.result.state}` on `agent.state`) must have every state
    /// the switch can report.
    fn covers_reported_states(
        &mut self,
        at: &Sp<String>,
        tpl: &expr::Template,
        trigger: Option<MachineTrigger>,
    ) -> bool {
        // Where the switch names the state: an event's `state`, or what
        // `agent.state` read.
        let reported = match trigger {
            Some(MachineTrigger::Event(e)) if e.name == "agent.event.stateChanged" => "event.state",
            Some(MachineTrigger::Op(o)) if o.name == "agent.state" => "event.result.state",
            _ => return true,
        };
        let is_state = matches!(tpl.parts.as_slice(), [expr::TemplatePart::Expr(e)] if e.source().trim() == reported);
        if !is_state {
            return true;
        }
        let missing: Vec<&str> = events::AGENT_STATES
            .iter()
            .copied()
            .filter(|s| !self.names.iter().any(|n| n == s))
            .collect();
        if missing.is_empty() {
            return true;
        }
        self.diags.push(
            Diagnostic::new(
                Rule::UndefinedTarget,
                self.cx.span_of(at),
                format!(
                    "the switch may report {}, which the machine has no state for",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .label("a state the switch reports")
            .help(format!(
                "add the state{} under `states:`, or give each reported state a transition of its own",
                if missing.len() > 1 { "s" } else { "" }
            )),
        );
        false
    }

    /// Every state must be reachable from the initial one.
    fn reachability(&mut self, raw: &RawMachine, start: usize, ts: &[MachineTransition]) {
        let n = self.names.len();
        let mut reached = vec![false; n];
        reached[start] = true;
        let mut queue = VecDeque::from([start]);
        while let Some(s) = queue.pop_front() {
            for t in ts.iter().filter(|t| t.from.is_none_or(|f| f == s)) {
                let targets: Vec<usize> = match &t.to {
                    Target::Stay => Vec::new(),
                    Target::State(i) => vec![*i],
                    Target::Dynamic(_) => (0..n).collect(),
                };
                for to in targets {
                    if !reached[to] {
                        reached[to] = true;
                        queue.push_back(to);
                    }
                }
            }
        }
        for ((name, _), r) in raw.states.iter().zip(reached) {
            if !r {
                self.diags.push(
                    Diagnostic::new(
                        Rule::UnreachableState,
                        self.cx.span_of(name),
                        format!("no transition leads to state `{}`", name.as_str()),
                    )
                    .label("unreachable from the initial state")
                    .help("add a transition to it, or remove it"),
                );
            }
        }
    }
}

/// What an operation of data answers, as a machine reads it in
/// `event.result`.
fn result_shape(op: &str) -> Shape {
    match op {
        "agent.state" => Shape::record(vec![
            (
                "state".into(),
                crate::workflow::vocab::REPORTED_STATE.clone(),
            ),
            ("active".into(), Shape::Scalar),
            ("interactions".into(), Shape::list(Shape::Scalar)),
        ]),
        "agent.reason_codes" => Shape::list(Shape::Scalar),
        _ => Shape::Any,
    }
}
