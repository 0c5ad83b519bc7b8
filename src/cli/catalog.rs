//! `hisflow operations`, `hisflow events`, `hisflow functions` and `hisflow
//! rules`: what workflows may call, what switches tell HIS, what expressions
//! may use, and what the validator checks.

use std::process::ExitCode;

use hisflow::Rule;
use hisflow::platform::{ADAPTERS, AdapterSpec, EVENTS, OPERATIONS, Provider};

use std::fmt::Write;

use super::{emit, fail};

#[derive(clap::Args)]
pub struct OperationsArgs {
    /// Only the operations a workflow may call on this adapter kind.
    #[arg(long)]
    adapter: Option<String>,
}

/// The adapter `--adapter` names, or the usage error for an unknown one.
fn adapter(kind: Option<&str>) -> Result<Option<&'static AdapterSpec>, ExitCode> {
    let Some(kind) = kind else { return Ok(None) };
    match ADAPTERS.iter().find(|a| a.kind == kind) {
        Some(a) => Ok(Some(a)),
        None => {
            let kinds: Vec<&str> = ADAPTERS.iter().map(|a| a.kind).collect();
            Err(fail(format!(
                "unknown adapter `{kind}`; adapter kinds: {}",
                kinds.join(", ")
            )))
        }
    }
}

pub fn operations(args: OperationsArgs) -> ExitCode {
    let adapter = match adapter(args.adapter.as_deref()) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut out = String::new();
    for op in OPERATIONS {
        if let Some(a) = adapter
            && op.provider() == Provider::Switch
            && !a.operations.contains(&op.name)
        {
            continue;
        }
        let by = match op.provider() {
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

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Only the events this adapter kind delivers.
    #[arg(long)]
    adapter: Option<String>,
}

pub fn events(args: EventsArgs) -> ExitCode {
    let adapter = match adapter(args.adapter.as_deref()) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut out = String::new();
    for e in EVENTS {
        if adapter.is_some_and(|a| !a.events.contains(&e.name)) {
            continue;
        }
        let whom = if e.broadcast {
            "every agent"
        } else {
            "one agent"
        };
        let _ = writeln!(out, "{}  ({whom})", e.name);
        let _ = writeln!(out, "    {}", e.summary);
        for f in e.fields {
            let _ = writeln!(
                out,
                "    data {}{}: {}",
                f.name,
                if f.required { "" } else { " (optional)" },
                f.summary
            );
            if let Some(values) = f.values {
                let _ = writeln!(out, "      one of: {}", values.join(", "));
            }
        }
        let _ = writeln!(out);
    }
    for a in ADAPTERS {
        let _ = writeln!(out, "adapter {} delivers: {}", a.kind, a.events.join(", "));
    }
    emit(&out);
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub struct RulesArgs {
    /// A rule's name (`dead-end`) or code (`hisflow::dead-end`): print its
    /// explanation and the address of its documentation.
    rule: Option<String>,
    /// Print Markdown: docs/rules.md whole, or with RULE only its section.
    #[arg(long)]
    markdown: bool,
}

pub fn rules(args: RulesArgs) -> ExitCode {
    use hisflow::workflow::rules;
    let Some(name) = args.rule else {
        if args.markdown {
            emit(&rules::markdown());
            return ExitCode::SUCCESS;
        }
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
        return ExitCode::SUCCESS;
    };
    let Some(rule) = Rule::by_name(&name) else {
        let bare = name.trim().trim_start_matches("hisflow::");
        let hint =
            hisflow::workflow::diagnostic::did_you_mean(bare, Rule::ALL.iter().map(|r| r.name()))
                .unwrap_or_else(|| "`hisflow rules` lists them".to_string());
        return fail(format!("no rule `{name}`; {hint}"));
    };
    let mut out = rules::Explanation::of(rule).markdown();
    if !args.markdown {
        let _ = writeln!(out, "{}", rule.url());
    }
    emit(&out);
    ExitCode::SUCCESS
}

/// `hisflow functions`: the functions and macros expressions may use.
pub fn functions() -> ExitCode {
    use hisflow::workflow::functions::{Call, FUNCTIONS, MACROS};
    let mut out = String::new();
    for f in FUNCTIONS {
        let called = match f.call {
            Call::Member => format!("x.{}()", f.name),
            _ => format!("{}()", f.name),
        };
        let _ = writeln!(out, "{called:<22} {:<48} → {}", f.example, f.gives);
    }
    let _ = writeln!(out);
    for (name, example, gives) in MACROS {
        let _ = writeln!(out, "{name:<22} {example:<48} → {gives}");
    }
    emit(&out);
    ExitCode::SUCCESS
}
