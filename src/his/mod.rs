//! HIS: agents' sessions and the request behind every client frame. The
//! transport (WebSocket) lives in `server`; this knows sessions, tokens, and
//! which workflow runs for what.
//!
//! One request at a time per session: a request for a session that is
//! already running one is answered `Busy` at once (a MediaBar sends one
//! request at a time; a second logout while one runs is a double click).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use crate::engine::{Engine, Event, Interaction, NoObserver, Response, Session};
use crate::platform::sim::{Fault, SimSwitch};
use crate::workflow::model::Platform;
use crate::workflow::vocab;

/// One agent's session, shared by the connections that attached to it.
pub struct Slot {
    token: String,
    agent: String,
    /// `None` once the session is disposed of.
    session: tokio::sync::Mutex<Option<Session>>,
}

/// What a connection is attached to.
#[derive(Default)]
pub struct Connection {
    slot: Option<Arc<Slot>>,
}

impl Connection {
    pub fn agent(&self) -> Option<&str> {
        self.slot.as_ref().map(|s| s.agent.as_str())
    }
}

/// What a request produced for its connection.
pub struct Reply {
    pub events: Vec<Event>,
    /// The response in the protocol's shape: `{ok, result}` or `{ok: false, error}`.
    pub response: Json,
    /// Close the connection after sending the response.
    pub close: bool,
}

impl Reply {
    fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply {
            events: Vec::new(),
            response: Response::error(code, message).to_protocol(),
            close: false,
        }
    }
}

/// Limits an operator sets.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sessions: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 100_000,
        }
    }
}

/// HIS for one platform.
pub struct His {
    engine: Engine,
    sim: Option<Arc<SimSwitch>>,
    limits: Limits,
    /// Sessions by token.
    sessions: Mutex<HashMap<String, Arc<Slot>>>,
    /// Tokens by agent: one session per agent.
    agents: Mutex<HashMap<String, String>>,
    counter: AtomicU64,
    keys: RandomState,
}

/// Requests HIS answers itself, beside the platform's workflows.
pub const RESUME: &str = "session.request.resume";

impl His {
    /// HIS on the simulated switch: its control requests (`sim.request.*`)
    /// are available.
    pub fn simulated(platform: Arc<Platform>, sim: Arc<SimSwitch>, limits: Limits) -> His {
        let mut his = His::new(Engine::new(platform, sim.clone()), limits);
        his.sim = Some(sim);
        his
    }

    pub fn new(engine: Engine, limits: Limits) -> His {
        His {
            engine,
            sim: None,
            limits,
            sessions: Mutex::default(),
            agents: Mutex::default(),
            counter: AtomicU64::new(0),
            keys: RandomState::new(),
        }
    }

    pub fn platform(&self) -> &Platform {
        self.engine.platform()
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// A token nobody can guess: 128 bits from a randomly keyed hash.
    fn token(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = self.keys.hash_one((n, 0u8));
        let b = self.keys.hash_one((n, 1u8));
        format!("{a:016x}{b:016x}")
    }

    /// Handles one request of a connection.
    pub async fn request(&self, conn: &mut Connection, name: &str, params: &Json) -> Reply {
        match name {
            "session.request.login" => self.login(conn, params).await,
            RESUME => self.resume(conn, params),
            n if n.starts_with("sim.request.") => self.simulate(conn, n, params).await,
            n if vocab::is_request(n) => self.run(conn, n, params).await,
            n => Reply::error("InvalidRequest", format!("unknown request `{n}`")),
        }
    }

    async fn login(&self, conn: &mut Connection, params: &Json) -> Reply {
        if conn.slot.is_some() {
            return Reply::error("InvalidState", "this connection is logged in already");
        }
        let Some(agent) = params.get("agent").and_then(Json::as_str) else {
            return Reply::error(
                "InvalidRequest",
                "parameter `agent` is required and must be text",
            );
        };
        if lock(&self.agents).contains_key(agent) {
            return Reply::error(
                "InvalidState",
                format!("agent {agent} is logged in already; resume that session with its token"),
            );
        }
        if self.session_count() >= self.limits.max_sessions {
            return Reply::error("Busy", "HIS has as many sessions as it may hold");
        }
        let token = self.token();
        let id = format!("session-{}", self.counter.fetch_add(1, Ordering::Relaxed));
        let mut session = Session::new(id, agent);
        let out = self
            .engine
            .handle(
                "session.request.login",
                params,
                &mut session,
                &mut NoObserver,
            )
            .await;
        let mut response = out.response.to_protocol();
        if out.response.is_ok() {
            let slot = Arc::new(Slot {
                token: token.clone(),
                agent: agent.to_string(),
                session: tokio::sync::Mutex::new(Some(session)),
            });
            {
                let mut agents = lock(&self.agents);
                if agents.contains_key(agent) {
                    return Reply::error(
                        "InvalidState",
                        format!("agent {agent} logged in on another connection meanwhile"),
                    );
                }
                agents.insert(agent.to_string(), token.clone());
            }
            lock(&self.sessions).insert(token.clone(), slot.clone());
            conn.slot = Some(slot);
            if let Some(r) = response.get_mut("result").and_then(Json::as_object_mut) {
                r.insert("token".into(), json!(token));
            }
        }
        Reply {
            events: out.events,
            response,
            close: false,
        }
    }

    fn resume(&self, conn: &mut Connection, params: &Json) -> Reply {
        let Some(token) = params.get("token").and_then(Json::as_str) else {
            return Reply::error(
                "InvalidRequest",
                "parameter `token` is required and must be text",
            );
        };
        let Some(slot) = lock(&self.sessions).get(token).cloned() else {
            return Reply::error("NotLoggedIn", "no session has this token");
        };
        let agent = slot.agent.clone();
        conn.slot = Some(slot);
        Reply {
            events: Vec::new(),
            response: json!({ "ok": true, "result": { "agent": agent } }),
            close: false,
        }
    }

    /// Runs the platform's workflow for a request of the attached session.
    async fn run(&self, conn: &mut Connection, name: &str, params: &Json) -> Reply {
        let Some(slot) = conn.slot.clone() else {
            return Reply::error("NotLoggedIn", "log in first (session.request.login)");
        };
        let Ok(mut guard) = slot.session.try_lock() else {
            return Reply::error("Busy", "another request of this session is running");
        };
        let Some(session) = guard.as_mut() else {
            conn.slot = None;
            return Reply::error("NotLoggedIn", "the session has ended");
        };
        let out = self
            .engine
            .handle(name, params, session, &mut NoObserver)
            .await;
        let close = matches!(out.response, Response::Ok { close: true, .. });
        if session.disposed {
            *guard = None;
            self.forget(&slot);
            conn.slot = None;
        }
        Reply {
            events: out.events,
            response: out.response.to_protocol(),
            close,
        }
    }

    fn forget(&self, slot: &Slot) {
        lock(&self.sessions).remove(&slot.token);
        let mut agents = lock(&self.agents);
        if agents.get(&slot.agent) == Some(&slot.token) {
            agents.remove(&slot.agent);
        }
    }

    /// The simulator's controls: interactions, faults and latency.
    async fn simulate(&self, conn: &mut Connection, name: &str, params: &Json) -> Reply {
        let Some(sim) = &self.sim else {
            return Reply::error(
                "NotSupported",
                "simulator controls need the simulated switch",
            );
        };
        let Some(slot) = conn.slot.clone() else {
            return Reply::error("NotLoggedIn", "log in first (session.request.login)");
        };
        let text = |k: &str| params.get(k).and_then(Json::as_str).map(str::to_string);
        let ok = |events| Reply {
            events,
            response: json!({ "ok": true, "result": {} }),
            close: false,
        };
        match name {
            "sim.request.fault" => match serde_json::from_value::<Fault>(params.clone()) {
                Ok(f) => {
                    sim.inject(f);
                    ok(Vec::new())
                }
                Err(e) => Reply::error("InvalidRequest", format!("not a fault: {e}")),
            },
            "sim.request.latency" => {
                let (Some(op), Some(delay)) = (
                    text("op"),
                    text("delay").and_then(|d| crate::workflow::validate::parse_duration(&d)),
                ) else {
                    return Reply::error("InvalidRequest", "give `op` and `delay` (e.g. `2s`)");
                };
                sim.set_latency(&op, delay);
                ok(Vec::new())
            }
            "sim.request.startInteraction" | "sim.request.endInteraction" => {
                let Some(channel) = text("channel") else {
                    return Reply::error("InvalidRequest", "parameter `channel` is required");
                };
                let Ok(mut guard) = slot.session.try_lock() else {
                    return Reply::error("Busy", "another request of this session is running");
                };
                let Some(session) = guard.as_mut().filter(|s| s.channel(&channel).is_some()) else {
                    return Reply::error(
                        "UnknownChannel",
                        format!("the session has no channel {channel}"),
                    );
                };
                let start = name.ends_with("startInteraction");
                let id = text("id").unwrap_or_else(|| {
                    format!(
                        "interaction-{}",
                        self.counter.fetch_add(1, Ordering::Relaxed)
                    )
                });
                let done = if start {
                    sim.start_interaction(&slot.agent, &channel, &id)
                } else {
                    sim.end_interaction(&slot.agent, &channel, None)
                };
                if let Err(e) = done {
                    return Reply::error(&e.code, e.message);
                }
                let c = session.channel_mut(&channel).expect("checked above");
                let event = if start {
                    c.interactions.push(Interaction {
                        id: id.clone(),
                        media: c.media.clone(),
                    });
                    Event {
                        name: "channel.event.interactionStarted".into(),
                        data: json!({ "channel": channel, "interaction": id }),
                    }
                } else {
                    c.interactions.clear();
                    Event {
                        name: "channel.event.interactionEnded".into(),
                        data: json!({ "channel": channel }),
                    }
                };
                ok(vec![event])
            }
            other => Reply::error(
                "InvalidRequest",
                format!("unknown simulator request `{other}`"),
            ),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain data: a panic elsewhere cannot leave them torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
