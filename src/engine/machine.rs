//! Machines hearing what happened: a switch operation that succeeded, or a
//! switch event. Every machine instance decides on the session as it was
//! before, and the changes are applied only once all have decided, so the
//! order in which instances hear changes nothing.

use std::sync::Arc;

use serde_json::Value as Json;

use super::observer::Observer;
use super::outcome::{Event, Response};
use super::run::Engine;
use super::session::{Channel, Interaction, Session};
use super::values;
use crate::platform::{EventSpec, OperationSpec, SwitchEvent};
use crate::workflow::model::{Entity, Machine, Target};
use crate::workflow::native::{Inputs, V};
use crate::workflow::record::Record;

/// What a machine can hear.
pub(super) enum Heard<'a> {
    /// A switch operation succeeded; `args` as the workflow gave them.
    Op {
        spec: &'static OperationSpec,
        args: &'a Record,
    },
    /// A switch event, and its value for expressions.
    Event {
        spec: &'static EventSpec,
        event: &'a SwitchEvent,
        value: &'a Record,
    },
}

impl Heard<'_> {
    fn name(&self) -> &'static str {
        match self {
            Heard::Op { spec, .. } => spec.name,
            Heard::Event { spec, .. } => spec.name,
        }
    }

    /// The channel it concerns; `None` for all of them.
    fn channel(&self) -> Option<&str> {
        match self {
            Heard::Op { args, .. } => args
                .field("channel")
                .and_then(|c| c.downcast_ref::<cel::common::types::CelString>())
                .map(|c| c.inner()),
            Heard::Event { event, .. } => event.text("channel"),
        }
    }
}

/// Which instance a change is for.
#[derive(Clone, Copy)]
enum Instance {
    Channel(usize),
    Session,
}

/// What one instance's transition does, decided before anything changes.
struct Change<'m> {
    machine: &'m Arc<Machine>,
    instance: Instance,
    transition: usize,
    set: Vec<(&'m str, Json)>,
    to: Option<usize>,
    emit: Option<Event>,
}

impl Engine {
    /// Lets the session's machines hear `heard`: the channel machine of the
    /// channel it concerns (or of every channel), then the session machine.
    /// A fault of an expression is the error; instances that heard before it
    /// keep their change.
    pub(super) fn hear(
        &self,
        heard: &Heard<'_>,
        session: &mut Session,
        events: &mut Vec<Event>,
        obs: &mut dyn Observer,
    ) -> Result<(), String> {
        let name = heard.name();
        let channel_m = self
            .platform
            .machine(Entity::Channel)
            .filter(|m| m.hears(name));
        let session_m = self
            .platform
            .machine(Entity::Session)
            .filter(|m| m.hears(name));
        if channel_m.is_none() && session_m.is_none() {
            return Ok(());
        }
        // An operation's arguments are its `event`.
        let event: &Record = match heard {
            Heard::Op { args, .. } => args,
            Heard::Event { value, .. } => value,
        };
        // Every instance decides on the session as it was; the changes are
        // applied after. A fault leaves the changes decided before it.
        // A session has at most three channels and one session instance.
        let mut changes: smallvec::SmallVec<[Change<'_>; 4]> = smallvec::SmallVec::new();
        let decided = (|| {
            let now: &Session = session;
            if let Some(m) = channel_m {
                let only = heard.channel();
                for (i, c) in now.channels.iter().enumerate() {
                    if only.is_some_and(|id| id != c.id) {
                        continue;
                    }
                    if let Some(ch) = self.decide(
                        m,
                        name,
                        &c.state,
                        V::Obj(c),
                        event,
                        now,
                        Instance::Channel(i),
                    )? {
                        changes.push(ch);
                    }
                }
            }
            if let (Some(m), Some(state)) = (session_m, now.state.as_deref())
                && let Some(ch) =
                    self.decide(m, name, state, V::Obj(now), event, now, Instance::Session)?
            {
                changes.push(ch);
            }
            Ok::<(), String>(())
        })();
        for ch in changes {
            apply(ch, session, events, obs)?;
        }
        decided
    }

    /// The transition `m` takes in `state` for `trigger`, if any.
    #[allow(clippy::too_many_arguments)]
    fn decide<'m>(
        &self,
        m: &'m Arc<Machine>,
        trigger: &str,
        state: &str,
        this: V<'_>,
        event: &Record,
        session: &Session,
        instance: Instance,
    ) -> Result<Option<Change<'m>>, String> {
        let vars = Inputs {
            entity: Some(this),
            ..self.inputs(&self.empty, V::Obj(session), None, Some(event), &self.empty)
        };
        let fault = |what: &str, source: &str, err: &str| {
            format!("in machine `{}`, {what} `{source}` failed: {err}", m.name)
        };
        for (i, t) in m.candidates(m.state_id(state), trigger) {
            if let Some(g) = &t.guard {
                match values::eval_bool(&self.env, g, &vars, None) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => return Err(fault("expression", g.source(), &e)),
                }
            }
            let mut set = Vec::with_capacity(t.set.len());
            for (k, e) in &t.set {
                let v = values::eval_json(&self.env, e, &vars, None)
                    .map_err(|err| fault("expression", e.source(), &err))?;
                set.push((*k, v));
            }
            let to = match &t.to {
                Target::Stay => None,
                Target::State(s) => Some(*s),
                Target::Dynamic(tpl) => {
                    let name = self
                        .template(tpl, &vars)
                        .map_err(|r| fault("target", &tpl.display(), &message(&r)))?;
                    match m.state_id(&name) {
                        Some(s) => Some(s),
                        None => {
                            // The switch said something the machine has no
                            // state for: its data is wrong, not the workflow.
                            tracing::error!(
                                machine = %m.name,
                                state = %name,
                                "the switch reported a state the machine does not have; ignored"
                            );
                            return Ok(None);
                        }
                    }
                }
            };
            let emit = match &t.emit {
                None => None,
                Some(e) => Some(Event {
                    name: std::borrow::Cow::Borrowed(e.event),
                    data: self
                        .data(&e.data, &vars, None)
                        .map_err(|r| fault("event data of", e.event, &message(&r)))?,
                }),
            };
            return Ok(Some(Change {
                machine: m,
                instance,
                transition: i,
                set,
                to,
                emit,
            }));
        }
        Ok(None)
    }
}

fn message(r: &Response) -> String {
    match r {
        Response::Error { message, .. } => message.clone(),
        other => format!("{other:?}"),
    }
}

fn apply(
    ch: Change<'_>,
    session: &mut Session,
    events: &mut Vec<Event>,
    obs: &mut dyn Observer,
) -> Result<(), String> {
    let m = ch.machine;
    let fail = |e: String| format!("in machine `{}`: {e}", m.name);
    let to = ch.to.map(|t| m.states[t].name);
    match ch.instance {
        Instance::Channel(i) => {
            let c = &mut session.channels[i];
            for (k, v) in &ch.set {
                set_channel(c, k, v).map_err(fail)?;
            }
            match to {
                Some(to) => {
                    let from = std::mem::replace(&mut c.state, to.into());
                    obs.machine_transition(m, ch.transition, &c.id, &from, to);
                }
                None => obs.machine_transition(m, ch.transition, &c.id, &c.state, &c.state),
            }
        }
        Instance::Session => {
            for (k, v) in &ch.set {
                set_session(session, k, v).map_err(fail)?;
            }
            let from = match to {
                Some(to) => session.state.replace(to.into()),
                None => session.state.clone(),
            };
            let from = from.unwrap_or_default();
            let now = session.state.as_deref().unwrap_or_default();
            obs.machine_transition(m, ch.transition, &session.id, &from, now);
        }
    }
    if let Some(e) = ch.emit {
        obs.event(&e);
        events.push(e);
    }
    Ok(())
}

fn set_channel(c: &mut Channel, field: &str, v: &Json) -> Result<(), String> {
    match field {
        "active" => {
            c.active = v
                .as_bool()
                .ok_or_else(|| format!("`active` must be a boolean, not {v}"))?;
        }
        "interactions" => {
            let list = v
                .as_array()
                .ok_or_else(|| format!("`interactions` must be a list, not {v}"))?;
            let mut out = Vec::with_capacity(list.len());
            for i in list {
                let id = i
                    .get("id")
                    .and_then(Json::as_str)
                    .ok_or_else(|| format!("an interaction needs a text `id`, not {i}"))?;
                let media = i.get("media").and_then(Json::as_str).unwrap_or(&c.media);
                out.push(Interaction {
                    id: id.to_string(),
                    media: media.to_string(),
                });
            }
            c.interactions = out;
        }
        other => return Err(format!("a channel has no field `{other}` to set")),
    }
    Ok(())
}

fn set_session(s: &mut Session, field: &str, v: &Json) -> Result<(), String> {
    let list = || -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or_else(|| format!("`{field}` must be a list, not {v}"))
            .map(|l| {
                l.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect()
            })
    };
    match field {
        "logout_reasons" => s.logout_reasons = list()?,
        "not_ready_reasons" => s.not_ready_reasons = list()?,
        other => return Err(format!("a session has no field `{other}` to set")),
    }
    Ok(())
}
