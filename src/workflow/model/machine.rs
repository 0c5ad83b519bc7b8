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
    /// Each trigger's transitions, in the same order
    /// ([`Machine::by_trigger`]): an operation or event finds its own
    /// without going through every other's. Built with `transitions` at
    /// validation; nothing adds, removes or reorders them after (a
    /// platform's specialisation changes only their expressions).
    pub(crate) on: Vec<(&'static str, Vec<usize>)>,
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
        trigger: &str,
    ) -> impl Iterator<Item = (usize, &'a MachineTransition)> + 'a {
        let on = self.fired_by(trigger);
        let own = on
            .iter()
            .filter(move |&&i| state.is_some() && self.transitions[i].from == state);
        let every = on
            .iter()
            .filter(move |&&i| self.transitions[i].from.is_none());
        own.chain(every).map(move |&i| (i, &self.transitions[i]))
    }

    /// Whether some transition fires on `trigger`.
    pub fn hears(&self, trigger: &str) -> bool {
        !self.fired_by(trigger).is_empty()
    }

    /// The transitions `trigger` fires, in file order.
    fn fired_by(&self, trigger: &str) -> &[usize] {
        self.on
            .iter()
            .find(|(t, _)| same(t, trigger))
            .map_or(&[], |(_, ids)| ids)
    }

    /// [`Machine::on`] for `transitions`.
    pub(crate) fn by_trigger(transitions: &[MachineTransition]) -> Vec<(&'static str, Vec<usize>)> {
        let mut on: Vec<(&'static str, Vec<usize>)> = Vec::new();
        for (i, t) in transitions.iter().enumerate() {
            let name = t.trigger.name();
            match on.iter_mut().find(|(n, _)| same(n, name)) {
                Some((_, ids)) => ids.push(i),
                None => on.push((name, vec![i])),
            }
        }
        on
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

#[cfg(test)]
mod tests {
    use super::Machine;

    /// What `candidates` gives, by its definition: the state's own
    /// transitions for the trigger in file order, then the machine's.
    fn by_definition(m: &Machine, state: Option<usize>, trigger: &str) -> Vec<usize> {
        let fires = |i: &usize| m.transitions[*i].trigger.name() == trigger;
        let own = (0..m.transitions.len())
            .filter(|i| state.is_some() && m.transitions[*i].from == state)
            .filter(fires);
        let every = (0..m.transitions.len())
            .filter(|i| m.transitions[*i].from.is_none())
            .filter(fires);
        own.chain(every).collect()
    }

    #[test]
    fn a_trigger_finds_the_transitions_it_fires_in_order() {
        let mut checked = 0;
        // The fixture's machine has a trigger both a state and the whole
        // machine answer: the state's own must come first.
        for dir in [
            "workflows/reference",
            "workflows/cisco-uccx",
            "workflows/twilio-taskrouter",
            "tests/fixtures/valid/constructs",
        ] {
            let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
            let (platform, _) = crate::load_platform(&path).unwrap();
            for m in &platform.machines {
                let mut triggers: Vec<String> = m
                    .transitions
                    .iter()
                    .map(|t| t.trigger.name().to_string())
                    .collect();
                triggers.push("agent.event.unheard".into());
                let states = (0..m.states.len()).map(Some).chain([None]);
                for state in states {
                    for t in &triggers {
                        let found: Vec<usize> = m.candidates(state, t).map(|(i, _)| i).collect();
                        assert_eq!(
                            found,
                            by_definition(m, state, t),
                            "{} {state:?} {t}",
                            m.name
                        );
                        assert_eq!(
                            m.hears(t),
                            m.transitions.iter().any(|x| x.trigger.name() == t),
                            "whether {} hears {t}",
                            m.name
                        );
                        checked += found.len();
                    }
                }
            }
        }
        assert!(checked > 0, "some transition was found");
    }
}
