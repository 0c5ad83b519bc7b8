//! The simulated switch: in memory and deterministic, with fault and latency
//! injection, and a state tests inspect after a run to assert a use case's
//! post-conditions on the switch itself. It sends switch events for what it
//! does on its own (interactions, state changes, forced and pending logouts,
//! its link), and can confirm operations by a later event instead of its
//! reply, as Finesse and CSTA switches do.

mod controls;
pub mod remote;
pub mod wire;

pub use controls::{CONTROLS, MAX_FAULTS, PREFIX};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::adapter::{
    Adapter, ChannelReport, Controls, OpOutcome, OpResult, Operation, Reply, SwitchError,
};
use super::events::{EventSink, SwitchEvent};

/// An agent's state on one channel, with CSTA names.
pub const LOGGED_OFF: &str = "LoggedOff";
pub const NOT_READY: &str = "NotReady";
pub const READY: &str = "Ready";
pub const RESERVED: &str = "Reserved";
pub const TALKING: &str = "Talking";

/// The switch as the simulator holds it, and how it behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchState {
    /// Agents by id.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentState>,
    /// Reason codes by category (`logout`, `not_ready`).
    #[serde(default)]
    pub reason_codes: BTreeMap<String, Vec<String>>,
    /// False while the link is down (a `disconnect` fault, `linkDown`):
    /// every call then fails.
    #[serde(default = "yes")]
    pub connected: bool,
    /// Operations the switch confirms by a later event instead of by its
    /// reply, with the delay (`agent.logout: 500ms`): the reply then only
    /// says the request was accepted, and the change happens, with its
    /// event, after the delay — as Finesse answers 202 and confirms over
    /// XMPP.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub confirm: BTreeMap<String, String>,
    /// A logout while an interaction is in progress is accepted and takes
    /// effect when the agent's interactions end (Avaya's pending logout),
    /// instead of being refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_logout: bool,
    /// A Not Ready reason must be one of its `not_ready` codes, as
    /// Finesse's CTI server requires; otherwise any reason is taken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_not_ready: bool,
    /// Any logout reason is taken, configured or not (T-Server's
    /// `ReasonCode` extension is free text); otherwise a reason must be one
    /// of its `logout` codes when it has some.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free_logout_reasons: bool,
}

impl SwitchState {
    /// What serde cannot see: `confirm` names switch operations that answer
    /// with no data, each with a duration. An error names the keys down to
    /// the wrong entry.
    pub fn check(&self) -> Result<(), (Vec<String>, String)> {
        self.confirm.iter().try_for_each(|(op, delay)| {
            confirm_entry(op, delay).map_err(|m| (vec!["confirm".to_string(), op.clone()], m))
        })
    }
}

/// `over` laid over `under`: mappings merge key by key, at every depth;
/// anything else in `over` replaces what `under` has. A scenario's `switch:`
/// is laid over its platform's `adapter.switch:` this way.
pub fn layered(under: Option<&serde_json::Value>, over: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (under, over) {
        (Some(Value::Object(u)), Value::Object(o)) => {
            let mut out = u.clone();
            for (k, v) in o {
                let merged = layered(out.get(&k), v);
                out.insert(k, merged);
            }
            Value::Object(out)
        }
        (_, over) => over,
    }
}

/// One entry of `confirm:`, checked: a switch operation that answers with
/// no data, and a duration.
pub fn confirm_entry(op: &str, delay: &str) -> Result<(), String> {
    let confirmable = || {
        super::catalog::switch_operations()
            .filter(|o| o.result.is_none())
            .map(|o| o.name)
    };
    match super::catalog::switch_operation(op) {
        Some(o) if o.result.is_none() => {}
        Some(_) => {
            return Err(format!(
                "`confirm: {op}`: `{op}` answers with data, so its reply is its confirmation"
            ));
        }
        None => {
            return Err(format!(
                "`confirm: {op}`: `{op}` is not a switch operation; {}",
                crate::workflow::diagnostic::did_you_mean(op, confirmable()).unwrap_or_else(|| {
                    format!(
                        "operations: {}",
                        confirmable().collect::<Vec<_>>().join(", ")
                    )
                })
            ));
        }
    }
    if crate::workflow::validate::parse_duration(delay).is_none() {
        return Err(format!(
            "`confirm: {op}: {delay}`: `{delay}` is not a duration (e.g. `500ms`, `2s`)"
        ));
    }
    Ok(())
}

impl Default for SwitchState {
    fn default() -> Self {
        Self {
            agents: BTreeMap::new(),
            reason_codes: BTreeMap::new(),
            connected: true,
            confirm: BTreeMap::new(),
            pending_logout: false,
            strict_not_ready: false,
            free_logout_reasons: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentState {
    #[serde(default)]
    pub logged_in: bool,
    /// Channels by id (the media name).
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelState>,
    /// The reason the last logout gave the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_reason: Option<String>,
    /// The reason the last Not Ready gave the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready_reason: Option<String>,
    /// A logout was accepted and waits for the interactions to end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub logout_pending: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelState {
    pub state: String,
    #[serde(default = "yes")]
    pub active: bool,
    /// Ids of the interactions in progress (calls, emails, chats).
    #[serde(default)]
    pub interactions: Vec<String>,
}

impl Default for ChannelState {
    fn default() -> Self {
        Self {
            state: NOT_READY.to_string(),
            active: true,
            interactions: Vec::new(),
        }
    }
}

/// A fault to inject: the matching call of an operation fails, never
/// answers, or takes the switch down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The operation, by catalog name (`agent.set_not_ready`).
    pub op: String,
    /// Only calls for this agent; every agent's when absent. A fault a
    /// client arms is for its own agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Only calls on this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Only the n-th matching call after the fault is injected (1-based);
    /// every matching call when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u32>,
    pub effect: FaultEffect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultEffect {
    /// The switch refuses with this code and message.
    Error { code: String, message: String },
    /// The switch never answers.
    Timeout,
    /// The switch goes away: this and every later call fails.
    Disconnect,
}

/// How many calls the switch remembers: a server runs for long.
pub const MAX_CALLS: usize = 10_000;

/// Agents' latencies the switch holds at most (clients set them, one per
/// agent and operation).
pub const MAX_LATENCIES: usize = 1_000;

/// One call the switch received, for traces and assertions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub agent: String,
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub outcome: Cow<'static, str>,
}

#[derive(Debug, Default)]
struct Inner {
    state: SwitchState,
    /// Faults with the number of matching calls each has seen.
    faults: Vec<(Fault, u32)>,
    latency: BTreeMap<String, Duration>,
    /// Latency one agent's calls have, over `latency` (a client's control).
    agent_latency: BTreeMap<(String, String), Duration>,
    /// The last [`MAX_CALLS`] calls.
    calls: std::collections::VecDeque<Call>,
    /// Everyone who subscribed: several HIS nodes may drive one switch, and
    /// each hears what it does.
    sinks: Vec<EventSink>,
    /// For interaction ids the caller does not give.
    counter: u64,
    /// Accepted operations whose confirmation is still due, in the order
    /// they came.
    inflight: Vec<Inflight>,
    /// Whether agents that logged out are forgotten ([`SimSwitch::forgetful`]).
    forgetful: bool,
    /// The agents the switch was described with, never forgotten.
    configured: std::collections::BTreeSet<String>,
}

/// An operation the switch accepted and confirms later.
#[derive(Debug)]
struct Inflight {
    id: u64,
    agent: String,
    op: Operation,
}

/// The simulated switch.
#[derive(Debug, Default)]
pub struct SimSwitch {
    inner: Arc<Mutex<Inner>>,
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // The state is plain data: a panic elsewhere cannot leave it torn.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the switch and delivers the events it produced before the
/// lock is released: two threads changing the switch at once deliver their
/// events in the order the switch changed. (HIS's sink only queues them, and
/// never calls the switch back.)
fn with<R>(inner: &Mutex<Inner>, f: impl FnOnce(&mut Inner, &mut Vec<SwitchEvent>) -> R) -> R {
    let mut events = Vec::new();
    let mut guard = lock(inner);
    let r = f(&mut guard, &mut events);
    // While the link is down the switch goes on, but HIS hears nothing of
    // an agent; it reads the states again when the link is back.
    if !guard.state.connected {
        events.retain(|e| e.agent.is_none());
    }
    for e in events {
        for sink in &guard.sinks {
            sink.deliver(e.clone());
        }
    }
    r
}

fn event(agent: &str, name: &str, data: serde_json::Value) -> SwitchEvent {
    SwitchEvent::new(Some(agent), name, data)
}

impl SimSwitch {
    pub fn new(state: SwitchState) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                configured: state.agents.keys().cloned().collect(),
                state,
                ..Inner::default()
            })),
        }
    }

    /// The switch a server runs: an agent that logged out, and that the
    /// switch was not described with, is forgotten, as if it had never
    /// logged in. Scenarios keep every agent, to assert on.
    pub fn forgetful(self) -> Self {
        self.lock().forgetful = true;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner, &mut Vec<SwitchEvent>) -> R) -> R {
        with(&self.inner, f)
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push((fault, 0));
    }

    /// Every call of `op` answers after `delay`.
    pub fn set_latency(&self, op: &str, delay: Duration) {
        self.lock().latency.insert(op.to_string(), delay);
    }

    /// `agent`'s calls of `op` answer after `delay`; false when the switch
    /// holds [`MAX_LATENCIES`] such latencies of other kinds already.
    pub fn set_agent_latency(&self, agent: &str, op: &str, delay: Duration) -> bool {
        let mut inner = self.lock();
        let key = (agent.to_string(), op.to_string());
        if inner.agent_latency.len() >= MAX_LATENCIES && !inner.agent_latency.contains_key(&key) {
            return false;
        }
        inner.agent_latency.insert(key, delay);
        true
    }

    /// The faults armed for `agent` alone.
    pub fn faults_of(&self, agent: &str) -> Vec<Fault> {
        self.lock()
            .faults
            .iter()
            .filter(|(f, _)| f.agent.as_deref() == Some(agent))
            .map(|(f, _)| f.clone())
            .collect()
    }

    /// Disarms the faults armed for `agent` alone; how many there were.
    pub fn clear_faults(&self, agent: &str) -> usize {
        let mut inner = self.lock();
        let before = inner.faults.len();
        inner
            .faults
            .retain(|(f, _)| f.agent.as_deref() != Some(agent));
        before - inner.faults.len()
    }

    /// From now on `op` is confirmed by an event `delay` after its reply;
    /// `None` makes its reply the confirmation again.
    pub fn set_confirm(&self, op: &str, delay: Option<Duration>) {
        let mut inner = self.lock();
        match delay {
            Some(d) => inner
                .state
                .confirm
                .insert(op.to_string(), format!("{}ms", d.as_millis())),
            None => inner.state.confirm.remove(op),
        };
    }

    /// The switch as it is now.
    pub fn state(&self) -> SwitchState {
        self.lock().state.clone()
    }

    /// The calls received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.iter().cloned().collect()
    }

    /// Delivers an event as if the switch sent it, without changing the
    /// switch: a scenario playing a switch event by hand.
    pub fn emit(&self, event: SwitchEvent) {
        self.with(|_, events| events.push(event));
    }

    /// Starts an interaction (a call, email or chat) on an agent's channel.
    pub fn start_interaction(
        &self,
        agent: &str,
        channel: &str,
        id: &str,
    ) -> Result<(), SwitchError> {
        self.with(|inner, events| {
            let ch = channel_mut(&mut inner.state, agent, channel)?;
            ch.interactions.push(id.to_string());
            events.push(event(
                agent,
                "interaction.event.started",
                json!({ "channel": channel, "interaction": id }),
            ));
            Ok(())
        })
    }

    /// Ends an interaction; `None` ends all of the channel's. When the last
    /// interaction of an agent with a pending logout ends, the logout
    /// happens.
    pub fn end_interaction(
        &self,
        agent: &str,
        channel: &str,
        id: Option<&str>,
    ) -> Result<(), SwitchError> {
        self.with(|inner, events| {
            let ch = channel_mut(&mut inner.state, agent, channel)?;
            let ended: Vec<String> = match id {
                Some(id) => {
                    let ended = ch
                        .interactions
                        .iter()
                        .filter(|i| *i == id)
                        .cloned()
                        .collect();
                    ch.interactions.retain(|i| i != id);
                    ended
                }
                None => std::mem::take(&mut ch.interactions),
            };
            for i in ended {
                events.push(event(
                    agent,
                    "interaction.event.ended",
                    json!({ "channel": channel, "interaction": i }),
                ));
            }
            let a = inner.state.agents.get_mut(agent).expect("checked above");
            let idle = a.channels.values().all(|c| c.interactions.is_empty());
            if a.logout_pending && idle {
                a.logout_pending = false;
                log_out(a);
                events.push(event(
                    agent,
                    "agent.event.loggedOut",
                    json!({ "reason": a.logout_reason, "cause": "pending" }),
                ));
                inner.forget_if_gone(agent);
            }
            Ok(())
        })
    }

    /// The switch puts the agent in `state` on a channel by itself (a call
    /// offered: Reserved; answered: Talking).
    pub fn set_state(
        &self,
        agent: &str,
        channel: &str,
        state: &str,
        reason: Option<&str>,
    ) -> Result<(), SwitchError> {
        if !super::events::AGENT_STATES.contains(&state) {
            return Err(SwitchError::new(
                "InvalidRequest",
                format!(
                    "`{state}` is not an agent state; states: {}",
                    super::events::AGENT_STATES.join(", ")
                ),
            ));
        }
        self.with(|inner, events| {
            let ch = channel_mut(&mut inner.state, agent, channel)?;
            if ch.state != state {
                ch.state = state.to_string();
                events.push(event(
                    agent,
                    "agent.event.stateChanged",
                    json!({ "channel": channel, "state": state, "reason": reason }),
                ));
            }
            Ok(())
        })
    }

    /// The switch activates or deactivates a channel by itself.
    pub fn set_active(&self, agent: &str, channel: &str, active: bool) -> Result<(), SwitchError> {
        self.with(|inner, events| {
            let ch = channel_mut(&mut inner.state, agent, channel)?;
            if ch.active != active {
                ch.active = active;
                let name = if active {
                    "agent.event.channelActivated"
                } else {
                    "agent.event.channelDeactivated"
                };
                events.push(event(agent, name, json!({ "channel": channel })));
            }
            Ok(())
        })
    }

    /// The switch logs the agent out by itself: a supervisor, its
    /// inactivity timeout.
    pub fn force_logout(
        &self,
        agent: &str,
        reason: Option<&str>,
        cause: &str,
    ) -> Result<(), SwitchError> {
        self.with(|inner, events| {
            let a = logged_in_mut(&mut inner.state, agent)?;
            a.logout_reason = reason.map(str::to_string);
            a.logout_pending = false;
            log_out(a);
            events.push(event(
                agent,
                "agent.event.loggedOut",
                json!({ "reason": reason, "cause": cause }),
            ));
            inner.forget_if_gone(agent);
            Ok(())
        })
    }

    /// The link to the switch drops or comes back; every agent hears it.
    pub fn set_link(&self, up: bool, reason: Option<&str>) {
        self.with(|inner, events| {
            if inner.state.connected == up {
                return;
            }
            inner.state.connected = up;
            events.push(if up {
                SwitchEvent::new(None, "link.event.up", json!({}))
            } else {
                SwitchEvent::new(None, "link.event.down", json!({ "reason": reason }))
            });
        })
    }
}

fn log_out(a: &mut AgentState) {
    a.logged_in = false;
    for ch in a.channels.values_mut() {
        ch.state = LOGGED_OFF.to_string();
    }
}

fn logged_in_mut<'a>(
    state: &'a mut SwitchState,
    agent: &str,
) -> Result<&'a mut AgentState, SwitchError> {
    state
        .agents
        .get_mut(agent)
        .filter(|a| a.logged_in)
        .ok_or_else(|| {
            SwitchError::new(
                "AgentNotLoggedIn",
                format!("agent {agent} is not logged in"),
            )
        })
}

/// Why the switch refuses the reason `op` gives, if it does: a logout reason
/// or (on a strict switch) a Not Ready reason that is not among its codes.
fn reason_refused(state: &SwitchState, op: &Operation) -> Option<SwitchError> {
    let (category, reason, enforced, what) = match op {
        Operation::Logout { reason } => (
            "logout",
            reason,
            !state.free_logout_reasons,
            "a logout reason",
        ),
        Operation::SetNotReady { reason, .. } => (
            "not_ready",
            reason,
            state.strict_not_ready,
            "a Not Ready reason",
        ),
        _ => return None,
    };
    let codes = state.reason_codes.get(category)?;
    let r = reason.as_ref()?;
    (enforced && !codes.is_empty() && !codes.contains(r))
        .then(|| SwitchError::new("ReasonCodeOutOfRange", format!("{r} is not {what}")))
}

/// The channels an operation for `channel`, or for all of the agent's
/// (those logged in), acts on.
fn targets(
    state: &mut SwitchState,
    agent: &str,
    channel: &Option<String>,
) -> Result<Vec<String>, SwitchError> {
    let a = logged_in_mut(state, agent)?;
    Ok(match channel {
        Some(c) => vec![c.clone()],
        None => a
            .channels
            .iter()
            .filter(|(_, c)| c.state != LOGGED_OFF)
            .map(|(id, _)| id.clone())
            .collect(),
    })
}

fn channel_mut<'a>(
    state: &'a mut SwitchState,
    agent: &str,
    channel: &str,
) -> Result<&'a mut ChannelState, SwitchError> {
    logged_in_mut(state, agent)?
        .channels
        .get_mut(channel)
        .ok_or_else(|| {
            SwitchError::new(
                "AgentNotLoggedIn",
                format!("agent {agent} is not logged in on {channel}"),
            )
        })
}

/// The events by which the switch confirms `op` once it took effect on
/// `switch`: one per channel it changed.
fn confirmation(switch: &SwitchState, agent: &str, op: &Operation) -> Vec<SwitchEvent> {
    let state = |channel: &str, state: &str, reason: &Option<String>| {
        event(
            agent,
            "agent.event.stateChanged",
            json!({ "channel": channel, "state": state, "reason": reason }),
        )
    };
    // The channels an operation for `channel` (or for all) put in `target`.
    let changed = |channel: &Option<String>, target: &str, reason: &Option<String>| {
        let channels = switch.agents.get(agent).map(|a| &a.channels);
        channels
            .into_iter()
            .flatten()
            .filter(|(id, c)| channel.as_ref().is_none_or(|ch| ch == *id) && c.state == target)
            .map(|(id, _)| state(id, target, reason))
            .collect()
    };
    match op {
        // The state the agent is in: NotReady, or what a login found.
        Operation::Login { channel } => vec![state(
            channel,
            switch
                .agents
                .get(agent)
                .and_then(|a| a.channels.get(channel))
                .map_or(NOT_READY, |c| &c.state),
            &None,
        )],
        Operation::Logout { reason } => vec![event(
            agent,
            "agent.event.loggedOut",
            json!({ "reason": reason, "cause": "requested" }),
        )],
        Operation::SetReady { channel } => changed(channel, READY, &None),
        Operation::SetNotReady {
            channel, reason, ..
        } => changed(channel, NOT_READY, reason),
        Operation::Activate { channel } => vec![event(
            agent,
            "agent.event.channelActivated",
            json!({ "channel": channel }),
        )],
        Operation::Deactivate { channel } => vec![event(
            agent,
            "agent.event.channelDeactivated",
            json!({ "channel": channel }),
        )],
        Operation::ReasonCodes { .. } | Operation::State { .. } => Vec::new(),
    }
}

impl Inner {
    /// The fault this call triggers, if any. Each fault counts the calls
    /// that match it from when it was injected: `call: 2` is the second.
    fn fault(&mut self, agent: &str, op: &Operation) -> Option<FaultEffect> {
        let mut hit = None;
        for (f, seen) in &mut self.faults {
            let matches = f.op == op.name()
                && f.agent.as_deref().is_none_or(|a| a == agent)
                && f.channel.as_deref().is_none_or(|c| Some(c) == op.channel());
            if !matches {
                continue;
            }
            *seen += 1;
            if hit.is_none() && f.call.is_none_or(|k| k == *seen) {
                hit = Some(f.effect.clone());
            }
        }
        hit
    }

    /// How long a call of `agent` to `op` takes.
    fn latency_of(&self, agent: &str, op: &Operation) -> Option<Duration> {
        // Most switches set none per agent: no key is built for them.
        let own = (!self.agent_latency.is_empty())
            .then(|| {
                self.agent_latency
                    .get(&(agent.to_string(), op.name().to_string()))
            })
            .flatten();
        own.or_else(|| self.latency.get(op.name())).copied()
    }

    /// How long after its reply the switch confirms `op`, when it does.
    fn confirm_delay(&self, op: &Operation) -> Option<Duration> {
        let delay = self.state.confirm.get(op.name())?;
        // Reading the switch changes nothing: its answer is the result.
        if matches!(op, Operation::ReasonCodes { .. } | Operation::State { .. }) {
            return None;
        }
        crate::workflow::validate::parse_duration(delay)
    }

    /// Carries out and confirms the agent's accepted operations at once: a
    /// switch handles one agent's requests in order, so the agent's next
    /// request cannot overtake them, nor their events its own.
    fn catch_up(&mut self, agent: &str, events: &mut Vec<SwitchEvent>) {
        let (mine, others): (Vec<Inflight>, Vec<Inflight>) = std::mem::take(&mut self.inflight)
            .into_iter()
            .partition(|f| f.agent == agent);
        self.inflight = others;
        for f in mine {
            self.confirm(f, events);
        }
    }

    /// Carries an accepted operation out and confirms it by its event; if it
    /// fails now (the agent's state changed meanwhile), no event comes, as a
    /// request that failed late.
    fn confirm(&mut self, f: Inflight, events: &mut Vec<SwitchEvent>) {
        match self.carry_out(&f.agent, &f.op, events) {
            // A logout that became pending said so itself.
            Ok(true) => {}
            Ok(false) => events.extend(confirmation(&self.state, &f.agent, &f.op)),
            Err(code) => self.record(&f.agent, &f.op, format!("late error {code}").into()),
        }
    }

    /// Applies an accepted operation: whether it announced itself, or the
    /// error code.
    fn carry_out(
        &mut self,
        agent: &str,
        op: &Operation,
        events: &mut Vec<SwitchEvent>,
    ) -> Result<bool, String> {
        let before = events.len();
        self.apply(agent, op, events)
            .map(|_| events.len() > before)
            .map_err(|e| e.code)
    }

    fn record(&mut self, agent: &str, op: &Operation, outcome: Cow<'static, str>) {
        if self.calls.len() == MAX_CALLS {
            self.calls.pop_front();
        }
        self.calls.push_back(Call {
            agent: agent.to_string(),
            op: op.name(),
            channel: op.channel().map(str::to_string),
            outcome,
        });
    }

    fn apply(&mut self, agent: &str, op: &Operation, events: &mut Vec<SwitchEvent>) -> OpOutcome {
        let out = self.apply_op(agent, op, events);
        if matches!(op, Operation::Logout { .. }) {
            self.forget_if_gone(agent);
        }
        out
    }

    /// A long-running switch forgets an agent that logged out, unless its
    /// configuration describes it: a server's memory stays flat however
    /// many agents come and go. Faults and latencies are bounded apart.
    fn forget_if_gone(&mut self, agent: &str) {
        if !self.forgetful || self.configured.contains(agent) {
            return;
        }
        let gone = self.state.agents.get(agent).is_some_and(|a| {
            !a.logged_in
                && !a.logout_pending
                && a.channels.values().all(|c| c.interactions.is_empty())
        });
        if gone {
            self.state.agents.remove(agent);
        }
    }

    fn apply_op(
        &mut self,
        agent: &str,
        op: &Operation,
        events: &mut Vec<SwitchEvent>,
    ) -> OpOutcome {
        if !self.state.connected {
            return Err(SwitchError::new(
                "SwitchUnavailable",
                "the switch is not connected",
            ));
        }
        let state = &mut self.state;
        match op {
            Operation::Login { channel } => {
                let a = state.agents.entry(agent.to_string()).or_default();
                let fresh = !a.logged_in;
                a.logged_in = true;
                let ch = a.channels.entry(channel.clone()).or_default();
                // A login on a medium makes it routable again, as Genesys's
                // media list and Finesse's sign-in do; an agent logged in on
                // it already (a desktop that crashed) keeps the state the
                // switch has.
                if fresh || ch.state == LOGGED_OFF {
                    ch.state = NOT_READY.to_string();
                    ch.active = true;
                }
                Ok(OpResult::Done)
            }
            Operation::Logout { reason } => {
                let pending_allowed = state.pending_logout;
                let refused = reason_refused(state, op);
                let a = logged_in_mut(state, agent)?;
                let busy = a.channels.iter().find(|(_, c)| !c.interactions.is_empty());
                if let (Some((id, _)), false) = (busy, pending_allowed) {
                    return Err(SwitchError::new(
                        "InvalidState",
                        format!("an interaction is in progress on {id}"),
                    ));
                }
                if let Some(e) = refused {
                    return Err(e);
                }
                if busy.is_some() {
                    a.logout_pending = true;
                    a.logout_reason = reason.clone();
                    events.push(event(
                        agent,
                        "agent.event.logoutPending",
                        json!({ "reason": reason }),
                    ));
                    return Ok(OpResult::Done);
                }
                a.logout_reason = reason.clone();
                log_out(a);
                Ok(OpResult::Done)
            }
            Operation::SetReady { channel } => {
                for id in targets(state, agent, channel)? {
                    let ch = channel_mut(state, agent, &id)?;
                    // Agent-wide, a channel offered or handling work keeps
                    // it: an Activity change does not take a task away.
                    if channel.is_none() && [RESERVED, TALKING].contains(&ch.state.as_str()) {
                        continue;
                    }
                    if !ch.active {
                        // Agent-wide, a deactivated channel stays as it is.
                        if channel.is_none() {
                            continue;
                        }
                        return Err(SwitchError::new(
                            "InvalidState",
                            format!("channel {id} is deactivated"),
                        ));
                    }
                    ch.state = READY.to_string();
                }
                Ok(OpResult::Done)
            }
            Operation::SetNotReady {
                channel,
                reason,
                reject_pending,
            } => {
                // As Finesse's CTI server does: a reason must be one
                // configured.
                if let Some(e) = reason_refused(state, op) {
                    return Err(e);
                }
                for id in targets(state, agent, channel)? {
                    let ch = channel_mut(state, agent, &id)?;
                    // Work on offer stays pending through an agent-wide
                    // change, unless it is rejected; work accepted stays.
                    let rejected = ch.state == RESERVED && *reject_pending;
                    if channel.is_none()
                        && [RESERVED, TALKING].contains(&ch.state.as_str())
                        && !rejected
                    {
                        continue;
                    }
                    ch.state = NOT_READY.to_string();
                }
                if let Some(a) = state.agents.get_mut(agent) {
                    a.not_ready_reason = reason.clone();
                }
                Ok(OpResult::Done)
            }
            Operation::ReasonCodes { category } => Ok(OpResult::List(
                state
                    .reason_codes
                    .get(category)
                    .cloned()
                    .unwrap_or_default(),
            )),
            Operation::Activate { channel } => {
                channel_mut(state, agent, channel)?.active = true;
                Ok(OpResult::Done)
            }
            Operation::Deactivate { channel } => {
                channel_mut(state, agent, channel)?.active = false;
                Ok(OpResult::Done)
            }
            Operation::State { channel } => {
                let on = state
                    .agents
                    .get(agent)
                    .filter(|a| a.logged_in)
                    .and_then(|a| a.channels.get(channel));
                Ok(OpResult::State(match on {
                    Some(ch) => ChannelReport {
                        state: ch.state.clone(),
                        active: ch.active,
                        interactions: ch.interactions.clone(),
                    },
                    None => ChannelReport {
                        state: LOGGED_OFF.to_string(),
                        active: true,
                        interactions: Vec::new(),
                    },
                }))
            }
        }
    }
}

impl Adapter for SimSwitch {
    fn kind(&self) -> &str {
        "sim"
    }

    fn subscribe(&self, events: EventSink) {
        self.lock().sinks.push(events);
    }

    fn controls(&self) -> Option<&dyn Controls> {
        Some(self)
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        let (outcome, latency) = self.with(|inner, events| {
            inner.catch_up(agent, events);
            let fault = inner.fault(agent, op);
            let outcome = match fault {
                None => match inner.confirm_delay(op).filter(|_| inner.state.connected) {
                    // A reason the switch does not take is refused in its
                    // answer, not accepted and dropped (Finesse: 400).
                    Some(_) if reason_refused(&inner.state, op).is_some() => {
                        Err(reason_refused(&inner.state, op).expect("just checked"))
                    }
                    Some(delay) => {
                        inner.record(agent, op, "accepted".into());
                        inner.counter += 1;
                        let f = Inflight {
                            id: inner.counter,
                            agent: agent.to_string(),
                            op: op.clone(),
                        };
                        match tokio::runtime::Handle::try_current() {
                            Ok(rt) => {
                                let (later, id) = (self.inner.clone(), f.id);
                                inner.inflight.push(f);
                                rt.spawn(async move {
                                    tokio::time::sleep(delay).await;
                                    confirm_later(&later, id);
                                });
                            }
                            // Outside a runtime nothing can wait: the change
                            // and its event come at once.
                            Err(_) => inner.confirm(f, events),
                        }
                        return (Some(Ok(OpResult::Done)), inner.latency_of(agent, op));
                    }
                    None => inner.apply(agent, op, events),
                },
                Some(FaultEffect::Error { code, message }) => Err(SwitchError { code, message }),
                Some(FaultEffect::Disconnect) => {
                    inner.state.connected = false;
                    Err(SwitchError::new(
                        "SwitchUnavailable",
                        "the switch disconnected",
                    ))
                }
                Some(FaultEffect::Timeout) => {
                    inner.record(agent, op, "no answer".into());
                    return (None, None);
                }
            };
            let text = match &outcome {
                Ok(_) => Cow::Borrowed("ok"),
                Err(e) => Cow::Owned(format!("error {}", e.code)),
            };
            inner.record(agent, op, text);
            (Some(outcome), inner.latency_of(agent, op))
        });
        match (outcome, latency) {
            (None, _) => Reply::Pending(Box::pin(std::future::pending())),
            (Some(outcome), None) => Reply::Ready(outcome),
            (Some(outcome), Some(delay)) => Reply::Pending(Box::pin(async move {
                tokio::time::sleep(delay).await;
                outcome
            })),
        }
    }
}

/// The switch carries out and confirms the accepted operation `id` — unless
/// the agent's next request did so first.
fn confirm_later(inner: &Mutex<Inner>, id: u64) {
    with(inner, |inner, events| {
        if let Some(i) = inner.inflight.iter().position(|f| f.id == id) {
            let f = inner.inflight.remove(i);
            inner.confirm(f, events);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(r: Reply) -> OpOutcome {
        match r {
            Reply::Ready(o) => o,
            Reply::Pending(_) => panic!("expected a synchronous answer"),
        }
    }

    #[test]
    fn an_agent_wide_not_ready_leaves_offered_work_pending_unless_it_rejects_it() {
        let sim = logged_in();
        let mut state = sim.state();
        state
            .agents
            .get_mut("a")
            .unwrap()
            .channels
            .get_mut("email")
            .unwrap()
            .state = RESERVED.to_string();
        let sim = SimSwitch::new(state);
        let not_ready = |reject_pending| Operation::SetNotReady {
            channel: None,
            reason: None,
            reject_pending,
        };
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: Some("voice".into()),
            },
        ))
        .unwrap();
        ready(sim.call("a", &not_ready(false))).unwrap();
        let channels = |sim: &SimSwitch| {
            sim.state().agents["a"]
                .channels
                .iter()
                .map(|(id, c)| (id.clone(), c.state.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            channels(&sim),
            [
                ("email".into(), RESERVED.into()),
                ("voice".into(), NOT_READY.into())
            ]
        );
        ready(sim.call("a", &not_ready(true))).unwrap();
        assert_eq!(
            channels(&sim),
            [
                ("email".into(), NOT_READY.into()),
                ("voice".into(), NOT_READY.into())
            ]
        );
    }

    #[test]
    fn a_strict_switch_takes_only_the_not_ready_reasons_it_has() {
        let sim = logged_in();
        let mut state = sim.state();
        state
            .reason_codes
            .insert("not_ready".into(), vec!["Break".into()]);
        state.strict_not_ready = true;
        let sim = SimSwitch::new(state);
        let with = |reason: &str| Operation::SetNotReady {
            channel: Some("voice".into()),
            reason: Some(reason.into()),
            reject_pending: false,
        };
        let refused = ready(sim.call("a", &with("20003"))).unwrap_err();
        assert_eq!(refused.code, "ReasonCodeOutOfRange");
        ready(sim.call("a", &with("Break"))).unwrap();
    }

    #[test]
    fn the_latencies_clients_set_are_bounded() {
        let sim = SimSwitch::default();
        let p = json!({ "op": "agent.logout", "delay": "1s" });
        for i in 0..MAX_LATENCIES {
            sim.run_control(&format!("a{i}"), "sim.request.latency", &p)
                .unwrap();
        }
        let refused = sim
            .run_control("one-more", "sim.request.latency", &p)
            .unwrap_err();
        assert_eq!(refused.code, "InvalidRequest");
        // One already held may change.
        sim.run_control(
            "a0",
            "sim.request.latency",
            &json!({ "op": "agent.logout", "delay": "2s" }),
        )
        .unwrap();
    }

    fn logged_in() -> SimSwitch {
        let sim = SimSwitch::default();
        for ch in ["voice", "email"] {
            ready(sim.call("a", &Operation::Login { channel: ch.into() })).unwrap();
        }
        sim
    }

    #[test]
    fn operations_change_the_switch() {
        let sim = logged_in();
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: Some("voice".into()),
            },
        ))
        .unwrap();
        ready(sim.call(
            "a",
            &Operation::Deactivate {
                channel: "email".into(),
            },
        ))
        .unwrap();
        let s = sim.state();
        assert_eq!(s.agents["a"].channels["voice"].state, READY);
        assert!(!s.agents["a"].channels["email"].active);
        let err = ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: Some("email".into()),
            },
        ))
        .unwrap_err();
        assert_eq!(err.code, "InvalidState");
        ready(sim.call(
            "a",
            &Operation::Logout {
                reason: Some("Lunch".into()),
            },
        ))
        .unwrap();
        let s = sim.state();
        assert!(!s.agents["a"].logged_in);
        assert_eq!(s.agents["a"].logout_reason.as_deref(), Some("Lunch"));
        assert_eq!(s.agents["a"].channels["voice"].state, LOGGED_OFF);
    }

    #[test]
    fn a_busy_agent_cannot_log_out() {
        let sim = logged_in();
        sim.start_interaction("a", "email", "mail-1").unwrap();
        assert_eq!(
            ready(sim.call("a", &Operation::Logout { reason: None }))
                .unwrap_err()
                .code,
            "InvalidState"
        );
        sim.end_interaction("a", "email", None).unwrap();
        ready(sim.call("a", &Operation::Logout { reason: None })).unwrap();
    }

    #[test]
    fn faults_hit_the_nth_call_on_a_channel() {
        let sim = logged_in();
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: Some("voice".into()),
            },
        ))
        .unwrap();
        sim.inject(Fault {
            agent: None,
            op: "agent.set_ready".into(),
            channel: None,
            call: Some(2),
            effect: FaultEffect::Error {
                code: "InvalidState".into(),
                message: "no".into(),
            },
        });
        assert!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: Some("voice".into())
                }
            ))
            .is_ok()
        );
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: Some("email".into())
                }
            ))
            .unwrap_err()
            .code,
            "InvalidState"
        );
        assert!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: Some("voice".into())
                }
            ))
            .is_ok()
        );
        let calls: Vec<String> = sim.calls().iter().map(|c| c.outcome.to_string()).collect();
        assert_eq!(&calls[3..], ["ok", "error InvalidState", "ok"]);
    }

    #[test]
    fn timeouts_never_answer_and_disconnects_stick() {
        let sim = logged_in();
        sim.inject(Fault {
            agent: None,
            op: "agent.set_ready".into(),
            channel: Some("voice".into()),
            call: None,
            effect: FaultEffect::Timeout,
        });
        assert!(matches!(
            sim.call(
                "a",
                &Operation::SetReady {
                    channel: Some("voice".into())
                }
            ),
            Reply::Pending(_)
        ));
        sim.inject(Fault {
            agent: None,
            op: "channel.deactivate".into(),
            channel: None,
            call: None,
            effect: FaultEffect::Disconnect,
        });
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::Deactivate {
                    channel: "email".into()
                }
            ))
            .unwrap_err()
            .code,
            "SwitchUnavailable"
        );
        assert_eq!(
            ready(sim.call(
                "a",
                &Operation::SetReady {
                    channel: Some("email".into())
                }
            ))
            .unwrap_err()
            .code,
            "SwitchUnavailable"
        );
        assert!(!sim.state().connected);
    }

    fn recording(sim: &SimSwitch) -> Arc<Mutex<Vec<SwitchEvent>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        sim.subscribe(EventSink::new(move |e| into.lock().unwrap().push(e)));
        seen
    }

    fn names(seen: &Arc<Mutex<Vec<SwitchEvent>>>) -> Vec<String> {
        std::mem::take(&mut *seen.lock().unwrap())
            .into_iter()
            .map(|e| format!("{} {}", e.name, serde_json::Value::Object(e.data)))
            .collect()
    }

    #[test]
    fn what_the_switch_does_on_its_own_it_says() {
        let sim = logged_in();
        let seen = recording(&sim);
        sim.start_interaction("a", "voice", "c1").unwrap();
        sim.set_state("a", "voice", "Talking", None).unwrap();
        sim.set_state("a", "voice", "Talking", None).unwrap();
        sim.end_interaction("a", "voice", Some("c1")).unwrap();
        sim.set_active("a", "email", false).unwrap();
        sim.set_active("a", "email", false).unwrap();
        assert_eq!(
            names(&seen),
            [
                r#"interaction.event.started {"channel":"voice","interaction":"c1"}"#,
                r#"agent.event.stateChanged {"channel":"voice","state":"Talking","reason":null}"#,
                r#"interaction.event.ended {"channel":"voice","interaction":"c1"}"#,
                r#"agent.event.channelDeactivated {"channel":"email"}"#,
            ],
            "a state or activation that does not change says nothing"
        );
        assert!(sim.set_state("a", "voice", "Lunch", None).is_err());
        sim.force_logout("a", Some("Shift over"), "supervisor")
            .unwrap();
        assert_eq!(
            names(&seen),
            [r#"agent.event.loggedOut {"reason":"Shift over","cause":"supervisor"}"#]
        );
        assert!(!sim.state().agents["a"].logged_in);
        sim.set_link(false, Some("maintenance"));
        sim.set_link(false, None);
        sim.set_link(true, None);
        let link: Vec<_> = std::mem::take(&mut *seen.lock().unwrap())
            .into_iter()
            .map(|e| (e.name, e.agent))
            .collect();
        assert_eq!(
            link,
            [
                ("link.event.down".to_string(), None),
                ("link.event.up".to_string(), None)
            ]
        );
    }

    #[test]
    fn a_pending_logout_completes_when_the_last_interaction_ends() {
        let sim = SimSwitch::new(SwitchState {
            pending_logout: true,
            ..SwitchState::default()
        });
        for ch in ["voice", "email"] {
            ready(sim.call("a", &Operation::Login { channel: ch.into() })).unwrap();
        }
        let seen = recording(&sim);
        sim.start_interaction("a", "voice", "c1").unwrap();
        sim.start_interaction("a", "email", "m1").unwrap();
        names(&seen);
        ready(sim.call(
            "a",
            &Operation::Logout {
                reason: Some("Lunch".into()),
            },
        ))
        .unwrap();
        assert_eq!(
            names(&seen),
            [r#"agent.event.logoutPending {"reason":"Lunch"}"#]
        );
        assert!(sim.state().agents["a"].logout_pending);
        sim.end_interaction("a", "voice", None).unwrap();
        assert!(sim.state().agents["a"].logged_in, "an email is still open");
        sim.end_interaction("a", "email", None).unwrap();
        assert_eq!(
            names(&seen)[2..],
            [r#"agent.event.loggedOut {"reason":"Lunch","cause":"pending"}"#]
        );
        let a = &sim.state().agents["a"];
        assert!(!a.logged_in && !a.logout_pending);
    }

    #[test]
    fn outside_a_runtime_a_confirmation_comes_at_once() {
        let sim = logged_in();
        let seen = recording(&sim);
        sim.set_confirm("agent.set_ready", Some(Duration::from_secs(5)));
        ready(sim.call(
            "a",
            &Operation::SetReady {
                channel: Some("voice".into()),
            },
        ))
        .unwrap();
        assert_eq!(sim.state().agents["a"].channels["voice"].state, READY);
        assert_eq!(names(&seen).len(), 1);
    }

    #[test]
    fn an_accepted_operation_is_carried_out_before_the_agents_next() {
        // With a runtime, the agent's next request carries the accepted
        // one out and confirms it first.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let sim = logged_in();
            let seen = recording(&sim);
            sim.set_confirm("agent.set_ready", Some(Duration::from_secs(5)));
            let voice = || Operation::SetReady {
                channel: Some("voice".into()),
            };
            ready(sim.call("a", &voice())).unwrap();
            assert_eq!(sim.state().agents["a"].channels["voice"].state, NOT_READY);
            ready(sim.call(
                "a",
                &Operation::SetNotReady {
                    channel: Some("voice".into()),
                    reason: None,
                    reject_pending: false,
                },
            ))
            .unwrap();
            assert_eq!(
                sim.state().agents["a"].channels["voice"].state,
                NOT_READY,
                "Ready was carried out, then Not Ready"
            );
            assert_eq!(
                names(&seen),
                [r#"agent.event.stateChanged {"channel":"voice","state":"Ready","reason":null}"#],
                "Ready's confirmation came before Not Ready took effect"
            );
            tokio::time::sleep(Duration::from_secs(6)).await;
            assert!(names(&seen).is_empty(), "and does not come twice");
        });
    }
}
