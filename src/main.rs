//! The `hisflow` command: parse the command line, hand over to `cli`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
