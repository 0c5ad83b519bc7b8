//! What the adapter remembers of each agent between operations and events:
//! the Worker, the Activity, the work on each channel, and the change HIS
//! asked for last. TaskRouter's Activity is the Worker's, for every channel;
//! its reservations are per channel. The catalog's agent states are per
//! channel: a channel offered or handling work is Reserved, Talking or
//! WorkingAfterCall whatever the Activity, and the others follow it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::platform::events::SwitchEvent;
use serde_json::json;

/// A change HIS asked TaskRouter for, to tell its event from one a
/// supervisor made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Login,
    Ready,
    NotReady,
    Logout,
}

/// How long a change HIS asked for waits for its event.
const ASKED_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Channel {
    /// Reservations offered, not yet answered.
    pub offers: BTreeSet<String>,
    /// Tasks accepted: the interactions.
    pub tasks: BTreeSet<String>,
    /// Tasks in wrap-up.
    pub wrapping: BTreeSet<String>,
}

impl Channel {
    /// The state work puts the channel in, if any.
    fn busy(&self) -> Option<&'static str> {
        if !self.tasks.is_empty() {
            Some("Talking")
        } else if !self.wrapping.is_empty() {
            Some("WorkingAfterCall")
        } else if !self.offers.is_empty() {
            Some("Reserved")
        } else {
            None
        }
    }
}

#[derive(Debug)]
pub struct Agent {
    pub worker: String,
    /// The Activity's SID and whether it is available, as last heard.
    pub activity: Option<(String, bool, String)>,
    /// Channels HIS logged the agent in on, by medium.
    pub channels: BTreeMap<String, Channel>,
    /// The change asked for, its Activity and when.
    pub asked: Option<(Asked, String, Instant)>,
    /// Counts the events applied: a reading of the switch that spans
    /// events keeps what they said rather than its older picture.
    pub epoch: u64,
    /// When the Activity last heard of was set (TaskRouter's `TimestampMs`):
    /// an older event that arrives late does not undo a newer one.
    pub activity_at: Option<u64>,
}

impl Agent {
    fn new(worker: String) -> Self {
        Agent {
            worker,
            activity: None,
            channels: BTreeMap::new(),
            asked: None,
            epoch: 0,
            activity_at: None,
        }
    }

    /// The state of a channel with no work: the Activity's.
    fn idle_state(&self) -> &'static str {
        match &self.activity {
            Some((_, true, _)) => "Ready",
            _ => "NotReady",
        }
    }

    /// The state `media` is in, as the adapter knows it.
    pub fn state_of(&self, media: &str) -> &'static str {
        self.channels
            .get(media)
            .and_then(Channel::busy)
            .unwrap_or_else(|| self.idle_state())
    }

    /// The change asked for that the Activity `sid` fulfils, taken.
    pub fn take_asked(&mut self, sid: &str) -> Option<Asked> {
        match &self.asked {
            Some((what, target, at)) if target == sid && at.elapsed() < ASKED_FOR => {
                let what = what.clone();
                self.asked = None;
                Some(what)
            }
            _ => None,
        }
    }

    /// The channel `media` an event speaks of, the event counted (see
    /// [`Agent::epoch`]); `None` when HIS did not log the agent in on it.
    pub fn heard_on(&mut self, media: &str) -> Option<&mut Channel> {
        self.epoch += 1;
        self.channels.get_mut(media)
    }

    /// The reason a channel in the Activity's state carries: an
    /// unavailable Activity's name.
    pub fn reason(&self) -> Option<&str> {
        match &self.activity {
            Some((_, false, name)) => Some(name),
            _ => None,
        }
    }

    /// The Activity changed: every channel (or `only` that one) takes it,
    /// but those offered or handling work, which keep it — as the
    /// simulated switch does for an agent-wide change. A channel in
    /// wrap-up leaves it. The `stateChanged` of each.
    pub fn follow_activity(&mut self, agent: &str, only: Option<&str>) -> Vec<SwitchEvent> {
        let state = self.idle_state();
        let reason = self.reason().map(str::to_string);
        self.channels
            .iter_mut()
            .filter(|(m, c)| {
                only.is_none_or(|o| o == *m) && c.offers.is_empty() && c.tasks.is_empty()
            })
            .map(|(m, c)| {
                c.wrapping.clear();
                state_changed(agent, m, state, reason.as_deref())
            })
            .collect()
    }
}

pub fn state_changed(agent: &str, media: &str, state: &str, reason: Option<&str>) -> SwitchEvent {
    SwitchEvent::new(
        Some(agent),
        "agent.event.stateChanged",
        json!({ "channel": media, "state": state, "reason": reason }),
    )
}

/// Every agent the adapter has met.
#[derive(Debug, Default)]
pub struct Agents {
    by_agent: HashMap<String, Agent>,
    by_worker: HashMap<String, String>,
    /// Each task HIS heard of: its agent and medium.
    tasks: HashMap<String, (String, String)>,
}

impl Agents {
    pub fn worker_of(&self, agent: &str) -> Option<&str> {
        self.by_agent.get(agent).map(|a| a.worker.as_str())
    }

    pub fn agent_of_worker(&self, worker: &str) -> Option<&str> {
        self.by_worker.get(worker).map(String::as_str)
    }

    /// The agent's record, made for `worker` when new.
    pub fn meet(&mut self, agent: &str, worker: &str) -> &mut Agent {
        self.by_worker.insert(worker.to_string(), agent.to_string());
        let a = self
            .by_agent
            .entry(agent.to_string())
            .or_insert_with(|| Agent::new(worker.to_string()));
        if a.worker != worker {
            // The Worker was replaced at TaskRouter: nothing of the old one holds.
            *a = Agent::new(worker.to_string());
        }
        a
    }

    pub fn get_mut(&mut self, agent: &str) -> Option<&mut Agent> {
        self.by_agent.get_mut(agent)
    }

    pub fn get(&self, agent: &str) -> Option<&Agent> {
        self.by_agent.get(agent)
    }

    pub fn note_task(&mut self, task: &str, agent: &str, media: &str) {
        // Bounded: a task is forgotten when it ends; a Workspace whose end
        // events never come must not grow this forever.
        if self.tasks.len() >= 100_000 {
            self.tasks.clear();
        }
        self.tasks
            .insert(task.to_string(), (agent.to_string(), media.to_string()));
    }

    pub fn task(&self, task: &str) -> Option<(String, String)> {
        self.tasks.get(task).cloned()
    }

    pub fn forget_task(&mut self, task: &str) {
        self.tasks.remove(task);
    }

    /// The agent logged out: its channels' work is no longer HIS's.
    pub fn logged_out(&mut self, agent: &str) {
        if let Some(a) = self.by_agent.get_mut(agent) {
            for c in a.channels.values() {
                for t in c.tasks.iter().chain(&c.wrapping) {
                    self.tasks.remove(t);
                }
            }
            a.channels.clear();
            a.asked = None;
        }
    }
}
