//! One session's task: the only place its state changes. Requests and switch
//! events are its two doors; it takes one piece of work at a time, so a
//! switch event never interleaves with a request. While a request waits for
//! a switch event (a `wait` state), the session's machines hear every event
//! as it comes; the workflows those events run wait until the request ends.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::outbox::{Out, Outbox};
use super::{His, SharedObserver, lock};
use crate::engine::{Engine, Event, Inbox, Observer, Outcome, Response, Session};
use crate::platform::SwitchEvent;

/// What reaches a session besides requests. Boxed, so that a queue's
/// blocks — allocated per session, idle or not — stay small.
pub(super) enum Inbound {
    Event(Box<SwitchEvent>),
    /// Answered with the session once everything queued before it is
    /// handled (`None` if the session ended meanwhile).
    Settle(oneshot::Sender<Option<Session>>),
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
    pub reply: Outbox,
}

/// What a session's task and its holders share.
#[derive(Default)]
pub(super) struct Shared {
    /// A request is queued or running.
    busy: AtomicBool,
    /// The session is over: disposed, or its login failed.
    ended: AtomicBool,
    /// The connection that hears what the session says unprompted: the one
    /// that logged in or resumed last.
    push: Mutex<Option<Outbox>>,
    /// Switch events dropped because the queue was full, not yet reported.
    lost: AtomicU64,
}

/// A session, as connections and HIS hold it. Dropping every handle ends
/// its task.
pub struct SessionHandle {
    pub(super) token: String,
    pub(super) agent: String,
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
            tracing::warn!(agent = %self.agent, event = %e.name, "the session's event queue is full; event dropped");
        }
    }

    /// From now on unprompted events go to `outbox`.
    pub(super) fn attach(&self, outbox: Outbox) {
        *lock(&self.shared.push) = Some(outbox);
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
    session: Session,
    login: Work,
    queue: usize,
) -> Arc<SessionHandle> {
    let (events, events_rx) = mpsc::channel(queue.max(1));
    let (requests, requests_rx) = mpsc::channel(1);
    let shared = Arc::new(Shared::default());
    *lock(&shared.push) = Some(login.reply.clone());
    shared.busy.store(true, Ordering::Release);
    let handle = Arc::new(SessionHandle {
        token,
        agent: session.agent.clone(),
        events,
        requests,
        shared: shared.clone(),
    });
    let task = Task {
        his: Arc::downgrade(his),
        engine: his.engine.clone(),
        observer: his.observer.clone(),
        session,
        token: handle.token.clone(),
        shared,
        events: events_rx,
        requests: requests_rx,
        settles: Vec::new(),
        limit: queue.max(1),
        logged_in: false,
    };
    tokio::spawn(task.run(login));
    handle
}

struct Task {
    his: Weak<His>,
    engine: Arc<Engine>,
    observer: Option<SharedObserver>,
    session: Session,
    token: String,
    shared: Arc<Shared>,
    events: mpsc::Receiver<Inbound>,
    requests: mpsc::Receiver<Box<Work>>,
    /// Settles that arrived while work ran, answered after it.
    settles: Vec<oneshot::Sender<Option<Session>>>,
    /// How many events may wait for a request.
    limit: usize,
    logged_in: bool,
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
    async fn run(mut self, login: Work) {
        let mut later = VecDeque::new();
        // The work is boxed: an idle session's task then holds only this
        // loop's state, not the largest state a workflow run can reach
        // (benches/load.rs measures a connected session's memory).
        Box::pin(self.request(login, &mut later)).await;
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
            // Events first — one that came before a request is handled
            // before it — unless a long stream of them would starve the
            // request.
            let inbound = if streak < STREAK {
                tokio::select! {
                    biased;
                    inbound = self.events.recv() => Some(inbound),
                    work = self.requests.recv() => { streak = 0; self.take(work, &mut later).await; None }
                }
            } else {
                streak = 0;
                tokio::select! {
                    biased;
                    work = self.requests.recv() => { self.take(work, &mut later).await; None }
                    inbound = self.events.recv() => Some(inbound),
                }
            };
            match inbound {
                None => {}
                Some(None) => break,
                Some(Some(Inbound::Event(e))) => {
                    streak += 1;
                    later.push_back(Later::Fresh(*e));
                }
                Some(Some(Inbound::Settle(tx))) => {
                    let _ = tx.send(Some(self.session.clone()));
                }
            }
        }
        self.shared.ended.store(true, Ordering::Release);
        self.answer_settles();
        // What is still queued has no session to go to: events are dropped,
        // a request gets its one response.
        self.events.close();
        while let Ok(inbound) = self.events.try_recv() {
            if let Inbound::Settle(tx) = inbound {
                let _ = tx.send(None);
            }
        }
        self.requests.close();
        while let Ok(work) = self.requests.try_recv() {
            refuse_ended(&work);
        }
    }

    /// Runs a request that came, or stops when none can come any more.
    async fn take(&mut self, work: Option<Box<Work>>, later: &mut VecDeque<Later>) {
        match work {
            Some(w) => Box::pin(self.request(*w, later)).await,
            None => self.end(),
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

    async fn request(&mut self, work: Work, later: &mut VecDeque<Later>) {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
            limit: self.limit,
        };
        let obs = &mut self.observer.clone();
        let mut out = match &work.target {
            Target::Request(name) => {
                self.engine
                    .handle_with(name, &work.params, &mut self.session, &mut queue, obs)
                    .await
            }
            Target::Workflow(name) => match self.engine.platform().workflow(name).cloned() {
                Some(w) => {
                    self.engine
                        .run_with(&w, &work.params, &mut self.session, &mut queue, obs)
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
        let mut body = out.response.to_protocol();
        if !self.logged_in {
            if out.response.is_ok() && !self.session.disposed {
                self.logged_in = true;
                if let Some(r) = body.get_mut("result").and_then(Json::as_object_mut) {
                    r.insert("token".into(), json!(self.token));
                }
                tracing::info!(agent = %self.session.agent, session = %self.session.id, "logged in");
            } else {
                self.end();
            }
        }
        let lost = self.lost();
        self.shared.busy.store(false, Ordering::Release);
        let ended = self.logged_in && self.session.disposed;
        let close = out.response.close().map(str::to_string);
        self.tell(lost.into_iter().chain(out.events), Some(&work.reply));
        work.reply.send(Out::Response {
            id: Some(work.id),
            body,
        });
        self.finish(Some(&work.reply), close, ended);
    }

    async fn event(&mut self, e: Later, later: &mut VecDeque<Later>) {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
            limit: self.limit,
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
                tracing::error!(agent = %self.session.agent, event = %e.name, %message, "handling a switch event failed");
                obs.fault(
                    &self.session.agent,
                    &format!("handling `{}` failed: {message}", e.name),
                );
            }
            Response::Error { code, message } => {
                tracing::warn!(agent = %self.session.agent, event = %e.name, %code, %message, "a switch event's workflow refused");
            }
            _ => {}
        }
        let ended = self.session.disposed;
        if ended {
            tracing::info!(agent = %self.session.agent, event = %e.name, "the switch ended the session");
        }
        let lost = self.lost();
        let close = out.response.close().map(str::to_string);
        self.tell(lost.into_iter().chain(out.events), None);
        self.finish(None, close, ended);
    }

    /// Sends events to the connection that asked (`reply`), or else to the
    /// one that hears the session unprompted.
    fn tell(&self, events: impl Iterator<Item = Event>, reply: Option<&Outbox>) {
        let push;
        let to = match reply {
            Some(r) => r,
            None => {
                push = lock(&self.shared.push).clone();
                match &push {
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
    /// session that ended closes every connection attached to it (with the
    /// work's reason, or `the session ended`) and HIS forgets it.
    fn finish(&mut self, reply: Option<&Outbox>, close: Option<String>, ended: bool) {
        let close = match close {
            Some(reason) => Some(reason),
            None if ended => Some("the session ended".to_string()),
            None => None,
        };
        let Some(reason) = close else { return };
        if let Some(r) = reply {
            r.send(Out::Close(reason.clone()));
        }
        if ended {
            self.end();
        }
        let mut push = lock(&self.shared.push);
        // Work that closes only its requester leaves the push connection be.
        let close_push = ended || reply.is_none();
        if close_push
            && let Some(p) = push.take()
            && !reply.is_some_and(|r| r.same(&p))
        {
            p.send(Out::Close(reason));
        }
    }

    /// An event telling the MediaBar that switch events were lost, if any
    /// were since the last one: what it shows may no longer be the switch's.
    fn lost(&self) -> Option<Event> {
        let n = self.shared.lost.swap(0, Ordering::AcqRel);
        (n > 0).then(|| {
            tracing::error!(agent = %self.session.agent, lost = n, "switch events were dropped: the session may no longer be the switch's");
            Event {
                name: "session.event.eventsLost".into(),
                data: json!({ "count": n }),
            }
        })
    }

    /// The session is over: HIS forgets it; what is queued is dropped.
    fn end(&mut self) {
        self.shared.ended.store(true, Ordering::Release);
        if let Some(his) = self.his.upgrade() {
            his.forget(&self.token, &self.session.agent);
        }
    }
}

/// The one response of a request that found its session over.
fn refuse_ended(work: &Work) {
    work.reply.send(Out::Response {
        id: Some(work.id.clone()),
        body: Response::error("NotLoggedIn", "the session has ended").to_protocol(),
    });
}

impl Drop for Task {
    /// A task that stops — even by a panic — leaves no session that looks
    /// alive: a new login of the agent is then possible.
    fn drop(&mut self) {
        if !self.is_over() {
            self.end();
        }
    }
}
