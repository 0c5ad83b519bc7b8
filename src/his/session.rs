//! One session's task: the only place its state changes. Requests and switch
//! events are its two doors; it takes one piece of work at a time, so a
//! switch event never interleaves with a request. While a request waits for
//! a switch event (a `wait` state), the session's machines hear every event
//! as it comes; the workflows those events run wait until the request ends.
//!
//! A session outlives its connection: one that drops detaches it, another
//! attaches by resuming it (its token) or by logging the agent in again, and
//! one left detached past the grace period is logged out by HIS itself.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::cluster::{Cluster, Release};
use super::outbox::{Closing, Out, Outbox};
use super::store::{Change, Record, Store, StoreError, UnderWay, now_ms};
use super::{His, LOGOUT, Options, SharedObserver, lock};
use crate::engine::{Engine, Event, Inbox, Observer, Outcome, Response, Session};
use crate::platform::SwitchEvent;

/// What reaches a session besides requests, in the order the switch sent
/// it. Boxed, so that a queue's blocks — allocated per session, idle or
/// not — stay small.
pub(super) enum Inbound {
    Event(Box<SwitchEvent>),
    /// Answered with the session once everything queued before it is
    /// handled (`None` if the session ended meanwhile).
    Settle(oneshot::Sender<Option<Session>>),
}

/// What HIS tells a session about its connections.
pub(super) enum Control {
    /// A connection attached (it resumed the session, or logged its agent
    /// in again): answer its request `id` with the session as it is.
    Attached {
        reply: Outbox,
        id: String,
        how: Attach,
        /// The token the connection resumes with from now on.
        token: String,
        /// The connection it took the session from: closed once the work
        /// under way — perhaps its request — has answered.
        before: Option<Outbox>,
    },
    /// The attached connection went away.
    Detached,
    /// An operator expired the session: its connection is closed and HIS
    /// logs the agent out now.
    Expire,
    /// Another node of the cluster asks for the session.
    Release {
        to: String,
        answer: oneshot::Sender<Release>,
    },
}

/// How a connection came to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attach {
    Resume,
    /// A login of an agent whose session was live: the session goes on,
    /// under a new token.
    Login,
}

impl Attach {
    fn name(self) -> &'static str {
        match self {
            Attach::Resume => "resume",
            Attach::Login => "login",
        }
    }
}

/// What a request runs.
pub(super) enum Target {
    /// A request of the protocol, by the platform's workflow for it.
    Request(String),
    /// A workflow of the platform, directly (scenarios, tests).
    Workflow(String),
}

pub(super) struct Work {
    pub target: Target,
    pub params: Json,
    pub id: String,
    /// The connection that asked; none when HIS asks itself (expiry).
    pub reply: Option<Outbox>,
}

/// What a session's task and its holders share.
#[derive(Default)]
pub(super) struct Shared {
    /// A request is queued or running.
    busy: AtomicBool,
    /// The login succeeded: the session is the agent's.
    logged_in: AtomicBool,
    /// The session is over: disposed, or its login failed.
    ended: AtomicBool,
    /// The connection that speaks for the session: its requests run, and it
    /// hears what the session says unprompted. `None`: detached.
    attached: Mutex<Option<Outbox>>,
    /// Switch events dropped because the queue was full, not yet reported.
    lost: AtomicU64,
    /// What HIS tells the session about its connections. Rare, so a queue
    /// that allocates only when used rather than a channel per session.
    control: Mutex<ControlQueue>,
    /// Wakes the task when `control` has something.
    woken: tokio::sync::Notify,
}

#[derive(Default)]
struct ControlQueue {
    items: VecDeque<Control>,
    /// The task ended: nothing more is taken.
    closed: bool,
}

/// A session, as connections and HIS hold it. Dropping every handle ends
/// its task.
pub struct SessionHandle {
    /// The session's id (`session-7`), for logs and for HIS's maps.
    pub(super) id: String,
    pub(super) agent: String,
    /// The hash of the secret a connection resumes the session with
    /// ([`super::store::token_hash`]); a login that takes the session over
    /// replaces it. Changed under HIS's maps' locks.
    key: Mutex<String>,
    events: mpsc::Sender<Inbound>,
    requests: mpsc::Sender<Box<Work>>,
    shared: Arc<Shared>,
}

/// Why a request could not be queued.
pub(super) enum Refusal {
    Busy,
    Ended,
}

impl SessionHandle {
    pub(super) fn is_ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }

    pub(super) fn is_logged_in(&self) -> bool {
        self.shared.logged_in.load(Ordering::Acquire)
    }

    pub(super) fn key(&self) -> String {
        lock(&self.key).clone()
    }

    pub(super) fn set_key(&self, key: String) {
        *lock(&self.key) = key;
    }

    /// An operator expired the session.
    pub(super) fn expire_now(&self) {
        let _ = self.tell(Control::Expire);
    }

    /// Hands the session to node `to`, unless a request of it is queued or
    /// running.
    pub(super) async fn release(&self, to: &str) -> Release {
        if self.shared.busy.load(Ordering::Acquire) || !self.is_logged_in() {
            return Release::Busy;
        }
        let (answer, rx) = oneshot::channel();
        if self
            .tell(Control::Release {
                to: to.to_string(),
                answer,
            })
            .is_err()
        {
            return Release::Gone;
        }
        rx.await.unwrap_or(Release::Gone)
    }

    /// Whether `outbox`'s connection speaks for the session.
    pub(super) fn is_attached(&self, outbox: &Outbox) -> bool {
        lock(&self.shared.attached)
            .as_ref()
            .is_some_and(|a| a.same(outbox))
    }

    /// Queues a request, unless one is running (`Busy`) or the session is
    /// over.
    pub(super) fn submit(&self, work: Work) -> Result<(), Refusal> {
        if self.is_ended() {
            return Err(Refusal::Ended);
        }
        if self
            .shared
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Refusal::Busy);
        }
        self.requests.try_send(Box::new(work)).map_err(|_| {
            self.shared.busy.store(false, Ordering::Release);
            Refusal::Ended
        })
    }

    /// Queues a switch event. One that finds the queue full is dropped,
    /// counted, and reported to the MediaBar with the session's next work.
    pub(super) fn deliver(&self, e: SwitchEvent) {
        if let Err(mpsc::error::TrySendError::Full(Inbound::Event(e))) =
            self.events.try_send(Inbound::Event(Box::new(e)))
        {
            self.shared.lost.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(agent = %self.agent, event = ?e.name, "the session's event queue is full; event dropped");
        }
    }

    /// Makes `reply`'s connection the one that speaks for the session; the
    /// one before it is closed. The session answers request `id` with itself
    /// as it is once the work under way is done.
    pub(super) fn attach(
        &self,
        reply: Outbox,
        id: &str,
        how: Attach,
        token: String,
    ) -> Result<(), Outbox> {
        // Under the attached lock: the connection that had the session is
        // the one the session closes, and the task sees the new one before
        // it answers.
        let mut attached = lock(&self.shared.attached);
        // A login that took the session over since the resume found it
        // gave it a new token: the old one no longer resumes it.
        if how == Attach::Resume && super::store::token_hash(&token) != self.key() {
            return Err(reply);
        }
        let before = attached.clone().filter(|b| !b.same(&reply));
        if let Err(c) = self.tell(Control::Attached {
            reply: reply.clone(),
            id: id.to_string(),
            how,
            token,
            before,
        }) {
            drop(c);
            return Err(reply);
        }
        // From now on the new connection speaks for the session; the old
        // one's requests get `NotLoggedIn`, its request under way its
        // response, and then its close.
        *attached = Some(reply);
        Ok(())
    }

    /// Queues `c` for the task, unless it ended.
    fn tell(&self, c: Control) -> Result<(), Control> {
        let mut q = lock(&self.shared.control);
        if q.closed {
            return Err(c);
        }
        q.items.push_back(c);
        drop(q);
        self.shared.woken.notify_one();
        Ok(())
    }

    /// `outbox`'s connection went away: if it spoke for the session, the
    /// session is detached from now on.
    pub(super) fn detach(&self, outbox: &Outbox) {
        let mut attached = lock(&self.shared.attached);
        if attached.as_ref().is_some_and(|a| a.same(outbox)) {
            *attached = None;
            drop(attached);
            let _ = self.tell(Control::Detached);
        }
    }

    /// The session once it handled everything queued so far.
    pub(super) async fn settle(&self) -> Option<Session> {
        let (tx, rx) = oneshot::channel();
        self.events.send(Inbound::Settle(tx)).await.ok()?;
        rx.await.ok().flatten()
    }
}

/// Starts the task of a new session; the login request is its first work.
pub(super) fn start(
    his: &Arc<His>,
    token: String,
    key: String,
    session: Session,
    login: Work,
) -> Arc<SessionHandle> {
    let attached = login.reply.clone();
    let (handle, mut task) = spawnable(his, key, session, attached);
    task.shared.busy.store(true, Ordering::Release);
    task.token = Some(token);
    tokio::spawn(task.run(Some(login)));
    handle
}

/// Starts the task of a session the store kept when HIS last stopped:
/// logged in, detached, with the grace it had left.
pub(super) fn restore(his: &Arc<His>, record: Record) -> Arc<SessionHandle> {
    // What the store has: an end removes it.
    let written = serde_json::to_string(&record).ok();
    let (handle, mut task) = spawnable(his, record.token_hash.clone(), record.session, None);
    task.written = written;
    task.shared.logged_in.store(true, Ordering::Release);
    task.logged_in_at = record.logged_in_at;
    // The audit's duration counts from the login, not from the restore.
    let ago = Duration::from_millis(now_ms().saturating_sub(record.logged_in_at));
    task.since = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
    // One that had a connection lost it when HIS stopped: it has the
    // whole grace to come back.
    let detached_at = record.detached_at.unwrap_or_else(now_ms);
    task.detached_at = Some(detached_at);
    let gone = Duration::from_millis(now_ms().saturating_sub(detached_at));
    task.expire_at = Some(Instant::now() + task.options.detach_grace.saturating_sub(gone));
    tokio::spawn(task.run(None));
    handle
}

fn spawnable(
    his: &Arc<His>,
    key: String,
    session: Session,
    attached: Option<Outbox>,
) -> (Arc<SessionHandle>, Task) {
    let options = his.options.clone();
    let queue = options.max_queued_events.max(1);
    let (events, events_rx) = mpsc::channel(queue);
    let (requests, requests_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared::default());
    *lock(&shared.attached) = attached;
    let handle = Arc::new(SessionHandle {
        id: session.id.clone(),
        agent: session.agent.clone(),
        key: Mutex::new(key),
        events,
        requests,
        shared: shared.clone(),
    });
    let task = Task {
        store: options.store.clone(),
        cluster: options.cluster.clone(),
        token: None,
        logged_in_at: 0,
        detached_at: None,
        under_way: None,
        written: None,
        retry_at: None,
        moved: false,
        his: Arc::downgrade(his),
        engine: his.engine.clone(),
        observer: his.observer.clone(),
        session,
        handle: Arc::downgrade(&handle),
        shared,
        events: events_rx,
        requests: requests_rx,
        settles: Vec::new(),
        options,
        since: Instant::now(),
        expire_at: None,
        expiry_refused: false,
        working: false,
    };
    (handle, task)
}

struct Task {
    his: Weak<His>,
    engine: Arc<Engine>,
    observer: Option<SharedObserver>,
    session: Session,
    handle: Weak<SessionHandle>,
    shared: Arc<Shared>,
    events: mpsc::Receiver<Inbound>,
    requests: mpsc::Receiver<Box<Work>>,
    /// Settles that arrived while work ran, answered after it.
    settles: Vec<oneshot::Sender<Option<Session>>>,
    options: Options,
    /// When the login began.
    since: Instant,
    /// When HIS logs a detached session out; `None` while attached.
    expire_at: Option<Instant>,
    /// The switch refused the last expiry logout: HIS tries again when the
    /// interactions are over, or after another grace period.
    expiry_refused: bool,
    /// A request (or HIS's expiry) counted as under way is running.
    working: bool,
    /// Where the session is kept across a restart.
    store: Option<Arc<dyn Store>>,
    /// The cluster, when HIS is a node of one.
    cluster: Option<Arc<Cluster>>,
    /// The token the login answers with; kept only until then.
    token: Option<String>,
    /// When the login succeeded (ms since the Unix epoch).
    logged_in_at: u64,
    /// When the last connection left (ms since the Unix epoch).
    detached_at: Option<u64>,
    /// The request running, as the store records it.
    under_way: Option<UnderWay>,
    /// The record last written: one that would not change is not written.
    written: Option<String>,
    /// The store refused the last write: it is tried again then.
    retry_at: Option<Instant>,
    /// Another node took the session over: its connection is to be closed.
    moved: bool,
}

/// A switch event the session still has to handle.
enum Later {
    /// Its machines have not heard it.
    Fresh(SwitchEvent),
    /// A wait left it: its machines heard it; its workflow remains.
    Heard(SwitchEvent),
}

/// Events handled in a row before a queued request gets its turn.
const STREAK: usize = 64;

/// What woke the session's task.
enum Next {
    /// HIS queued something in `Shared::control`.
    Control,
    Inbound(Option<Inbound>),
    Work(Option<Box<Work>>),
    /// The expiry is due, or the store's retry.
    Timer,
}

/// How a piece of work ended the session, for the audit trail.
#[derive(Clone, Copy)]
enum Ender {
    /// A logout (or another request) of the agent's.
    Request,
    /// The switch logged the agent out.
    Switch,
    /// HIS logged a detached session out.
    Expiry,
}

impl Ender {
    fn name(self) -> &'static str {
        match self {
            Ender::Request => "requested",
            Ender::Switch => "switch",
            Ender::Expiry => "expired",
        }
    }
}

/// The engine's view of the session's queue while work runs.
struct Queue<'a> {
    rx: &'a mut mpsc::Receiver<Inbound>,
    settles: &'a mut Vec<oneshot::Sender<Option<Session>>>,
    limit: usize,
}

impl Inbox for Queue<'_> {
    fn next(
        &mut self,
        deadline: Instant,
    ) -> Pin<Box<dyn Future<Output = Option<SwitchEvent>> + Send + '_>> {
        Box::pin(async move {
            loop {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Err(_) => return None,
                    Ok(Some(Inbound::Event(e))) => return Some(*e),
                    Ok(Some(Inbound::Settle(tx))) => self.settles.push(tx),
                    Ok(None) => {
                        tokio::time::sleep_until(deadline).await;
                        return None;
                    }
                }
            }
        })
    }

    fn limit(&self) -> usize {
        self.limit
    }
}

impl Task {
    async fn run(mut self, first: Option<Work>) {
        let mut later = VecDeque::new();
        // The work is boxed: an idle session's task then holds only this
        // loop's state, not the largest state a workflow run can reach
        // (benches/load.rs measures a connected session's memory).
        match first {
            Some(login) => Box::pin(self.request(login, &mut later)).await,
            // A session taken back (a restart, a dead node's) reads the
            // switch before anything else, a due expiry included: HIS was
            // away, as if its link had been down.
            None => later.push_back(Later::Fresh(SwitchEvent::new(
                None,
                "link.event.up",
                Json::Object(Default::default()),
            ))),
        }
        let mut streak = 0;
        loop {
            while let Some(e) = later.pop_front() {
                if self.is_over() {
                    break;
                }
                Box::pin(self.event(e, &mut later)).await;
            }
            self.answer_settles();
            if self.is_over() {
                break;
            }
            // An expiry that is due goes before what is queued: the
            // session's state after an event includes the logout it made
            // due.
            // A request under way (its connection left after sending it)
            // goes first.
            let due = self
                .expire_at
                .filter(|_| !self.shared.busy.load(Ordering::Acquire));
            if due.is_some_and(|at| at <= Instant::now()) {
                Box::pin(self.expire(&mut later)).await;
                continue;
            }
            // One timer for the expiry and the store's retry: an idle
            // session's task holds one.
            let wake = [due, self.retry_at].into_iter().flatten().min();
            let timer = async move {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // Events first — one that came before a request is handled
            // before it — unless a long stream of them would starve the
            // request. What HIS says of connections comes before both.
            let next = if streak < STREAK {
                tokio::select! {
                    biased;
                    () = self.shared.woken.notified() => Next::Control,
                    inbound = self.events.recv() => Next::Inbound(inbound),
                    work = self.requests.recv() => Next::Work(work),
                    () = timer => Next::Timer,
                }
            } else {
                tokio::select! {
                    biased;
                    () = self.shared.woken.notified() => Next::Control,
                    work = self.requests.recv() => Next::Work(work),
                    inbound = self.events.recv() => Next::Inbound(inbound),
                    () = timer => Next::Timer,
                }
            };
            match next {
                Next::Control => {
                    let items = std::mem::take(&mut lock(&self.shared.control).items);
                    // A connection that attached is answered with a token
                    // the store already has.
                    if items.iter().any(|c| matches!(c, Control::Attached { .. })) {
                        Box::pin(self.persist()).await;
                    }
                    for c in items {
                        match c {
                            Control::Release { to, answer } => {
                                let released = Box::pin(self.hand_over(&to)).await;
                                let _ = answer.send(released);
                            }
                            c => self.on_control(c),
                        }
                    }
                    Box::pin(self.persist()).await;
                }
                Next::Work(work) => {
                    streak = 0;
                    match work {
                        Some(w) => Box::pin(self.request(*w, &mut later)).await,
                        // Every handle is gone: HIS went away. The session
                        // stays in the store, to be restored.
                        None => break,
                    }
                }
                Next::Inbound(None) => break,
                Next::Inbound(Some(Inbound::Event(e))) => {
                    streak += 1;
                    later.push_back(Later::Fresh(*e));
                }
                Next::Inbound(Some(Inbound::Settle(tx))) => {
                    let _ = tx.send(Some(self.session.clone()));
                }
                // A due expiry is taken at the loop's top.
                Next::Timer => {
                    if self.retry_at.is_some_and(|at| at <= Instant::now()) {
                        Box::pin(self.persist()).await;
                    }
                }
            }
        }
        self.close_if_moved();
        self.close_queues();
    }

    /// The session is over: what is still queued has no session to go to.
    /// Events are dropped, a request gets its one response, an attach is
    /// refused. (Run at the end, or when the task stops by a panic.)
    fn close_queues(&mut self) {
        self.shared.ended.store(true, Ordering::Release);
        self.answer_settles();
        self.events.close();
        while let Ok(inbound) = self.events.try_recv() {
            if let Inbound::Settle(tx) = inbound {
                let _ = tx.send(None);
            }
        }
        self.requests.close();
        while let Ok(work) = self.requests.try_recv() {
            refuse_ended(&work);
            self.done();
        }
        self.refuse_attaches();
    }

    /// The session takes no more connections: each that came to attach is
    /// answered `NotLoggedIn`.
    fn refuse_attaches(&mut self) {
        let items = {
            let mut q = lock(&self.shared.control);
            q.closed = true;
            std::mem::take(&mut q.items)
        };
        for c in items {
            if let Control::Attached { reply, id, .. } = c {
                reply.send(Out::Response {
                    id: Some(id),
                    body: Response::error("NotLoggedIn", "the session has ended; log in again")
                        .to_protocol(),
                });
            }
        }
    }

    fn is_over(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }

    fn answer_settles(&mut self) {
        let snapshot = (!self.is_over()).then(|| self.session.clone());
        for tx in self.settles.drain(..) {
            let _ = tx.send(snapshot.clone());
        }
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Attached {
                reply,
                id,
                how,
                token,
                before,
            } => {
                if let Some(before) = before {
                    let why = match how {
                        Attach::Resume => "The session was resumed on another connection.",
                        Attach::Login => "You logged in from another MediaBar.",
                    };
                    before.send(Out::Close(Closing::TakenOver(why.into())));
                }
                self.expire_at = None;
                self.expiry_refused = false;
                let what = match how {
                    Attach::Resume => "session resumed",
                    Attach::Login => "session taken over by a login",
                };
                tracing::info!(target: "audit", agent = ?self.session.agent, session = %self.session.id, how = how.name(), "{what}");
                let s = &self.session;
                reply.send(Out::Response {
                    id: Some(id),
                    body: json!({ "ok": true, "result": {
                        "session": s.id,
                        "agent": s.agent,
                        "state": s.state,
                        "channels": s.channels,
                        "logout_reasons": s.logout_reasons,
                        "not_ready_reasons": s.not_ready_reasons,
                        "token": token,
                        "resumed": true,
                        "switch_available": self.his.upgrade().is_none_or(|h| h.switch_available()),
                    }}),
                });
                // Events lost while no connection heard: the session as it
                // is may not be the switch's.
                if let Some(e) = self.lost(Some(&reply)) {
                    reply.send(Out::Event(e));
                }
            }
            Control::Detached => {
                // A connection that attached since is not gone; a session
                // HIS is leaving as it stops does not expire.
                if lock(&self.shared.attached).is_some() || !self.logged_in() || self.his_closing()
                {
                    return;
                }
                let grace = self.options.detach_grace;
                self.expire_at = Some(Instant::now() + grace);
                tracing::info!(target: "audit", agent = ?self.session.agent, session = %self.session.id, grace_s = grace.as_secs_f64(), "session detached");
            }
            Control::Release { answer, .. } => {
                let _ = answer.send(Release::Gone);
            }
            Control::Expire => {
                if !self.logged_in() {
                    return;
                }
                if let Some(p) = lock(&self.shared.attached).take() {
                    p.send(Out::Close(Closing::Ended(
                        "An operator ended your session; HIS logs you out.".into(),
                    )));
                }
                self.expiry_refused = false;
                self.expire_at = Some(Instant::now());
            }
        }
    }

    /// Writes the session's record to the store if it changed since the
    /// last write; waits until it is on disk. A session not logged in, or
    /// over, has none.
    async fn persist(&mut self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        if !self.logged_in() || self.is_over() || self.session.disposed {
            return;
        }
        let attached = lock(&self.shared.attached).is_some();
        self.detached_at = match (attached, self.detached_at) {
            (true, _) => None,
            (false, Some(at)) => Some(at),
            // HIS closing its connections as it stops is no agent leaving:
            // the grace starts when the MediaBar cannot come back, after
            // the restart.
            (false, None) if self.his_closing() => None,
            (false, None) => Some(now_ms()),
        };
        let Some(record) = self.record() else { return };
        let Ok(json) = serde_json::to_string(&record) else {
            return;
        };
        if self.written.as_deref() == Some(json.as_str()) {
            return;
        }
        self.retry_at = None;
        match store.commit(Change::Put(Box::new(record))).await {
            Ok(()) => self.written = Some(json),
            Err(StoreError::Lost) if self.written.is_none() => {
                // A login that another node's login of the agent beat: its
                // request answers why; the connection stays for another try.
                tracing::warn!(target: "audit", agent = ?self.session.agent, session = %self.session.id, "another HIS node logged the agent in first");
                self.stop();
            }
            Err(StoreError::Lost) => {
                tracing::warn!(target: "audit", agent = ?self.session.agent, session = %self.session.id, "another HIS node took the session over; this one lets go of it");
                // The work that made the change answers first; its
                // connection is closed after (`close_if_moved`).
                self.moved = true;
                if let Some(c) = &self.cluster {
                    c.forget(&self.session.agent);
                }
                self.written = None;
                self.stop();
            }
            Err(e) => {
                tracing::error!(agent = %self.session.agent, session = %self.session.id, "the session could not be stored; HIS tries again every {} s: {e}", STORE_RETRY.as_secs());
                self.retry_at = Some(Instant::now() + STORE_RETRY);
            }
        }
    }

    /// The session as the store keeps it.
    fn record(&self) -> Option<Record> {
        let key = self.handle.upgrade().map(|h| h.key())?;
        Some(Record {
            session: self.session.clone(),
            token_hash: key,
            logged_in_at: self.logged_in_at,
            detached_at: self.detached_at,
            under_way: self.under_way.clone(),
        })
    }

    /// Closes the connection of a session another node took over, once the
    /// work that found out has answered.
    fn close_if_moved(&mut self) {
        if std::mem::take(&mut self.moved)
            && let Some(p) = lock(&self.shared.attached).take()
        {
            p.send(Out::Close(Closing::TakenOver(
                "Your session moved to another HIS node.".into(),
            )));
        }
    }

    /// Another node runs the session from now on: this one forgets it
    /// without logging anyone out, and closes its connection.
    fn let_go(&mut self, why: &str) {
        self.written = None;
        if let Some(p) = lock(&self.shared.attached).take() {
            p.send(Out::Close(Closing::TakenOver(why.into())));
        }
        if let Some(c) = &self.cluster {
            c.forget(&self.session.agent);
        }
        self.stop();
    }

    /// Hands the session to node `to` (between two pieces of work: none
    /// runs).
    async fn hand_over(&mut self, to: &str) -> Release {
        let Some(cluster) = self.cluster.clone() else {
            return Release::Gone;
        };
        if self.shared.busy.load(Ordering::Acquire) {
            return Release::Busy;
        }
        if self.is_over() || !self.logged_in() {
            return Release::Gone;
        }
        // Its connection is about to be closed: the session is detached as
        // of now where it goes.
        let mut record = match self.record() {
            Some(r) => r,
            None => return Release::Gone,
        };
        record.detached_at = Some(self.detached_at.unwrap_or_else(now_ms));
        match cluster.hand_over(&record, to).await {
            Ok(()) => {
                tracing::info!(target: "audit", agent = ?self.session.agent, session = %self.session.id, to, "session handed to another node");
                self.let_go("Your session was resumed on another connection.");
                Release::Released
            }
            Err(StoreError::Lost) => {
                self.let_go("Your session moved to another HIS node.");
                Release::Gone
            }
            // NATS failed: the session stays here, and the asker is told
            // to try again.
            Err(e) => {
                tracing::warn!(agent = %self.session.agent, to, "the session could not be handed over: {e}");
                Release::Busy
            }
        }
    }

    fn his_closing(&self) -> bool {
        self.his.upgrade().is_none_or(|h| h.is_closing())
    }

    fn logged_in(&self) -> bool {
        self.shared.logged_in.load(Ordering::Acquire)
    }

    /// Runs one piece of work, with the events it let wait left in `later`.
    async fn run_work(
        &mut self,
        target: &Target,
        params: &Json,
        later: &mut VecDeque<Later>,
    ) -> Outcome {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
            limit: self.options.max_queued_events.max(1),
        };
        let obs = &mut self.observer.clone();
        let mut out = match target {
            Target::Request(name) => {
                self.engine
                    .handle_with(name, params, &mut self.session, &mut queue, obs)
                    .await
            }
            Target::Workflow(name) => match self.engine.platform().workflow(name).cloned() {
                Some(w) => {
                    self.engine
                        .run_with(&w, params, &mut self.session, &mut queue, obs)
                        .await
                }
                None => Outcome::refused("InvalidRequest", format!("no workflow `{name}`")),
            },
        };
        later.extend(
            std::mem::take(&mut out.deferred)
                .into_iter()
                .map(Later::Heard),
        );
        out
    }

    async fn request(&mut self, work: Work, later: &mut VecDeque<Later>) {
        self.working = true;
        let started = Instant::now();
        let login = !self.logged_in();
        self.begin(&work.target, &work.id).await;
        if self.is_over() {
            // Marking it under way found the session another node's: that
            // node runs it now; this one does nothing at the switch.
            self.shared.busy.store(false, Ordering::Release);
            if let Some(r) = &work.reply {
                r.send(Out::Response {
                    id: Some(work.id),
                    body: Response::error(
                        "NotLoggedIn",
                        "Your session moved to another HIS node; resume it there.",
                    )
                    .to_protocol(),
                });
            }
            self.done();
            return;
        }
        let out = self.run_work(&work.target, &work.params, later).await;
        self.under_way = None;
        let mut body = out.response.to_protocol();
        if !self.logged_in() {
            let ok = out.response.is_ok() && !self.session.disposed;
            let (outcome, code) = match &out.response {
                _ if ok => ("ok", None),
                Response::Error { code, .. } => ("refused", Some(code.as_str())),
                _ => ("refused", Some("NeedInfo")),
            };
            tracing::info!(target: "audit", agent = ?self.session.agent, session = %self.session.id, outcome, code, duration_ms = started.elapsed().as_secs_f64() * 1e3, "login");
            if ok {
                self.shared.logged_in.store(true, Ordering::Release);
                self.logged_in_at = now_ms();
                let token = self.token.take();
                if let Some(r) = body.get_mut("result").and_then(Json::as_object_mut) {
                    r.insert("token".into(), json!(token));
                }
            } else {
                self.end();
            }
        }
        // What the response tells, the store holds first.
        self.persist().await;
        if login && self.is_over() && self.logged_in() {
            // Another node logged the agent in at the same moment, and
            // stored its session first: that one is the agent's.
            body = Response::error(
                "InvalidState",
                format!(
                    "agent {} is logging in on another connection",
                    self.session.agent
                ),
            )
            .to_protocol();
        }
        let lost = self.lost(work.reply.as_ref());
        self.shared.busy.store(false, Ordering::Release);
        let ended = self.logged_in() && self.session.disposed;
        let close = out.response.close().map(str::to_string);
        let reply = work.reply.as_ref();
        self.tell(lost.into_iter().chain(out.events), reply);
        if let Some(r) = reply {
            r.send(Out::Response {
                id: Some(work.id),
                body,
            });
        }
        if ended {
            self.audit_end(Ender::Request, None);
        }
        self.finish(reply, close, ended);
        self.done();
    }

    /// Marks the request under way in the store before it runs: after a
    /// crash HIS reports it, and does not run it again.
    async fn begin(&mut self, target: &Target, id: &str) {
        if self.store.is_none() || !self.logged_in() {
            return;
        }
        let request = match target {
            Target::Request(n) | Target::Workflow(n) => n.clone(),
        };
        self.under_way = Some(UnderWay {
            request,
            id: id.to_string(),
            since: now_ms(),
        });
        self.persist().await;
    }

    /// The detached session's grace is over: HIS logs the agent out with
    /// the platform's logout workflow, as the agent would.
    async fn expire(&mut self, later: &mut VecDeque<Later>) {
        // A connection attached; or HIS is stopping, and leaves the agents
        // as the switch has them.
        if lock(&self.shared.attached).is_some() || self.his_closing() {
            self.expire_at = None;
            return;
        }
        // A request that came meanwhile goes first; the expiry stays due.
        if self
            .shared
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.expire_at = None;
        if let Some(his) = self.his.upgrade() {
            his.started();
        }
        self.working = true;
        let target = Target::Request(LOGOUT.into());
        self.begin(&target, "-").await;
        if self.is_over() {
            // Another node has the session now: its expiry is that node's.
            self.shared.busy.store(false, Ordering::Release);
            self.done();
            return;
        }
        let configured = self.options.expiry_reason.clone();
        let params = configured
            .as_ref()
            .map_or_else(|| json!({}), |r| json!({ "reason": r }));
        let mut out = self.run_work(&target, &params, later).await;
        // The platform needs a reason and none is configured, or refuses the
        // configured one: the first it offers, rather than an agent left
        // logged in for ever.
        let fallback = match &out.response {
            Response::NeedInfo { choices, .. } => choices.get(0).and_then(Json::as_str),
            Response::Error { code, .. } if code == "ReasonCodeOutOfRange" => {
                self.session.logout_reasons.first().map(String::as_str)
            }
            _ => None,
        }
        .filter(|r| configured.as_deref() != Some(*r))
        .map(str::to_string);
        if let Some(first) = fallback {
            match &configured {
                None => {
                    tracing::warn!(agent = ?self.session.agent, session = %self.session.id, reason = ?first, "the platform requires a logout reason and `expiry_reason` is not configured; using the first it offers")
                }
                Some(c) => {
                    tracing::error!(agent = ?self.session.agent, session = %self.session.id, configured = ?c, reason = ?first, "the platform refuses the configured `expiry_reason`; using the first reason it offers")
                }
            }
            self.tell(out.events.drain(..), None);
            out = self
                .run_work(&target, &json!({ "reason": first }), later)
                .await;
        }
        self.under_way = None;
        self.persist().await;
        let lost = self.lost(None);
        self.shared.busy.store(false, Ordering::Release);
        self.tell(lost.into_iter().chain(out.events), None);
        let ended = self.session.disposed;
        if ended {
            self.audit_end(Ender::Expiry, None);
            // A connection that attached while the logout ran hears the end.
            let close = out.response.close().map(str::to_string);
            self.finish(None, close, true);
        } else {
            match &out.response {
                Response::Ok { .. } => {
                    tracing::info!(target: "audit", agent = ?self.session.agent, session = %self.session.id, "expiry logout accepted; the switch completes it later");
                }
                other => {
                    let body = other.to_protocol();
                    tracing::warn!(target: "audit", agent = ?self.session.agent, session = %self.session.id, code = ?body["error"]["code"], message = ?body["error"]["message"], "expiry logout refused; HIS tries again");
                    self.expiry_refused = true;
                    self.expire_at = Some(Instant::now() + self.options.detach_grace);
                }
            }
        }
        self.done();
    }

    async fn event(&mut self, e: Later, later: &mut VecDeque<Later>) {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
            limit: self.options.max_queued_events.max(1),
        };
        let obs = &mut self.observer.clone();
        let (e, out) = match e {
            Later::Fresh(e) => {
                let out = self
                    .engine
                    .event(&e, &mut self.session, &mut queue, obs)
                    .await;
                (e, out)
            }
            Later::Heard(e) => {
                let out = self
                    .engine
                    .route(&e, &mut self.session, &mut queue, obs)
                    .await;
                (e, out)
            }
        };
        later.extend(out.deferred.into_iter().map(Later::Heard));
        match &out.response {
            Response::Error { code, message } if code == "Internal" => {
                tracing::error!(agent = %self.session.agent, event = ?e.name, ?message, "handling a switch event failed");
                obs.fault(
                    &self.session.agent,
                    &format!("handling `{}` failed: {message}", e.name),
                );
            }
            Response::Error { code, message } => {
                tracing::warn!(agent = %self.session.agent, event = ?e.name, ?code, ?message, "a switch event's workflow refused");
            }
            _ => {}
        }
        let ended = self.session.disposed;
        if ended {
            self.audit_end(Ender::Switch, Some(&e));
        }
        self.persist().await;
        let lost = self.lost(None);
        let close = out.response.close().map(str::to_string);
        self.tell(lost.into_iter().chain(out.events), None);
        self.finish(None, close, ended);
        // An expiry logout the switch refused (an interaction in progress)
        // is tried again once the interactions are over.
        if self.expiry_refused
            && !ended
            && self
                .session
                .channels
                .iter()
                .all(|c| c.interactions.is_empty())
        {
            self.expiry_refused = false;
            self.expire_at = Some(Instant::now());
        }
    }

    fn audit_end(&self, how: Ender, event: Option<&SwitchEvent>) {
        let cause = event.and_then(|e| e.text("cause"));
        tracing::info!(
            target: "audit",
            agent = ?self.session.agent,
            session = %self.session.id,
            how = how.name(),
            cause = cause.map(tracing::field::debug),
            duration_s = self.since.elapsed().as_secs_f64(),
            "logout"
        );
    }

    /// Sends events to the connection that asked (`reply`), or else to the
    /// one attached.
    fn tell(&self, events: impl Iterator<Item = Event>, reply: Option<&Outbox>) {
        let attached;
        let to = match reply {
            Some(r) => r,
            None => {
                attached = lock(&self.shared.attached).clone();
                match &attached {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        for e in events {
            to.send(Out::Event(e));
        }
    }

    /// After a piece of work: closes the connections it says to close. A
    /// session that ended closes its connection (with the work's reason, or
    /// `the session ended`) and HIS forgets it.
    fn finish(&mut self, reply: Option<&Outbox>, close: Option<String>, ended: bool) {
        let close = match close {
            Some(reason) => Some(reason),
            None if ended => Some("the session ended".to_string()),
            None => None,
        };
        let Some(reason) = close else { return };
        if let Some(r) = reply {
            r.send(Out::Close(Closing::Ended(reason.clone())));
        }
        if ended {
            self.end();
            // A connection that came to attach hears why not before the
            // close.
            self.refuse_attaches();
        }
        let mut attached = lock(&self.shared.attached);
        // Work that closes only its requester leaves the attached connection
        // be.
        let close_attached = ended || reply.is_none();
        if close_attached && let Some(p) = attached.take() {
            if !reply.is_some_and(|r| r.same(&p)) {
                p.send(Out::Close(Closing::Ended(reason)));
            }
            // A session that goes on without its connection is detached,
            // and expires as any other.
            if !ended && self.logged_in() && !self.his_closing() {
                self.expire_at = Some(Instant::now() + self.options.detach_grace);
            }
        }
    }

    /// An event telling the MediaBar that switch events were lost, if any
    /// were since the last one: what it shows may no longer be the switch's.
    /// Kept while no connection would hear it.
    fn lost(&self, reply: Option<&Outbox>) -> Option<Event> {
        if reply.is_none() && lock(&self.shared.attached).is_none() {
            return None;
        }
        let n = self.shared.lost.swap(0, Ordering::AcqRel);
        (n > 0).then(|| {
            tracing::error!(agent = %self.session.agent, lost = n, "switch events were dropped: the session may no longer be the switch's");
            Event {
                name: "session.event.eventsLost".into(),
                data: json!({ "count": n }).into(),
            }
        })
    }

    /// A request HIS counted as under way is over.
    fn done(&mut self) {
        self.working = false;
        if let Some(his) = self.his.upgrade() {
            his.finished();
        }
    }

    /// The session is over: HIS forgets it, and so does the store; what is
    /// queued is dropped.
    fn end(&mut self) {
        if let Some(store) = &self.store
            && self.written.take().is_some()
        {
            store.commit_later(Change::Remove {
                session: self.session.id.clone(),
                agent: self.session.agent.clone(),
            });
        }
        self.stop();
    }

    /// HIS forgets the session; the store keeps what it has (a task that
    /// stops with HIS, or by a panic, is restored at the next start).
    fn stop(&mut self) {
        self.shared.ended.store(true, Ordering::Release);
        self.expire_at = None;
        if let Some(his) = self.his.upgrade() {
            his.forget(&self.session.id, &self.session.agent);
        }
    }
}

/// The one response of a request that found its session over.
fn refuse_ended(work: &Work) {
    if let Some(reply) = &work.reply {
        reply.send(Out::Response {
            id: Some(work.id.clone()),
            body: Response::error("NotLoggedIn", "the session has ended").to_protocol(),
        });
    }
}

impl Drop for Task {
    /// A task that stops — even by a panic — leaves no session that looks
    /// alive: a new login of the agent is then possible, what was queued is
    /// answered, and the work it was doing no longer counts as under way.
    fn drop(&mut self) {
        if self.working {
            self.done();
        }
        if !self.is_over() {
            self.stop();
        }
        if !lock(&self.shared.control).closed {
            self.close_queues();
        }
    }
}

/// How long a session whose write the store refused waits to try again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How long a detached session lives by default.
pub const DETACH_GRACE: Duration = Duration::from_secs(120);
