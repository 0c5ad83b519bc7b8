//! `hisflow add-user --users FILE AGENT`: the password comes on standard
//! input (one line; typed unseen at a terminal), never on the command line, where `ps` and the shell's
//! history would show it.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use hisflow::his::auth;

use super::fail;

#[derive(clap::Args)]
pub struct Args {
    /// The users file (created readable by its owner only); the
    /// configuration's `auth: {kind: users, file: …}` names it.
    #[arg(long)]
    users: PathBuf,
    /// The agent's id on the switch.
    agent: String,
}

pub fn run(args: Args) -> ExitCode {
    let stdin = std::io::stdin();
    let read = if stdin.is_terminal() {
        rpassword::prompt_password(format!("password for {}: ", args.agent))
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map(|_| line)
    };
    let line = match read {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot read the password: {e}")),
    };
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return fail("the password is empty: give it on standard input");
    }
    match auth::add_user(&args.users, &args.agent, password) {
        Ok(()) => {
            eprintln!(
                "{} may log in; HIS reads {} again at the next login",
                args.agent,
                args.users.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
