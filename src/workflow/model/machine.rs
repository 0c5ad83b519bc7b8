//! A validated machine: the long-lived state of a channel or of a session,
//! and how switch operations and switch events change it. HIS keeps one
//! instance per entity; the engine fires its transitions.

use std::path::PathBuf;

use super::{Args, Emit};
use crate::platform::{EventSpec, OperationSpec};
use crate::workflow::expr::{CompiledExpr, Template};
use crate::workflow::intern::same;
use crate::workflow::source::Span;

pub use crate::workflow::raw::Entity;

#[derive(Debug, Clone)]
pub struct Machine {
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub entity: Entity,
    /// In file order.
    pub states: Vec<MachineState>,
    pub initial: usize,
    /// Every transition: each state's own in file order, then the machine's.
    pub transitions: Vec<MachineTransition>,
}

#[derive(Debug, Clone)]
pub struct MachineState {
    /// [Interned](crate::workflow::intern): an entity entering it names it
    /// without a copy.
    pub name: &'static str,
    pub description: Option<String>,
    pub span: Span,
}

/// What fires a transition.
#[derive(Debug, Clone, Copy)]
pub enum MachineTrigger {
    /// A switch operation that succeeded for the entity.
    Op(&'static OperationSpec),
    /// A switch event about the entity.
    Event(&'static EventSpec),
}

impl MachineTrigger {
    pub fn name(&self) -> &'static str {
        match self {
            MachineTrigger::Op(o) => o.name,
            MachineTrigger::Event(e) => e.name,
        }
    }
}

/// Where a transition leads.
#[derive(Debug, Clone)]
pub enum Target {
    /// The state stays; only `set` and `emit` happen.
    Stay,
    State(usize),
    /// The state an expression names at run time (`${event.state}`).
    Dynamic(Template),
}

#[derive(Debug, Clone)]
pub struct MachineTransition {
    /// The state it is written under; `None` for the machine's own `on`,
    /// which applies in every state.
    pub from: Option<usize>,
    pub trigger: MachineTrigger,
    pub guard: Option<CompiledExpr>,
    /// Entity fields to change, evaluated before the transition.
    pub set: Args,
    pub to: Target,
    pub emit: Option<Emit>,
    /// Where the trigger is written, for coverage reports.
    pub span: Span,
}

impl Machine {
    pub fn state_id(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| same(s.name, name))
    }

    pub fn initial_name(&self) -> &'static str {
        self.states[self.initial].name
    }

    /// The transitions `trigger` may fire in `state`, in the order they are
    /// tried: the state's own, then the machine's.
    pub fn candidates<'a>(
        &'a self,
        state: Option<usize>,
        trigger: &'a str,
    ) -> impl Iterator<Item = (usize, &'a MachineTransition)> + 'a {
        let own = self
            .transitions
            .iter()
            .enumerate()
            .filter(move |(_, t)| state.is_some() && t.from == state);
        let every = self
            .transitions
            .iter()
            .enumerate()
            .filter(|(_, t)| t.from.is_none());
        own.chain(every)
            .filter(move |(_, t)| same(t.trigger.name(), trigger))
    }

    /// Whether some transition fires on `trigger`.
    pub fn hears(&self, trigger: &str) -> bool {
        self.transitions
            .iter()
            .any(|t| same(t.trigger.name(), trigger))
    }

    /// Every expression of the machine, to change in place.
    pub(crate) fn exprs_mut(&mut self, f: &mut dyn FnMut(&mut CompiledExpr)) {
        for t in &mut self.transitions {
            t.guard.iter_mut().for_each(&mut *f);
            super::args_mut(&mut t.set, f);
            if let Target::Dynamic(tpl) = &mut t.to {
                super::template_mut(tpl, f);
            }
            if let Some(e) = &mut t.emit {
                super::args_mut(&mut e.data, f);
            }
        }
    }

    /// The label renders and reports give a transition: trigger and guard.
    pub fn label(&self, t: &MachineTransition) -> String {
        match &t.guard {
            Some(g) => format!("{} [{}]", t.trigger.name(), g.source()),
            None => t.trigger.name().to_string(),
        }
    }
}

/// Fields a machine's `set` may change, per entity.
pub fn settable(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Channel => &["active", "interactions"],
        Entity::Session => crate::workflow::vocab::WRITABLE_SESSION_FIELDS,
    }
}
