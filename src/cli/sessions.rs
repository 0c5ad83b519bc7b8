//! `hisflow sessions list|show|expire|recover [--data-dir DIR]`: the
//! sessions HIS keeps, for operators. `list`, `show` and `expire` work
//! beside a running HIS; `recover` only while none uses the directory.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use std::sync::Arc;

use hisflow::his::cluster::{self, Cluster, ClusterConfig};
use hisflow::his::metrics::Metrics;
use hisflow::his::store::{self, DEFAULT_DATA_DIR, Listed, StoreError, Unreadable, now_ms};

use super::{EXIT_FAILURE, EXIT_PROBLEMS, EXIT_USAGE, emit};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Dir {
    /// HIS's data directory (as `serve --data-dir`).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The cluster's NATS (as `serve --nats`), instead of a data directory.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    nats: Option<String>,
    /// A NATS credentials file.
    #[arg(long, requires = "nats")]
    nats_creds: Option<PathBuf>,
    /// CA certificate (PEM) for NATS' TLS.
    #[arg(long, requires = "nats")]
    nats_tls_ca: Option<PathBuf>,
    /// The cluster's bucket of sessions.
    #[arg(long, requires = "nats", default_value = cluster::SESSIONS_BUCKET)]
    bucket: String,
}

impl Dir {
    fn cluster(&self) -> Option<ClusterConfig> {
        self.nats.as_ref().map(|url| ClusterConfig {
            url: url.clone(),
            creds: self.nats_creds.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            node: None,
            bucket: Some(self.bucket.clone()),
        })
    }

    /// Where the sessions are, for messages.
    fn place(&self) -> String {
        match &self.nats {
            Some(url) => format!("the cluster at {}", cluster::credentials(url).0),
            None => self.data_dir.display().to_string(),
        }
    }

    /// Every session, with the records that cannot be read.
    fn list(&self) -> Result<(Vec<Listed>, Vec<Unreadable>), Failure> {
        let Some(config) = self.cluster() else {
            return store::list(&self.data_dir).map_err(Failure::Store);
        };
        in_cluster(&config, |c| async move {
            let all = c.all().await.map_err(|e| e.to_string())?;
            let mut all = all;
            all.sort_by(|(a, _), (b, _)| a.record.session.agent.cmp(&b.record.session.agent));
            let rows = all
                .into_iter()
                .map(|(e, _)| Listed {
                    record: e.record,
                    expire_requested: false,
                    updated_at: 0,
                    owner: Some(e.owner),
                })
                .collect();
            Ok((rows, Vec::new()))
        })
        .map_err(Failure::Nats)
    }
}

/// Why sessions could not be read or marked.
enum Failure {
    Store(StoreError),
    Nats(String),
}

/// Runs `f` on the cluster `config` names, as an observer.
fn in_cluster<T, F, Fut>(config: &ClusterConfig, f: F) -> Result<T, String>
where
    F: FnOnce(Arc<Cluster>) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let c = Cluster::observe(config, Metrics::new())
            .await
            .map_err(|e| e.to_string())?;
        f(c).await
    })
}

#[derive(clap::Subcommand)]
enum Command {
    /// One line per session: agent, channels, connection, request under way.
    List {
        #[command(flatten)]
        dir: Dir,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Everything HIS keeps of one session (by agent or session id), as JSON.
    Show {
        /// The agent, or the session id.
        who: String,
        #[command(flatten)]
        dir: Dir,
    },
    /// Have HIS log the agent out now, as when a detached session's grace
    /// ends; its MediaBar, if any, is closed. A running HIS acts within a
    /// second, a stopped one at its next start.
    Expire {
        /// The agent, or the session id.
        who: String,
        #[command(flatten)]
        dir: Dir,
    },
    /// Move a damaged store aside and start a new one with every session
    /// that can still be read. Only while no HIS uses the directory.
    Recover {
        #[command(flatten)]
        dir: Dir,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        Command::List { dir, json } => match dir.list() {
            Ok((rows, bad)) => {
                if json {
                    let all: Vec<Value> = rows.iter().map(public).collect();
                    emit(&format!("{:#}\n", Value::from(all)));
                } else {
                    emit(&table(&rows));
                }
                unreadable(&bad)
            }
            Err(e) => failed(&e),
        },
        Command::Show { who, dir } => match dir.list() {
            Ok((rows, _)) => match rows
                .iter()
                .find(|l| l.record.session.agent == who || l.record.session.id == who)
            {
                Some(l) => {
                    emit(&format!("{:#}\n", public(l)));
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("no session of `{who}` in {}", dir.place());
                    ExitCode::from(EXIT_PROBLEMS)
                }
            },
            Err(e) => failed(&e),
        },
        Command::Expire { who, dir } if dir.nats.is_some() => {
            let Some(config) = dir.cluster() else {
                return ExitCode::from(EXIT_USAGE);
            };
            let asked = who.clone();
            let marked = in_cluster(&config, |c| async move {
                let all = c.all().await.map_err(|e| e.to_string())?;
                let Some((e, _)) = all
                    .into_iter()
                    .find(|(e, _)| e.record.session.agent == who || e.record.session.id == who)
                else {
                    return Ok(None);
                };
                c.mark_expiry(&e.record.session.agent, &e.record.session.id)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Some((e.record.session.id, e.record.session.agent, e.owner)))
            });
            match marked {
                Ok(Some((id, agent, owner))) => {
                    emit(&format!(
                        "{agent} ({id}): marked for expiry; its node {owner}, or the node that takes it over, logs the agent out within a second\n"
                    ));
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!("no session of `{asked}` in {}", dir.place());
                    ExitCode::from(EXIT_PROBLEMS)
                }
                Err(e) => failed(&Failure::Nats(e)),
            }
        }
        Command::Expire { who, dir } => match store::mark_expiry(&dir.data_dir, &who) {
            Ok(Some((id, agent))) => {
                emit(&format!(
                    "{agent} ({id}): marked for expiry; HIS logs the agent out within a second, or at its next start\n"
                ));
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!("no session of `{who}` in {}", dir.data_dir.display());
                ExitCode::from(EXIT_PROBLEMS)
            }
            Err(e) => failed(&Failure::Store(e)),
        },
        Command::Recover { dir } if dir.nats.is_some() => {
            eprintln!(
                "error: `recover` mends a data directory's store; a cluster's sessions live in NATS"
            );
            ExitCode::from(EXIT_USAGE)
        }
        Command::Recover { dir } => match store::recover(&dir.data_dir) {
            Ok(r) => {
                let mut out = format!(
                    "the damaged store is kept as {}\n{} session(s) saved into a new store\n",
                    r.kept.display(),
                    r.saved.len()
                );
                for u in &r.lost {
                    out.push_str(&format!("lost: session {}: {}\n", u.session, u.why));
                }
                if !r.lost.is_empty() {
                    out.push_str(
                        "the agents of lost sessions may still be logged in at the switch: log them out there\n",
                    );
                }
                emit(&out);
                ExitCode::SUCCESS
            }
            Err(e @ StoreError::Sound { .. }) => {
                emit(&format!("{e}\n"));
                ExitCode::SUCCESS
            }
            Err(e) => failed(&Failure::Store(e)),
        },
    }
}

fn failed(e: &Failure) -> ExitCode {
    match e {
        Failure::Store(e) => {
            eprintln!("error: {e}");
            match e {
                StoreError::Missing { .. } | StoreError::InUse { .. } => ExitCode::from(EXIT_USAGE),
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
        Failure::Nats(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Records that cannot be read are reported; the listing still shows the
/// rest.
fn unreadable(bad: &[Unreadable]) -> ExitCode {
    for u in bad {
        eprintln!(
            "error: the record of session {} cannot be read: {}",
            u.session, u.why
        );
    }
    if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    }
}

/// A session as operators see it: everything but its token's hash.
fn public(l: &Listed) -> Value {
    let r = &l.record;
    json!({
        "agent": r.session.agent,
        "session": r.session.id,
        "state": r.session.state,
        "channels": r.session.channels,
        "logout_reasons": r.session.logout_reasons,
        "not_ready_reasons": r.session.not_ready_reasons,
        "logged_in_at_ms": r.logged_in_at,
        "detached_at_ms": r.detached_at,
        "under_way": r.under_way,
        "expire_requested": l.expire_requested,
        "updated_at_ms": l.updated_at,
        "node": l.owner,
    })
}

fn table(rows: &[Listed]) -> String {
    let now = now_ms();
    let mut lines = vec![[
        "AGENT".to_string(),
        "SESSION".into(),
        "CHANNELS".into(),
        "CONNECTION".into(),
        "NOTE".into(),
    ]];
    for l in rows {
        let r = &l.record;
        let channels = r
            .session
            .channels
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", c.media, c.state);
                if !c.active {
                    s.push_str(" (inactive)");
                }
                if !c.interactions.is_empty() {
                    s.push_str(&format!(" +{}", c.interactions.len()));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", ");
        let connection = match r.detached_at {
            None => "attached".to_string(),
            Some(at) => format!("detached {} ago", ago(now.saturating_sub(at))),
        };
        let mut note = Vec::new();
        if let Some(owner) = &l.owner {
            note.push(format!("on {owner}"));
        }
        if let Some(u) = &r.under_way {
            note.push(format!("{} under way", u.request));
        }
        if l.expire_requested {
            note.push("expiry requested".into());
        }
        lines.push([
            r.session.agent.clone(),
            r.session.id.clone(),
            channels,
            connection,
            note.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} session(s)\n", rows.len()));
    out
}

fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}
