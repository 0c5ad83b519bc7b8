//! `hisflow sessions list|show|expire|recover [--data-dir DIR]`: the
//! sessions HIS keeps, for operators. `list`, `show` and `expire` work
//! beside a running HIS; `recover` only while none uses the directory.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

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
        Command::List { dir, json } => match store::list(&dir.data_dir) {
            Ok((rows, bad)) => {
                if json {
                    let all: Vec<Value> = rows.iter().map(public).collect();
                    emit(&format!("{:#}\n", Value::from(all)));
                } else {
                    emit(&table(&rows));
                }
                unreadable(&bad)
            }
            Err(e) => store_failed(&e),
        },
        Command::Show { who, dir } => match store::list(&dir.data_dir) {
            Ok((rows, _)) => match rows
                .iter()
                .find(|l| l.record.session.agent == who || l.record.session.id == who)
            {
                Some(l) => {
                    emit(&format!("{:#}\n", public(l)));
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("no session of `{who}` in {}", dir.data_dir.display());
                    ExitCode::from(EXIT_PROBLEMS)
                }
            },
            Err(e) => store_failed(&e),
        },
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
            Err(e) => store_failed(&e),
        },
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
            Err(e) => store_failed(&e),
        },
    }
}

fn store_failed(e: &StoreError) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        StoreError::Missing { .. } | StoreError::InUse { .. } => ExitCode::from(EXIT_USAGE),
        _ => ExitCode::from(EXIT_FAILURE),
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
