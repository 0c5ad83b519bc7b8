//! One session's task: the only place its state changes. Requests and switch
//! events are its two doors; it takes one piece of work at a time, so a
//! switch event never interleaves with a request. A `wait` of a running
//! request takes the events it waits for from the same queue; the others are
//! handled after the request, in the order they came.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::outbox::{Out, Outbox};
use super::{His, SharedObserver, lock};
use crate::engine::{Engine, Inbox, NoObserver, Observer, Outcome, Response, Session};
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

    /// Queues a switch event; false when the queue is full or the session
    /// is over.
    pub(super) fn deliver(&self, e: SwitchEvent) -> bool {
        match self.events.try_send(Inbound::Event(Box::new(e))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(Inbound::Event(e))) => {
                tracing::warn!(agent = %self.agent, event = %e.name, "the session's event queue is full; event dropped");
                false
            }
            Err(_) => false,
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
    logged_in: bool,
}

/// The engine's view of the session's queue while a request runs.
struct Queue<'a> {
    rx: &'a mut mpsc::Receiver<Inbound>,
    settles: &'a mut Vec<oneshot::Sender<Option<Session>>>,
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
}

impl Task {
    async fn run(mut self, login: Work) {
        let mut later = VecDeque::new();
        // The work is boxed: an idle session's task then holds only this
        // loop's state, not the largest state a workflow run can reach
        // (benches/load.rs measures a connected session's memory).
        Box::pin(self.request(login, &mut later)).await;
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
            // Events first: one that came before a request is handled before it.
            tokio::select! {
                biased;
                inbound = self.events.recv() => match inbound {
                    Some(Inbound::Event(e)) => later.push_back(*e),
                    Some(Inbound::Settle(tx)) => { let _ = tx.send(Some(self.session.clone())); }
                    None => break,
                },
                work = self.requests.recv() => match work {
                    Some(w) => Box::pin(self.request(*w, &mut later)).await,
                    None => break,
                },
            }
        }
        self.shared.ended.store(true, Ordering::Release);
        self.answer_settles();
        // What is still queued has no session to go to.
        self.events.close();
        while let Ok(inbound) = self.events.try_recv() {
            if let Inbound::Settle(tx) = inbound {
                let _ = tx.send(None);
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

    async fn request(&mut self, work: Work, later: &mut VecDeque<SwitchEvent>) {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
        };
        let mut none = NoObserver;
        let mut shared;
        let obs: &mut dyn Observer = match &self.observer {
            Some(o) => {
                shared = o.clone();
                &mut shared
            }
            None => &mut none,
        };
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
        later.extend(std::mem::take(&mut out.deferred));
        let mut body = out.response.to_protocol();
        let first = !self.logged_in;
        if first {
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
        self.shared.busy.store(false, Ordering::Release);
        for e in out.events {
            work.reply.send(Out::Event(e));
        }
        work.reply.send(Out::Response {
            id: Some(work.id),
            body,
        });
        let ended = self.logged_in && self.session.disposed;
        let close = match out.response.close() {
            Some(reason) => Some(reason.to_string()),
            // A session that ended leaves no connection attached to nothing.
            None if ended => Some("the session ended".to_string()),
            None => None,
        };
        if let Some(reason) = &close {
            work.reply.send(Out::Close(reason.clone()));
        }
        if ended {
            self.end();
            // Every other connection of the session learns it ended too.
            if let (Some(push), Some(reason)) = (lock(&self.shared.push).take(), close)
                && !push.same(&work.reply)
            {
                push.send(Out::Close(reason));
            }
        }
    }

    async fn event(&mut self, e: SwitchEvent, later: &mut VecDeque<SwitchEvent>) {
        let mut queue = Queue {
            rx: &mut self.events,
            settles: &mut self.settles,
        };
        let mut none = NoObserver;
        let mut shared;
        let obs: &mut dyn Observer = match &self.observer {
            Some(o) => {
                shared = o.clone();
                &mut shared
            }
            None => &mut none,
        };
        let out = self
            .engine
            .event(&e, &mut self.session, &mut queue, obs)
            .await;
        later.extend(out.deferred);
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
        let push = lock(&self.shared.push).clone();
        if let Some(push) = &push {
            for ev in out.events {
                push.send(Out::Event(ev));
            }
        }
        let close = out.response.close().map(str::to_string);
        if self.session.disposed {
            tracing::info!(agent = %self.session.agent, event = %e.name, "the switch ended the session");
            self.end();
        }
        if let (Some(push), Some(reason)) = (
            push,
            close.or_else(|| self.is_over().then(|| "the session ended".to_string())),
        ) {
            lock(&self.shared.push).take();
            push.send(Out::Close(reason));
        }
    }

    /// The session is over: HIS forgets it; what is queued is dropped.
    fn end(&mut self) {
        self.shared.ended.store(true, Ordering::Release);
        if let Some(his) = self.his.upgrade() {
            his.forget(&self.token, &self.session.agent);
        }
    }
}
