//! The Workspace's resources, the changes tests and requests make to them,
//! and the Event Callback each change emits.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{ACCOUNT_SID, Delivered, Recorded, Refusal, WORKSPACE_SID, WorkerView, iso8601};

pub(super) const WORKSPACE_NAME: &str = "hisflow test";

/// A new Workspace's Activities; the first is the default and the timeout
/// Activity.
const ACTIVITIES: [(&str, bool); 4] = [
    ("Offline", false),
    ("Available", true),
    ("Unavailable", false),
    ("Break", false),
];

/// A new Workspace's task channels: (unique_name, friendly_name).
const TASK_CHANNELS: [(&str, &str); 6] = [
    ("default", "Default"),
    ("voice", "Voice"),
    ("chat", "Chat"),
    ("sms", "SMS"),
    ("video", "Video"),
    ("email", "Email"),
];

pub(super) struct Activity {
    pub sid: String,
    pub name: &'static str,
    pub available: bool,
}

pub(super) struct TaskChannel {
    pub sid: String,
    pub unique_name: &'static str,
    pub friendly_name: &'static str,
}

pub(super) struct WorkerChannel {
    pub sid: String,
    /// Index into `State::task_channels`.
    pub channel: usize,
    pub capacity: u32,
    pub available: bool,
    pub updated: SystemTime,
}

pub(super) struct Worker {
    pub sid: String,
    pub friendly_name: String,
    /// JSON text, as the API carries it.
    pub attributes: String,
    pub activity: usize,
    pub created: SystemTime,
    pub updated: SystemTime,
    pub status_changed: SystemTime,
    /// WorkerVersion of the events: one more on every change.
    pub version: u64,
    pub channels: Vec<WorkerChannel>,
}

pub(super) struct Task {
    pub sid: String,
    pub channel: usize,
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub created: SystemTime,
    pub updated: SystemTime,
}

pub(super) struct Reservation {
    pub sid: String,
    pub task: usize,
    pub worker: usize,
    pub status: &'static str,
    pub created: SystemTime,
    pub updated: SystemTime,
}

/// An Event Callback waiting for the sender.
pub(super) struct Outgoing {
    pub url: String,
    pub event_type: String,
    pub params: Vec<(String, String)>,
}

/// Nothing is ever deleted, so resources refer to each other by index.
pub(super) struct State {
    pub base: String,
    next_sid: u64,
    next_event: u64,
    created: SystemTime,
    pub callback: Option<String>,
    pub activities: Vec<Activity>,
    pub task_channels: Vec<TaskChannel>,
    pub workers: Vec<Worker>,
    pub tasks: Vec<Task>,
    pub reservations: Vec<Reservation>,
    task_queue_sid: String,
    workflow_sid: String,
    pub requests: Vec<Recorded>,
    pub deliveries: Vec<Delivered>,
    pub refusals: Vec<Refusal>,
    pub throttle: usize,
    pub retry_after: Option<u64>,
    pub hang: bool,
    pub outbox: Vec<Outgoing>,
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn date(t: SystemTime) -> String {
    iso8601(secs(t))
}

impl State {
    pub fn new(base: &str) -> State {
        let mut s = State {
            base: base.to_string(),
            next_sid: 0,
            next_event: 0,
            created: SystemTime::now(),
            callback: None,
            activities: Vec::new(),
            task_channels: Vec::new(),
            workers: Vec::new(),
            tasks: Vec::new(),
            reservations: Vec::new(),
            task_queue_sid: String::new(),
            workflow_sid: String::new(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            refusals: Vec::new(),
            throttle: 0,
            retry_after: None,
            hang: false,
            outbox: Vec::new(),
        };
        for (name, available) in ACTIVITIES {
            let sid = s.sid("WA");
            s.activities.push(Activity {
                sid,
                name,
                available,
            });
        }
        for (unique_name, friendly_name) in TASK_CHANNELS {
            let sid = s.sid("TC");
            s.task_channels.push(TaskChannel {
                sid,
                unique_name,
                friendly_name,
            });
        }
        s.task_queue_sid = s.sid("WQ");
        s.workflow_sid = s.sid("WW");
        s
    }

    /// SIDs count up, so a run's SIDs are the same every time.
    fn sid(&mut self, prefix: &str) -> String {
        self.next_sid += 1;
        format!("{prefix}{:032x}", self.next_sid)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/v1/Workspaces/{WORKSPACE_SID}", self.base)
    }

    pub fn activity_by_sid(&self, sid: &str) -> Option<usize> {
        self.activities.iter().position(|a| a.sid == sid)
    }

    pub fn activity_by_name(&self, name: &str) -> Option<usize> {
        self.activities.iter().position(|a| a.name == name)
    }

    pub fn channel_by_name(&self, name: &str) -> Option<usize> {
        self.task_channels
            .iter()
            .position(|c| c.unique_name == name)
    }

    /// The spec leaves a task channel's `{Sid}` unpatterned: a sid or a
    /// unique name.
    pub fn channel_by_sid_or_name(&self, id: &str) -> Option<usize> {
        self.task_channels
            .iter()
            .position(|c| c.sid == id || c.unique_name == id)
    }

    pub fn worker_by_sid(&self, sid: &str) -> Option<usize> {
        self.workers.iter().position(|w| w.sid == sid)
    }

    /// Friendly names are case-insensitive within a Workspace.
    pub fn worker_by_name(&self, name: &str) -> Option<usize> {
        self.workers
            .iter()
            .position(|w| w.friendly_name.eq_ignore_ascii_case(name))
    }

    /// Fetch Worker Channel takes the WC sid or the task channel's unique name.
    pub fn worker_channel(&self, w: usize, id: &str) -> Option<usize> {
        self.workers[w]
            .channels
            .iter()
            .position(|c| c.sid == id || self.task_channels[c.channel].unique_name == id)
    }

    pub fn reservation_by_sid(&self, sid: &str) -> Option<usize> {
        self.reservations.iter().position(|r| r.sid == sid)
    }

    pub fn task_by_sid(&self, sid: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.sid == sid)
    }

    // Look-ups for the test-facing API, where an unknown sid is the test's
    // mistake.

    pub fn worker_index(&self, sid: &str) -> usize {
        self.worker_by_sid(sid)
            .unwrap_or_else(|| panic!("no Worker {sid}"))
    }

    pub fn reservation_index(&self, sid: &str) -> usize {
        self.reservation_by_sid(sid)
            .unwrap_or_else(|| panic!("no Reservation {sid}"))
    }

    pub fn task_index(&self, sid: &str) -> usize {
        self.task_by_sid(sid)
            .unwrap_or_else(|| panic!("no Task {sid}"))
    }

    /// Tasks a worker channel holds: its accepted Reservations.
    fn assigned(&self, w: usize, channel: usize) -> u32 {
        self.reservations
            .iter()
            .filter(|r| {
                r.worker == w && r.status == "accepted" && self.tasks[r.task].channel == channel
            })
            .count() as u32
    }

    fn capacity_percentage(&self, w: usize, c: usize) -> u32 {
        let wc = &self.workers[w].channels[c];
        if wc.capacity == 0 {
            return 0;
        }
        let free = wc.capacity.saturating_sub(self.assigned(w, wc.channel));
        free * 100 / wc.capacity
    }

    pub fn view(&self, w: usize) -> WorkerView {
        let worker = &self.workers[w];
        let activity = &self.activities[worker.activity];
        let name = |c: &WorkerChannel| self.task_channels[c.channel].unique_name.to_string();
        WorkerView {
            sid: worker.sid.clone(),
            friendly_name: worker.friendly_name.clone(),
            attributes: serde_json::from_str(&worker.attributes).unwrap_or(Value::Null),
            activity_sid: activity.sid.clone(),
            activity_name: activity.name.to_string(),
            available: activity.available,
            channels: worker
                .channels
                .iter()
                .map(|c| (name(c), c.available))
                .collect(),
            capacities: worker
                .channels
                .iter()
                .map(|c| (name(c), c.capacity))
                .collect(),
            reservations: self
                .reservations
                .iter()
                .filter(|r| r.worker == w)
                .map(|r| {
                    let task = &self.tasks[r.task];
                    (
                        r.sid.clone(),
                        task.sid.clone(),
                        self.task_channels[task.channel].unique_name.to_string(),
                        r.status.to_string(),
                    )
                })
                .collect(),
        }
    }

    pub fn workspace_json(&self) -> Value {
        let url = self.ws_url();
        let offline = &self.activities[0];
        json!({
            "account_sid": ACCOUNT_SID,
            "date_created": date(self.created),
            "date_updated": date(self.created),
            "default_activity_name": offline.name,
            "default_activity_sid": offline.sid,
            "event_callback_url": self.callback,
            "events_filter": null,
            "friendly_name": WORKSPACE_NAME,
            "multi_task_enabled": true,
            "sid": WORKSPACE_SID,
            "timeout_activity_name": offline.name,
            "timeout_activity_sid": offline.sid,
            "prioritize_queue_order": "FIFO",
            "url": url,
            "links": {
                "activities": format!("{url}/Activities"),
                "statistics": format!("{url}/Statistics"),
                "real_time_statistics": format!("{url}/RealTimeStatistics"),
                "cumulative_statistics": format!("{url}/CumulativeStatistics"),
                "task_queues": format!("{url}/TaskQueues"),
                "tasks": format!("{url}/Tasks"),
                "workers": format!("{url}/Workers"),
                "workflows": format!("{url}/Workflows"),
                "task_channels": format!("{url}/TaskChannels"),
                "events": format!("{url}/Events"),
            },
        })
    }

    pub fn activity_json(&self, a: usize) -> Value {
        let activity = &self.activities[a];
        let ws = self.ws_url();
        json!({
            "account_sid": ACCOUNT_SID,
            "available": activity.available,
            "date_created": date(self.created),
            "date_updated": date(self.created),
            "friendly_name": activity.name,
            "sid": activity.sid,
            "workspace_sid": WORKSPACE_SID,
            "url": format!("{ws}/Activities/{}", activity.sid),
            "links": { "workspace": ws },
        })
    }

    pub fn task_channel_json(&self, c: usize) -> Value {
        let channel = &self.task_channels[c];
        let ws = self.ws_url();
        json!({
            "account_sid": ACCOUNT_SID,
            "date_created": date(self.created),
            "date_updated": date(self.created),
            "friendly_name": channel.friendly_name,
            "sid": channel.sid,
            "unique_name": channel.unique_name,
            "workspace_sid": WORKSPACE_SID,
            "channel_optimized_routing": false,
            "url": format!("{ws}/TaskChannels/{}", channel.sid),
            "links": { "workspace": ws },
        })
    }

    /// The spec shows `attributes` only when a single Worker is fetched.
    pub fn worker_json(&self, w: usize, with_attributes: bool) -> Value {
        let worker = &self.workers[w];
        let activity = &self.activities[worker.activity];
        let ws = self.ws_url();
        let url = format!("{ws}/Workers/{}", worker.sid);
        json!({
            "account_sid": ACCOUNT_SID,
            "activity_name": activity.name,
            "activity_sid": activity.sid,
            "attributes": with_attributes.then(|| worker.attributes.clone()),
            "available": activity.available,
            "date_created": date(worker.created),
            "date_status_changed": date(worker.status_changed),
            "date_updated": date(worker.updated),
            "friendly_name": worker.friendly_name,
            "sid": worker.sid,
            "workspace_sid": WORKSPACE_SID,
            "url": url,
            "links": {
                "channels": format!("{url}/Channels"),
                "reservations": format!("{url}/Reservations"),
                "activity": format!("{ws}/Activities/{}", activity.sid),
                "workspace": ws,
            },
        })
    }

    pub fn worker_channel_json(&self, w: usize, c: usize) -> Value {
        let worker = &self.workers[w];
        let wc = &worker.channels[c];
        let channel = &self.task_channels[wc.channel];
        json!({
            "account_sid": ACCOUNT_SID,
            "assigned_tasks": self.assigned(w, wc.channel),
            "available": wc.available,
            "available_capacity_percentage": self.capacity_percentage(w, c),
            "configured_capacity": wc.capacity,
            "date_created": date(worker.created),
            "date_updated": date(wc.updated),
            "sid": wc.sid,
            "task_channel_sid": channel.sid,
            "task_channel_unique_name": channel.unique_name,
            "worker_sid": worker.sid,
            "workspace_sid": WORKSPACE_SID,
            "url": format!("{}/Workers/{}/Channels/{}", self.ws_url(), worker.sid, wc.sid),
        })
    }

    pub fn reservation_json(&self, r: usize) -> Value {
        let reservation = &self.reservations[r];
        let worker = &self.workers[reservation.worker];
        let task = &self.tasks[reservation.task];
        let ws = self.ws_url();
        json!({
            "account_sid": ACCOUNT_SID,
            "date_created": date(reservation.created),
            "date_updated": date(reservation.updated),
            "reservation_status": reservation.status,
            "sid": reservation.sid,
            "task_sid": task.sid,
            "worker_name": worker.friendly_name,
            "worker_sid": worker.sid,
            "workspace_sid": WORKSPACE_SID,
            "url": format!("{ws}/Workers/{}/Reservations/{}", worker.sid, reservation.sid),
            "links": {
                "task": format!("{ws}/Tasks/{}", task.sid),
                "worker": format!("{ws}/Workers/{}", worker.sid),
                "workspace": ws,
            },
        })
    }

    pub fn task_json(&self, t: usize) -> Value {
        let task = &self.tasks[t];
        let channel = &self.task_channels[task.channel];
        let ws = self.ws_url();
        let url = format!("{ws}/Tasks/{}", task.sid);
        json!({
            "account_sid": ACCOUNT_SID,
            "age": SystemTime::now().duration_since(task.created).map_or(0, |d| d.as_secs()),
            "assignment_status": task.status,
            "attributes": "{}",
            "addons": "{}",
            "date_created": date(task.created),
            "date_updated": date(task.updated),
            "task_queue_entered_date": date(task.created),
            "priority": 0,
            "reason": task.reason,
            "sid": task.sid,
            "task_queue_sid": self.task_queue_sid,
            "task_queue_friendly_name": "Sample Queue",
            "task_channel_sid": channel.sid,
            "task_channel_unique_name": channel.unique_name,
            "timeout": 86_400,
            "workflow_sid": self.workflow_sid,
            "workflow_friendly_name": "Default Fifo Workflow",
            "workspace_sid": WORKSPACE_SID,
            "url": url,
            "links": {
                "task_queue": format!("{ws}/TaskQueues/{}", self.task_queue_sid),
                "workflow": format!("{ws}/Workflows/{}", self.workflow_sid),
                "workspace": ws,
                "reservations": format!("{url}/Reservations"),
            },
        })
    }

    pub fn add_worker(&mut self, friendly_name: &str, attributes: &str) -> String {
        assert!(
            self.worker_by_name(friendly_name).is_none(),
            "a Worker is already named {friendly_name}"
        );
        let sid = self.sid("WK");
        let now = SystemTime::now();
        let mut channels = Vec::new();
        for channel in 0..self.task_channels.len() {
            channels.push(WorkerChannel {
                sid: self.sid("WC"),
                channel,
                capacity: 1,
                available: true,
                updated: now,
            });
        }
        self.workers.push(Worker {
            sid: sid.clone(),
            friendly_name: friendly_name.to_string(),
            attributes: attributes.to_string(),
            activity: 0,
            created: now,
            updated: now,
            status_changed: now,
            version: 0,
            channels,
        });
        sid
    }

    fn touch(&mut self, w: usize) {
        let worker = &mut self.workers[w];
        worker.updated = SystemTime::now();
        worker.version += 1;
    }

    pub fn rename(&mut self, w: usize, name: &str) {
        if self.workers[w].friendly_name != name {
            self.workers[w].friendly_name = name.to_string();
            self.touch(w);
        }
    }

    pub fn set_attributes(&mut self, w: usize, attributes: &str) {
        if self.workers[w].attributes != attributes {
            self.workers[w].attributes = attributes.to_string();
            self.touch(w);
            let (name, sid) = (&self.workers[w].friendly_name, self.workers[w].sid.clone());
            let description = format!("Worker {name} updated attributes");
            let fields = self.worker_fields(w);
            self.emit(
                "worker.attributes.update",
                ("Worker", &sid),
                description,
                fields,
            );
        }
    }

    /// Sends worker.activity.update only when the Activity actually changes.
    pub fn set_activity(&mut self, w: usize, a: usize) {
        let previous = self.workers[w].activity;
        if previous == a {
            return;
        }
        let now = SystemTime::now();
        let in_previous = now
            .duration_since(self.workers[w].status_changed)
            .unwrap_or_default();
        let worker = &mut self.workers[w];
        worker.activity = a;
        worker.status_changed = now;
        self.touch(w);
        let mut fields = self.worker_fields(w);
        fields.extend(pairs(&[
            (
                "WorkerPreviousActivitySid",
                self.activities[previous].sid.clone(),
            ),
            (
                "WorkerPreviousActivityName",
                self.activities[previous].name.to_string(),
            ),
            (
                "WorkerTimeInPreviousActivity",
                in_previous.as_secs().to_string(),
            ),
            (
                "WorkerTimeInPreviousActivityMs",
                in_previous.as_millis().to_string(),
            ),
        ]));
        let description = format!(
            "Worker {} updated to {} Activity",
            self.workers[w].friendly_name, self.activities[a].name
        );
        let sid = self.workers[w].sid.clone();
        self.emit(
            "worker.activity.update",
            ("Worker", &sid),
            description,
            fields,
        );
    }

    /// Sends worker.capacity.update and worker.channel.availability.update,
    /// each only when its value actually changes.
    pub fn update_channel(
        &mut self,
        w: usize,
        c: usize,
        capacity: Option<u32>,
        available: Option<bool>,
    ) {
        let previous = self.workers[w].channels[c].capacity;
        let unique_name = self.task_channels[self.workers[w].channels[c].channel].unique_name;
        let name = self.workers[w].friendly_name.clone();
        let sid = self.workers[w].sid.clone();
        if let Some(capacity) = capacity.filter(|n| *n != previous) {
            self.workers[w].channels[c].capacity = capacity;
            self.workers[w].channels[c].updated = SystemTime::now();
            self.touch(w);
            let fields = self.channel_fields(w, c, previous);
            let description = format!("Worker {name} {unique_name} capacity updated to {capacity}");
            self.emit(
                "worker.capacity.update",
                ("Worker", &sid),
                description,
                fields,
            );
        }
        let now_capacity = self.workers[w].channels[c].capacity;
        if let Some(available) = available.filter(|a| *a != self.workers[w].channels[c].available) {
            self.workers[w].channels[c].available = available;
            self.workers[w].channels[c].updated = SystemTime::now();
            self.touch(w);
            let fields = self.channel_fields(w, c, now_capacity);
            let description =
                format!("Worker {name} {unique_name} availability updated to {available}");
            self.emit(
                "worker.channel.availability.update",
                ("Worker", &sid),
                description,
                fields,
            );
        }
    }

    pub fn offer(&mut self, w: usize, channel: usize) -> (String, String) {
        let now = SystemTime::now();
        let task_sid = self.sid("WT");
        let reservation_sid = self.sid("WR");
        self.tasks.push(Task {
            sid: task_sid.clone(),
            channel,
            status: "reserved",
            reason: None,
            created: now,
            updated: now,
        });
        self.reservations.push(Reservation {
            sid: reservation_sid.clone(),
            task: self.tasks.len() - 1,
            worker: w,
            status: "pending",
            created: now,
            updated: now,
        });
        self.reservation_event(self.reservations.len() - 1, "created");
        (task_sid, reservation_sid)
    }

    fn move_reservation(&mut self, r: usize, from: &[&str], to: &'static str) {
        let reservation = &mut self.reservations[r];
        assert!(
            from.contains(&reservation.status),
            "Reservation {} is {}: it cannot become {to}",
            reservation.sid,
            reservation.status
        );
        reservation.status = to;
        reservation.updated = SystemTime::now();
    }

    fn move_task(&mut self, t: usize, to: &'static str, reason: Option<&'static str>) {
        let task = &mut self.tasks[t];
        task.status = to;
        task.reason = reason.or(task.reason);
        task.updated = SystemTime::now();
    }

    pub fn accept(&mut self, r: usize) {
        self.move_reservation(r, &["pending"], "accepted");
        self.move_task(self.reservations[r].task, "assigned", None);
        self.reservation_event(r, "accepted");
    }

    pub fn wrapup(&mut self, r: usize) {
        self.move_reservation(r, &["accepted"], "wrapping");
        let t = self.reservations[r].task;
        self.move_task(t, "wrapping", None);
        self.reservation_event(r, "wrapup");
        self.task_event(t, "wrapup");
    }

    pub fn complete(&mut self, r: usize) {
        self.move_reservation(r, &["accepted", "wrapping"], "completed");
        let t = self.reservations[r].task;
        self.move_task(t, "completed", Some("Task completed"));
        self.reservation_event(r, "completed");
        self.task_event(t, "completed");
    }

    /// TaskRouter cancels only Tasks not yet assigned.
    pub fn cancel_task(&mut self, t: usize) {
        let status = self.tasks[t].status;
        assert!(
            status == "pending" || status == "reserved",
            "Task {} is {status}: only a pending or reserved Task can be canceled",
            self.tasks[t].sid
        );
        self.move_task(t, "canceled", Some("Task canceled"));
        let pending: Vec<usize> = (0..self.reservations.len())
            .filter(|&r| self.reservations[r].task == t && self.reservations[r].status == "pending")
            .collect();
        for r in pending {
            self.move_reservation(r, &["pending"], "canceled");
            self.reservation_event(r, "canceled");
        }
        self.task_event(t, "canceled");
    }

    /// A Task whose Reservation timed out or was rejected waits in its queue
    /// again; the Worker of a timed-out one goes to the timeout Activity.
    pub fn time_out(&mut self, r: usize) {
        self.move_reservation(r, &["pending"], "timeout");
        self.move_task(self.reservations[r].task, "pending", None);
        self.reservation_event(r, "timeout");
        self.set_activity(self.reservations[r].worker, 0);
    }

    pub fn reject_pending(&mut self, w: usize) {
        let pending: Vec<usize> = (0..self.reservations.len())
            .filter(|&r| {
                self.reservations[r].worker == w && self.reservations[r].status == "pending"
            })
            .collect();
        for r in pending {
            self.move_reservation(r, &["pending"], "rejected");
            self.move_task(self.reservations[r].task, "pending", None);
            self.reservation_event(r, "rejected");
        }
    }

    fn worker_fields(&self, w: usize) -> Vec<(String, String)> {
        let worker = &self.workers[w];
        let activity = &self.activities[worker.activity];
        pairs(&[
            ("WorkerSid", worker.sid.clone()),
            ("WorkerName", worker.friendly_name.clone()),
            ("WorkerAttributes", worker.attributes.clone()),
            ("WorkerActivitySid", activity.sid.clone()),
            ("WorkerActivityName", activity.name.to_string()),
            ("WorkerVersion", worker.version.to_string()),
        ])
    }

    fn channel_fields(&self, w: usize, c: usize, previous_capacity: u32) -> Vec<(String, String)> {
        let wc = &self.workers[w].channels[c];
        let channel = &self.task_channels[wc.channel];
        let mut fields = self.worker_fields(w);
        fields.extend(pairs(&[
            ("TaskChannelSid", channel.sid.clone()),
            ("TaskChannelUniqueName", channel.unique_name.to_string()),
            ("WorkerChannelAvailable", wc.available.to_string()),
            (
                "WorkerChannelAvailableCapacity",
                self.capacity_percentage(w, c).to_string(),
            ),
            (
                "WorkerChannelPreviousCapacity",
                previous_capacity.to_string(),
            ),
            (
                "WorkerChannelTaskCount",
                self.assigned(w, wc.channel).to_string(),
            ),
        ]));
        fields
    }

    fn task_fields(&self, t: usize) -> Vec<(String, String)> {
        let task = &self.tasks[t];
        let channel = &self.task_channels[task.channel];
        let age = SystemTime::now()
            .duration_since(task.created)
            .unwrap_or_default();
        let mut fields = pairs(&[
            ("TaskSid", task.sid.clone()),
            ("TaskAttributes", "{}".to_string()),
            ("TaskAge", age.as_secs().to_string()),
            ("TaskPriority", "0".to_string()),
            ("TaskAssignmentStatus", task.status.to_string()),
            ("TaskChannelSid", channel.sid.clone()),
            ("TaskChannelUniqueName", channel.unique_name.to_string()),
            ("TaskQueueSid", self.task_queue_sid.clone()),
            ("WorkflowSid", self.workflow_sid.clone()),
        ]);
        match (task.status, task.reason) {
            ("canceled", Some(reason)) => fields.push(("TaskCanceledReason".into(), reason.into())),
            ("completed", Some(reason)) => {
                fields.push(("TaskCompletedReason".into(), reason.into()))
            }
            _ => {}
        }
        fields
    }

    fn reservation_event(&mut self, r: usize, what: &str) {
        let reservation = &self.reservations[r];
        let (w, sid) = (reservation.worker, reservation.sid.clone());
        let mut fields = self.task_fields(reservation.task);
        fields.extend(self.worker_fields(w));
        fields.push(("ReservationSid".into(), sid.clone()));
        let description = format!(
            "Reservation {sid} {what} for Worker {}",
            self.workers[w].friendly_name
        );
        self.emit(
            &format!("reservation.{what}"),
            ("Reservation", &sid),
            description,
            fields,
        );
    }

    fn task_event(&mut self, t: usize, what: &str) {
        let sid = self.tasks[t].sid.clone();
        let fields = self.task_fields(t);
        let description = format!("Task {sid} {what}");
        self.emit(&format!("task.{what}"), ("Task", &sid), description, fields);
    }

    /// Queues the event with the parameters every event carries, when the
    /// Workspace has a callback URL; events are sent on [`super::Shared::with`].
    fn emit(
        &mut self,
        event_type: &str,
        (resource_type, resource_sid): (&str, &str),
        description: String,
        fields: Vec<(String, String)>,
    ) {
        let Some(url) = self.callback.clone() else {
            return;
        };
        self.next_event += 1;
        let now = SystemTime::now();
        let mut params = pairs(&[
            ("EventType", event_type.to_string()),
            ("AccountSid", ACCOUNT_SID.to_string()),
            ("WorkspaceSid", WORKSPACE_SID.to_string()),
            ("WorkspaceName", WORKSPACE_NAME.to_string()),
            ("EventDescription", description),
            ("ResourceType", resource_type.to_string()),
            ("ResourceSid", resource_sid.to_string()),
            ("Timestamp", secs(now).to_string()),
            ("TimestampMs", millis(now).to_string()),
            ("Sid", format!("EV{:032x}", self.next_event)),
        ]);
        params.extend(fields);
        self.outbox.push(Outgoing {
            url,
            event_type: event_type.to_string(),
            params,
        });
    }
}
