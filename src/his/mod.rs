//! HIS: agents' sessions, the requests of their connections and the events
//! of their switch. The transport (WebSocket) lives in `server`; this knows
//! sessions, tokens, and which workflow runs for what — and only the adapter
//! trait of the switch.
//!
//! Each session is a task (`session.rs`) that does one piece of work at a
//! time: a request of a connection, or a switch event for its agent. A
//! request for a session that is running one is answered `Busy` at once (a
//! MediaBar sends one request at a time; a second logout while one runs is
//! a double click). A switch event waits for the request under way.
//!
//! A session outlives its connection (`session.rs`): HIS keeps it detached
//! for a grace period, a resume or a new login of the agent takes it over,
//! and HIS logs out one left alone too long.

pub mod auth;
pub mod cluster;
pub mod metrics;
mod outbox;
mod session;
pub mod store;

pub use outbox::{Closing, Messages, OUTBOX_CAPACITY, Out, Outbox, RESERVE};
pub use session::{DETACH_GRACE, SessionHandle};

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::Notify;

use crate::engine::{Engine, Observer, Response, Session};
use crate::platform::{Adapter, Answer, EventSink, SwitchError, SwitchEvent};
use crate::workflow::model::Platform;
use crate::workflow::vocab;
use auth::{Authenticator, Refused};
use cluster::{Cluster, Release};
use session::{Attach, Refusal, Target, Work};
use store::{Record, Store, token_hash};

/// An observer shared by every session's task (scenarios' coverage and
/// traces).
pub type SharedObserver = Arc<Mutex<dyn Observer + Send>>;

/// What a connection is attached to, and where its messages go. Dropping
/// it — the client went away — detaches its session, which lives on for
/// [`Options::detach_grace`].
pub struct Connection {
    outbox: Outbox,
    session: Option<Arc<SessionHandle>>,
    /// What [`His::authenticate`] found of the login about to be
    /// requested.
    verified: Option<Result<String, Refused>>,
    /// [`His::locate`] found the session busy on another node.
    elsewhere_busy: bool,
}

impl Connection {
    pub fn agent(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.agent.as_str())
    }

    /// Whether the transport may read the client's next frame: its outbox
    /// has room for what a request sends.
    pub fn has_room(&self) -> bool {
        self.outbox.has_room()
    }

    /// Sends the connection a response that HIS did not run a request for
    /// (a frame too malformed to be one).
    pub fn reply(&self, id: Option<&str>, body: Json) {
        self.outbox.send(Out::Response {
            id: id.map(str::to_string),
            body,
        });
    }

    fn error(&self, id: &str, code: &str, message: impl Into<String>) {
        self.reply(Some(id), Response::error(code, message).to_protocol());
    }

    /// The session this connection speaks for, unless it is over or another
    /// connection took it over (then the connection lets go of it).
    fn live(&mut self) -> Option<Arc<SessionHandle>> {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.is_ended() || !s.is_attached(&self.outbox))
        {
            self.session = None;
        }
        self.session.clone()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(s) = &self.session {
            s.detach(&self.outbox);
        }
    }
}

/// What an operator sets.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_sessions: usize,
    /// Switch events that may wait for one session; more are dropped (and
    /// logged), so a storm costs bounded memory.
    pub max_queued_events: usize,
    /// How long a session lives without a connection before HIS logs the
    /// agent out.
    pub detach_grace: Duration,
    /// The logout reason HIS gives when it logs out a detached session;
    /// without one, the first reason the platform offers, if it needs one.
    pub expiry_reason: Option<String>,
    /// States one request may enter before it ends with `Internal`.
    pub max_states_per_request: usize,
    /// Whether clients may use the simulated switch's controls (faults,
    /// latency, interactions …), each for its own agent. Off unless asked
    /// for: they are a demo's and a test's, never an agent's.
    pub simulator_controls: bool,
    /// How agents prove who they are; nobody is asked by default.
    pub auth: Arc<Authenticator>,
    /// How much a request's parameters may hold.
    pub param_limits: crate::engine::ParamLimits,
    /// List items one evaluation of an expression may visit.
    pub eval_budget: usize,
    /// Where sessions are kept across a restart; in memory only without.
    pub store: Option<Arc<dyn Store>>,
    /// The cluster this HIS is a node of; its sessions' store too.
    pub cluster: Option<Arc<Cluster>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_sessions: 100_000,
            max_queued_events: 1024,
            detach_grace: DETACH_GRACE,
            expiry_reason: None,
            max_states_per_request: crate::engine::STEP_BUDGET,
            simulator_controls: false,
            auth: Arc::new(Authenticator::None),
            param_limits: crate::engine::ParamLimits::default(),
            eval_budget: crate::workflow::record::EVAL_BUDGET,
            store: None,
            cluster: None,
        }
    }
}

/// HIS for one platform.
pub struct His {
    engine: Arc<Engine>,
    adapter: Arc<dyn Adapter>,
    options: Options,
    /// Sessions by their token's hash ([`store::token_hash`]): a session
    /// restored from the store has no token, only its hash.
    sessions: Mutex<HashMap<String, Arc<SessionHandle>>>,
    /// Sessions by agent: one session per agent, and where its switch
    /// events go.
    agents: Mutex<HashMap<String, Arc<SessionHandle>>>,
    counter: AtomicU64,
    keys: RandomState,
    observer: Option<SharedObserver>,
    /// Requests queued or running, HIS's own included.
    under_way: AtomicUsize,
    /// Woken when `under_way` drops to zero.
    idle: Notify,
    /// Shutting down: no new request is taken.
    closing: AtomicBool,
    /// The switch's link, as its last `link.event.*` said: a resumed
    /// MediaBar is told.
    link_up: AtomicBool,
    /// Credential checks that may run at once.
    checks: Arc<tokio::sync::Semaphore>,
    me: Weak<His>,
}

/// Credential checks run at once: a password hash takes a core and 19 MiB
/// for tens of milliseconds.
pub const CHECKS_AT_ONCE: usize = 4;
/// How long a login waits for its credentials' turn before `Busy`.
pub const CHECK_WAIT: Duration = Duration::from_secs(10);
/// How long a refused login waits for its answer.
pub const REFUSAL_DELAY: Duration = Duration::from_millis(500);

/// Requests HIS answers itself, beside the platform's workflows.
pub const RESUME: &str = "session.request.resume";
pub const LOGIN: &str = "session.request.login";
/// The request HIS makes itself to log out a session left detached.
pub const LOGOUT: &str = "session.request.logout";

impl His {
    /// HIS for `platform` on `adapter`; it subscribes to the adapter's
    /// switch events.
    pub fn new(platform: Arc<Platform>, adapter: Arc<dyn Adapter>, options: Options) -> Arc<His> {
        Self::build(platform, adapter, options, None)
    }

    /// The same, with an observer of every run (coverage, traces).
    pub fn observed(
        platform: Arc<Platform>,
        adapter: Arc<dyn Adapter>,
        options: Options,
        observer: SharedObserver,
    ) -> Arc<His> {
        Self::build(platform, adapter, options, Some(observer))
    }

    fn build(
        platform: Arc<Platform>,
        adapter: Arc<dyn Adapter>,
        options: Options,
        observer: Option<SharedObserver>,
    ) -> Arc<His> {
        let first_id = if options.store.is_some() {
            store::now_ms()
        } else {
            0
        };
        let his = Arc::new_cyclic(|me| His {
            engine: Arc::new(
                Engine::new(platform, adapter.clone())
                    .with_step_budget(options.max_states_per_request)
                    .with_param_limits(options.param_limits)
                    .with_eval_budget(options.eval_budget),
            ),
            adapter: adapter.clone(),
            options,
            sessions: Mutex::default(),
            agents: Mutex::default(),
            // Where sessions outlive the process, ids start from the
            // clock: a restarted HIS (or node of the same name) gives no
            // id a kept session has.
            counter: AtomicU64::new(first_id),
            keys: RandomState::new(),
            observer,
            under_way: AtomicUsize::new(0),
            idle: Notify::new(),
            closing: AtomicBool::new(false),
            link_up: AtomicBool::new(true),
            checks: Arc::new(tokio::sync::Semaphore::new(CHECKS_AT_ONCE)),
            me: me.clone(),
        });
        let me = Arc::downgrade(&his);
        adapter.subscribe(EventSink::new(move |e| {
            if let Some(his) = me.upgrade() {
                his.route(e);
            }
        }));
        his
    }

    pub fn platform(&self) -> &Platform {
        self.engine.platform()
    }

    /// What a login must carry: `none`, `password` or `jwt`.
    pub fn auth_kind(&self) -> &'static str {
        self.options.auth.kind()
    }

    /// The token claim that names the agent, where tokens are taken.
    pub fn agent_claim(&self) -> Option<&str> {
        self.options.auth.agent_claim()
    }

    /// Whether clients may use the simulated switch's controls.
    pub fn simulator_controls(&self) -> bool {
        self.options.simulator_controls && self.adapter.controls().is_some()
    }

    /// Whether the switch answers, as far as its adapter knows.
    pub fn switch_reachable(&self) -> Option<bool> {
        self.adapter.reachable()
    }

    /// The name metrics count a request under: its own for HIS's requests
    /// and the platform's, the prefix for the adapter's controls
    /// (`sim.request.*`), `other` for the rest — a client's made-up names
    /// must not make series without end.
    pub fn request_label(&self, name: &str) -> String {
        if [LOGIN, RESUME, LOGOUT].contains(&name) || self.platform().requests.contains_key(name) {
            return name.to_string();
        }
        match self.adapter.controls() {
            Some(c) if name.starts_with(c.prefix()) => format!("{}*", c.prefix()),
            _ => "other".to_string(),
        }
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// A new connection: its handle, and the messages HIS sends it.
    pub fn connect(&self) -> (Connection, Messages) {
        let (outbox, rx) = Outbox::new();
        (
            Connection {
                outbox,
                session: None,
                verified: None,
                elsewhere_busy: false,
            },
            rx,
        )
    }

    /// A token nobody can guess: 128 bits from a randomly keyed hash. In a
    /// cluster it begins with the agent's bucket key, so that any node
    /// finds the session it resumes.
    fn token(&self, agent: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.keys.hash_one((n, 0u8));
        let b = self.keys.hash_one((n, 1u8));
        match &self.options.cluster {
            Some(_) => format!("{}.{a:016x}{b:016x}", &cluster::key(agent)[2..]),
            None => format!("{a:016x}{b:016x}"),
        }
    }

    /// The next session id (`session-7`). Restored sessions move the count
    /// past theirs ([`His::restore`]).
    fn session_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        match &self.options.cluster {
            // Unique across the nodes' counters.
            Some(c) => format!("session-{}-{n}", c.node()),
            None => format!("session-{n}"),
        }
    }

    /// Takes one request of a connection. It never waits: the response (and
    /// the events before it) reach the connection's outbox when the session
    /// has run it.
    pub fn request(&self, conn: &mut Connection, id: &str, name: &str, params: &Json) {
        if self.closing.load(Ordering::Acquire) {
            return conn.error(
                id,
                "ShuttingDown",
                "HIS is shutting down; your session stays as the switch has it",
            );
        }
        // A check of credentials speaks for the login right after it only.
        let verified = conn.verified.take();
        if std::mem::take(&mut conn.elsewhere_busy) {
            return conn.error(
                id,
                "Busy",
                "another request of this session is running on another HIS node",
            );
        }
        match name {
            LOGIN => self.login(conn, id, params, verified),
            RESUME => self.resume(conn, id, params),
            n if self
                .adapter
                .controls()
                .is_some_and(|c| n.starts_with(c.prefix())) =>
            {
                self.control(conn, id, n, params)
            }
            n if vocab::is_request(n) => self.submit(conn, id, Target::Request(n.into()), params),
            n => conn.error(id, "InvalidRequest", format!("unknown request `{n}`")),
        }
    }

    /// Checks a login's credentials before it is requested, on a thread
    /// of its own (a password hash takes tens of milliseconds, which would
    /// hold up every connection of an async worker), so that the
    /// connection's next login request goes ahead at once. Without it, the
    /// login checks them itself. Resolves at once where agents are not
    /// authenticated.
    ///
    /// At most [`CHECKS_AT_ONCE`] checks run at once (a password hash holds
    /// 19 MiB and a core); a login that waits [`CHECK_WAIT`] for its turn
    /// is refused `Busy`. A refusal is answered after [`REFUSAL_DELAY`]:
    /// one connection guesses two passwords a second at most.
    pub async fn authenticate(&self, conn: &mut Connection, params: &Json) {
        // A connection that is logged in is refused without a check.
        if self.options.auth.is_none() || conn.live().is_some() {
            return;
        }
        let turn = tokio::time::timeout(CHECK_WAIT, self.checks.clone().acquire_owned()).await;
        let verdict = match turn {
            Err(_) | Ok(Err(_)) => Err(Refused::Busy),
            Ok(Ok(permit)) => {
                let auth = self.options.auth.clone();
                let params = params.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    auth.verify(&params)
                })
                .await
                .unwrap_or_else(|_| {
                    Err(Refused::Wrong(
                        "Your credentials could not be checked.".into(),
                    ))
                })
            }
        };
        if matches!(verdict, Err(Refused::Wrong(_))) {
            tokio::time::sleep(REFUSAL_DELAY).await;
        }
        conn.verified = Some(verdict);
    }

    /// The agent a login speaks for: the one its credentials prove, or
    /// where nobody is asked, the one it names.
    fn who(
        &self,
        conn: &mut Connection,
        id: &str,
        params: &Json,
        verified: Option<Result<String, Refused>>,
    ) -> Option<String> {
        let verdict = match verified {
            _ if self.options.auth.is_none() => {
                let Some(agent) = params.get("agent").and_then(Json::as_str) else {
                    conn.error(
                        id,
                        "InvalidRequest",
                        "parameter `agent` is required and must be text",
                    );
                    return None;
                };
                Ok(agent.to_string())
            }
            Some(verdict) => verdict,
            None => self.options.auth.verify(params),
        };
        match verdict {
            Ok(agent) => Some(agent),
            Err(refused) => {
                let claimed = params.get("agent").and_then(Json::as_str).unwrap_or("-");
                // What a client claims is logged, never at any length.
                let claimed: String = claimed.chars().take(MAX_AGENT_ID).collect();
                let code = match refused {
                    Refused::Busy => "Busy",
                    Refused::Wrong(_) => "Unauthenticated",
                };
                tracing::warn!(target: "audit", agent = ?claimed, why = %refused.message(), "login refused");
                conn.error(id, code, refused.message());
                None
            }
        }
    }

    /// Runs a workflow of the platform in the connection's session, as if it
    /// were a request: for scenarios that exercise a sub-workflow.
    pub fn run_workflow(&self, conn: &mut Connection, id: &str, name: &str, params: &Json) {
        self.submit(conn, id, Target::Workflow(name.into()), params)
    }

    fn submit(&self, conn: &mut Connection, id: &str, target: Target, params: &Json) {
        let Some(session) = conn.live() else {
            return conn.error(id, "NotLoggedIn", "log in first (session.request.login)");
        };
        let work = Work {
            target,
            params: params.clone(),
            id: id.to_string(),
            reply: Some(conn.outbox.clone()),
        };
        self.started();
        match session.submit(work) {
            Ok(()) => {}
            Err(Refusal::Busy) => {
                self.finished();
                conn.error(id, "Busy", "another request of this session is running")
            }
            Err(Refusal::Ended) => {
                self.finished();
                conn.session = None;
                conn.error(id, "NotLoggedIn", "the session has ended")
            }
        }
    }

    fn login(
        &self,
        conn: &mut Connection,
        id: &str,
        params: &Json,
        verified: Option<Result<String, Refused>>,
    ) {
        if conn.live().is_some() {
            return conn.error(id, "InvalidState", "this connection is logged in already");
        }
        let Some(agent) = self.who(conn, id, params, verified) else {
            return;
        };
        let agent = agent.as_str();
        let params = &auth::strip(params, agent);
        if let Err(why) = agent_id(agent) {
            return conn.error(id, "InvalidRequest", why);
        }
        let Some(me) = self.me.upgrade() else { return };
        // The agents' lock reserves the agent before anything reaches the
        // switch: of two logins at once, the second finds the first.
        let mut agents = lock(&self.agents);
        if let Some(s) = agents.get(agent).filter(|s| !s.is_ended()).cloned() {
            if !s.is_logged_in() {
                return conn.error(
                    id,
                    "InvalidState",
                    format!("agent {agent} is logging in on another connection"),
                );
            }
            // The agent is logged in: this MediaBar takes the session over,
            // as a second sign-in does on Finesse. The old token no longer
            // resumes it.
            // (The new token first: the session answers with it.)
            let token = self.token(agent);
            let key = token_hash(&token);
            {
                let mut sessions = lock(&self.sessions);
                sessions.remove(&s.key());
                s.set_key(key.clone());
                sessions.insert(key, s.clone());
            }
            if s.attach(conn.outbox.clone(), id, Attach::Login, token)
                .is_ok()
            {
                conn.session = Some(s);
                return;
            }
            // It ended as we came: a login like any other.
            lock(&self.sessions).remove(&s.key());
        }
        if self.session_count() >= self.options.max_sessions {
            return conn.error(id, "Busy", "HIS has as many sessions as it may hold");
        }
        let token = self.token(agent);
        let key = token_hash(&token);
        let session = self.engine.new_session(self.session_id(), agent);
        let work = Work {
            target: Target::Request(LOGIN.into()),
            params: params.clone(),
            id: id.to_string(),
            reply: Some(conn.outbox.clone()),
        };
        self.started();
        // Registered before the login runs, so the switch's events for the
        // agent — a login confirmed by event — reach its queue, and a second
        // login of the agent is refused meanwhile.
        let handle = session::start(&me, token, key.clone(), session, work);
        agents.insert(agent.to_string(), handle.clone());
        // Under the agents' lock: a login failing at once cannot be
        // forgotten before it is registered.
        lock(&self.sessions).insert(key, handle.clone());
        drop(agents);
        conn.session = Some(handle);
    }

    fn resume(&self, conn: &mut Connection, id: &str, params: &Json) {
        if conn.live().is_some() {
            return conn.error(id, "InvalidState", "this connection is logged in already");
        }
        let Some(token) = params.get("token").and_then(Json::as_str) else {
            return conn.error(
                id,
                "InvalidRequest",
                "parameter `token` is required and must be text",
            );
        };
        let Some(session) = lock(&self.sessions)
            .get(&token_hash(token))
            .filter(|s| !s.is_ended())
            .cloned()
        else {
            return conn.error(id, "NotLoggedIn", "no session has this token");
        };
        self.attach(conn, session, id, Attach::Resume, token.to_string());
    }

    /// Makes `conn` the connection of `session`; the session answers `id`.
    fn attach(
        &self,
        conn: &mut Connection,
        session: Arc<SessionHandle>,
        id: &str,
        how: Attach,
        token: String,
    ) {
        match session.attach(conn.outbox.clone(), id, how, token) {
            Ok(()) => conn.session = Some(session),
            Err(_) => conn.error(id, "NotLoggedIn", "the session has ended; log in again"),
        }
    }

    /// A request the adapter answers itself (the simulator's controls), for
    /// the caller's own agent.
    fn control(&self, conn: &mut Connection, id: &str, name: &str, params: &Json) {
        if !self.options.simulator_controls {
            return conn.error(
                id,
                "NotSupported",
                "the simulated switch's controls are off: start HIS with `hisflow serve --simulator-controls`",
            );
        }
        let Some(session) = conn.live() else {
            return conn.error(id, "NotLoggedIn", "log in first (session.request.login)");
        };
        let Some(controls) = self.adapter.controls() else {
            return;
        };
        match controls.control(&session.agent, name, params) {
            Answer::Ready(done) => conn.reply(Some(id), control_response(done)),
            // A switch in another process answers later; the connection
            // reads its next frame meanwhile, as for any request.
            Answer::Pending(later) => {
                let (outbox, id) = (conn.outbox.clone(), id.to_string());
                tokio::spawn(async move {
                    outbox.send(Out::Response {
                        id: Some(id),
                        body: control_response(later.await),
                    });
                });
            }
        }
    }

    /// Takes a switch event from the adapter to its agent's session (every
    /// session, for one about the link). One HIS cannot use is logged and
    /// dropped.
    fn route(&self, e: SwitchEvent) {
        if let Err(bad) = e.check() {
            tracing::error!(event = ?e.name, agent = ?e.agent.as_deref().unwrap_or("-"), "malformed switch event dropped: {bad}");
            return;
        }
        match &e.agent {
            None => {
                match e.name.as_str() {
                    "link.event.down" => self.link_up.store(false, Ordering::Release),
                    "link.event.up" => self.link_up.store(true, Ordering::Release),
                    _ => {}
                }
                let all: Vec<_> = lock(&self.agents).values().cloned().collect();
                for s in all {
                    s.deliver(e.clone());
                }
            }
            Some(agent) => {
                let session = lock(&self.agents).get(agent).cloned();
                match session {
                    Some(s) => {
                        s.deliver(e);
                    }
                    None => {
                        tracing::info!(agent = ?agent, event = ?e.name, "switch event for an agent without a session dropped")
                    }
                }
            }
        }
    }

    /// The session of `agent` once it handled everything queued for it, or
    /// `None` when it has none.
    pub async fn settle(&self, agent: &str) -> Option<Session> {
        let session = lock(&self.agents).get(agent).cloned()?;
        session.settle().await
    }

    /// Takes back the sessions `records` kept when HIS last stopped, each
    /// detached, with the grace it had left (the full grace for one a
    /// connection was attached to). HIS's downtime is a lost link: each
    /// session then hears `link.event.up`, and the platform's workflow for
    /// it reads every channel's state again, disposing of a session the
    /// switch logged out meanwhile. Returns how many sessions it took.
    pub fn restore(&self, records: Vec<Record>) -> usize {
        let Some(me) = self.me.upgrade() else {
            return 0;
        };
        let mut taken = 0;
        for r in records {
            if let Some(u) = &r.under_way {
                tracing::warn!(target: "audit", agent = ?r.session.agent, session = %r.session.id, request = %u.request, id = %u.id,
                    "a request was under way when HIS stopped; it is not run again: its outcome is what the switch now says");
            }
            if r.session.disposed {
                if let Some(store) = &self.options.store {
                    store.commit_later(store::Change::Remove {
                        session: r.session.id.clone(),
                        agent: r.session.agent.clone(),
                    });
                }
                continue;
            }
            if self.take_back(&me, r).is_some() {
                taken += 1;
            }
        }
        taken
    }

    /// Starts the task of a kept session, unless the agent has one here.
    fn take_back(&self, me: &Arc<His>, r: Record) -> Option<Arc<SessionHandle>> {
        {
            let mut agents = lock(&self.agents);
            if agents.contains_key(&r.session.agent) {
                return None;
            }
            // A new session's id must not be a restored one's.
            if let Some(n) = r
                .session
                .id
                .rsplit_once('-')
                .and_then(|(_, n)| n.parse::<u64>().ok())
            {
                self.counter
                    .fetch_max(n.saturating_add(1), Ordering::Relaxed);
            }
            let (agent, key) = (r.session.agent.clone(), r.token_hash.clone());
            let handle = session::restore(me, r);
            agents.insert(agent, handle.clone());
            lock(&self.sessions).insert(key, handle.clone());
            Some(handle)
        }
    }

    /// In a cluster, brings the session a resume or login names to this
    /// node before it is requested: from its owner, which hands it over
    /// unless a request of it runs (the request is then answered `Busy`),
    /// or from a dead node, by taking it over. Does nothing outside a
    /// cluster, or when the session is here or nowhere.
    pub async fn locate(&self, conn: &mut Connection, name: &str, params: &Json) {
        let Some(cluster) = self.options.cluster.clone() else {
            return;
        };
        if conn.live().is_some() {
            return;
        }
        let agent = match name {
            RESUME => params
                .get("token")
                .and_then(Json::as_str)
                .and_then(|t| t.split_once('.'))
                .and_then(|(hex, _)| cluster::agent_of(hex)),
            LOGIN => match &conn.verified {
                Some(Ok(agent)) => Some(agent.clone()),
                Some(Err(_)) => None,
                None if self.options.auth.is_none() => params
                    .get("agent")
                    .and_then(Json::as_str)
                    .map(str::to_string),
                None => None,
            },
            _ => None,
        };
        let Some(agent) = agent else { return };
        if agent_id(&agent).is_err() {
            return;
        }
        // A resume must hold the session's token before anything moves:
        // the agent's id alone (the token's prefix) takes nothing.
        let presented = match name {
            RESUME => params.get("token").and_then(Json::as_str).map(token_hash),
            _ => None,
        };
        // The node that had the session, for the audit: a hand-over
        // rewrites the entry with this node's name before it is read again.
        let mut from: Option<String> = None;
        for _ in 0..5 {
            if lock(&self.agents).contains_key(&agent) {
                return;
            }
            let found = match cluster.entry(&agent).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(agent = ?agent, "cannot read the cluster's sessions: {e}");
                    return;
                }
            };
            let Some((entry, revision)) = found else {
                return;
            };
            if presented
                .as_ref()
                .is_some_and(|h| *h != entry.record.token_hash)
            {
                return;
            }
            if entry.owner != cluster.node() && cluster.alive(&entry.owner).await {
                from = Some(entry.owner.clone());
                match cluster.ask_release(&entry.owner, &agent).await {
                    // The entry names this node now: read it again.
                    Release::Released => continue,
                    // The owner is alive but has no such session yet (it is
                    // taking it) or any more: read again, a little later.
                    Release::Gone => {
                        tokio::time::sleep(cluster::RELEASE_RETRY).await;
                        continue;
                    }
                    // Nobody listens for the owner: it died, its heartbeat
                    // not yet.
                    Release::Unreachable => {}
                    Release::Busy => {
                        conn.elsewhere_busy = true;
                        return;
                    }
                }
            }
            // Taken by a compare-and-set even when the entry names this
            // node: what was read may be stale.
            match cluster.claim(&entry, revision).await {
                Ok(()) => {}
                Err(store::StoreError::Lost) => continue,
                Err(e) => {
                    tracing::error!(agent = ?agent, "cannot take the session over: {e}");
                    return;
                }
            }
            let from = from.unwrap_or_else(|| entry.owner.clone());
            tracing::info!(target: "audit", agent = ?agent, session = %entry.record.session.id, %from, "session taken on this node");
            self.adopt(entry.record);
            return;
        }
    }

    /// Runs a session this node just took in the cluster; it reads the
    /// switch's state again, as after a restart.
    fn adopt(&self, record: Record) {
        let Some(me) = self.me.upgrade() else { return };
        self.take_back(&me, record);
    }

    /// Another node asks for the agent's session: it gets it unless a
    /// request of it runs here.
    pub async fn release(&self, agent: &str, to: &str) -> Release {
        let Some(s) = lock(&self.agents).get(agent).cloned() else {
            return Release::Gone;
        };
        s.release(to).await
    }

    /// Starts this node's part in its cluster: its heartbeat, its answers to
    /// other nodes' asks for sessions, and its look for dead nodes'
    /// sessions. Does nothing outside a cluster.
    pub fn start_cluster(&self) {
        let Some(cluster) = self.options.cluster.clone() else {
            return;
        };
        tokio::spawn(Cluster::heartbeats(Arc::downgrade(&cluster)));
        tokio::spawn(His::sweep(self.me.clone()));
        let me = self.me.clone();
        tokio::spawn(Cluster::serve_releases(
            Arc::downgrade(&cluster),
            move |agent, to| {
                let me = me.clone();
                async move {
                    match me.upgrade() {
                        Some(his) => his.release(&agent, &to).await,
                        None => Release::Gone,
                    }
                }
            },
        ));
    }

    /// Takes over, every [`cluster::SWEEP`], the sessions of nodes that
    /// died; ends with HIS.
    pub async fn sweep(me: Weak<His>) {
        loop {
            tokio::time::sleep(cluster::SWEEP).await;
            let Some(his) = me.upgrade() else { return };
            let Some(cluster) = his.options.cluster.clone() else {
                return;
            };
            if his.is_closing() {
                return;
            }
            let all = match cluster.all().await {
                Ok(all) => all,
                Err(e) => {
                    tracing::error!("cannot read the cluster's sessions: {e}");
                    continue;
                }
            };
            for (entry, revision) in all {
                if lock(&his.agents).contains_key(&entry.record.session.agent) {
                    continue;
                }
                // This node's own, from before it restarted under the same
                // name.
                // This node's own from before it restarted under the same
                // name, or a dead node's; each taken by a compare-and-set on
                // what was read, so a stale read takes nothing.
                if entry.owner != cluster.node() && cluster.alive(&entry.owner).await {
                    continue;
                }
                if cluster.claim(&entry, revision).await.is_ok() {
                    tracing::info!(target: "audit", agent = ?entry.record.session.agent, session = %entry.record.session.id, from = %entry.owner, "session of a dead node taken over");
                    his.adopt(entry.record);
                }
            }
        }
    }

    /// Expires the sessions operators mark in the store (`hisflow sessions
    /// expire`), looking every [`store::EXPIRY_POLL`]; ends with HIS.
    pub async fn watch_expiries(me: Weak<His>) {
        loop {
            tokio::time::sleep(store::EXPIRY_POLL).await;
            let Some(his) = me.upgrade() else { return };
            let Some(store) = his.options.store.clone() else {
                return;
            };
            let ids = match store.take_expiries().await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::error!("cannot read operators' expiries from the session store: {e}");
                    continue;
                }
            };
            for id in ids {
                let found = lock(&his.agents).values().find(|s| s.id == id).cloned();
                match found {
                    Some(s) => {
                        tracing::info!(target: "audit", agent = ?s.agent, session = %id, "an operator expired the session");
                        s.expire_now();
                    }
                    None => {
                        tracing::info!(session = %id, "an operator expired a session HIS no longer has")
                    }
                }
            }
        }
    }

    /// Waits until the store has every change queued so far (HIS stopping:
    /// sessions that ended are removed before the process exits).
    pub async fn flush_store(&self) {
        if let Some(store) = &self.options.store
            && let Err(e) = store.flush().await
        {
            tracing::error!("the session store could not take its last changes: {e}");
        }
    }

    /// Whether the session store, if any, took its last change.
    pub fn store_healthy(&self) -> bool {
        self.options.store.as_ref().is_none_or(|s| s.healthy())
    }

    /// A handle on this HIS that does not keep it alive.
    pub fn weak(&self) -> Weak<His> {
        self.me.clone()
    }

    /// From now on every request is refused (`ShuttingDown`); the ones under
    /// way go on. See [`His::drain`].
    pub fn shut(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Waits until no request is under way, or `grace` has passed; returns
    /// how many are still under way.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            let n = self.under_way.load(Ordering::Acquire);
            if n == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.under_way.load(Ordering::Acquire);
            }
        }
    }

    /// Whether HIS is shutting down.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Whether the switch's link is up, as its last link event said.
    pub fn switch_available(&self) -> bool {
        self.link_up.load(Ordering::Acquire)
    }

    /// Requests queued or running now.
    pub fn under_way(&self) -> usize {
        self.under_way.load(Ordering::Acquire)
    }

    fn started(&self) {
        self.under_way.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        if self.under_way.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn forget(&self, session: &str, agent: &str) {
        // The agents' lock first, as login takes them: a login that fails
        // at once is forgotten only once it is registered.
        let mut agents = lock(&self.agents);
        if let Some(s) = agents.get(agent).filter(|s| s.id == session).cloned() {
            agents.remove(agent);
            lock(&self.sessions).remove(&s.key());
        }
    }
}

/// The response to a control, in the protocol's shape.
fn control_response(done: Result<Json, SwitchError>) -> Json {
    match done {
        Ok(result) => serde_json::json!({ "ok": true, "result": result }),
        Err(e) => Response::error(e.code, e.message).to_protocol(),
    }
}

/// The longest agent id HIS takes; switches' ids are far shorter.
pub const MAX_AGENT_ID: usize = 128;

/// An agent id HIS can log, key and show: 1 to 128 characters, none of them
/// a control character.
fn agent_id(agent: &str) -> Result<(), String> {
    if agent.is_empty() || agent.chars().count() > MAX_AGENT_ID {
        return Err(format!(
            "parameter `agent` must have 1 to {MAX_AGENT_ID} characters"
        ));
    }
    if agent.chars().any(char::is_control) {
        return Err("parameter `agent` may not contain control characters".into());
    }
    Ok(())
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain data: a panic elsewhere cannot leave them torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
