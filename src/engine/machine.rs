//! Machines hearing what happened: a switch operation that succeeded, or a
//! switch event. Every machine instance decides on the session as it was
//! before; the changes are applied together afterwards, so the order in which
//! instances hear changes nothing.

use std::sync::Arc;

use cel::common::value::Val;
use serde_json::Value as Json;

use super::observer::Observer;
use super::outcome::{Event, Response};
use super::run::Engine;
use super::session::{Channel, Interaction, Session};
use super::values::{self, SessionView};
use crate::platform::{EventSpec, OperationSpec, SwitchEvent};
use crate::workflow::model::{Entity, Machine, Target};
use crate::workflow::native::Inputs;
use crate::workflow::record::{Record, text};

/// What a machine can hear.
pub(super) enum Heard<'a> {
    /// A switch operation succeeded; `args` as the workflow gave them.
    Op {
        spec: &'static OperationSpec,
        args: &'a dyn Val,
    },
    /// A switch event, and its value for expressions.
    Event {
        spec: &'static EventSpec,
        event: &'a SwitchEvent,
        value: &'a dyn Val,
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
    fn channel(&self) -> Option<String> {
        match self {
            Heard::Op { args, .. } => args
                .downcast_ref::<Record>()
                .and_then(|r| r.field("channel"))
                .and_then(values::as_text),
            Heard::Event { event, .. } => event.text("channel").map(str::to_string),
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
    set: Vec<(String, Json)>,
    to: Option<usize>,
    emit: Option<Event>,
}

impl Engine {
    /// Lets the session's machines hear `heard`: the channel machine of the
    /// channel it concerns (or of every channel), then the session machine.
    /// A fault of an expression is the error; the session is then unchanged.
    pub(super) fn hear(
        &self,
        heard: &Heard<'_>,
        session: &mut Session,
        view: &SessionView,
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
        // An operation's arguments, with its name, as `event` shows them.
        let op_value;
        let event: &dyn Val = match heard {
            Heard::Op { spec, args } => {
                let mut fields = vec![("name".into(), text(spec.name))];
                if let Some(r) = args.downcast_ref::<Record>() {
                    for (k, v) in r.fields() {
                        fields.push((k.clone(), v.clone_as_boxed()));
                    }
                }
                op_value = Record::new(fields);
                &op_value
            }
            Heard::Event { value, .. } => *value,
        };
        let mut changes = Vec::new();
        if let Some(m) = channel_m {
            let only = heard.channel();
            for (i, c) in session.channels.iter().enumerate() {
                if only.as_deref().is_some_and(|id| id != c.id) {
                    continue;
                }
                let Some(this) = view.channel(i) else {
                    continue;
                };
                if let Some(ch) =
                    self.decide(m, name, &c.state, this, event, view, Instance::Channel(i))?
                {
                    changes.push(ch);
                }
            }
        }
        if let (Some(m), Some(state)) = (session_m, session.state.as_deref())
            && let Some(ch) =
                self.decide(m, name, state, view.value(), event, view, Instance::Session)?
        {
            changes.push(ch);
        }
        for ch in changes {
            apply(ch, session, events, obs)?;
        }
        Ok(())
    }

    /// The transition `m` takes in `state` for `trigger`, if any.
    #[allow(clippy::too_many_arguments)]
    fn decide<'m>(
        &self,
        m: &'m Arc<Machine>,
        trigger: &str,
        state: &str,
        this: &dyn Val,
        event: &dyn Val,
        view: &SessionView,
        instance: Instance,
    ) -> Result<Option<Change<'m>>, String> {
        let vars = Inputs {
            request: self.empty.as_ref(),
            session: view.value(),
            platform: self.settings.as_ref(),
            error: self.no_error.as_ref(),
            event,
            entity: Some(this),
            item: None,
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
                set.push((k.clone(), v));
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
                    name: e.event.clone(),
                    data: self
                        .object(&e.data, &vars, None)
                        .map_err(|r| fault("event data of", &e.event, &message(&r)))?,
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
    let (entity, from) = match ch.instance {
        Instance::Channel(i) => {
            let c = &mut session.channels[i];
            for (k, v) in &ch.set {
                set_channel(c, k, v).map_err(|e| format!("in machine `{}`: {e}", m.name))?;
            }
            let from = c.state.clone();
            if let Some(to) = ch.to {
                c.state = m.states[to].name.clone();
            }
            (c.id.clone(), from)
        }
        Instance::Session => {
            for (k, v) in &ch.set {
                set_session(session, k, v).map_err(|e| format!("in machine `{}`: {e}", m.name))?;
            }
            let from = session.state.clone().unwrap_or_default();
            if let Some(to) = ch.to {
                session.state = Some(m.states[to].name.clone());
            }
            (session.id.clone(), from)
        }
    };
    let to = ch.to.map_or(from.as_str(), |t| m.states[t].name.as_str());
    obs.machine_transition(m, ch.transition, &entity, &from, to);
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
