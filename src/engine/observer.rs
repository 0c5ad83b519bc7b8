//! Hooks into a run, with no-op defaults: tracing, execution traces and
//! transition coverage are observers, and the interpreter knows none of them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use cel::common::value::Val;

use super::outcome::{Event, Failure, Response};
use super::values;
use crate::platform::SwitchEvent;
use crate::workflow::model::{Machine, StateId, Trigger, Workflow};

pub trait Observer: Send {
    /// Whether it reads the durations [`Observer::operation`] and
    /// [`Observer::run_finished`] give. One that does not spares the engine
    /// reading the clock twice per operation and per workflow run; it is
    /// then given zero.
    fn times(&mut self) -> bool {
        true
    }
    fn run_started(&mut self, _workflow: &Workflow, _request: &dyn Val) {}
    fn state_entered(&mut self, _workflow: &Workflow, _state: StateId) {}
    fn transition(
        &mut self,
        _workflow: &Workflow,
        _from: StateId,
        _trigger: &Trigger,
        _to: StateId,
    ) {
    }
    /// An operation ended with `outcome`; `error` is the failure a
    /// workflow reads as `error` (code and message) when it did not
    /// succeed.
    fn operation(
        &mut self,
        _op: &str,
        _args: &dyn Val,
        _outcome: &str,
        _error: Option<&Failure>,
        _elapsed: Duration,
    ) {
    }
    fn event(&mut self, _event: &Event) {}
    fn run_finished(&mut self, _workflow: &Workflow, _response: &Response, _elapsed: Duration) {}
    /// A switch event reached the session (a wait took it, or HIS handles it).
    fn switch_event(&mut self, _event: &SwitchEvent) {}
    /// A machine instance took `machine.transitions[transition]`; `entity`
    /// is the channel's or session's id.
    fn machine_transition(
        &mut self,
        _machine: &Machine,
        _transition: usize,
        _entity: &str,
        _from: &str,
        _to: &str,
    ) {
    }
    /// Handling a switch event failed: a machine's or a workflow's
    /// expression, with no client to tell (HIS logs it too).
    fn fault(&mut self, _agent: &str, _message: &str) {}
}

/// Observes nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn times(&mut self) -> bool {
        false
    }
}

/// One line of an execution trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "trace", rename_all = "snake_case")]
pub enum TraceEntry {
    RunStarted {
        workflow: String,
        request: Value,
    },
    StateEntered {
        workflow: String,
        state: String,
        /// Where the state is written: `file:line`.
        at: String,
    },
    Transition {
        workflow: String,
        from: String,
        on: String,
        to: String,
    },
    Operation {
        op: String,
        args: Value,
        outcome: String,
        /// Why an operation did not succeed: the switch's code and message.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<TraceError>,
        micros: u64,
    },
    Event {
        name: String,
        data: Value,
    },
    RunFinished {
        workflow: String,
        response: Response,
        micros: u64,
    },
    SwitchEvent {
        name: String,
        agent: Option<String>,
        data: Value,
    },
    MachineTransition {
        machine: String,
        entity: String,
        on: String,
        from: String,
        to: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceError {
    pub code: String,
    pub message: String,
}

/// Records everything, for `hisflow run --trace` and tests.
#[derive(Debug, Default)]
pub struct Trace {
    pub entries: Vec<TraceEntry>,
}

fn trigger_name(t: &Trigger) -> String {
    match t {
        Trigger::Outcome(o) => o.to_string(),
        Trigger::Guard(i) => format!("guard {i}"),
        Trigger::Otherwise => "otherwise".into(),
        Trigger::Next => "next".into(),
    }
}

impl Observer for Trace {
    fn run_started(&mut self, workflow: &Workflow, request: &dyn Val) {
        self.entries.push(TraceEntry::RunStarted {
            workflow: workflow.name.clone(),
            request: values::to_json(request).unwrap_or(Value::Null),
        });
    }
    fn state_entered(&mut self, workflow: &Workflow, state: StateId) {
        let s = workflow.state(state);
        self.entries.push(TraceEntry::StateEntered {
            workflow: workflow.name.clone(),
            state: s.name.clone(),
            at: format!("{}:{}", s.file.display(), s.line),
        });
    }
    fn transition(&mut self, workflow: &Workflow, from: StateId, trigger: &Trigger, to: StateId) {
        self.entries.push(TraceEntry::Transition {
            workflow: workflow.name.clone(),
            from: workflow.state(from).name.clone(),
            on: trigger_name(trigger),
            to: workflow.state(to).name.clone(),
        });
    }
    fn operation(
        &mut self,
        op: &str,
        args: &dyn Val,
        outcome: &str,
        error: Option<&Failure>,
        elapsed: Duration,
    ) {
        self.entries.push(TraceEntry::Operation {
            op: op.to_string(),
            args: values::to_json(args).unwrap_or(Value::Null),
            outcome: outcome.to_string(),
            error: error.map(|f| TraceError {
                code: f.code.clone(),
                message: f.message.clone(),
            }),
            micros: elapsed.as_micros() as u64,
        });
    }
    fn event(&mut self, event: &Event) {
        self.entries.push(TraceEntry::Event {
            name: event.name.to_string(),
            data: event.data.to_json(),
        });
    }
    fn run_finished(&mut self, workflow: &Workflow, response: &Response, elapsed: Duration) {
        self.entries.push(TraceEntry::RunFinished {
            workflow: workflow.name.clone(),
            response: response.clone(),
            micros: elapsed.as_micros() as u64,
        });
    }
    fn switch_event(&mut self, e: &SwitchEvent) {
        self.entries.push(TraceEntry::SwitchEvent {
            name: e.name.clone(),
            agent: e.agent.clone(),
            data: Value::Object(e.data.clone()),
        });
    }
    fn machine_transition(&mut self, m: &Machine, t: usize, entity: &str, from: &str, to: &str) {
        self.entries.push(TraceEntry::MachineTransition {
            machine: m.name.clone(),
            entity: entity.to_string(),
            on: m.label(&m.transitions[t]),
            from: from.to_string(),
            to: to.to_string(),
        });
    }
}

/// Which transitions ran, by workflow file: (file, from state, the
/// transition's own trigger — `otherwise` when that is the edge taken); and
/// by machine file: (file, index of the transition).
#[derive(Debug, Default, Clone)]
pub struct Coverage {
    pub taken: BTreeSet<(std::path::PathBuf, String, Trigger)>,
    pub machines: BTreeSet<(std::path::PathBuf, usize)>,
}

impl Observer for Coverage {
    fn transition(&mut self, workflow: &Workflow, from: StateId, trigger: &Trigger, _to: StateId) {
        self.taken.insert((
            workflow.path.clone(),
            workflow.state(from).name.clone(),
            trigger.clone(),
        ));
    }
    fn machine_transition(&mut self, m: &Machine, t: usize, _: &str, _: &str, _: &str) {
        self.machines.insert((m.path.clone(), t));
    }
}

/// Two observers at once.
pub struct Both<A: Observer, B: Observer>(pub A, pub B);

impl<A: Observer, B: Observer> Observer for Both<A, B> {
    fn times(&mut self) -> bool {
        // Both asked: `||` would skip the second.
        self.0.times() | self.1.times()
    }
    fn run_started(&mut self, w: &Workflow, r: &dyn Val) {
        self.0.run_started(w, r);
        self.1.run_started(w, r);
    }
    fn state_entered(&mut self, w: &Workflow, s: StateId) {
        self.0.state_entered(w, s);
        self.1.state_entered(w, s);
    }
    fn transition(&mut self, w: &Workflow, f: StateId, t: &Trigger, to: StateId) {
        self.0.transition(w, f, t, to);
        self.1.transition(w, f, t, to);
    }
    fn operation(&mut self, op: &str, a: &dyn Val, o: &str, f: Option<&Failure>, e: Duration) {
        self.0.operation(op, a, o, f, e);
        self.1.operation(op, a, o, f, e);
    }
    fn event(&mut self, e: &Event) {
        self.0.event(e);
        self.1.event(e);
    }
    fn run_finished(&mut self, w: &Workflow, r: &Response, e: Duration) {
        self.0.run_finished(w, r, e);
        self.1.run_finished(w, r, e);
    }
    fn switch_event(&mut self, e: &SwitchEvent) {
        self.0.switch_event(e);
        self.1.switch_event(e);
    }
    fn machine_transition(&mut self, m: &Machine, t: usize, entity: &str, from: &str, to: &str) {
        self.0.machine_transition(m, t, entity, from, to);
        self.1.machine_transition(m, t, entity, from, to);
    }
    fn fault(&mut self, agent: &str, message: &str) {
        self.0.fault(agent, message);
        self.1.fault(agent, message);
    }
}

/// An observer that may not be there: HIS observes its sessions only when
/// asked to (scenarios, traces), at no cost otherwise.
impl<O: Observer> Observer for Option<O> {
    fn times(&mut self) -> bool {
        self.as_mut().is_some_and(Observer::times)
    }
    fn run_started(&mut self, w: &Workflow, r: &dyn Val) {
        if let Some(o) = self {
            o.run_started(w, r);
        }
    }
    fn state_entered(&mut self, w: &Workflow, s: StateId) {
        if let Some(o) = self {
            o.state_entered(w, s);
        }
    }
    fn transition(&mut self, w: &Workflow, f: StateId, t: &Trigger, to: StateId) {
        if let Some(o) = self {
            o.transition(w, f, t, to);
        }
    }
    fn operation(
        &mut self,
        op: &str,
        a: &dyn Val,
        outcome: &str,
        f: Option<&Failure>,
        e: Duration,
    ) {
        if let Some(o) = self {
            o.operation(op, a, outcome, f, e);
        }
    }
    fn event(&mut self, e: &Event) {
        if let Some(o) = self {
            o.event(e);
        }
    }
    fn run_finished(&mut self, w: &Workflow, r: &Response, e: Duration) {
        if let Some(o) = self {
            o.run_finished(w, r, e);
        }
    }
    fn switch_event(&mut self, e: &SwitchEvent) {
        if let Some(o) = self {
            o.switch_event(e);
        }
    }
    fn machine_transition(&mut self, m: &Machine, t: usize, entity: &str, from: &str, to: &str) {
        if let Some(o) = self {
            o.machine_transition(m, t, entity, from, to);
        }
    }
    fn fault(&mut self, agent: &str, message: &str) {
        if let Some(o) = self {
            o.fault(agent, message);
        }
    }
}

/// An observer shared between sessions' tasks, locked for each call only: a
/// run awaits between calls, and a lock held across an await would stall
/// every other session.
impl<O: Observer + ?Sized> Observer for Arc<Mutex<O>> {
    fn times(&mut self) -> bool {
        lock(self).times()
    }
    fn run_started(&mut self, w: &Workflow, r: &dyn Val) {
        lock(self).run_started(w, r);
    }
    fn state_entered(&mut self, w: &Workflow, s: StateId) {
        lock(self).state_entered(w, s);
    }
    fn transition(&mut self, w: &Workflow, f: StateId, t: &Trigger, to: StateId) {
        lock(self).transition(w, f, t, to);
    }
    fn operation(&mut self, op: &str, a: &dyn Val, o: &str, f: Option<&Failure>, e: Duration) {
        lock(self).operation(op, a, o, f, e);
    }
    fn event(&mut self, e: &Event) {
        lock(self).event(e);
    }
    fn run_finished(&mut self, w: &Workflow, r: &Response, e: Duration) {
        lock(self).run_finished(w, r, e);
    }
    fn switch_event(&mut self, e: &SwitchEvent) {
        lock(self).switch_event(e);
    }
    fn machine_transition(&mut self, m: &Machine, t: usize, entity: &str, from: &str, to: &str) {
        lock(self).machine_transition(m, t, entity, from, to);
    }
    fn fault(&mut self, agent: &str, message: &str) {
        lock(self).fault(agent, message);
    }
}

fn lock<O: ?Sized>(m: &Mutex<O>) -> std::sync::MutexGuard<'_, O> {
    // Observers only record: a panic elsewhere cannot leave one torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
