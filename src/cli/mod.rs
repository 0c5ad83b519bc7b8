//! The command line. The only place that renders diagnostics with miette and
//! picks exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod catalog;
mod diagrams;
mod doctor;
mod render;
mod report;
mod run;
mod sarif;
mod schema;
mod serve;
mod sessions;
mod switch;
mod test;
mod users;
mod validate;

#[derive(Parser)]
#[command(
    name = "hisflow",
    version,
    about = "Contact-centre request workflows as data: validate, render and run them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check workflow files and platform folders; every problem, each at its token.
    Validate(validate::Args),
    /// Draw a workflow as a Mermaid or Graphviz diagram.
    Render(render::Args),
    /// Run scenarios on the simulated switch; report failures and transition coverage.
    Test(test::Args),
    /// Run one scenario and print its events and responses, or its trace.
    Run(run::Args),
    /// Run HIS: the WebSocket server for MediaBars, driving the platform's
    /// switch (the simulated one by default).
    Serve(serve::Args),
    /// The sessions HIS keeps, in its data directory or its cluster's NATS:
    /// list, show, expire, or recover a damaged store.
    Sessions(sessions::Args),
    /// Run the simulated switch alone, in a process of its own, for HIS
    /// nodes configured with `adapter: { kind: sim, url: … }`.
    Switch(switch::Args),
    /// Check a deployment before agents arrive: its platform, and its switch
    /// reached with its credentials; one line per check.
    Doctor(doctor::Args),
    /// Write the JSON Schemas of workflow and platform files.
    Schema(schema::Args),
    /// Write the Mermaid diagram page of every platform's Logout workflow.
    Diagrams(diagrams::Args),
    /// List the operations workflows can call, with arguments and outcomes.
    Operations(catalog::OperationsArgs),
    /// List the switch events adapters deliver, with their data.
    Events(catalog::EventsArgs),
    /// List the functions and macros expressions may use, with examples.
    Functions,
    /// List the validator's rules, or explain one: what it catches, why, and
    /// a failing example next to the fixed one.
    Rules(catalog::RulesArgs),
    /// Add an agent to a users file, or change its password (read from stdin).
    AddUser(users::Args),
    /// Serve the language server protocol on stdio, for editors.
    Lsp,
}

/// Exit codes, as actionlint's: 0 clean, 1 problems found, 2 usage (a bad
/// argument, a path that does not exist, a bad configuration), 3 a file
/// that could not be read.
pub const EXIT_PROBLEMS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_FAILURE: u8 = 3;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Render(a) => render::run(a),
        Command::Test(a) => test::run(a),
        Command::Run(a) => run::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Sessions(a) => sessions::run(a),
        Command::Switch(a) => switch::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Diagrams(a) => diagrams::run(a),
        Command::Operations(a) => catalog::operations(a),
        Command::Events(a) => catalog::events(a),
        Command::Functions => catalog::functions(),
        Command::Rules(a) => catalog::rules(a),
        Command::AddUser(a) => users::run(a),
        Command::Lsp => match hisflow::lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        },
    }
}

/// Writes to stdout. A reader that went away (`hisflow rules | head`) is not
/// an error worth a panic: the rest is dropped.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Validates `paths` for a command that can only work on clean workflows: on
/// an error it prints the diagnostics, then `refusal` if there is one, and
/// gives back the exit code to end with.
pub fn validated(
    paths: &[std::path::PathBuf],
    refusal: Option<&str>,
) -> Result<hisflow::Report, ExitCode> {
    let report = hisflow::validate_paths(paths).map_err(failed)?;
    if report.diagnostics.has_errors() {
        emit(&report::human(report.diagnostics.iter(), &report.sources));
        if let Some(why) = refusal {
            eprintln!("{why}");
        }
        return Err(ExitCode::from(EXIT_PROBLEMS));
    }
    Ok(report)
}

/// Prints a usage error and returns exit code 2.
pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// Prints the library's error and returns its exit code: 3 for a file that
/// exists and could not be read (a FIFO, a folder named like a file, no
/// permission), 2 for the rest, which the user's arguments caused.
pub fn failed(e: hisflow::Error) -> ExitCode {
    let code = match &e {
        hisflow::Error::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
            EXIT_FAILURE
        }
        _ => EXIT_USAGE,
    };
    eprintln!("error: {e}");
    ExitCode::from(code)
}
