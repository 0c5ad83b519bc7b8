//! Cluster mode: several HIS nodes share their sessions through a NATS
//! JetStream key-value bucket.
//!
//! Each session has one **owner**, the node whose task runs it; its entry
//! in the bucket (`s.<agent>`) names the owner beside the session's
//! [`Record`]. The owner writes the entry at each change, as the embedded
//! store does, but only on the revision it last wrote (compare-and-set): a
//! node that lost the session (another took it over while this one was cut
//! off) finds out at its next write and lets go.
//!
//! * A MediaBar may resume, or its agent log in again, on any node. A node
//!   that does not own the session asks the owner to hand it over
//!   (`hisflow.node.<owner>.release`). The owner refuses while a request of
//!   the session runs (the asker answers `Busy`: one request at a time
//!   holds across nodes), else it writes the session with the asker as
//!   owner, lets go, and closes its connection. The asker then restores the
//!   session and attaches the MediaBar.
//! * Each node writes a heartbeat to a second bucket whose entries live
//!   [`NODE_TTL`]. A node whose heartbeat is gone is dead: every other node
//!   looks for its sessions each [`SWEEP`] and takes each over with one
//!   compare-and-set (one node wins), restores it detached, and reads the
//!   switch's state again. Its MediaBars reconnect and resume anywhere.
//! * Switch events reach every node (the switch's link is each node's own);
//!   only the owner has the session, so only it handles them. A detached
//!   session's expiry runs on its owner only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use super::store::{Change, Pending, Record, Store, StoreError};

/// How long a node's heartbeat lives: a node silent this long is dead.
pub const NODE_TTL: Duration = Duration::from_secs(5);
/// How often a node writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often a node looks for sessions of dead nodes.
pub const SWEEP: Duration = Duration::from_secs(2);
/// How long a node waits to read a session again when its owner had none
/// to hand over.
pub const RELEASE_RETRY: Duration = Duration::from_millis(200);
/// How long a session's write may take before it counts as failed.
pub const WRITE_WAIT: Duration = Duration::from_secs(2);
/// How long a node waits for an owner to hand a session over.
pub const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// The bucket of sessions, unless configured otherwise.
pub const SESSIONS_BUCKET: &str = "hisflow_sessions";

/// How a node reaches NATS.
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    /// `nats://host:4222` (or `tls://`); several separated by commas.
    pub url: String,
    /// A NATS credentials file (JWT and NKey seed).
    pub creds: Option<PathBuf>,
    /// CA certificate (PEM) that NATS' certificate is checked against;
    /// TLS is then required.
    pub tls_ca: Option<PathBuf>,
    /// This node's name in the cluster; a fresh one per start without.
    pub node: Option<String>,
    /// The sessions' bucket ([`SESSIONS_BUCKET`]); the nodes' is its name
    /// with `_nodes` after it.
    pub bucket: Option<String>,
}

/// Why the cluster could not be joined or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the NATS credentials file {path}: {detail}")]
    Creds { path: PathBuf, detail: String },
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error(
        "cannot open the JetStream bucket `{bucket}` (is JetStream enabled on the server?): {detail}"
    )]
    Bucket { bucket: String, detail: String },
    #[error("node name `{0}` may only hold letters, digits, `-` and `_` (64 at most)")]
    NodeName(String),
    #[error("a running node of the cluster is named `{0}` already; give each node its own name")]
    NodeInUse(String),
    #[error("NATS: {0}")]
    Nats(String),
}

/// A session's entry in the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The node that runs the session.
    pub owner: String,
    pub record: Record,
}

/// What an owner answers a node that asks for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The entry names the asker now.
    Released,
    /// A request of the session is running.
    Busy,
    /// The owner has no such session (it ended, or was handed on).
    Gone,
    /// Nobody answers for the owner: it is dead.
    Unreachable,
}

#[derive(Debug, Serialize, Deserialize)]
struct ReleaseAsk {
    agent: String,
    to: String,
}

/// This node's part of the cluster.
pub struct Cluster {
    node: String,
    client: async_nats::Client,
    sessions: kv::Store,
    nodes: kv::Store,
    /// The revision this node last wrote of each session it owns, by key.
    revisions: Mutex<HashMap<String, u64>>,
    failing: AtomicBool,
    /// The last heartbeat could not be written.
    unheard: AtomicBool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

/// The bucket key of an agent's session: agent ids may hold any character,
/// keys only a few.
pub fn key(agent: &str) -> String {
    let mut k = String::with_capacity(2 + agent.len() * 2);
    k.push_str("s.");
    for b in agent.bytes() {
        k.push_str(&format!("{b:02x}"));
    }
    k
}

/// The key of an operator's expiry mark for an agent.
pub fn expiry_key(agent: &str) -> String {
    format!("x.{}", &key(agent)[2..])
}

/// The agent a bucket key (or a resume token's prefix) names.
pub fn agent_of(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A node name: what may stand in a NATS subject and a bucket key.
fn valid_node(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn nats(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("NATS: {e}"))
}

/// Connects to NATS as `config` says.
pub async fn client(
    config: &ClusterConfig,
    name: &str,
) -> Result<async_nats::Client, ClusterError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5));
    if let Some(path) = &config.creds {
        options = options
            .credentials_file(path)
            .await
            .map_err(|e| ClusterError::Creds {
                path: path.clone(),
                detail: e.to_string(),
            })?;
    }
    if let Some(ca) = &config.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let (urls, user) = credentials(&config.url);
    if let Some((user, pass)) = user {
        options = options.user_and_password(user, pass);
    }
    options
        .connect(urls.as_str())
        .await
        .map_err(|e| ClusterError::Connect {
            url: urls.clone(),
            detail: e.to_string().replace(&config.url, &urls),
        })
}

/// The URLs without the user and password they may carry
/// (`nats://user:pass@host:4222`), and those: a password never reaches a
/// log line or an error.
pub fn credentials(urls: &str) -> (String, Option<(String, String)>) {
    let mut user = None;
    let bare: Vec<String> = urls
        .split(',')
        .map(|u| {
            let u = u.trim();
            let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rsplit_once('@') {
                Some((info, host)) => {
                    if user.is_none() {
                        let (name, pass) = info.split_once(':').unwrap_or((info, ""));
                        user = Some((name.to_string(), pass.to_string()));
                    }
                    let tail = &rest[host_end..];
                    if scheme.is_empty() {
                        format!("{host}{tail}")
                    } else {
                        format!("{scheme}://{host}{tail}")
                    }
                }
                None => u.to_string(),
            }
        })
        .collect();
    (bare.join(","), user)
}

/// The sessions' and the nodes' buckets, created where missing.
/// `create`: a node makes them; an operator's command only reads.
pub async fn buckets(
    client: &async_nats::Client,
    config: &ClusterConfig,
    create: bool,
) -> Result<(kv::Store, kv::Store), ClusterError> {
    let js = async_nats::jetstream::new(client.clone());
    let name = config
        .bucket
        .clone()
        .unwrap_or_else(|| SESSIONS_BUCKET.into());
    let sessions = bucket(&js, &name, Duration::ZERO, create).await?;
    let nodes = bucket(&js, &format!("{name}_nodes"), NODE_TTL, create).await?;
    Ok((sessions, nodes))
}

/// A key-value bucket of one entry per key, whose entries live `max_age`
/// (for ever when zero).
///
/// Its stream is created as the key-value layout has it rather than by the
/// client's `create_key_value`, which first reads account fields that
/// nats-server 2.9 (Debian's) does not send.
async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    max_age: Duration,
    create: bool,
) -> Result<kv::Store, ClusterError> {
    use async_nats::jetstream::stream;
    let failed = |e: &dyn std::fmt::Display| ClusterError::Bucket {
        bucket: name.to_string(),
        detail: e.to_string(),
    };
    match js.get_key_value(name).await {
        Ok(kv) => return Ok(kv),
        Err(e) if !create => {
            return Err(ClusterError::Bucket {
                bucket: name.to_string(),
                detail: format!("no such bucket ({e}); is `--bucket` the nodes' one?"),
            });
        }
        Err(_) => {}
    }
    let two_minutes = Duration::from_secs(120);
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        // The window in which the server drops a duplicate may not outlast
        // the entries.
        duplicate_window: if max_age.is_zero() || max_age > two_minutes {
            two_minutes
        } else {
            max_age
        },
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .map_err(|e| failed(&e))?;
    js.get_key_value(name).await.map_err(|e| failed(&e))
}

impl Cluster {
    /// Joins the cluster: connects, opens the buckets, writes a first
    /// heartbeat.
    pub async fn join(
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let node = match &config.node {
            Some(n) if valid_node(n) => n.clone(),
            Some(n) => return Err(ClusterError::NodeName(n.clone())),
            None => {
                use std::hash::BuildHasher;
                let n = std::collections::hash_map::RandomState::new()
                    .hash_one((std::process::id(), crate::his::store::now_ms()));
                format!("node-{n:016x}")
            }
        };
        let client = client(config, &format!("hisflow {node}")).await?;
        // Two processes under one name would each take the other's
        // sessions for its own.
        let probe = tokio::time::timeout(
            Duration::from_secs(1),
            client.request(format!("hisflow.node.{node}.release"), "{}".into()),
        )
        .await;
        if matches!(probe, Ok(Ok(_))) {
            return Err(ClusterError::NodeInUse(node));
        }
        let (sessions, nodes) = buckets(&client, config, true).await?;
        let cluster = Cluster::new(node, client, (sessions, nodes), metrics);
        cluster
            .beat()
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        Ok(cluster)
    }

    /// Reads the cluster's sessions without taking part (`hisflow
    /// sessions --nats`): no heartbeat, no session of its own.
    pub async fn observe(
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let client = client(config, "hisflow sessions").await?;
        let buckets = buckets(&client, config, false).await?;
        Ok(Cluster::new(String::new(), client, buckets, metrics))
    }

    fn new(
        node: String,
        client: async_nats::Client,
        (sessions, nodes): (kv::Store, kv::Store),
        metrics: Arc<Metrics>,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            node,
            client,
            sessions,
            nodes,
            revisions: Mutex::default(),
            failing: AtomicBool::new(false),
            unheard: AtomicBool::new(false),
            metrics,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    async fn beat(&self) -> Result<(), StoreError> {
        let put = self
            .nodes
            .put(&self.node, crate::his::store::now_ms().to_string().into());
        let beat = match tokio::time::timeout(WRITE_WAIT, put).await {
            Ok(r) => r.map(|_| ()).map_err(nats),
            Err(_) => Err(StoreError::Failed("NATS did not take the heartbeat".into())),
        };
        // An idle node cut off from NATS is not ready either.
        self.unheard.store(beat.is_err(), Ordering::Release);
        beat
    }

    /// Writes this node's heartbeat every [`HEARTBEAT`]; ends with the
    /// cluster.
    pub async fn heartbeats(me: Weak<Cluster>) {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let Some(c) = me.upgrade() else { return };
            if let Err(e) = c.beat().await {
                tracing::error!(node = %c.node, "cannot write this node's heartbeat: {e}");
            }
        }
    }

    /// Whether `node` is alive. An error reading counts as alive: a
    /// session is never taken from a node on a doubt.
    pub async fn alive(&self, node: &str) -> bool {
        if node == self.node {
            return true;
        }
        // An owner no node could be named (a hand-made entry) is nobody.
        if !valid_node(node) {
            return false;
        }
        match self.nodes.entry(node).await {
            Ok(Some(e)) => e.operation == kv::Operation::Put,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(%node, "cannot read the node's heartbeat: {e}");
                true
            }
        }
    }

    /// The agent's entry and its revision.
    pub async fn entry(&self, agent: &str) -> Result<Option<(Entry, u64)>, StoreError> {
        let read = tokio::time::timeout(WRITE_WAIT, self.sessions.entry(key(agent)))
            .await
            .map_err(|_| StoreError::Failed("NATS did not answer a read".into()))?;
        let Some(e) = read.map_err(nats)? else {
            return Ok(None);
        };
        if e.operation != kv::Operation::Put {
            return Ok(None);
        }
        let entry: Entry = serde_json::from_slice(&e.value).map_err(|err| {
            StoreError::Failed(format!(
                "the cluster's entry of agent `{agent}` cannot be read: {err}"
            ))
        })?;
        Ok(Some((entry, e.revision)))
    }

    /// Every session in the bucket, with its revision.
    /// An entry that cannot be read (a newer hisflow's, a hand-made one) is
    /// logged and left out: it stops no look at the others.
    pub async fn all(&self) -> Result<Vec<(Entry, u64)>, StoreError> {
        let keys = self.keys("s.").await?;
        let mut all = Vec::new();
        for k in keys {
            let Some(agent) = agent_of(&k[2..]) else {
                continue;
            };
            match self.entry(&agent).await {
                Ok(Some(e)) => all.push(e),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(key = %k, "a session in the cluster cannot be read; it is left alone: {e}")
                }
            }
        }
        Ok(all)
    }

    /// The bucket's keys that start with `prefix`, within [`WRITE_WAIT`]
    /// per key listed.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let listed = async {
            let mut keys = self.sessions.keys().await.map_err(nats)?;
            let mut found = Vec::new();
            while let Some(k) = tokio::time::timeout(WRITE_WAIT, keys.next())
                .await
                .map_err(|_| StoreError::Failed("NATS stopped listing the sessions".into()))?
            {
                let k = k.map_err(nats)?;
                if k.starts_with(prefix) {
                    found.push(k);
                }
            }
            Ok(found)
        };
        listed.await
    }

    /// Takes the agent's session, found at `revision`, for this node.
    /// [`StoreError::Lost`] when another node wrote it meanwhile.
    pub async fn claim(&self, entry: &Entry, revision: u64) -> Result<(), StoreError> {
        let k = key(&entry.record.session.agent);
        let mine = Entry {
            owner: self.node.clone(),
            record: entry.record.clone(),
        };
        let rev = self.write(&k, &mine, Some(revision)).await?;
        lock(&self.revisions).insert(k, rev);
        Ok(())
    }

    /// This node no longer runs the agent's session.
    pub fn forget(&self, agent: &str) {
        lock(&self.revisions).remove(&key(agent));
    }

    /// Writes `entry` at `k`: on `revision` (compare-and-set), or as a new
    /// key.
    async fn write(
        &self,
        k: &str,
        entry: &Entry,
        revision: Option<u64>,
    ) -> Result<u64, StoreError> {
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Failed(e.to_string()))?;
        let started = Instant::now();
        let write = async {
            match revision {
                Some(r) => self.sessions.update(k, bytes.into(), r).await.map_err(|e| {
                    if e.kind() == kv::UpdateErrorKind::WrongLastRevision {
                        StoreError::Lost
                    } else {
                        nats(e)
                    }
                }),
                None => self.sessions.create(k, bytes.into()).await.map_err(|e| {
                    if e.kind() == kv::CreateErrorKind::AlreadyExists {
                        StoreError::Lost
                    } else {
                        nats(e)
                    }
                }),
            }
        };
        // A session's answer waits for its write: NATS gone must not hold
        // it for the client's reconnection attempts.
        let written = tokio::time::timeout(WRITE_WAIT, write)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Failed(format!(
                    "NATS did not take the write within {} s",
                    WRITE_WAIT.as_secs()
                )))
            });
        // A write that timed out may have landed after all: the entry is
        // then exactly what was written, and no other node took anything.
        let written = match written {
            Err(StoreError::Lost) => match self.entry(&entry.record.session.agent).await {
                Ok(Some((found, rev))) if found == *entry => Ok(rev),
                _ => Err(StoreError::Lost),
            },
            other => other,
        };
        self.counted(started, &written);
        written
    }

    fn counted<T>(&self, started: Instant, outcome: &Result<T, StoreError>) {
        // Losing a session to another node is the protocol working, not
        // NATS failing.
        let failed = matches!(outcome, Err(e) if !matches!(e, StoreError::Lost));
        self.metrics.store_commit(started.elapsed(), !failed);
        self.failing.store(failed, Ordering::Release);
    }

    /// Asks `owner` to hand the agent's session to this node.
    pub async fn ask_release(&self, owner: &str, agent: &str) -> Release {
        let ask = ReleaseAsk {
            agent: agent.to_string(),
            to: self.node.clone(),
        };
        let Ok(body) = serde_json::to_vec(&ask) else {
            return Release::Busy;
        };
        let asked = tokio::time::timeout(
            RELEASE_WAIT,
            self.client
                .request(format!("hisflow.node.{owner}.release"), body.into()),
        )
        .await;
        match asked {
            Ok(Ok(m)) => serde_json::from_slice(&m.payload).unwrap_or(Release::Busy),
            // Nobody listens: the owner is gone, its heartbeat not yet.
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                Release::Unreachable
            }
            Ok(Err(e)) => {
                tracing::warn!(%owner, %agent, "asking for a session failed: {e}");
                Release::Busy
            }
            Err(_) => Release::Busy,
        }
    }

    /// Answers other nodes' asks for this node's sessions with `release`
    /// (the agent, the asker) until the cluster ends.
    pub async fn serve_releases<F, Fut>(me: Weak<Cluster>, release: F)
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Release> + Send,
    {
        let release = Arc::new(release);
        // A subscription that ends (NATS lost it) is made again: without
        // it, other nodes would take this one for dead.
        loop {
            let Some(c) = me.upgrade() else { return };
            let subject = format!("hisflow.node.{}.release", c.node);
            let subscribed = c.client.subscribe(subject).await;
            drop(c);
            let mut asks = match subscribed {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot take other nodes' asks for sessions: {e}");
                    tokio::time::sleep(HEARTBEAT).await;
                    continue;
                }
            };
            while let Some(m) = asks.next().await {
                let Some(reply) = m.reply.clone() else {
                    continue;
                };
                // One ask waiting for its session holds up no other.
                let (me, release) = (me.clone(), release.clone());
                tokio::spawn(async move {
                    let answer = match serde_json::from_slice::<ReleaseAsk>(&m.payload) {
                        Ok(ask) => release(ask.agent, ask.to).await,
                        Err(_) => Release::Busy,
                    };
                    let Some(c) = me.upgrade() else { return };
                    if let Ok(body) = serde_json::to_vec(&answer) {
                        let _ = c.client.publish(reply, body.into()).await;
                    }
                });
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
    }

    /// Hands the session to node `to`: writes `record` with `to` as owner
    /// on this node's revision, and forgets it.
    pub async fn hand_over(&self, record: &Record, to: &str) -> Result<(), StoreError> {
        let k = key(&record.session.agent);
        let rev = lock(&self.revisions).get(&k).copied();
        let entry = Entry {
            owner: to.to_string(),
            record: record.clone(),
        };
        self.write(&k, &entry, rev).await?;
        lock(&self.revisions).remove(&k);
        Ok(())
    }

    /// Marks the agent's session for expiry by its owner (`hisflow
    /// sessions expire --nats`).
    /// The mark names the session: one that ends first leaves a mark that
    /// expires no later session of the agent.
    pub async fn mark_expiry(&self, agent: &str, session: &str) -> Result<(), StoreError> {
        self.sessions
            .put(expiry_key(agent), session.to_string().into())
            .await
            .map(|_| ())
            .map_err(nats)
    }
}

impl Store for Cluster {
    fn commit(&self, change: Change) -> Pending<'_, ()> {
        Box::pin(async move {
            match change {
                Change::Put(record) => {
                    let k = key(&record.session.agent);
                    let rev = lock(&self.revisions).get(&k).copied();
                    let entry = Entry {
                        owner: self.node.clone(),
                        record: *record,
                    };
                    let new = self.write(&k, &entry, rev).await?;
                    lock(&self.revisions).insert(k, new);
                    Ok(())
                }
                Change::Remove { agent, .. } => {
                    let k = key(&agent);
                    let Some(rev) = lock(&self.revisions).remove(&k) else {
                        return Ok(());
                    };
                    let started = Instant::now();
                    let done = self
                        .sessions
                        .purge_expect_revision(&k, Some(rev))
                        .await
                        .map_err(|e| {
                            if e.kind() == kv::PurgeErrorKind::WrongLastRevision {
                                StoreError::Lost
                            } else {
                                nats(e)
                            }
                        });
                    self.counted(started, &done);
                    done
                }
            }
        })
    }

    fn commit_later(&self, change: Change) {
        // The only change committed later is a session's last: its removal.
        let Change::Remove { agent, .. } = change else {
            return;
        };
        let k = key(&agent);
        let Some(rev) = lock(&self.revisions).remove(&k) else {
            return;
        };
        let sessions = self.sessions.clone();
        tokio::spawn(async move {
            if let Err(e) = sessions.purge_expect_revision(&k, Some(rev)).await {
                tracing::warn!(agent = %agent, "the cluster's entry of an ended session stays: {e}");
            }
        });
    }

    fn take_expiries(&self) -> Pending<'_, Vec<String>> {
        Box::pin(async move {
            let mut mine = Vec::new();
            for k in self.keys("x.").await? {
                if !lock(&self.revisions).contains_key(&format!("s.{}", &k[2..])) {
                    continue;
                }
                // The session the mark names; HIS expires it only if it is
                // the one it runs.
                if let Ok(Some(session)) = self.sessions.get(&k).await {
                    mine.push(String::from_utf8_lossy(&session).into_owned());
                }
                let _ = self.sessions.purge(&k).await;
            }
            Ok(mine)
        })
    }

    fn healthy(&self) -> bool {
        !self.failing.load(Ordering::Acquire) && !self.unheard.load(Ordering::Acquire)
    }

    fn flush(&self) -> Pending<'_, ()> {
        // Every write but an ended session's removal is awaited by its
        // session; a removal left undone is taken back and disposed of.
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_taken_out_of_it() {
        assert_eq!(
            credentials("nats://hisflow:s3cret@nats-1:4222,nats://nats-2:4222"),
            (
                "nats://nats-1:4222,nats://nats-2:4222".to_string(),
                Some(("hisflow".to_string(), "s3cret".to_string()))
            )
        );
        assert_eq!(
            credentials("tls://localhost:4222"),
            ("tls://localhost:4222".to_string(), None)
        );
    }

    #[test]
    fn any_agent_id_makes_a_key_and_back() {
        for agent in [
            "a1",
            "ann.smith@example.com",
            "agent with spaces",
            "élodie",
            "*>",
        ] {
            let k = key(agent);
            assert!(
                k[2..].chars().all(|c| c.is_ascii_hexdigit()),
                "{k} is a valid key"
            );
            assert_eq!(agent_of(&k[2..]).as_deref(), Some(agent));
        }
        assert_eq!(agent_of("zz"), None);
        assert_eq!(agent_of("abc"), None);
    }
}
