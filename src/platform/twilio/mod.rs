//! The `twilio-taskrouter` adapter: TaskRouter, the routing engine under
//! Twilio Flex, over its REST API and its Event Callbacks. The only code of
//! hisflow that knows this vendor.
//!
//! * An agent is a Worker, found by a configured attribute.
//! * Ready, Not Ready and logout are Activity changes; the Not Ready
//!   reasons are the Workspace's unavailable Activities; logout moves the
//!   Worker to the offline Activity and rejects its pending reservations.
//! * A channel is a Worker Channel; activating it makes it `Available`.
//! * What TaskRouter does — an Activity changed, work offered, accepted,
//!   ended — reaches HIS as Event Callbacks ([`events`]), checked by their
//!   signature and turned into the catalog's switch events. TaskRouter
//!   sends an event only for a change: where HIS asks for what already
//!   holds, the adapter confirms it itself, so a workflow waiting for the
//!   confirmation is never left waiting.

pub mod config;
pub mod doctor;
mod events;
pub mod rest;
pub mod signature;
mod track;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Instant;

use serde_json::json;

use super::adapter::{Adapter, ChannelReport, OpOutcome, OpResult, Operation, Reply, SwitchError};
use super::catalog::AdapterSpec;
use super::events::{EventSink, SwitchEvent};
use super::inbound::Inbound;
pub use config::{Config, ConfigError};
use rest::{Activity, Failure, Rest};
use track::{Agents, Asked, state_changed};

/// How often a link that is down is tried.
const LINK_PROBE: std::time::Duration = std::time::Duration::from_secs(5);

/// The adapter kind, as platform manifests name it.
pub const KIND: &str = "twilio-taskrouter";

/// The catalog events it delivers.
pub const EVENTS: &[&str] = &[
    "agent.event.loggedOut",
    "agent.event.stateChanged",
    "agent.event.channelActivated",
    "agent.event.channelDeactivated",
    "interaction.event.started",
    "interaction.event.ended",
    "link.event.down",
    "link.event.up",
];

/// The adapter kind in the catalog. Its scenarios run on the simulated
/// switch, which `adapter.switch:` describes as for `sim`.
pub const SPEC: AdapterSpec = AdapterSpec {
    kind: KIND,
    summary: "Twilio TaskRouter (Flex): Workers, Activities and Worker Channels over its REST API, its Event Callbacks as switch events.",
    operations: super::catalog::ALL_SWITCH_OPERATIONS,
    events: EVENTS,
    switch: Some(super::catalog::sim_switch),
};

/// The TaskRouter event types the adapter turns into switch events; a
/// Workspace whose events filter leaves one out keeps HIS from hearing it.
pub const EVENT_TYPES: &[&str] = &[
    "worker.activity.update",
    "worker.channel.availability.update",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.rescinded",
    "reservation.wrapup",
    "reservation.completed",
    "task.canceled",
    "task.wrapup",
    "task.completed",
    "task.deleted",
];

/// Why the adapter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{what}: {failure}")]
    Service {
        what: &'static str,
        #[source]
        failure: Failure,
    },
    #[error("{0}")]
    Workspace(String),
}

/// The Workspace's Activities, as last read.
#[derive(Debug, Clone, Default)]
struct Directory {
    activities: Vec<Activity>,
}

impl Directory {
    fn named(&self, name: &str) -> Option<&Activity> {
        self.activities.iter().find(|a| a.friendly_name == name)
    }

    fn by_sid(&self, sid: &str) -> Option<&Activity> {
        self.activities.iter().find(|a| a.sid == sid)
    }

    fn names(&self, available: bool) -> Vec<String> {
        self.activities
            .iter()
            .filter(|a| a.available == available)
            .map(|a| a.friendly_name.clone())
            .collect()
    }
}

/// The configured Activities, resolved.
#[derive(Debug, Clone)]
struct Roles {
    ready: Activity,
    not_ready: Activity,
    offline: Activity,
}

/// The adapter. Cloning shares it.
#[derive(Clone)]
pub struct TaskRouter {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    rest: Rest,
    roles: Roles,
    directory: RwLock<Directory>,
    agents: Mutex<Agents>,
    sink: RwLock<EventSink>,
    /// Whether HIS was told the link is down.
    down: AtomicBool,
    /// Itself, for the task that watches for the link's return.
    me: Weak<Inner>,
    /// Recent Event Callbacks, to take each once.
    seen: Mutex<events::Seen>,
}

impl TaskRouter {
    /// Reads the credentials from the environment, then checks the
    /// Workspace: it exists, the credentials open it, it has the configured
    /// Activities (of the right availability) and a task channel for each of
    /// `media`.
    pub async fn connect(
        config: Config,
        env: impl Fn(&str) -> Option<String>,
        media: &[String],
    ) -> Result<TaskRouter, StartError> {
        config.check()?;
        let keys = config.credentials.read(env)?;
        let rest = Rest::new(&config, keys)?;
        rest.workspace()
            .await
            .map_err(|failure| StartError::Service {
                what: "cannot open the Workspace",
                failure,
            })?;
        let activities = rest
            .activities()
            .await
            .map_err(|failure| StartError::Service {
                what: "cannot list the Workspace's Activities",
                failure,
            })?;
        let directory = Directory { activities };
        let roles = roles(&config, &directory).map_err(StartError::Workspace)?;
        let channels = rest
            .task_channels()
            .await
            .map_err(|failure| StartError::Service {
                what: "cannot list the Workspace's task channels",
                failure,
            })?;
        for m in media {
            let unique = config.task_channel(m);
            if !channels.iter().any(|c| c.unique_name == unique) {
                let have: Vec<&str> = channels.iter().map(|c| c.unique_name.as_str()).collect();
                return Err(StartError::Workspace(format!(
                    "the Workspace has no task channel `{unique}` for {m}; it has: {} (map media to task channels with `task_channels`)",
                    have.join(", ")
                )));
            }
        }
        Ok(TaskRouter {
            inner: Arc::new_cyclic(|me| Inner {
                config,
                rest,
                roles,
                directory: RwLock::new(directory),
                agents: Mutex::new(Agents::default()),
                sink: RwLock::new(EventSink::none()),
                down: AtomicBool::new(false),
                me: me.clone(),
                seen: Mutex::new(events::Seen::default()),
            }),
        })
    }

    /// The webhook endpoint for TaskRouter's Event Callbacks.
    pub fn inbound(&self) -> Arc<dyn Inbound> {
        Arc::new(events::Webhook::new(self.inner.clone()))
    }
}

/// Finds the configured Activities and checks their availability.
fn roles(config: &Config, directory: &Directory) -> Result<Roles, String> {
    let find = |role: &str, name: &str, available: bool| {
        let a = directory.named(name).ok_or_else(|| {
            format!(
                "the Workspace has no Activity `{name}` (activities.{role}); it has: {}",
                directory
                    .activities
                    .iter()
                    .map(|a| a.friendly_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if a.available != available {
            return Err(format!(
                "Activity `{name}` (activities.{role}) is {}available; it must be {}",
                if a.available { "" } else { "un" },
                if available {
                    "available"
                } else {
                    "unavailable"
                }
            ));
        }
        Ok(a.clone())
    };
    let a = &config.activities;
    Ok(Roles {
        ready: find("ready", &a.ready, true)?,
        not_ready: find("not_ready", &a.not_ready, false)?,
        offline: find("offline", &a.offline, false)?,
    })
}

impl Adapter for TaskRouter {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        let inner = self.inner.clone();
        let agent = agent.to_string();
        let op = op.clone();
        Reply::Pending(Box::pin(async move { inner.call(&agent, &op).await }))
    }

    fn subscribe(&self, events: EventSink) {
        *self.inner.sink.write().unwrap_or_else(|e| e.into_inner()) = events;
    }

    fn reachable(&self) -> Option<bool> {
        Some(!self.inner.down.load(Ordering::SeqCst))
    }
}

/// A failure of TaskRouter as the switch's error.
fn switch_error(failure: &Failure) -> SwitchError {
    let code = match failure {
        Failure::Unreachable { .. } => "SwitchUnavailable",
        Failure::Unreadable { .. } => "SwitchFailure",
        Failure::Refused { status, .. } => match status {
            401 | 403 => "Unauthorized",
            404 => "NotFound",
            429 => "Throttled",
            s if *s >= 500 => "SwitchFailure",
            _ => "InvalidState",
        },
    };
    let message = match failure {
        Failure::Refused { status, error } => {
            let text = error
                .message
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}"));
            match error.code {
                Some(c) => format!("TaskRouter: {text} (Twilio error {c})"),
                None => format!("TaskRouter: {text}"),
            }
        }
        other => other.to_string(),
    };
    SwitchError::new(code, message)
}

impl Inner {
    fn deliver(&self, events: Vec<SwitchEvent>) {
        let sink = self.sink.read().unwrap_or_else(|e| e.into_inner()).clone();
        for e in events {
            sink.deliver(e);
        }
    }

    fn agents(&self) -> std::sync::MutexGuard<'_, Agents> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells HIS when TaskRouter stops or starts answering. While it does
    /// not, a task asks it every few seconds, so that HIS hears of its
    /// return without waiting for an agent's request.
    fn link(&self, reachable: bool, why: Option<&Failure>) {
        let was_down = self.down.swap(!reachable, Ordering::SeqCst);
        if was_down != reachable {
            return;
        }
        let event = if reachable {
            tracing::info!("TaskRouter answers again");
            SwitchEvent::new(None, "link.event.up", json!({}))
        } else {
            let reason = why.map(ToString::to_string);
            tracing::warn!(
                reason = reason.as_deref().unwrap_or(""),
                "TaskRouter cannot be reached"
            );
            if let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) {
                rt.spawn(async move { me.watch_link().await });
            }
            SwitchEvent::new(None, "link.event.down", json!({ "reason": reason }))
        };
        self.deliver(vec![event]);
    }

    async fn watch_link(self: Arc<Self>) {
        while self.down.load(Ordering::SeqCst) {
            tokio::time::sleep(LINK_PROBE).await;
            if let Ok(()) = self.heard(self.rest.workspace().await).map(drop) {
                return;
            }
        }
    }

    /// A REST call's result, the link's state learnt from it.
    fn heard<T>(&self, result: Result<T, Failure>) -> Result<T, SwitchError> {
        match result {
            Ok(v) => {
                self.link(true, None);
                Ok(v)
            }
            Err(f) => {
                match &f {
                    Failure::Unreachable { .. } => self.link(false, Some(&f)),
                    _ => self.link(true, None),
                }
                Err(switch_error(&f))
            }
        }
    }

    async fn call(&self, agent: &str, op: &Operation) -> OpOutcome {
        match op {
            Operation::Login { channel } => self.login(agent, channel).await,
            Operation::Logout { .. } => self.logout(agent).await,
            Operation::SetReady { channel } => {
                let target = self.roles.ready.clone();
                self.change_activity(agent, channel.as_deref(), &target, false, Asked::Ready)
                    .await
            }
            Operation::SetNotReady {
                channel,
                reason,
                reject_pending,
            } => {
                let target = match reason.as_deref().filter(|r| !r.is_empty()) {
                    None => self.roles.not_ready.clone(),
                    Some(r) => self.reason_activity(r, *reject_pending).await?,
                };
                self.change_activity(
                    agent,
                    channel.as_deref(),
                    &target,
                    *reject_pending,
                    Asked::NotReady,
                )
                .await
            }
            Operation::ReasonCodes { category } => self.reason_codes(category).await,
            Operation::Activate { channel } => self.availability(agent, channel, true).await,
            Operation::Deactivate { channel } => self.availability(agent, channel, false).await,
            Operation::State { channel } => self.state(agent, channel).await,
        }
    }

    /// The agent's Worker SID, looked up once.
    async fn worker(&self, agent: &str) -> Result<String, SwitchError> {
        if let Some(w) = self.agents().worker_of(agent) {
            return Ok(w.to_string());
        }
        let lookup = &self.config.worker;
        let value = lookup.value_for(agent);
        let found = if lookup.by_name() {
            self.heard(self.rest.workers_named(&value).await)?
        } else {
            // The value is quoted in TaskRouter's expression language, whose
            // strings have no escapes: a quote would end it.
            if value.contains(['"', '\\']) {
                return Err(SwitchError::new(
                    "AgentNotFound",
                    format!(
                        "agent id `{agent}` cannot be looked up in TaskRouter: it contains a quote or backslash"
                    ),
                ));
            }
            let attribute = &lookup.attribute;
            self.heard(
                self.rest
                    .workers_where(&format!("{attribute} == \"{value}\""))
                    .await,
            )?
        };
        let what = if lookup.by_name() {
            format!("whose name is `{value}`")
        } else {
            format!("whose `{}` is `{value}`", lookup.attribute)
        };
        let worker = match found.as_slice() {
            [w] => w,
            [] => {
                return Err(SwitchError::new(
                    "AgentNotFound",
                    format!("TaskRouter has no Worker {what}"),
                ));
            }
            _ => {
                return Err(SwitchError::new(
                    "AgentNotFound",
                    format!(
                        "TaskRouter has {} Workers {what}; HIS needs exactly one",
                        found.len()
                    ),
                ));
            }
        };
        let mut agents = self.agents();
        let a = agents.meet(agent, &worker.sid);
        if let Some(sid) = &worker.activity_sid {
            let available = worker.available;
            a.activity = Some((
                sid.clone(),
                available,
                worker.activity_name.clone().unwrap_or_default(),
            ));
        }
        Ok(worker.sid.clone())
    }

    /// The unavailable Activity a Not Ready reason names; the directory is
    /// read again once before a reason is refused (an administrator may
    /// have added it).
    ///
    /// The offline Activity is a logout, not a reason: only logout's own
    /// step, which rejects the pending reservations, may name it.
    async fn reason_activity(
        &self,
        reason: &str,
        rejecting: bool,
    ) -> Result<Activity, SwitchError> {
        if reason == self.roles.offline.friendly_name && !rejecting {
            return Err(SwitchError::new(
                "ReasonCodeOutOfRange",
                format!(
                    "`{reason}` is the Activity of a logged-out Worker, not a Not Ready reason: log out instead"
                ),
            ));
        }
        for fresh in [false, true] {
            if fresh {
                let list = self.heard(self.rest.activities().await)?;
                self.directory
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .activities = list;
            }
            let dir = self.directory.read().unwrap_or_else(|e| e.into_inner());
            if let Some(a) = dir.named(reason).filter(|a| !a.available) {
                return Ok(a.clone());
            }
        }
        let dir = self.directory.read().unwrap_or_else(|e| e.into_inner());
        Err(SwitchError::new(
            "ReasonCodeOutOfRange",
            format!(
                "`{reason}` is not an unavailable Activity of the Workspace; Not Ready reasons: {}",
                dir.names(false).join(", ")
            ),
        ))
    }

    async fn reason_codes(&self, category: &str) -> OpOutcome {
        match category {
            // Activities play the part of reasons; a logout takes none.
            "logout" => Ok(OpResult::List(Vec::new())),
            "not_ready" => {
                let list = self.heard(self.rest.activities().await)?;
                let mut dir = self.directory.write().unwrap_or_else(|e| e.into_inner());
                dir.activities = list;
                let offline = &self.roles.offline.sid;
                Ok(OpResult::List(
                    dir.activities
                        .iter()
                        .filter(|a| !a.available && a.sid != *offline)
                        .map(|a| a.friendly_name.clone())
                        .collect(),
                ))
            }
            other => Err(SwitchError::new(
                "InvalidRequest",
                format!("TaskRouter has no `{other}` reasons; categories: logout, not_ready"),
            )),
        }
    }

    /// The Worker's Activity as TaskRouter has it now.
    async fn current_activity(
        &self,
        agent: &str,
        worker: &str,
    ) -> Result<Option<String>, SwitchError> {
        let w = self.heard(self.rest.worker(worker).await)?;
        let mut agents = self.agents();
        let a = agents.meet(agent, worker);
        a.activity = w.activity_sid.clone().map(|sid| {
            (
                sid,
                w.available,
                w.activity_name.clone().unwrap_or_default(),
            )
        });
        Ok(w.activity_sid)
    }

    /// Moves the Worker to `target`; TaskRouter's event confirms it, or the
    /// adapter does when the Worker is there already.
    async fn change_activity(
        &self,
        agent: &str,
        channel: Option<&str>,
        target: &Activity,
        reject_pending: bool,
        asked: Asked,
    ) -> OpOutcome {
        let worker = self.worker(agent).await?;
        let before = self.current_activity(agent, &worker).await?;
        let already = before.as_deref() == Some(target.sid.as_str());
        // Marked whatever `before` said: someone else may change the
        // Activity between that reading and this update, and TaskRouter's
        // event must then still read as HIS's.
        self.ask(agent, &worker, asked.clone(), &target.sid);
        // RejectPendingReservations is only valid towards an unavailable
        // Activity; TaskRouter refuses it otherwise.
        let reject = reject_pending && !target.available;
        let updated = self.rest.set_activity(&worker, &target.sid, reject).await;
        self.unask_if_refused(agent, &target.sid, &updated);
        self.heard(updated)?;
        if already {
            // TaskRouter sends no event for an Activity the Worker is in
            // already: the adapter confirms the change itself.
            let events = {
                let mut agents = self.agents();
                match asked {
                    Asked::Logout => {
                        agents.logged_out(agent);
                        vec![SwitchEvent::new(
                            Some(agent),
                            "agent.event.loggedOut",
                            json!({ "cause": "requested" }),
                        )]
                    }
                    _ => agents
                        .get_mut(agent)
                        .map(|a| a.follow_activity(agent, channel))
                        .unwrap_or_default(),
                }
            };
            self.deliver(events);
        }
        Ok(OpResult::Done)
    }

    /// Marks the change HIS is about to ask for.
    fn ask(&self, agent: &str, worker: &str, asked: Asked, target: &str) {
        self.agents().meet(agent, worker).asked = Some((asked, target.to_string(), Instant::now()));
    }

    /// Unmarks it when TaskRouter refused it for certain (a 4xx): after a
    /// 5xx or no answer the change may have been made, and its event must
    /// still read as HIS's.
    fn unask_if_refused<T>(&self, agent: &str, target: &str, outcome: &Result<T, Failure>) {
        let refused = matches!(outcome, Err(Failure::Refused { status, .. }) if *status < 500);
        if refused
            && let Some(a) = self.agents().get_mut(agent)
            && a.asked.as_ref().is_some_and(|(_, t, _)| t == target)
        {
            a.asked = None;
        }
    }

    async fn logout(&self, agent: &str) -> OpOutcome {
        let target = self.roles.offline.clone();
        self.change_activity(agent, None, &target, true, Asked::Logout)
            .await
    }

    /// Logs the agent in on `media`: its Worker Channel available, and the
    /// Worker out of the offline Activity.
    async fn login(&self, agent: &str, media: &str) -> OpOutcome {
        let worker = self.worker(agent).await?;
        let unique = self.config.task_channel(media).to_string();
        let channel = self.heard(self.rest.worker_channel(&worker, &unique).await)?;
        self.agents()
            .meet(agent, &worker)
            .channels
            .entry(media.to_string())
            .or_default();
        if !channel.available {
            self.heard(
                self.rest
                    .set_channel_available(&worker, &unique, true)
                    .await,
            )?;
        }
        let before = self.current_activity(agent, &worker).await?;
        if before.as_deref() == Some(self.roles.offline.sid.as_str()) || before.is_none() {
            let target = self.roles.not_ready.clone();
            self.ask(agent, &worker, Asked::Login, &target.sid);
            let updated = self.rest.set_activity(&worker, &target.sid, false).await;
            self.unask_if_refused(agent, &target.sid, &updated);
            self.heard(updated)?;
        } else {
            // Logged in already (another channel, an earlier session): no
            // event will come; the state it is in confirms the login.
            let event = {
                let agents = self.agents();
                agents.get(agent).map(|a| {
                    let state = a.state_of(media);
                    let reason = (state == "NotReady").then(|| a.reason()).flatten();
                    state_changed(agent, media, state, reason)
                })
            };
            self.deliver(event.into_iter().collect());
        }
        Ok(OpResult::Done)
    }

    async fn availability(&self, agent: &str, media: &str, available: bool) -> OpOutcome {
        let worker = self.worker(agent).await?;
        let unique = self.config.task_channel(media).to_string();
        let channel = self.heard(self.rest.worker_channel(&worker, &unique).await)?;
        if channel.available == available {
            let name = if available {
                "agent.event.channelActivated"
            } else {
                "agent.event.channelDeactivated"
            };
            self.deliver(vec![SwitchEvent::new(
                Some(agent),
                name,
                json!({ "channel": media }),
            )]);
            return Ok(OpResult::Done);
        }
        self.heard(
            self.rest
                .set_channel_available(&worker, &unique, available)
                .await,
        )?;
        Ok(OpResult::Done)
    }

    /// The agent's state on `media`, read from TaskRouter: the Activity,
    /// the Worker Channel, and the reservations on that channel.
    async fn state(&self, agent: &str, media: &str) -> OpOutcome {
        let worker = self.worker(agent).await?;
        let epoch = self.agents().meet(agent, &worker).epoch;
        let activity = self.current_activity(agent, &worker).await?;
        let unique = self.config.task_channel(media).to_string();
        let channel = self.heard(self.rest.worker_channel(&worker, &unique).await)?;
        let mut offers = Vec::new();
        let mut tasks = Vec::new();
        let mut wrapping = Vec::new();
        for status in ["pending", "accepted", "wrapping"] {
            for r in self.heard(self.rest.reservations(&worker, status).await)? {
                let task = self.heard(self.rest.task(&r.task_sid).await)?;
                if task.task_channel_unique_name.as_deref() != Some(unique.as_str()) {
                    continue;
                }
                match status {
                    "pending" => offers.push(r.sid),
                    "accepted" => tasks.push(r.task_sid),
                    _ => wrapping.push(r.task_sid),
                }
            }
        }
        let offline =
            activity.is_none() || activity.as_deref() == Some(self.roles.offline.sid.as_str());
        let mut agents = self.agents();
        for t in tasks.iter().chain(&wrapping) {
            agents.note_task(t, agent, media);
        }
        let a = agents.meet(agent, &worker);
        let c = a.channels.entry(media.to_string()).or_default();
        if a.epoch == epoch {
            c.offers = offers.into_iter().collect();
            c.tasks = tasks.iter().cloned().collect();
            c.wrapping = wrapping.iter().cloned().collect();
        }
        // Events came while the switch was read: what they said is newer
        // than the reading, and stands.
        let interactions: Vec<String> = c.tasks.iter().cloned().collect();
        let state = if offline {
            "LoggedOff".to_string()
        } else {
            a.state_of(media).to_string()
        };
        // A task in wrap-up is no interaction any more: its reservation's
        // wrap-up event ended it.
        Ok(OpResult::State(ChannelReport {
            state,
            active: channel.available,
            interactions,
        }))
    }
}

/// The directory's Activities, for events.
impl Inner {
    fn activity(&self, sid: &str) -> Option<Activity> {
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_sid(sid)
            .cloned()
    }

    fn activity_named(&self, name: &str) -> Option<Activity> {
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .named(name)
            .cloned()
    }
}
