//! The interpreter: one loop over a stack of workflow frames. A `call`
//! pushes a frame, a `respond` pops one and hands its response to the caller
//! as an outcome, so nested workflows cost no recursion and no boxed futures.

use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use cel::Env;
use cel::common::value::Val;
use serde_json::Value as Json;
use tracing::Instrument;

use super::inbox::{Inbox, NoInbox};
use super::machine::Heard;
use super::observer::Observer;
use super::outcome::{Data, Event, Failure, Outcome, Response};
use super::session::{Channel, Session};
use super::values::{self, Item};
use crate::platform::{
    Adapter, HisOp, OpKind, OpOutcome, OpResult, Operation, Provider, Reply, SwitchError,
    SwitchEvent, SwitchOp,
};
use crate::workflow::expr::{self, CompiledExpr, Template, TemplatePart};
use crate::workflow::model::{
    Args, Body, Entity, FailurePolicy, InputType, OpCall, Platform, Response as Respond, StateId,
    StateKind, Trigger, Wait, Workflow,
};
use crate::workflow::native::{Inputs, V};
use crate::workflow::record::{Fields, Record, Slot};
use crate::workflow::vocab::MEDIA;

/// Runs a platform's workflows against a switch adapter, and its machines on
/// what the switch does.
pub struct Engine {
    pub(super) platform: Arc<Platform>,
    adapter: Arc<dyn Adapter>,
    settings: Record,
    no_error: Record,
    /// `request` where there is none (a machine's transition).
    pub(super) empty: Record,
    /// The variables of a workflow without any, shared by every run.
    no_vars: Record,
    /// `event` before a run received any.
    no_event: Record,
    pub(super) env: Arc<Env>,
    /// States one request (or event) may enter, its called workflows
    /// included: a loop the validator could not see ends there.
    step_budget: usize,
    param_limits: ParamLimits,
    /// List items one evaluation may visit.
    pub(super) eval_budget: usize,
}

/// States a request may enter by default. The shipped workflows need well
/// under a hundred for a login on three channels.
pub const STEP_BUDGET: usize = 1_000;

/// A foreach in progress.
struct Loop {
    items: Vec<Item>,
    next: usize,
    failure: Option<Failure>,
}

/// One running workflow.
struct Frame<'e> {
    workflow: &'e Workflow,
    state: StateId,
    request: Record,
    /// Its variables (`vars`), in declaration order; `None` until the
    /// initial values are computed, on entering the start state (a workflow
    /// without variables has its empty set from the start).
    vars: Option<Record>,
    error: Option<Record>,
    looping: Option<Loop>,
    entered: bool,
    /// When it started, if the observer reads durations.
    started: Option<Instant>,
    span: tracing::Span,
}

/// What a step decided.
enum Step<'e> {
    Go(Trigger),
    Push(Frame<'e>),
    /// The workflow responded: its caller, if any, gets the outcome.
    Finish(Response),
    /// The workflow is at fault (an expression failed at run time): the
    /// whole request ends with this response, whatever called it.
    Abort(Response),
    /// A foreach handed work to a called workflow, or resumes after one.
    Stay,
}

impl Engine {
    pub fn new(platform: Arc<Platform>, adapter: Arc<dyn Adapter>) -> Self {
        let settings = platform.settings_record();
        Self {
            platform,
            adapter,
            settings,
            no_error: values::no_error(),
            empty: Record::new(Vec::new()),
            no_vars: Record::new(Vec::new()),
            no_event: values::no_event(),
            env: expr::env().clone(),
            step_budget: STEP_BUDGET,
            param_limits: ParamLimits::default(),
            eval_budget: crate::workflow::record::EVAL_BUDGET,
        }
    }

    /// At most `items` list items visited by one evaluation of an
    /// expression: one over the switch's data that would hold the session
    /// for long ends the request with `Internal`, naming it.
    pub fn with_eval_budget(mut self, items: usize) -> Self {
        self.eval_budget = items.max(1);
        self
    }

    /// The longest text and the most list items a request's parameters may
    /// hold; more is refused with `InvalidRequest` before any state runs.
    pub fn with_param_limits(mut self, limits: ParamLimits) -> Self {
        self.param_limits = ParamLimits {
            text: limits.text.max(1),
            list: limits.list.max(1),
        };
        self
    }

    /// At most `states` states entered per request: a workflow that loops
    /// ends with `Internal`, naming where it was, and the session goes on.
    pub fn with_step_budget(mut self, states: usize) -> Self {
        self.step_budget = states.max(1);
        self
    }

    /// A new session of `agent`, its machine (if the platform has one) in its
    /// initial state.
    pub fn new_session(&self, id: impl Into<String>, agent: impl Into<String>) -> Session {
        let mut s = Session::new(id, agent);
        s.state = self
            .platform
            .machine(Entity::Session)
            .map(|m| m.initial_name().into());
        s
    }

    pub fn platform(&self) -> &Arc<Platform> {
        &self.platform
    }

    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }

    /// Handles one client request with the platform's workflow for it. Its
    /// `wait` states hear no switch event: see [`Engine::handle_with`].
    pub async fn handle(
        &self,
        request: &str,
        params: &Json,
        session: &mut Session,
        obs: &mut dyn Observer,
    ) -> Outcome {
        self.handle_with(request, params, session, &mut NoInbox, obs)
            .await
    }

    /// Handles one client request; its `wait` states take switch events from
    /// `inbox`.
    pub async fn handle_with(
        &self,
        request: &str,
        params: &Json,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        obs: &mut dyn Observer,
    ) -> Outcome {
        let Some(workflow) = self.platform.handler(request) else {
            return Outcome::refused("InvalidRequest", format!("unknown request `{request}`"));
        };
        let span = tracing::info_span!("request", name = request, agent = %session.agent);
        self.run_with(workflow, params, session, inbox, obs)
            .instrument(span)
            .await
    }

    /// Runs a workflow with `params` as its request.
    pub async fn run(
        &self,
        workflow: &Workflow,
        params: &Json,
        session: &mut Session,
        obs: &mut dyn Observer,
    ) -> Outcome {
        self.run_with(workflow, params, session, &mut NoInbox, obs)
            .await
    }

    /// Runs a workflow with `params` as its request, its waits on `inbox`.
    pub async fn run_with(
        &self,
        workflow: &Workflow,
        params: &Json,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        obs: &mut dyn Observer,
    ) -> Outcome {
        if let Err(message) = check_params(workflow, params, self.param_limits) {
            return Outcome::refused("InvalidRequest", message);
        }
        let root = self.frame(workflow, values::request(params), obs);
        self.drive(root, session, inbox, None, obs).await
    }

    /// Handles a switch event for the session: its machines hear it, then
    /// the workflow the platform routes it to runs, with the event as
    /// `event`. The response goes to no client; `close` in it ends the
    /// session's connection.
    pub async fn event(
        &self,
        event: &SwitchEvent,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        obs: &mut dyn Observer,
    ) -> Outcome {
        let spec = match event.check() {
            Ok(s) => s,
            Err(bad) => return Outcome::refused("InvalidRequest", bad.0),
        };
        obs.switch_event(event);
        let value = values::event_record(spec, &event.data);
        let mut events = Vec::new();
        {
            let heard = Heard::Event {
                spec,
                event,
                value: &value,
            };
            if let Err(fault) = self.hear(&heard, session, &mut events, obs) {
                return Outcome {
                    events,
                    response: Response::error("Internal", fault),
                    deferred: Vec::new(),
                };
            }
        }
        let mut out = self.route(event, session, inbox, obs).await;
        events.append(&mut out.events);
        out.events = events;
        out
    }

    /// Runs the workflow the platform routes a switch event to, for an
    /// event the machines heard already (one a `wait` left).
    pub async fn route(
        &self,
        event: &SwitchEvent,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        obs: &mut dyn Observer,
    ) -> Outcome {
        let (Ok(spec), Some(workflow)) = (event.check(), self.platform.event_handler(&event.name))
        else {
            return Outcome {
                events: Vec::new(),
                response: Response::ok(),
                deferred: Vec::new(),
            };
        };
        let span = tracing::info_span!("switch event", name = %event.name, agent = %session.agent);
        let root = self.frame(workflow, self.no_vars.clone(), obs);
        let value = values::event_record(spec, &event.data);
        self.drive(root, session, inbox, Some(value), obs)
            .instrument(span)
            .await
    }

    /// What an evaluation reads: the settings, these records and the
    /// session; `error` and `event` before there is one read as none yet.
    pub(super) fn inputs<'a>(
        &'a self,
        request: &'a Record,
        session: V<'a>,
        error: Option<&'a Record>,
        event: Option<&'a Record>,
        vars: &'a Record,
    ) -> Inputs<'a> {
        Inputs {
            platform: V::Rec(&self.settings),
            request: V::Rec(request),
            session,
            error: V::Rec(error.unwrap_or(&self.no_error)),
            event: V::Rec(event.unwrap_or(&self.no_event)),
            entity: None,
            vars: V::Rec(vars),
            item: None,
            budget: self.eval_budget,
        }
    }

    fn frame<'e>(
        &self,
        workflow: &'e Workflow,
        request: Record,
        obs: &mut dyn Observer,
    ) -> Frame<'e> {
        obs.run_started(workflow, &request);
        Frame {
            workflow,
            state: workflow.start,
            request,
            // A workflow without variables has them all from the start:
            // its states skip computing none.
            vars: workflow.vars.is_empty().then(|| self.no_vars.clone()),
            error: None,
            looping: None,
            entered: false,
            started: obs.times().then(Instant::now),
            // A span costs even with no one listening: a request enters
            // dozens of states.
            span: if tracing::level_enabled!(tracing::Level::DEBUG) {
                tracing::debug_span!("workflow", name = %workflow.name)
            } else {
                tracing::Span::none()
            },
        }
    }

    async fn drive<'e>(
        &'e self,
        root: Frame<'e>,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        first_event: Option<Record>,
        obs: &mut dyn Observer,
    ) -> Outcome {
        let mut events = Vec::new();
        let mut stack = vec![root];
        // The last switch event the run received, as `event` shows it.
        let mut event = first_event;
        // Events a wait saw but did not take: a later wait may, else the
        // caller handles them after the run.
        let mut deferred: Vec<SwitchEvent> = Vec::new();
        let mut entered = 0usize;
        loop {
            let frame = stack.last_mut().expect("a frame runs");
            let w = frame.workflow;
            let sid = frame.state;
            let state = w.state(sid);
            if !frame.entered {
                entered += 1;
                if entered > self.step_budget {
                    let r = Response::error(
                        "Internal",
                        format!(
                            "the request entered {} states without ending: workflow `{}` loops through state `{}`",
                            self.step_budget, w.name, state.name
                        ),
                    );
                    return self.finish_all(stack, r, events, deferred, obs);
                }
                // A long run of choices never waits: let the other tasks of
                // this worker (and a stop) in.
                if entered.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
            }
            // The variables: their initial values once per run of the
            // workflow, then a state's `set` on entering it.
            let first = frame.vars.is_none();
            let setting = !frame.entered && !state.set.is_empty();
            if first || setting {
                let assigned = {
                    let current = frame.vars.as_ref().unwrap_or(&self.no_vars);
                    let inputs = self.inputs(
                        &frame.request,
                        V::Obj(&*session),
                        frame.error.as_ref(),
                        event.as_ref(),
                        current,
                    );
                    let initial = if first {
                        self.initial_vars(w, &inputs)
                    } else {
                        Ok(current.clone())
                    };
                    initial.and_then(|v| {
                        if !setting {
                            return Ok(v);
                        }
                        let inputs = Inputs {
                            vars: V::Rec(&v),
                            ..inputs
                        };
                        self.set_vars(w, state, &v, &inputs)
                    })
                };
                match assigned {
                    Ok(v) => stack.last_mut().expect("a frame runs").vars = Some(v),
                    Err(r) => return self.finish_all(stack, r, events, deferred, obs),
                }
            }
            let frame = stack.last_mut().expect("a frame runs");
            if !frame.entered {
                obs.state_entered(w, sid);
                frame.entered = true;
            }
            // Not even a disabled span per state: dropping one costs.
            let span = tracing::level_enabled!(tracing::Level::TRACE)
                .then(|| tracing::trace_span!(parent: &frame.span, "state", name = %state.name));
            // The session is lent to each evaluation on its own
            // (`with_session`): an operation changes it between two. States
            // that only read it lend it to these inputs, without a copy.
            let mut vars = self.inputs(
                &frame.request,
                V::Null,
                frame.error.as_ref(),
                event.as_ref(),
                frame.vars.as_ref().unwrap_or(&self.empty),
            );
            let mut received = None;
            let step = match &state.kind {
                StateKind::Choice(guards) => {
                    let _in = span.as_ref().map(tracing::Span::enter);
                    vars.session = V::Obj(session);
                    let mut step = Step::Go(Trigger::Otherwise);
                    for (i, g) in guards.iter().enumerate() {
                        match values::eval_bool(&self.env, g, &vars, None) {
                            Ok(true) => {
                                step = Step::Go(Trigger::Guard(i));
                                break;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                step = Step::Abort(expr_failure(w, g, &e));
                                break;
                            }
                        }
                    }
                    step
                }
                StateKind::Wait(wait) => {
                    match self
                        .wait(wait, &vars, session, inbox, &mut deferred, &mut events, obs)
                        .await
                    {
                        Ok(Some(value)) => {
                            received = Some(value);
                            Step::Go(Trigger::Outcome("received"))
                        }
                        Ok(None) => Step::Go(Trigger::Outcome("timeout")),
                        Err(fault) => Step::Abort(Response::error("Internal", fault)),
                    }
                }
                StateKind::Emit(e) => {
                    vars.session = V::Obj(session);
                    match self.data(&e.data, &vars, None) {
                        Ok(data) => {
                            let event = Event {
                                name: Cow::Borrowed(e.event),
                                data,
                            };
                            obs.event(&event);
                            events.push(event);
                            Step::Go(Trigger::Next)
                        }
                        Err(r) => Step::Abort(r),
                    }
                }
                StateKind::Op(call) => {
                    match self
                        .operation(call, &vars, None, session, &mut events, obs)
                        .await
                    {
                        Ok((outcome, failure)) => {
                            if let Some(f) = failure {
                                frame.error = Some(f.to_record());
                            }
                            Step::Go(Trigger::Outcome(outcome))
                        }
                        Err(r) => Step::Abort(r),
                    }
                }
                StateKind::Call(c) => {
                    vars.session = V::Obj(session);
                    match self.record(&c.args, &vars, None) {
                        Ok(args) => match self.platform.callee(c) {
                            Some(callee) => Step::Push(self.frame(callee, args, obs)),
                            None => Step::Abort(Response::error(
                                "Internal",
                                format!("workflow `{}` is not loaded", c.workflow),
                            )),
                        },
                        Err(r) => Step::Abort(r),
                    }
                }
                StateKind::Foreach(f) => {
                    if frame.looping.is_none() {
                        match values::eval_items(&self.env, &f.items, &with_session(&vars, session))
                        {
                            Ok(items) => {
                                frame.looping = Some(Loop {
                                    items,
                                    next: 0,
                                    failure: None,
                                })
                            }
                            Err(e) => {
                                let r = expr_failure(w, &f.items, &e);
                                return self.finish_all(stack, r, events, deferred, obs);
                            }
                        }
                    }
                    let looping = frame.looping.as_mut().expect("loop started");
                    let mut step = None;
                    while looping.next < looping.items.len() {
                        let item = looping.items[looping.next].value();
                        looping.next += 1;
                        match &f.body {
                            Body::Op(call) => {
                                let failure = match self
                                    .operation(
                                        call,
                                        &vars,
                                        Some((&f.binding, item)),
                                        session,
                                        &mut events,
                                        obs,
                                    )
                                    .await
                                {
                                    Ok((_, failure)) => failure,
                                    Err(r) => {
                                        step = Some(Step::Abort(r));
                                        break;
                                    }
                                };
                                if let Some(fail) = failure {
                                    looping.failure = Some(fail);
                                    if f.policy == FailurePolicy::Abort {
                                        break;
                                    }
                                }
                            }
                            Body::Call(c) => {
                                match self.record(
                                    &c.args,
                                    &with_session(&vars, session),
                                    Some((&f.binding, item)),
                                ) {
                                    Ok(args) => match self.platform.callee(c) {
                                        Some(callee) => {
                                            step = Some(Step::Push(self.frame(callee, args, obs)));
                                            break;
                                        }
                                        None => {
                                            step = Some(Step::Abort(Response::error(
                                                "Internal",
                                                format!("workflow `{}` is not loaded", c.workflow),
                                            )));
                                            break;
                                        }
                                    },
                                    Err(r) => {
                                        step = Some(Step::Abort(r));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    match step {
                        Some(s) => s,
                        None if looping.next < looping.items.len()
                            && (looping.failure.is_none()
                                || f.policy == FailurePolicy::Continue) =>
                        {
                            Step::Stay
                        }
                        None => {
                            let done = frame.looping.take().expect("loop started");
                            match done.failure {
                                Some(fail) => {
                                    frame.error = Some(fail.to_record());
                                    Step::Go(Trigger::Outcome("failed"))
                                }
                                None => Step::Go(Trigger::Outcome("done")),
                            }
                        }
                    }
                }
                StateKind::Respond(r) => {
                    vars.session = V::Obj(session);
                    match self.respond(w, r, &vars) {
                        Ok(response) => Step::Finish(response),
                        Err(fault) => Step::Abort(fault),
                    }
                }
            };
            if let Some(value) = received {
                event = Some(value);
            }
            match step {
                Step::Stay => {}
                Step::Go(trigger) => {
                    let frame = stack.last_mut().expect("a frame runs");
                    match w.edge(sid, &trigger) {
                        Some((edge, to)) => {
                            obs.transition(w, sid, &edge.trigger, to);
                            frame.state = to;
                            frame.entered = false;
                        }
                        None => {
                            let r = Response::error(
                                "Internal",
                                format!(
                                    "state `{}` of `{}` has no transition for {trigger:?}",
                                    state.name, w.name
                                ),
                            );
                            return self.finish_all(stack, r, events, deferred, obs);
                        }
                    }
                }
                Step::Push(callee) => stack.push(callee),
                Step::Abort(response) => {
                    return self.finish_all(stack, response, events, deferred, obs);
                }
                Step::Finish(response) => {
                    let done = stack.pop().expect("a frame runs");
                    obs.run_finished(done.workflow, &response, since(done.started));
                    let Some(parent) = stack.last_mut() else {
                        return Outcome {
                            events,
                            response,
                            deferred,
                        };
                    };
                    // Named only when something failed: a text copied per
                    // call otherwise.
                    let channel = || channel_of(&done.request);
                    let failure = match &response {
                        Response::Ok { .. } => None,
                        Response::Error { code, message } => Some(Failure {
                            code: code.clone(),
                            message: message.clone(),
                            operation: done.workflow.name.clone(),
                            channel: channel(),
                        }),
                        Response::NeedInfo { field, message, .. } => Some(Failure {
                            code: "NeedInfo".into(),
                            message: if message.is_empty() {
                                format!("`{field}` is needed")
                            } else {
                                message.clone()
                            },
                            operation: done.workflow.name.clone(),
                            channel: channel(),
                        }),
                    };
                    let pw = parent.workflow;
                    let psid = parent.state;
                    match &pw.state(psid).kind {
                        StateKind::Foreach(f) => {
                            let looping =
                                parent.looping.as_mut().expect("a foreach awaits its call");
                            if let Some(fail) = failure {
                                looping.failure = Some(fail);
                                if f.policy == FailurePolicy::Abort {
                                    looping.next = looping.items.len();
                                }
                            }
                        }
                        _ => {
                            if let Some(fail) = &failure {
                                parent.error = Some(fail.to_record());
                            }
                            let trigger = Trigger::Outcome(response.outcome());
                            match pw.edge(psid, &trigger) {
                                Some((edge, to)) => {
                                    obs.transition(pw, psid, &edge.trigger, to);
                                    parent.state = to;
                                    parent.entered = false;
                                }
                                None => {
                                    let r = Response::error(
                                        "Internal",
                                        format!("`{}` has no transition for {trigger:?}", pw.name),
                                    );
                                    return self.finish_all(stack, r, events, deferred, obs);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Ends every frame left with `response`: a run that cannot go on still
    /// answers exactly once.
    fn finish_all(
        &self,
        mut stack: Vec<Frame<'_>>,
        response: Response,
        events: Vec<Event>,
        deferred: Vec<SwitchEvent>,
        obs: &mut dyn Observer,
    ) -> Outcome {
        while let Some(f) = stack.pop() {
            obs.run_finished(f.workflow, &response, since(f.started));
        }
        Outcome {
            events,
            response,
            deferred,
        }
    }

    /// Waits for the switch event `w` names (and its guard accepts), first
    /// among those an earlier wait of the run left, then from the inbox.
    /// The session's machines hear every event the inbox gives, as it comes
    /// — the channels stay the switch's while the request waits — and the
    /// ones the wait does not take are left, for the workflows the platform
    /// routes them to, after the request. The value of the event taken is
    /// returned; `None` when the time is up.
    #[allow(clippy::too_many_arguments)]
    async fn wait(
        &self,
        w: &Wait,
        vars: &Inputs<'_>,
        session: &mut Session,
        inbox: &mut dyn Inbox,
        deferred: &mut Vec<SwitchEvent>,
        events: &mut Vec<Event>,
        obs: &mut dyn Observer,
    ) -> Result<Option<Record>, String> {
        let deadline = tokio::time::Instant::now() + w.timeout;
        let mut earlier = std::mem::take(deferred).into_iter();
        loop {
            let (e, heard) = match earlier.next() {
                Some(e) => (e, true),
                None => match inbox.next(deadline).await {
                    Some(e) => (e, false),
                    None => return Ok(None),
                },
            };
            // HIS checks events before queueing them; a malformed one that
            // reaches a wait all the same is left alone.
            let Ok(spec) = e.check() else {
                continue;
            };
            let value = values::event_record(spec, &e.data);
            if !heard {
                obs.switch_event(&e);
                let h = Heard::Event {
                    spec,
                    event: &e,
                    value: &value,
                };
                if let Err(fault) = self.hear(&h, session, events, obs) {
                    keep(deferred, e, inbox.limit());
                    deferred.extend(earlier);
                    return Err(fault);
                }
            }
            let taken = spec.name == w.event.name
                && match &w.guard {
                    None => true,
                    Some(g) => {
                        let candidate = Inputs {
                            event: V::Rec(&value),
                            ..with_session(vars, session)
                        };
                        match values::eval_bool(&self.env, g, &candidate, None) {
                            Ok(b) => b,
                            Err(err) => {
                                keep(deferred, e, inbox.limit());
                                deferred.extend(earlier);
                                return Err(format!("expression `{}` failed: {err}", g.source()));
                            }
                        }
                    }
                };
            if taken {
                deferred.extend(earlier);
                return Ok(Some(value));
            }
            keep(deferred, e, inbox.limit());
        }
    }

    /// Evaluates a mapping of expressions into a record: a called workflow's
    /// request, an operation's arguments.
    fn record(
        &self,
        args: &Args,
        vars: &Inputs<'_>,
        item: Option<(&str, V<'_>)>,
    ) -> Result<Record, Response> {
        if args.is_empty() {
            return Ok(self.no_vars.clone());
        }
        // Built straight into the record's one allocation; after the first
        // argument that fails, the others are not evaluated, and the record
        // is dropped.
        let mut failed = None;
        let record = Record::from_iter(args.iter().map(|(k, e)| {
            let name = Cow::Borrowed(*k);
            if failed.is_some() {
                return (name, Slot::null());
            }
            match values::eval_owned(&self.env, e, vars, item) {
                Ok(v) => (name, v),
                Err(err) => {
                    failed.get_or_insert_with(|| expr_error(e, &err));
                    (name, Slot::null())
                }
            }
        }));
        match failed {
            Some(r) => Err(r),
            None => Ok(record),
        }
    }

    /// Evaluates a mapping of expressions (an event's data, a response's
    /// result): its names are the workflow's, lent.
    pub(super) fn data(
        &self,
        args: &Args,
        vars: &Inputs<'_>,
        item: Option<(&str, V<'_>)>,
    ) -> Result<Data, Response> {
        let mut out = Data::with_capacity(args.len());
        for (k, e) in args {
            match values::eval_json(&self.env, e, vars, item) {
                Ok(v) => out.insert_new(k, v),
                Err(err) => return Err(expr_error(e, &err)),
            }
        }
        Ok(out)
    }

    /// Builds the response of a `respond` state; an expression that fails
    /// gives the fault instead.
    fn respond(&self, w: &Workflow, r: &Respond, vars: &Inputs<'_>) -> Result<Response, Response> {
        match r {
            Respond::Ok { result, close } => {
                let close = match close {
                    Some(t) => Some(self.template(t, vars)?),
                    None => None,
                };
                self.data(result, vars, None).map(|result| Response::Ok {
                    result: result.into_json(),
                    close,
                })
            }
            Respond::Error { code, message } => {
                self.template(message, vars).map(|message| Response::Error {
                    code: code.clone(),
                    message,
                })
            }
            Respond::NeedInfo {
                field,
                message,
                choices,
                free_text,
                optional,
            } => (|| {
                let message = match message {
                    Some(m) => self.template(m, vars)?,
                    None => String::new(),
                };
                let choices = match choices {
                    Some(c) => values::eval_json(&self.env, c, vars, None)
                        .map_err(|e| expr_failure(w, c, &e))?,
                    None => Json::Array(Vec::new()),
                };
                let free_text = match free_text {
                    Some(f) => values::eval_bool(&self.env, f, vars, None)
                        .map_err(|e| expr_failure(w, f, &e))?,
                    None => false,
                };
                let optional = match optional {
                    Some(f) => values::eval_bool(&self.env, f, vars, None)
                        .map_err(|e| expr_failure(w, f, &e))?,
                    None => false,
                };
                Ok(Response::NeedInfo {
                    field: field.clone(),
                    message,
                    choices,
                    free_text,
                    optional,
                })
            })(),
        }
    }

    pub(super) fn template(&self, t: &Template, vars: &Inputs<'_>) -> Result<String, Response> {
        let mut out = String::new();
        for part in &t.parts {
            match part {
                TemplatePart::Text(s) => out.push_str(s),
                TemplatePart::Expr(e) => match values::eval_json(&self.env, e, vars, None) {
                    Ok(Json::String(s)) => out.push_str(&s),
                    Ok(Json::Null) => {}
                    Ok(v) => out.push_str(&v.to_string()),
                    Err(err) => return Err(expr_error(e, &err)),
                },
            }
        }
        Ok(out)
    }

    /// Runs one operation with its timeout and retries; returns its outcome
    /// and, unless `ok`, what went wrong; or the response that ends the
    /// request when its arguments cannot be evaluated.
    #[allow(clippy::too_many_arguments)]
    async fn operation(
        &self,
        call: &OpCall,
        vars: &Inputs<'_>,
        item: Option<(&str, V<'_>)>,
        session: &mut Session,
        events: &mut Vec<Event>,
        obs: &mut dyn Observer,
    ) -> Result<(&'static str, Option<Failure>), Response> {
        let spec = call.op;
        let started = obs.times().then(Instant::now);
        // An argument that cannot be evaluated is a fault of the workflow,
        // not of the switch: the request ends, as for any other expression.
        let args = &self.record(&call.args, &with_session(vars, session), item)?;
        let fail = |code: &str, message: String| Failure {
            code: code.to_string(),
            message,
            operation: spec.name.to_string(),
            channel: channel_of(args),
        };
        let result = match spec.kind {
            OpKind::His(op) => {
                let initial = self
                    .platform
                    .machine(Entity::Channel)
                    .map_or(LOGGED_OFF, |m| m.initial_name());
                his_operation(op, args, session, initial)
                    .map(|()| OpResult::Done)
                    .map_err(|e| ("error", fail(&e.code, e.message)))
            }
            OpKind::Switch(op) => match switch_operation(op, args) {
                Err(e) => Err(("error", fail(&e.code, e.message))),
                Ok(op) => match self.switch(call, &session.agent, &op).await {
                    // An adapter that answers an operation of data without
                    // it: the workflow's error path, not a fault further on.
                    Ok(r) if spec.result.is_some() && r.to_json().is_none() => Err((
                        "error",
                        fail(
                            "InvalidReply",
                            format!("the switch answered `{}` without its data", spec.name),
                        ),
                    )),
                    Ok(r) => Ok(r),
                    Err((o, e)) => Err((o, fail(&e.code, e.message))),
                },
            },
        };
        let outcome = match result {
            Ok(r) => {
                if spec.provider() == Provider::Switch {
                    // What the operation changed is the machines' to say.
                    // An operation that answers with data: the machines
                    // read it as `event.result`.
                    let with_result = r
                        .to_json()
                        .map(|result| values::with_field(args, "result", &result));
                    let args = with_result.as_ref().unwrap_or(args);
                    self.hear(&Heard::Op { spec, args }, session, events, obs)
                        .map_err(|fault| Response::error("Internal", fault))?;
                }
                if let (Some(field), OpResult::List(list)) = (&call.save, &r) {
                    match field.as_str() {
                        "logout_reasons" => session.logout_reasons = list.clone(),
                        "not_ready_reasons" => session.not_ready_reasons = list.clone(),
                        _ => {}
                    }
                }
                ("ok", None)
            }
            Err((outcome, f)) => (outcome, Some(f)),
        };
        obs.operation(
            spec.name,
            args,
            outcome.0,
            outcome.1.as_ref(),
            since(started),
        );
        Ok(outcome)
    }

    /// A workflow's variables when it starts: their initial values, null
    /// for the others.
    fn initial_vars(&self, w: &Workflow, inputs: &Inputs<'_>) -> Result<Record, Response> {
        if w.vars.is_empty() {
            return Ok(self.no_vars.clone());
        }
        let mut fields: Fields = Vec::with_capacity(w.vars.len());
        for v in &w.vars {
            let value = match &v.initial {
                Some(e) => values::eval_owned(&self.env, e, inputs, None)
                    .map_err(|err| expr_failure(w, e, &err))?,
                None => Slot::null(),
            };
            fields.push((v.name.clone().into(), value));
        }
        Ok(Record::new(fields))
    }

    /// The variables after `state`'s `set`: every expression reads them as
    /// they were before it.
    fn set_vars(
        &self,
        w: &Workflow,
        state: &crate::workflow::model::State,
        current: &Record,
        inputs: &Inputs<'_>,
    ) -> Result<Record, Response> {
        let mut fields: Fields = current.fields().to_vec();
        for (i, e) in &state.set {
            let value = values::eval_owned(&self.env, e, inputs, None)
                .map_err(|err| expr_failure(w, e, &err))?;
            fields[*i].1 = value;
        }
        Ok(Record::new(fields))
    }

    /// Calls the switch, bounded by the state's timeout, retrying as declared.
    async fn switch(
        &self,
        call: &OpCall,
        agent: &str,
        op: &Operation,
    ) -> Result<OpResult, (&'static str, SwitchError)> {
        let attempts = call.retry.as_ref().map_or(1, |r| r.attempts.max(1));
        let mut delay = call.retry.as_ref().map_or(Duration::ZERO, |r| r.delay);
        let mut attempt = 1;
        loop {
            let outcome = self.switch_once(call.timeout, agent, op).await;
            let retry = match (&outcome, &call.retry) {
                (Err((o, _)), Some(r)) if attempt < attempts => r.outcomes.iter().any(|x| x == o),
                _ => false,
            };
            if !retry {
                return outcome;
            }
            tokio::time::sleep(delay).await;
            delay = delay.mul_f64(call.retry.as_ref().map_or(1.0, |r| r.backoff));
            attempt += 1;
        }
    }

    async fn switch_once(
        &self,
        timeout: Duration,
        agent: &str,
        op: &Operation,
    ) -> Result<OpResult, (&'static str, SwitchError)> {
        let reply = std::panic::catch_unwind(AssertUnwindSafe(|| self.adapter.call(agent, op)));
        let outcome: OpOutcome = match reply {
            Err(_) => Err(adapter_panicked()),
            Ok(Reply::Ready(o)) => o,
            Ok(Reply::Pending(fut)) => match tokio::time::timeout(timeout, CatchPanic(fut)).await {
                Ok(o) => o,
                Err(_) => {
                    return Err((
                        "timeout",
                        SwitchError::new(
                            "Timeout",
                            format!("the switch did not answer {} within {timeout:?}", op.name()),
                        ),
                    ));
                }
            },
        };
        outcome.map_err(|e| ("error", e))
    }
}

/// The time since `started`, when it was read.
fn since(started: Option<Instant>) -> Duration {
    started.map_or(Duration::ZERO, |s| s.elapsed())
}

/// `vars` reading the session as it is now.
fn with_session<'a>(vars: &Inputs<'a>, session: &'a Session) -> Inputs<'a> {
    Inputs {
        session: V::Obj(session),
        ..*vars
    }
}

/// Leaves an event a wait did not take for after the request, unless as many
/// wait already: a storm during a wait costs no more than the queue's bound.
fn keep(deferred: &mut Vec<SwitchEvent>, e: SwitchEvent, limit: usize) {
    if deferred.len() < limit {
        deferred.push(e);
    } else {
        tracing::warn!(event = ?e.name, "too many switch events wait for the request; dropped");
    }
}

fn adapter_panicked() -> SwitchError {
    SwitchError::new("Internal", "the switch adapter failed")
}

/// An adapter future that panics answers with an error instead.
struct CatchPanic(Pin<Box<dyn Future<Output = OpOutcome> + Send>>);

impl Future for CatchPanic {
    type Output = OpOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<OpOutcome> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p,
            Err(_) => Poll::Ready(Err(adapter_panicked())),
        }
    }
}

fn expr_error(e: &CompiledExpr, err: &str) -> Response {
    Response::error(
        "Internal",
        format!("expression `{}` failed: {err}", e.source()),
    )
}

fn expr_failure(w: &Workflow, e: &CompiledExpr, err: &str) -> Response {
    Response::error(
        "Internal",
        format!(
            "in workflow `{}`, expression `{}` failed: {err}",
            w.name,
            e.source()
        ),
    )
}

/// An argument of an operation or called workflow, by name.
fn arg<'a>(args: &'a dyn Val, name: &str) -> Option<&'a dyn Val> {
    args.downcast_ref::<Record>()
        .and_then(|r| r.field(name))
        .map(|v| v as &dyn Val)
}

fn text(args: &dyn Val, name: &str) -> Option<String> {
    arg(args, name).and_then(values::as_text)
}

/// The `channel` a request or operation acts on, to name it in `error`.
fn channel_of(args: &dyn Val) -> Option<String> {
    text(args, "channel")
}

fn required(args: &dyn Val, name: &str) -> Result<String, SwitchError> {
    text(args, name)
        .ok_or_else(|| SwitchError::new("InvalidRequest", format!("argument `{name}` is null")))
}

/// The adapter operation a catalog operation and its arguments stand for.
fn switch_operation(op: SwitchOp, args: &dyn Val) -> Result<Operation, SwitchError> {
    Ok(match op {
        SwitchOp::Login => Operation::Login {
            channel: required(args, "channel")?,
        },
        SwitchOp::Logout => Operation::Logout {
            reason: text(args, "reason"),
        },
        SwitchOp::SetReady => Operation::SetReady {
            channel: text(args, "channel"),
        },
        SwitchOp::SetNotReady => Operation::SetNotReady {
            channel: text(args, "channel"),
            reason: text(args, "reason"),
            reject_pending: arg(args, "reject_pending")
                .and_then(|v| {
                    v.downcast_ref::<cel::common::types::CelBool>()
                        .map(|b| *b.inner())
                })
                .unwrap_or(false),
        },
        SwitchOp::ReasonCodes => Operation::ReasonCodes {
            category: required(args, "category")?,
        },
        SwitchOp::Activate => Operation::Activate {
            channel: required(args, "channel")?,
        },
        SwitchOp::Deactivate => Operation::Deactivate {
            channel: required(args, "channel")?,
        },
        SwitchOp::State => Operation::State {
            channel: required(args, "channel")?,
        },
    })
}

/// A channel's state on a platform without a channel machine.
const LOGGED_OFF: &str = "LoggedOff";

/// HIS's own operations: sessions, channel groups, channels.
fn his_operation(
    op: HisOp,
    args: &dyn Val,
    session: &mut Session,
    initial: &'static str,
) -> Result<(), SwitchError> {
    match op {
        HisOp::GroupCreate => session.group = true,
        HisOp::GroupDispose => session.group = false,
        HisOp::SessionDispose => session.disposed = true,
        HisOp::ChannelCreate => {
            let given = required(args, "media")?;
            let Some(&media) = MEDIA.iter().find(|m| **m == given) else {
                return Err(SwitchError::new(
                    "InvalidRequest",
                    format!("`{given}` is not a media (voice, email, chat)"),
                ));
            };
            if session.channel(media).is_some() {
                return Err(SwitchError::new(
                    "InvalidRequest",
                    format!("a {media} channel is already open"),
                ));
            }
            session.channels.push(Channel {
                id: media.into(),
                media: media.into(),
                state: initial.into(),
                active: true,
                interactions: Vec::new(),
            });
        }
        HisOp::ChannelDispose => {
            let id = required(args, "channel")?;
            session.channels.retain(|c| c.id != id);
        }
        HisOp::SessionSet => {
            let list = |v: &dyn Val| -> Option<Vec<String>> {
                let mut out = Vec::new();
                let mut it = v.as_iterable()?.iter();
                while let Some(x) = it.next() {
                    out.push(values::as_text(x).unwrap_or_default());
                }
                Some(out)
            };
            if let Some(l) = arg(args, "logout_reasons").and_then(list) {
                session.logout_reasons = l;
            }
            if let Some(l) = arg(args, "not_ready_reasons").and_then(list) {
                session.not_ready_reasons = l;
            }
        }
    }
    Ok(())
}

/// The longest text a request parameter may hold, in characters: a channel,
/// a reason, an agent id are short; more is a mistake or an attack, and is
/// kept in memory for the session's life.
pub const MAX_TEXT_PARAM: usize = 256;

/// The most items a list parameter may hold.
pub const MAX_LIST_PARAM: usize = 32;

/// How much a request's parameters may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamLimits {
    /// Characters of one text.
    pub text: usize,
    /// Items of one list.
    pub list: usize,
}

impl Default for ParamLimits {
    fn default() -> Self {
        ParamLimits {
            text: MAX_TEXT_PARAM,
            list: MAX_LIST_PARAM,
        }
    }
}

/// Whether every text in `v` fits, and every list.
fn bounded(name: &str, v: &Json, limits: ParamLimits) -> Result<(), String> {
    match v {
        Json::String(s) if s.chars().count() > limits.text => Err(format!(
            "parameter `{name}` has {} characters; at most {}",
            s.chars().count(),
            limits.text
        )),
        Json::Array(items) if items.len() > limits.list => Err(format!(
            "parameter `{name}` has {} items; at most {}",
            items.len(),
            limits.list
        )),
        Json::Array(items) => items.iter().try_for_each(|i| bounded(name, i, limits)),
        Json::Object(m) => m.values().try_for_each(|i| bounded(name, i, limits)),
        _ => Ok(()),
    }
}

/// A request's parameters against the workflow's declared inputs.
fn check_params(w: &Workflow, params: &Json, limits: ParamLimits) -> Result<(), String> {
    let Some(map) = params.as_object() else {
        return Err("`params` must be an object".into());
    };
    for (k, v) in map {
        bounded(k, v, limits)?;
    }
    for k in map.keys() {
        if !w.inputs.iter().any(|i| &i.name == k) {
            let known: Vec<&str> = w.inputs.iter().map(|i| i.name.as_str()).collect();
            return Err(format!(
                "unknown parameter `{k}`; `{}` takes: {}",
                w.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
    }
    for i in &w.inputs {
        match map.get(&i.name) {
            None | Some(Json::Null) if i.required => {
                return Err(format!("parameter `{}` is required", i.name));
            }
            None | Some(Json::Null) => {}
            Some(v) => {
                let fits = match i.ty {
                    InputType::String => v.is_string(),
                    InputType::Bool => v.is_boolean(),
                    InputType::Int => v.is_i64() || v.is_u64(),
                    InputType::List => v.is_array(),
                    InputType::Any => true,
                };
                if !fits {
                    return Err(format!("parameter `{}` must be {:?}", i.name, i.ty).to_lowercase());
                }
            }
        }
    }
    Ok(())
}
