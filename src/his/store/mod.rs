//! Durable sessions: what HIS keeps of each session so that a restart — a
//! deploy, a crash, the machine — does not forget the agents the switch
//! still has logged in.
//!
//! A session's task writes its [`Record`] at each change it commits (a
//! login, a request's or an event's outcome, a connection attaching or
//! leaving) and waits for the write before it answers, so a MediaBar holds
//! no token or state the store has not. A write the store refuses (a full
//! disk) does not undo what the switch did: the answer goes out, `/readyz`
//! says HIS is not ready, and the session writes itself again every second
//! until the store takes it. A request of a logged-in session is marked
//! under way before it runs: after a crash it is reported, never run again.
//!
//! Writes go through one thread that owns the database and commits what
//! every session queued meanwhile in one transaction (group commit), so the
//! cost of the disk's flush is shared under load.

mod sqlite;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::engine::Session;

pub use sqlite::{Listed, Recovered, Unreadable, list, mark_expiry, recover};

/// Where `hisflow serve` keeps its sessions when `--data-dir` does not say:
/// relative to the directory it runs in.
pub const DEFAULT_DATA_DIR: &str = "hisflow-data";
/// The database in the data directory.
pub const STORE_FILE: &str = "sessions.db";
/// Held by the HIS that uses the data directory: a second one is refused.
pub const LOCK_FILE: &str = "lock";

/// What HIS keeps of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The session's machines and channels, as the engine has them.
    pub session: Session,
    /// SHA-256 of the resume token, hex: the store never holds a token a
    /// reader could resume with.
    pub token_hash: String,
    /// When the login succeeded (ms since the Unix epoch).
    pub logged_in_at: u64,
    /// When its last connection left (ms since the Unix epoch); `None`
    /// while one is attached.
    #[serde(default)]
    pub detached_at: Option<u64>,
    /// The request running when the record was written.
    #[serde(default)]
    pub under_way: Option<UnderWay>,
}

/// A request that was running when the record was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderWay {
    pub request: String,
    /// The client's id of the request (`-` for HIS's own).
    pub id: String,
    /// When it began (ms since the Unix epoch).
    pub since: u64,
}

/// One change to the store.
#[derive(Debug, Clone)]
pub enum Change {
    Put(Box<Record>),
    /// The session is over.
    Remove {
        session: String,
        agent: String,
    },
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the data directory {dir}: {detail}")]
    Dir { dir: PathBuf, detail: String },
    #[error(
        "the data directory {dir} is in use by another HIS (its `{LOCK_FILE}` file is locked); two may not share one"
    )]
    InUse { dir: PathBuf },
    #[error(
        "the session store {path} is damaged: {detail}. HIS does not start on it, so that no session is silently lost; \
         `hisflow sessions recover --data-dir {dir}` keeps the damaged file aside and saves every session it can read"
    )]
    Corrupt {
        path: PathBuf,
        dir: PathBuf,
        detail: String,
    },
    #[error(
        "the session store {path} was written by a newer hisflow (store version {found}; this one knows up to {known})"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no session store in {dir}")]
    Missing { dir: PathBuf },
    #[error("the session store in {dir} is not damaged: nothing to recover")]
    Sound { dir: PathBuf },
    #[error("the session store failed: {0}")]
    Failed(String),
    #[error("the session store has stopped")]
    Stopped,
    /// Another HIS node took the session over: this one may no longer
    /// change it.
    #[error("another HIS node has the session now")]
    Lost,
}

/// What a store's asynchronous answers look like.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where sessions are kept: the embedded database of one HIS
/// ([`Embedded`]), or the key-value bucket a cluster of them shares
/// (`his::cluster`).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Commits `change`; resolves once it is durable. [`StoreError::Lost`]
    /// when another node owns the session now.
    fn commit(&self, change: Change) -> Pending<'_, ()>;

    /// Queues `change` without waiting for it: what the same session
    /// commits after it is committed after it.
    fn commit_later(&self, change: Change);

    /// The sessions (by id) an operator asked to expire since the last
    /// call, of those this HIS holds; the marks are taken.
    fn take_expiries(&self) -> Pending<'_, Vec<String>>;

    /// Whether the last commit succeeded.
    fn healthy(&self) -> bool;

    /// Resolves once every change queued so far is durable (HIS stopping).
    fn flush(&self) -> Pending<'_, ()>;
}

/// The resume token as the store keeps it.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

enum Job {
    Commit(Change, Option<oneshot::Sender<Result<(), StoreError>>>),
    TakeExpiries(oneshot::Sender<Result<Vec<String>, StoreError>>),
    /// Answered once what was queued before it is committed.
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// The embedded store of one HIS: a SQLite database in its data directory.
///
/// SQLite rather than a single-process engine: `hisflow sessions` reads it
/// (and marks expiries) while HIS runs, and every operator has a tool that
/// opens it.
pub struct Embedded {
    jobs: mpsc::Sender<Job>,
    dir: PathBuf,
    /// The last commit failed: `/readyz` says HIS is not ready.
    failing: Arc<AtomicBool>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("dir", &self.dir).finish()
    }
}

/// Changes one transaction takes at most: a storm of them still answers
/// the first sessions soon.
const BATCH: usize = 512;

impl Embedded {
    /// Opens (or creates) the store in `dir` and reads every session it
    /// holds. A store that cannot be read whole is refused: HIS must not
    /// start and overwrite what it could not restore.
    pub fn open(
        dir: &Path,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Embedded>, Vec<Record>), StoreError> {
        let (db, lock) = sqlite::Db::open_exclusive(dir)?;
        let records = db.load()?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        std::thread::Builder::new()
            .name("hisflow-store".into())
            .spawn(move || {
                // Held as long as the writer runs.
                let _lock = lock;
                write(db, &rx, &metrics, &flag);
            })
            .map_err(|e| StoreError::Failed(format!("cannot start the store's writer: {e}")))?;
        Ok((
            Arc::new(Embedded {
                jobs,
                dir: dir.to_path_buf(),
                failing,
            }),
            records,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Store for Embedded {
    fn commit(&self, change: Change) -> Pending<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.jobs.send(Job::Commit(change, Some(tx)));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Stopped)?;
            rx.await.unwrap_or(Err(StoreError::Stopped))
        })
    }

    fn commit_later(&self, change: Change) {
        let _ = self.jobs.send(Job::Commit(change, None));
    }

    fn take_expiries(&self) -> Pending<'_, Vec<String>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.jobs.send(Job::TakeExpiries(tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Stopped)?;
            rx.await.unwrap_or(Err(StoreError::Stopped))
        })
    }

    fn healthy(&self) -> bool {
        !self.failing.load(Ordering::Acquire)
    }

    fn flush(&self) -> Pending<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.jobs.send(Job::Flush(tx));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Stopped)?;
            rx.await.unwrap_or(Err(StoreError::Stopped))
        })
    }
}

/// The writer thread: one transaction for whatever is queued.
fn write(mut db: sqlite::Db, rx: &mpsc::Receiver<Job>, metrics: &Metrics, failing: &AtomicBool) {
    let mut changes = Vec::new();
    let mut acks = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Commit(c, ack) => {
                    changes.push(c);
                    acks.extend(ack);
                }
                Job::TakeExpiries(tx) => {
                    let _ = tx.send(db.take_expiries().map_err(failed));
                }
                // Acknowledged with the batch it closes.
                Job::Flush(tx) => {
                    flushes.push(tx);
                    break;
                }
            }
            if changes.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if changes.is_empty() {
            for f in flushes.drain(..) {
                let _ = f.send(Ok(()));
            }
            continue;
        }
        let started = Instant::now();
        let outcome = db.apply(&changes);
        metrics.store_commit(started.elapsed(), outcome.is_ok());
        failing.store(outcome.is_err(), Ordering::Release);
        if let Err(e) = &outcome {
            tracing::error!(
                changes = changes.len(),
                "the session store could not commit: {e}"
            );
        }
        for ack in acks.drain(..).chain(flushes.drain(..)) {
            let _ = ack.send(outcome.as_ref().map(|_| ()).map_err(|e| failed(e.clone())));
        }
        changes.clear();
    }
}

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// How long HIS waits between two looks for operators' expiry marks.
pub const EXPIRY_POLL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_as_its_sha256() {
        // printf abc | sha256sum
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
