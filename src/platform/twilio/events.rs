//! TaskRouter's Event Callbacks: a form POST to the Workspace's Event
//! Callback URL for every change, signed with `X-Twilio-Signature`. A
//! request whose signature does not hold is refused with 403 and changes
//! nothing; a signed one is turned into the catalog's switch events and
//! answered 204 at once (TaskRouter waits 15 seconds at most), whether or
//! not HIS has a session for its Worker.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;
use serde_json::json;

use super::Inner;
use super::signature;
use super::track::{Asked, state_changed};
use crate::platform::events::SwitchEvent;
use crate::platform::inbound::{Inbound, InboundReply, InboundRequest};

/// How old an event may be (or how far ahead of this clock): TaskRouter
/// sends at once, and clocks differ by less.
const MAX_AGE_MS: u64 = 5 * 60 * 1000;

/// How many events are remembered to take each once.
const REMEMBERED: usize = 10_000;

/// The events taken lately, by their SID.
#[derive(Debug, Default)]
pub(super) struct Seen {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    /// Whether `key` is new; it is remembered.
    fn first_time(&mut self, key: String) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.order.len() >= REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.keys.remove(&old);
        }
        self.keys.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

/// When TaskRouter sent an event, in ms since the epoch (`TimestampMs`,
/// else `Timestamp` in seconds), if it says.
fn sent_at<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Option<u64> {
    get("TimestampMs")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .or_else(|| {
            get("Timestamp")
                .and_then(|t| t.trim().parse::<u64>().ok())
                .map(|s| s.saturating_mul(1000))
        })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) struct Webhook {
    /// Forged requests refused so far.
    forged: AtomicU64,
    inner: Arc<Inner>,
    path: String,
    /// Scheme and authority of the configured URL: TaskRouter signs the URL
    /// it called, which a proxy in front of HIS may have rewritten.
    origin: String,
}

impl Webhook {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        let url = inner.config.webhook.url.clone();
        let path = inner
            .config
            .webhook_path()
            .unwrap_or_else(|_| "/taskrouter/events".into());
        let origin = url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| url[..i + 3 + j].to_string()))
            .unwrap_or(url);
        Webhook {
            forged: AtomicU64::new(0),
            inner,
            path,
            origin,
        }
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("path", &self.path).finish()
    }
}

impl Inbound for Webhook {
    fn path(&self) -> &str {
        &self.path
    }

    fn receive(&self, request: InboundRequest<'_>) -> InboundReply {
        let form = request
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return InboundReply::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a form (application/x-www-form-urlencoded)",
            );
        }
        let params: Vec<(String, String)> =
            form_urlencoded::parse(request.body).into_owned().collect();
        let url = format!(
            "{}{}",
            self.origin,
            request
                .uri
                .path_and_query()
                .map_or(self.path.as_str(), |p| p.as_str())
        );
        let signed = request
            .headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sig| {
                signature::verify(
                    self.inner.rest.keys().auth_token.expose().as_bytes(),
                    &url,
                    &params,
                    sig,
                )
            });
        if !signed {
            // Whoever can reach the webhook can send these: a line for the
            // first and then one per hundred, not one each.
            let n = self.forged.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(100) {
                tracing::warn!(%url, refused = n + 1, "TaskRouter webhook refused: its X-Twilio-Signature does not hold");
            }
            return InboundReply::new(StatusCode::FORBIDDEN, "signature does not hold");
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let workspace = get("WorkspaceSid");
        if workspace.is_some_and(|w| w != self.inner.config.workspace_sid) {
            return InboundReply::new(StatusCode::FORBIDDEN, "another Workspace's event");
        }
        // A signature has no time in it: an event recorded on its way could
        // be sent again. An old one, or one already taken, changes nothing.
        let at = sent_at(&get);
        if let Some(at) = at {
            let now = now_ms();
            if at + MAX_AGE_MS < now || at > now + MAX_AGE_MS {
                tracing::warn!(
                    event = get("EventType").unwrap_or(""),
                    "TaskRouter event refused: sent too long ago"
                );
                return InboundReply::new(StatusCode::FORBIDDEN, "event too old");
            }
        }
        let key = match get("Sid") {
            Some(sid) => sid.to_string(),
            None => format!(
                "{}/{}/{}",
                get("EventType").unwrap_or(""),
                get("ResourceSid").unwrap_or(""),
                at.map(|a| a.to_string()).unwrap_or_default()
            ),
        };
        if !self
            .inner
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first_time(key)
        {
            // Taken already: TaskRouter is told so, and sends it no more.
            return InboundReply::new(StatusCode::NO_CONTENT, "");
        }
        let events = self.inner.map(&get);
        tracing::debug!(
            event = get("EventType").unwrap_or(""),
            delivered = events.len(),
            "TaskRouter event"
        );
        self.inner.deliver(events);
        InboundReply::new(StatusCode::NO_CONTENT, "")
    }
}

impl Inner {
    /// The agent a Worker of an event is: one HIS looked up, else by the
    /// configured attribute in the event's Worker fields.
    fn agent_of<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let worker = get("WorkerSid")?;
        if let Some(a) = self.agents().agent_of_worker(worker) {
            return Some(a.to_string());
        }
        let lookup = &self.config.worker;
        let value = if lookup.by_name() {
            get("WorkerName")?.to_string()
        } else {
            let attributes: serde_json::Value =
                serde_json::from_str(get("WorkerAttributes")?).ok()?;
            attributes.get(&lookup.attribute)?.as_str()?.to_string()
        };
        let agent = lookup.agent_of(&value)?.to_string();
        let mut agents = self.agents();
        // An agent HIS knows keeps its Worker: only a lookup of HIS's own,
        // which refuses two Workers for one agent, may change it.
        if agents.worker_of(&agent).is_some_and(|w| w != worker) {
            return None;
        }
        agents.meet(&agent, worker);
        Some(agent)
    }

    /// The switch events one Event Callback means.
    fn map<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> Vec<SwitchEvent> {
        let Some(kind) = get("EventType") else {
            return Vec::new();
        };
        match kind {
            "worker.activity.update" => self.activity_update(get),
            "worker.channel.availability.update" => self.channel_availability(get),
            k if k.starts_with("reservation.") => self.reservation(k, get),
            "task.canceled"
            | "task.completed"
            | "task.deleted"
            | "task.system-deleted"
            | "task.wrapup" => self.task_ended(kind, get),
            _ => Vec::new(),
        }
    }

    fn activity_update<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> Vec<SwitchEvent> {
        let (Some(agent), Some(sid)) = (self.agent_of(get), get("WorkerActivitySid")) else {
            return Vec::new();
        };
        let name = get("WorkerActivityName").unwrap_or_default().to_string();
        // An Activity added since HIS read the Workspace's is known by
        // name only if at all; unknown, it counts as unavailable.
        let available = match self.activity(sid).or_else(|| self.activity_named(&name)) {
            Some(a) => a.available,
            None => sid == self.roles.ready.sid,
        };
        let at = sent_at(get);
        let mut agents = self.agents();
        let Some(a) = agents.get_mut(&agent) else {
            return Vec::new();
        };
        // Each event is its own request: an older one may arrive after a
        // newer, and must not undo it.
        if let (Some(at), Some(last)) = (at, a.activity_at)
            && at < last
        {
            return Vec::new();
        }
        a.activity_at = at.or(a.activity_at);
        a.epoch += 1;
        a.activity = Some((sid.to_string(), available, name.clone()));
        let asked = a.take_asked(sid);
        if sid == self.roles.offline.sid && asked != Some(Asked::NotReady) {
            let cause = if asked == Some(Asked::Logout) {
                "requested"
            } else {
                "supervisor"
            };
            agents.logged_out(&agent);
            return vec![SwitchEvent::new(
                Some(&agent),
                "agent.event.loggedOut",
                json!({ "cause": cause, "reason": name }),
            )];
        }
        a.follow_activity(&agent, None)
    }

    fn channel_availability<'a>(&self, get: &impl Fn(&str) -> Option<&'a str>) -> Vec<SwitchEvent> {
        let (Some(agent), Some(unique), Some(available)) = (
            self.agent_of(get),
            get("TaskChannelUniqueName"),
            get("WorkerChannelAvailable"),
        ) else {
            return Vec::new();
        };
        let name = if available == "true" {
            "agent.event.channelActivated"
        } else {
            "agent.event.channelDeactivated"
        };
        let media = self.config.media_of(unique);
        // A channel HIS did not log the agent in on is not HIS's.
        let mut agents = self.agents();
        if agents
            .get_mut(&agent)
            .and_then(|a| a.heard_on(media))
            .is_none()
        {
            return Vec::new();
        }
        vec![SwitchEvent::new(
            Some(&agent),
            name,
            json!({ "channel": media }),
        )]
    }

    fn reservation<'a>(
        &self,
        kind: &str,
        get: &impl Fn(&str) -> Option<&'a str>,
    ) -> Vec<SwitchEvent> {
        let (Some(agent), Some(reservation), Some(task)) =
            (self.agent_of(get), get("ReservationSid"), get("TaskSid"))
        else {
            return Vec::new();
        };
        let known = self.agents().task(task);
        let Some(media) = get("TaskChannelUniqueName")
            .map(|u| self.config.media_of(u).to_string())
            .or_else(|| known.map(|(_, m)| m))
        else {
            return Vec::new();
        };
        let mut agents = self.agents();
        let what = kind.trim_start_matches("reservation.");
        // Work on a channel HIS did not log the agent in on is not HIS's.
        if !agents
            .get(&agent)
            .is_some_and(|a| a.channels.contains_key(&media))
        {
            return Vec::new();
        }
        if matches!(what, "created" | "accepted" | "wrapup") {
            agents.note_task(task, &agent, &media);
        }
        let Some(a) = agents.get_mut(&agent) else {
            return Vec::new();
        };
        let Some(c) = a.heard_on(&media) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let interaction = |name: &str| {
            SwitchEvent::new(
                Some(&agent),
                name,
                json!({ "channel": media, "interaction": task }),
            )
        };
        match what {
            "created" => {
                c.offers.insert(reservation.to_string());
            }
            "accepted" => {
                c.offers.remove(reservation);
                if c.tasks.insert(task.to_string()) {
                    out.push(interaction("interaction.event.started"));
                }
            }
            "wrapup" => {
                if c.tasks.remove(task) {
                    out.push(interaction("interaction.event.ended"));
                }
                c.wrapping.insert(task.to_string());
            }
            "completed" => {
                if c.tasks.remove(task) {
                    out.push(interaction("interaction.event.ended"));
                }
                c.wrapping.remove(task);
            }
            "rejected" | "timeout" | "canceled" | "rescinded" | "failed" => {
                c.offers.remove(reservation);
            }
            _ => return Vec::new(),
        }
        let finished = matches!(
            what,
            "completed" | "rejected" | "timeout" | "canceled" | "rescinded" | "failed"
        );
        let state = a.state_of(&media);
        let reason = (state == "NotReady").then(|| a.reason()).flatten();
        out.push(state_changed(&agent, &media, state, reason));
        if finished {
            // A task ended or never started: it is no longer tracked once
            // its channel holds nothing of it.
            let c = a.channels.get(&media);
            if c.is_none_or(|c| !c.tasks.contains(task) && !c.wrapping.contains(task)) {
                agents.forget_task(task);
            }
        }
        out
    }

    /// A task that ended without its reservation's event (canceled by the
    /// caller hanging up, deleted by an administrator).
    fn task_ended<'a>(
        &self,
        kind: &str,
        get: &impl Fn(&str) -> Option<&'a str>,
    ) -> Vec<SwitchEvent> {
        let Some(task) = get("TaskSid") else {
            return Vec::new();
        };
        let mut agents = self.agents();
        let Some((agent, media)) = agents.task(task) else {
            return Vec::new();
        };
        let Some(a) = agents.get_mut(&agent) else {
            return Vec::new();
        };
        let Some(c) = a.heard_on(&media) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let was_live = c.tasks.remove(task);
        if was_live {
            out.push(SwitchEvent::new(
                Some(&agent),
                "interaction.event.ended",
                json!({ "channel": media, "interaction": task }),
            ));
        }
        // TaskRouter also sends the reservation's own event: whichever
        // comes second changes nothing and says nothing.
        let changed = if kind == "task.wrapup" {
            c.wrapping.insert(task.to_string())
        } else {
            c.wrapping.remove(task)
        };
        if was_live || changed {
            let state = a.state_of(&media);
            let reason = (state == "NotReady").then(|| a.reason()).flatten();
            out.push(state_changed(&agent, &media, state, reason));
        }
        if kind != "task.wrapup" {
            agents.forget_task(task);
        }
        out
    }
}
