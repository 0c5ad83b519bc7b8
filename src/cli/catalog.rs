//! `hisflow operations` and `hisflow rules`: what workflows may call, and what
//! the validator checks.

use std::process::ExitCode;

use hisflow::Rule;
use hisflow::platform::{ADAPTERS, OPERATIONS, Provider};

use std::fmt::Write;

use super::{emit, fail};

#[derive(clap::Args)]
pub struct OperationsArgs {
    /// Only the operations a workflow may call on this adapter kind.
    #[arg(long)]
    adapter: Option<String>,
}

pub fn operations(args: OperationsArgs) -> ExitCode {
    let adapter = match &args.adapter {
        None => None,
        Some(kind) => match ADAPTERS.iter().find(|a| a.kind == kind) {
            Some(a) => Some(a),
            None => {
                let kinds: Vec<&str> = ADAPTERS.iter().map(|a| a.kind).collect();
                return fail(format!(
                    "unknown adapter `{kind}`; adapter kinds: {}",
                    kinds.join(", ")
                ));
            }
        },
    };
    let mut out = String::new();
    for op in OPERATIONS {
        if let Some(a) = adapter
            && op.provider == Provider::Switch
            && !a.operations.contains(&op.name)
        {
            continue;
        }
        let by = match op.provider {
            Provider::Switch => "switch",
            Provider::His => "HIS",
        };
        let _ = writeln!(out, "{}  ({by})", op.name);
        let _ = writeln!(out, "    {}", op.summary);
        for a in op.args {
            let _ = writeln!(
                out,
                "    arg {}{}: {}",
                a.name,
                if a.required { "" } else { " (optional)" },
                a.summary
            );
        }
        let _ = writeln!(out, "    outcomes: {}", op.outcomes.join(", "));
        if let Some(r) = op.result {
            let _ = writeln!(out, "    result (save:): {r}");
        }
        let _ = writeln!(out);
    }
    for a in ADAPTERS {
        let _ = writeln!(out, "adapter {}: {}", a.kind, a.summary);
    }
    emit(&out);
    ExitCode::SUCCESS
}

pub fn rules() -> ExitCode {
    let mut out = String::new();
    for r in Rule::ALL {
        let _ = writeln!(
            out,
            "{:<34} {:<8} {}",
            r.code(),
            r.severity().as_str(),
            r.summary()
        );
    }
    emit(&out);
    ExitCode::SUCCESS
}
