//! Switch events: what a switch tells HIS on its own, beside answering
//! operations. The catalog lists every event an adapter may deliver, with its
//! data fields; the validator checks platforms, machines and `wait` states
//! against it, and HIS refuses event data that does not fit it.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value as Json};

/// One data field of a switch event. Every field is text.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub required: bool,
    pub summary: &'static str,
    /// The only values it may have, when the catalog says.
    pub values: Option<&'static [&'static str]>,
}

/// One event of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec {
    /// `<entity>.event.<what>`, like the client's events.
    pub name: &'static str,
    pub summary: &'static str,
    pub fields: &'static [FieldSpec],
    /// For every agent at once (the switch link), rather than for one.
    pub broadcast: bool,
}

impl EventSpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn field(name: &'static str, required: bool, summary: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        required,
        summary,
        values: None,
    }
}

const CHANNEL: FieldSpec = field("channel", true, "id of the channel (its media name)");

/// Agent states a switch reports on a channel, CSTA names where one exists.
pub const AGENT_STATES: &[&str] = &[
    "LoggedOff",
    "NotReady",
    "Ready",
    "Reserved",
    "Talking",
    "WorkingAfterCall",
];

/// The full catalog, in documentation order.
pub const EVENTS: &[EventSpec] = &[
    EventSpec {
        name: "agent.event.loggedOut",
        summary: "The switch logged the agent out: a supervisor, its own inactivity \
                  timeout, a pending logout that completed, or the confirmation of a \
                  logout HIS requested.",
        fields: &[
            field("reason", false, "the logout reason the switch recorded"),
            field(
                "cause",
                false,
                "why: `requested`, `supervisor`, `timeout`, `pending` or `system`",
            ),
        ],
        broadcast: false,
    },
    EventSpec {
        name: "agent.event.logoutPending",
        summary: "The switch accepted a logout that takes effect when the agent's \
                  interactions end (Avaya's pending logout).",
        fields: &[field("reason", false, "the logout reason given")],
        broadcast: false,
    },
    EventSpec {
        name: "agent.event.stateChanged",
        summary: "The agent's state on a channel changed at the switch: Ready, \
                  NotReady, Reserved (offered work), Talking, WorkingAfterCall or \
                  LoggedOff.",
        fields: &[
            CHANNEL,
            FieldSpec {
                values: Some(AGENT_STATES),
                ..field("state", true, "the new agent state (CSTA name)")
            },
            field("reason", false, "the reason code the switch recorded"),
        ],
        broadcast: false,
    },
    EventSpec {
        name: "agent.event.channelActivated",
        summary: "The switch routes work on the channel again.",
        fields: &[CHANNEL],
        broadcast: false,
    },
    EventSpec {
        name: "agent.event.channelDeactivated",
        summary: "The switch routes no new work on the channel.",
        fields: &[CHANNEL],
        broadcast: false,
    },
    EventSpec {
        name: "interaction.event.started",
        summary: "An interaction (call, email, chat) started on one of the agent's channels.",
        fields: &[CHANNEL, field("interaction", true, "id of the interaction")],
        broadcast: false,
    },
    EventSpec {
        name: "interaction.event.ended",
        summary: "An interaction ended.",
        fields: &[CHANNEL, field("interaction", true, "id of the interaction")],
        broadcast: false,
    },
    EventSpec {
        name: "link.event.down",
        summary: "HIS lost its link to the switch: operations fail until it is back.",
        fields: &[field(
            "reason",
            false,
            "what the adapter knows of the cause",
        )],
        broadcast: true,
    },
    EventSpec {
        name: "link.event.up",
        summary: "The link to the switch is back.",
        fields: &[],
        broadcast: true,
    },
];

/// Looks an event up by name.
pub fn event(name: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.name == name)
}

/// Every field name any event has, for checking `event.<field>` where the
/// event is not known statically.
pub fn all_fields() -> Vec<&'static str> {
    let mut out: Vec<&str> = EVENTS
        .iter()
        .flat_map(|e| e.fields.iter().map(|f| f.name))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// One event a switch delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchEvent {
    /// The agent it concerns; `None` for every agent (the switch link).
    pub agent: Option<String>,
    pub name: String,
    /// The event's fields, as the catalog lists them.
    pub data: Map<String, Json>,
}

impl SwitchEvent {
    pub fn new(agent: Option<&str>, name: &str, data: Json) -> Self {
        SwitchEvent {
            agent: agent.map(str::to_string),
            name: name.to_string(),
            data: match data {
                Json::Object(m) => m,
                _ => Map::new(),
            },
        }
    }

    /// A field as text, when it is.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.data.get(field).and_then(Json::as_str)
    }

    /// The event's spec, if the data fits the catalog: a known name, every
    /// required field present, every field known and text.
    pub fn check(&self) -> Result<&'static EventSpec, BadEvent> {
        let spec = event(&self.name).ok_or_else(|| BadEvent::unknown(&self.name))?;
        for (k, v) in &self.data {
            let Some(f) = spec.field(k) else {
                return Err(BadEvent(format!("`{}` has no field `{k}`", self.name)));
            };
            if !(v.is_string() || v.is_null()) {
                return Err(BadEvent(format!(
                    "field `{k}` of `{}` must be text, not {v}",
                    self.name
                )));
            }
            if let (Some(values), Some(v)) = (f.values, v.as_str())
                && !values.contains(&v)
            {
                return Err(BadEvent(format!(
                    "`{v}` is not a value of field `{k}` of `{}`: {}",
                    self.name,
                    values.join(", ")
                )));
            }
        }
        for f in spec.fields.iter().filter(|f| f.required) {
            // A null is no value: a `channel: null` must not read as "every
            // channel".
            if self.text(f.name).is_none() {
                return Err(BadEvent(format!(
                    "`{}` lacks its required field `{}`",
                    self.name, f.name
                )));
            }
        }
        if spec.broadcast != self.agent.is_none() {
            return Err(BadEvent(format!(
                "`{}` is {}",
                self.name,
                if spec.broadcast {
                    "for every agent, not one"
                } else {
                    "for one agent, and names none"
                }
            )));
        }
        Ok(spec)
    }
}

/// Why HIS refused a switch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent(pub String);

impl BadEvent {
    fn unknown(name: &str) -> Self {
        BadEvent(format!("`{name}` is not a switch event of the catalog"))
    }
}

impl fmt::Display for BadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an adapter delivers its events. Delivering never blocks and never
/// fails: HIS queues the event for its session, or logs why it dropped it.
#[derive(Clone)]
pub struct EventSink(Arc<dyn Fn(SwitchEvent) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(SwitchEvent) + Send + Sync + 'static) -> Self {
        EventSink(Arc::new(f))
    }

    /// A sink that drops everything: for an adapter nobody listens to.
    pub fn none() -> Self {
        EventSink::new(|_| {})
    }

    pub fn deliver(&self, event: SwitchEvent) {
        (self.0)(event)
    }
}

impl fmt::Debug for EventSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventSink")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_names_are_unique_and_follow_the_naming_rule() {
        for (i, e) in EVENTS.iter().enumerate() {
            assert!(
                crate::workflow::vocab::is_event_name(e.name),
                "{} breaks <entity>.event.<what>",
                e.name
            );
            assert!(
                EVENTS[i + 1..].iter().all(|o| o.name != e.name),
                "{}",
                e.name
            );
        }
    }

    #[test]
    fn data_is_checked_against_the_catalog() {
        let ok = SwitchEvent::new(
            Some("a"),
            "agent.event.stateChanged",
            json!({"channel": "voice", "state": "Talking"}),
        );
        assert!(ok.check().is_ok());
        let missing = SwitchEvent::new(
            Some("a"),
            "agent.event.stateChanged",
            json!({"channel": "voice"}),
        );
        assert!(missing.check().unwrap_err().0.contains("`state`"));
        let null = SwitchEvent::new(
            Some("a"),
            "agent.event.stateChanged",
            json!({"channel": null, "state": "Talking"}),
        );
        assert!(null.check().unwrap_err().0.contains("`channel`"));
        let unknown_state = SwitchEvent::new(
            Some("a"),
            "agent.event.stateChanged",
            json!({"channel": "voice", "state": "Busy"}),
        );
        assert!(unknown_state.check().unwrap_err().0.contains("`Busy`"));
        let typed = SwitchEvent::new(
            Some("a"),
            "interaction.event.started",
            json!({"channel": "voice", "interaction": 7}),
        );
        assert!(typed.check().unwrap_err().0.contains("must be text"));
        let extra = SwitchEvent::new(Some("a"), "link.event.up", json!({}));
        assert!(extra.check().is_err(), "link events are for every agent");
        assert!(
            SwitchEvent::new(None, "link.event.up", json!({}))
                .check()
                .is_ok()
        );
        assert!(
            SwitchEvent::new(Some("a"), "agent.event.lunch", json!({}))
                .check()
                .is_err()
        );
    }
}
