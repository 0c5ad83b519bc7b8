//! The embedded store's database: one SQLite file, a row per session with
//! its record as JSON.
//!
//! WAL with `synchronous = FULL`: a commit is on disk when it returns, and
//! readers (`hisflow sessions list`) never wait for HIS's writer nor hold it
//! up.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Change, LOCK_FILE, Record, STORE_FILE, StoreError, now_ms};

/// The layout this hisflow writes (`PRAGMA user_version`).
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    expire_requested INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
";

/// How long a statement waits for another process's lock (an operator's
/// `hisflow sessions expire` beside HIS's writer).
const BUSY: Duration = Duration::from_secs(5);

pub(super) struct Db {
    conn: Connection,
    path: PathBuf,
    dir: PathBuf,
}

fn corrupt(path: &Path, dir: &Path, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// What SQLite refused: the file's damage, or anything else (permissions,
/// a read-only disk, a lock held too long), which `recover` would not mend.
fn failed(path: &Path, dir: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match e.sqlite_error_code() {
        Some(NotADatabase | DatabaseCorrupt) => corrupt(path, dir, e),
        _ => StoreError::Dir {
            dir: dir.to_path_buf(),
            detail: format!("{}: {e}", path.display()),
        },
    }
}

/// Takes the data directory's lock, creating the directory (private to
/// its owner) if needed.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let dir_err = |e: std::io::Error| StoreError::Dir {
        dir: dir.to_path_buf(),
        detail: e.to_string(),
    };
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir).map_err(dir_err)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(dir_err)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            dir: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(dir_err(e)),
    }
}

impl Db {
    /// Opens the store of `dir` for the HIS that owns it: the directory's
    /// lock, the schema created or checked, the file checked whole.
    pub(super) fn open_exclusive(dir: &Path) -> Result<(Db, File), StoreError> {
        let lock = lock(dir)?;
        // A write-ahead log without its database is the store's last
        // changes: SQLite would drop them and start empty.
        let path = dir.join(STORE_FILE);
        let wal = dir.join(format!("{STORE_FILE}-wal"));
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        if size(&wal) > 0 && size(&path) == 0 {
            return Err(corrupt(
                &path,
                dir,
                format!(
                    "{} holds changes but the database is missing or empty",
                    wal.display()
                ),
            ));
        }
        let db = Db::open(dir, true)?;
        let check: String = db
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| corrupt(&db.path, dir, e))?;
        if check != "ok" {
            return Err(corrupt(&db.path, dir, check));
        }
        Ok((db, lock))
    }

    /// Opens the store of `dir`; `create` makes an empty one where there is
    /// none.
    fn open(dir: &Path, create: bool) -> Result<Db, StoreError> {
        Db::open_at(dir.join(STORE_FILE), dir, create)
    }

    fn open_at(path: PathBuf, dir: &Path, create: bool) -> Result<Db, StoreError> {
        if !create && !path.exists() {
            return Err(StoreError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | if create {
                OpenFlags::SQLITE_OPEN_CREATE
            } else {
                OpenFlags::empty()
            };
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| failed(&path, dir, e))?;
        let db = Db {
            conn,
            path,
            dir: dir.to_path_buf(),
        };
        db.conn.busy_timeout(BUSY).map_err(|e| db.failed(e))?;
        // A file that is not a database fails at its first read: here.
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db.failed(e))?;
        let mode = db
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(|e| db.failed(e))?;
        // Without a write-ahead log, `hisflow sessions` would wait for HIS's
        // writer and hold it up.
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Dir {
                dir: dir.to_path_buf(),
                detail: format!(
                    "{} cannot keep a write-ahead log here (journal mode {mode}); put the data directory on a local file system",
                    db.path.display()
                ),
            });
        }
        db.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db.failed(e))?;
        match version {
            0 => {
                let tables: i64 = db
                    .conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                    .map_err(|e| db.failed(e))?;
                if tables > 0 {
                    return Err(db.corrupt("it has tables but no hisflow version"));
                }
                db.conn
                    .execute_batch(&format!(
                        "BEGIN; {SCHEMA} PRAGMA user_version = {VERSION}; COMMIT;"
                    ))
                    .map_err(|e| db.failed(e))?;
            }
            VERSION => {}
            v if v > VERSION => {
                return Err(StoreError::Newer {
                    path: db.path.clone(),
                    found: v,
                    known: VERSION,
                });
            }
            v => return Err(db.corrupt(format!("unknown store version {v}"))),
        }
        Ok(db)
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> StoreError {
        corrupt(&self.path, &self.dir, detail)
    }

    fn failed(&self, e: rusqlite::Error) -> StoreError {
        failed(&self.path, &self.dir, e)
    }

    /// Every session, each record read whole; one that is not is the
    /// store's damage, not a session to drop.
    pub(super) fn load(&self) -> Result<Vec<Record>, StoreError> {
        let (rows, bad) = self.rows().map_err(|e| self.corrupt(e))?;
        if let Some(u) = bad.into_iter().next() {
            return Err(self.corrupt(format!(
                "the record of session `{}` cannot be read: {}",
                u.session, u.why
            )));
        }
        Ok(rows.into_iter().map(|l| l.record).collect())
    }

    /// Every row: those whose record reads, and the ids of those that do not
    /// with why.
    fn rows(&self) -> rusqlite::Result<(Vec<Listed>, Vec<Unreadable>)> {
        let mut stmt = self.conn.prepare(
            "SELECT id, record, expire_requested, updated_at, agent FROM sessions ORDER BY agent",
        )?;
        let mut rows = stmt.query([])?;
        let mut good = Vec::new();
        let mut bad = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let text: String = row.get(1)?;
            // Named with its agent: whom an operator logs out at the switch.
            let who = || {
                let agent: String = row.get(4).unwrap_or_else(|_| "?".into());
                format!("{id} (agent {agent})")
            };
            match serde_json::from_str::<Record>(&text) {
                Ok(record) if record.session.id == id => good.push(Listed {
                    record,
                    expire_requested: row.get::<_, i64>(2)? != 0,
                    updated_at: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    owner: None,
                }),
                Ok(_) => bad.push(unreadable(who(), "it names another session")),
                Err(e) => bad.push(unreadable(who(), e)),
            }
        }
        Ok((good, bad))
    }

    /// Applies `changes` in one transaction.
    pub(super) fn apply(&mut self, changes: &[Change]) -> Result<(), String> {
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO sessions (id, agent, record, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at",
                )
                .map_err(|e| e.to_string())?;
            // One session per agent: a row of an earlier session of the
            // agent (whose removal was lost) gives way.
            let mut other = tx
                .prepare_cached("DELETE FROM sessions WHERE agent = ?1 AND id <> ?2")
                .map_err(|e| e.to_string())?;
            let mut remove = tx
                .prepare_cached("DELETE FROM sessions WHERE id = ?1")
                .map_err(|e| e.to_string())?;
            for c in changes {
                match c {
                    Change::Put(r) => {
                        let json = serde_json::to_string(r).map_err(|e| e.to_string())?;
                        other
                            .execute(params![r.session.agent, r.session.id])
                            .map_err(|e| e.to_string())?;
                        put.execute(params![r.session.id, r.session.agent, json, now])
                            .map_err(|e| e.to_string())?;
                    }
                    Change::Remove { session, .. } => {
                        remove
                            .execute(params![session])
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// The sessions marked for expiry, their marks cleared.
    pub(super) fn take_expiries(&mut self) -> rusqlite::Result<Vec<String>> {
        // One statement: a mark made meanwhile is taken or kept whole.
        let mut stmt = self.conn.prepare_cached(
            "UPDATE sessions SET expire_requested = 0 WHERE expire_requested <> 0 RETURNING id",
        )?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()
    }
}

/// A row whose record cannot be read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The session's id, or `?` where not even that can be read.
    pub session: String,
    pub why: String,
}

fn unreadable(session: impl Into<String>, why: impl std::fmt::Display) -> Unreadable {
    Unreadable {
        session: session.into(),
        why: why.to_string(),
    }
}

/// A session as `hisflow sessions` lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub record: Record,
    /// An operator asked for its expiry and HIS has not taken the mark yet.
    pub expire_requested: bool,
    /// When HIS last wrote it (ms since the Unix epoch).
    pub updated_at: u64,
    /// The node that runs it, in a cluster.
    pub owner: Option<String>,
}

/// The sessions of the store in `dir`, read beside the HIS that may be
/// using it; with the ids of records that cannot be read.
pub fn list(dir: &Path) -> Result<(Vec<Listed>, Vec<Unreadable>), StoreError> {
    let db = Db::open(dir, false)?;
    db.rows().map_err(|e| db.corrupt(e))
}

/// Marks the session of `who` (an agent, or a session id) for expiry: the
/// HIS using the store logs the agent out within a second, or at its next
/// start. Returns the session's id and agent, or `None` when no session
/// matches.
pub fn mark_expiry(dir: &Path, who: &str) -> Result<Option<(String, String)>, StoreError> {
    let db = Db::open(dir, false)?;
    let found: Option<(String, String)> = db
        .conn
        .query_row(
            "UPDATE sessions SET expire_requested = 1 WHERE agent = ?1 OR id = ?1 RETURNING id, agent",
            params![who],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| db.failed(e))?;
    Ok(found)
}

/// What `hisflow sessions recover` did.
#[derive(Debug)]
pub struct Recovered {
    /// Where the damaged store now is.
    pub kept: PathBuf,
    /// Sessions saved into the new store.
    pub saved: Vec<Record>,
    /// Rows that could not be read.
    pub lost: Vec<Unreadable>,
}

/// Moves a damaged store aside and saves into a new one every session it
/// can read. Refused while a HIS uses the directory.
pub fn recover(dir: &Path) -> Result<Recovered, StoreError> {
    let path = dir.join(STORE_FILE);
    let wal = dir.join(format!("{STORE_FILE}-wal"));
    // A log without its database is damage too: it is kept aside.
    if !path.exists() && !wal.exists() {
        return Err(StoreError::Missing {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    if path.exists() {
        let sound = Db::open(dir, false).and_then(|db| {
            let check: String = db
                .conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(|e| db.failed(e))?;
            if check != "ok" {
                return Err(db.corrupt(check));
            }
            db.load()
        });
        if sound.is_ok() {
            return Err(StoreError::Sound {
                dir: dir.to_path_buf(),
            });
        }
    }
    if let Some(found) = version_of(&path).filter(|v| *v > VERSION) {
        return Err(StoreError::Newer {
            path,
            found,
            known: VERSION,
        });
    }
    let io = |what: &str, e: std::io::Error| StoreError::Dir {
        dir: dir.to_path_buf(),
        detail: format!("{what}: {e}"),
    };
    let (saved, lost) = salvage(&path);
    // The new store is whole before the damaged one is moved: an
    // interruption leaves the damaged store in place, never none.
    let fresh = dir.join(format!("{STORE_FILE}.new"));
    for side in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{side}", fresh.display()));
    }
    {
        let mut db = Db::open_at(fresh.clone(), dir, true)?;
        let changes: Vec<Change> = saved
            .iter()
            .cloned()
            .map(|r| Change::Put(Box::new(r)))
            .collect();
        db.apply(&changes).map_err(StoreError::Failed)?;
        db.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| db.failed(e))?;
    }
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{side}", fresh.display()));
    }
    let kept = dir.join(format!("{STORE_FILE}.damaged-{}", now_ms()));
    for side in ["-wal", "-shm", ""] {
        let from = PathBuf::from(format!("{}{side}", path.display()));
        if from.exists() || from.is_symlink() {
            std::fs::rename(&from, format!("{}{side}", kept.display()))
                .map_err(|e| io(&format!("cannot move {} aside", from.display()), e))?;
        }
    }
    std::fs::rename(&fresh, &path).map_err(|e| io("cannot put the new store in place", e))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(Recovered { kept, saved, lost })
}

/// The store version a file says it has, if it can be read.
fn version_of(path: &Path) -> Option<i64> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("PRAGMA user_version", [], |r| r.get(0)).ok()
}

/// What can be read of a damaged file, row by row.
fn salvage(path: &Path) -> (Vec<Record>, Vec<Unreadable>) {
    let conn = match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), vec![unreadable("?", e)]),
    };
    let mut saved = Vec::new();
    let mut lost = Vec::new();
    let stmt = conn.prepare("SELECT id, record, agent FROM sessions");
    let mut stmt = match stmt {
        Ok(s) => s,
        Err(e) => return (Vec::new(), vec![unreadable("?", e)]),
    };
    let rows = stmt.query_map([], |r| {
        let id: rusqlite::Result<String> = r.get(0);
        let agent: String = r.get(2).unwrap_or_else(|_| "?".into());
        let id = id.map(|id| format!("{id} (agent {agent})"));
        Ok((id, r.get::<_, String>(1)))
    });
    match rows {
        Ok(rows) => {
            for row in rows {
                match row {
                    Ok((Ok(id), Ok(text))) => match serde_json::from_str::<Record>(&text) {
                        Ok(r) if id.starts_with(&format!("{} ", r.session.id)) => saved.push(r),
                        Ok(_) => lost.push(unreadable(id, "it names another session")),
                        Err(e) => lost.push(unreadable(id, e)),
                    },
                    Ok((id, Err(e))) => lost.push(unreadable(id.unwrap_or_else(|_| "?".into()), e)),
                    Ok((Err(e), _)) | Err(e) => {
                        lost.push(unreadable("?", e));
                        // A row that cannot be read often means the rest
                        // of the table cannot either.
                        break;
                    }
                }
            }
        }
        Err(e) => lost.push(unreadable("?", e)),
    }
    (saved, lost)
}
