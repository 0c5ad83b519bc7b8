//! The session data a workflow reads (`session.*`) and HIS operations change.

use std::borrow::Cow;

use cel::common::value::Val;
use serde::{Deserialize, Serialize};

use crate::workflow::native::{Items, Object, V};
use crate::workflow::record::{SharedList, texts};

/// An agent's session: its channel group's channels and the reasons collected
/// at login. HIS owns one per logged-in agent; the engine borrows it for the
/// length of a request.
// Defaults for what a record written by an earlier hisflow lacks: a field
// added here must not make a kept session unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    pub id: String,
    pub agent: String,
    /// The session machine's state; `None` on a platform without one.
    pub state: Option<Cow<'static, str>>,
    pub channels: Vec<Channel>,
    pub logout_reasons: Vec<String>,
    pub not_ready_reasons: Vec<String>,
    /// The channel group exists (created at login, disposed at logout).
    pub group: bool,
    /// `his.session.dispose` ran: HIS drops the session after the response.
    pub disposed: bool,
}

/// One channel of the session; its id is its media. Its words are lent
/// for the process's life where they can be (a media, a machine's state):
/// copying a channel, as a foreach does, copies no text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: Cow<'static, str>,
    pub media: Cow<'static, str>,
    /// The agent's state on the channel: the channel machine's state
    /// (`LoggedOff`, `NotReady`, `Ready`, `Reserved`, `Talking`, …).
    pub state: Cow<'static, str>,
    pub active: bool,
    pub interactions: Vec<Interaction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub id: String,
    pub media: String,
}

impl Session {
    pub fn new(id: impl Into<String>, agent: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            agent: agent.into(),
            ..Self::default()
        }
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    pub fn channel_mut(&mut self, id: &str) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }
}

/// Expressions read the session in place (`session.*`): only the fields
/// below, as the CEL value [`Object::to_val`] builds has them.
impl Object for Session {
    fn names(&self) -> &'static [&'static str] {
        &[
            "id",
            "agent",
            "state",
            "channels",
            "logout_reasons",
            "not_ready_reasons",
        ]
    }

    fn field(&self, name: &str) -> Option<V<'_>> {
        Some(match name {
            "id" => V::Str(&self.id),
            "agent" => V::Str(&self.agent),
            "state" => self.state.as_deref().map_or(V::Null, V::Str),
            "channels" => V::Items(&self.channels),
            "logout_reasons" => V::Items(&self.logout_reasons),
            "not_ready_reasons" => V::Items(&self.not_ready_reasons),
            _ => return None,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Object for Channel {
    fn names(&self) -> &'static [&'static str] {
        &["id", "media", "state", "active", "interactions"]
    }

    fn field(&self, name: &str) -> Option<V<'_>> {
        Some(match name {
            "id" => V::Str(&self.id),
            "media" => V::Str(&self.media),
            "state" => V::Str(&self.state),
            "active" => V::Bool(self.active),
            "interactions" => V::Items(&self.interactions),
            _ => return None,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl Object for Interaction {
    fn names(&self) -> &'static [&'static str] {
        &["id", "media"]
    }

    fn field(&self, name: &str) -> Option<V<'_>> {
        Some(match name {
            "id" => V::Str(&self.id),
            "media" => V::Str(&self.media),
            _ => return None,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl<T: Object> Items for Vec<T> {
    fn len(&self) -> usize {
        self.len()
    }

    fn get(&self, i: usize) -> V<'_> {
        V::Obj(&self[i])
    }

    fn to_val(&self) -> Box<dyn Val> {
        Box::new(SharedList::new(self.iter().map(Object::to_val).collect()))
    }
}

impl Items for Vec<String> {
    fn len(&self) -> usize {
        self.len()
    }

    fn get(&self, i: usize) -> V<'_> {
        V::Str(&self[i])
    }

    fn to_val(&self) -> Box<dyn Val> {
        Box::new(texts(self))
    }
}
