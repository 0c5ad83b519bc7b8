//! Mutated workflow files: the loader and validator never panic, and a file
//! that lost something essential always gets a diagnostic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_tree, root};
use hisflow::{Rule, validate_paths};
use proptest::prelude::*;

/// The shipped workflow files, relative to workflows/.
fn shipped() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let base = root().join("workflows");
    for dir in fs::read_dir(&base).unwrap() {
        let dir = dir.unwrap().path();
        for f in fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "yaml") {
                let rel = f.strip_prefix(&base).unwrap().to_path_buf();
                out.push((rel, fs::read_to_string(&f).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Validates a copy of workflows/ where `rel` has the text `text`.
fn validate_with(rel: &Path, text: &str) -> hisflow::Report {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("workflows");
    copy_tree(&root().join("workflows"), &base);
    fs::write(base.join(rel), text).unwrap();
    validate_paths(&[base]).unwrap()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

/// Done-when of the language issue: renaming any transition target in any
/// workflow file to an undefined name is reported at that line.
#[test]
fn renaming_any_transition_target_is_reported_at_its_place() {
    let report = validate_paths(&[root().join("workflows")]).unwrap();
    assert!(!report.diagnostics.has_errors());
    let mut targets = Vec::new();
    let workflows = report.platforms.iter().flat_map(|p| p.workflows.values());
    for w in workflows {
        for e in w.graph.edge_weights() {
            let file = report.sources.get(e.span.file);
            let rel = file
                .path()
                .strip_prefix(root().join("workflows"))
                .unwrap()
                .to_path_buf();
            targets.push((rel, e.span.range.clone()));
        }
    }
    targets.sort_by(|a, b| (&a.0, a.1.start).cmp(&(&b.0, b.1.start)));
    targets.dedup();
    assert!(
        targets.len() > 60,
        "only {} transitions found",
        targets.len()
    );
    for (rel, range) in targets {
        let original = fs::read_to_string(root().join("workflows").join(&rel)).unwrap();
        let mut text = original.clone();
        text.replace_range(range.clone(), "zz_no_such_state");
        let report = validate_with(&rel, &text);
        let want = line_col(&original, range.start);
        let found = report.diagnostics.iter().any(|d| {
            let f = report.sources.get(d.span.file);
            d.rule == Rule::UndefinedTarget
                && f.path().ends_with(&rel)
                && f.line_col(d.span.range.start) == want
        });
        assert!(
            found,
            "renaming the target at {}:{}:{} was not reported there",
            rel.display(),
            want.0,
            want.1
        );
    }
}

/// Keys without which a state or file cannot work as written. (`message` is
/// not among them: a `need_info` may leave it out.)
const ESSENTIAL: &[&str] = &[
    "workflow",
    "overrides",
    "start",
    "states",
    "next",
    "otherwise",
    "op",
    "call",
    "emit",
    "respond",
    "choice",
    "foreach",
    "as",
    "do",
    "on",
    "- when",
    "ok",
    "error",
    "code",
    "field",
    "platform",
    "extends",
    "adapter",
    "kind",
    "requests",
    "settings",
];

fn essential_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            ESSENTIAL.iter().any(|k| t.starts_with(&format!("{k}:")))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Byte offset where the last state's key starts: cutting before it always
/// loses a state that something needs.
fn last_state_start(text: &str) -> usize {
    let states = text.find("\nstates:").expect("a states key");
    let mut last = states;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > states
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && line.trim_end().ends_with(':')
        {
            last = offset;
        }
        offset += line.len();
    }
    last
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("HISFLOW_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48), failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn dropping_an_essential_key_is_always_reported(file in 0usize..64, pick in 0usize..1000) {
        let files = shipped();
        let (rel, text) = &files[file % files.len()];
        let lines = essential_lines(text);
        prop_assert!(!lines.is_empty(), "{} has no essential key", rel.display());
        let drop = lines[pick % lines.len()];
        let mutated: String = text.lines().enumerate().filter(|(i, _)| *i != drop).map(|(_, l)| format!("{l}\n")).collect();
        let report = validate_with(rel, &mutated);
        prop_assert!(report.diagnostics.has_errors(), "dropping line {} of {} ({:?}) went unnoticed", drop + 1, rel.display(), text.lines().nth(drop));
    }

    #[test]
    fn truncating_a_file_is_always_reported(file in 0usize..64, cut in 0.0f64..1.0) {
        // An overrides file cut short is a smaller valid override (it
        // changes fewer states), so only workflows and machines are cut.
        let files: Vec<_> = shipped().into_iter().filter(|(rel, text)| rel.file_name().is_some_and(|n| n != "platform.yaml") && !text.lines().any(|l| l.starts_with("overrides:"))).collect();
        let (rel, text) = &files[file % files.len()];
        let end = last_state_start(text);
        let at = text.floor_char_boundary((end as f64 * cut) as usize);
        let report = validate_with(rel, &text[..at]);
        prop_assert!(report.diagnostics.has_errors(), "{} cut at byte {at} validated clean", rel.display());
    }

    #[test]
    fn random_edits_never_panic(file in 0usize..64, edits in proptest::collection::vec((0.0f64..1.0, any::<u8>()), 1..8)) {
        let files = shipped();
        let (rel, text) = &files[file % files.len()];
        let mut bytes = text.clone().into_bytes();
        for (at, b) in edits {
            let i = ((bytes.len() - 1) as f64 * at) as usize;
            bytes[i] = b;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("workflows");
        copy_tree(&root().join("workflows"), &base);
        fs::write(base.join(rel), &bytes).unwrap();
        let report = validate_paths(&[base]);
        prop_assert!(report.is_ok());
    }
}

/// A mutation of one line of a shipped file, and what it changed.
struct Mutation {
    rel: PathBuf,
    /// 0-based line index.
    line: usize,
    text: String,
    what: &'static str,
}

/// `word` misspelt as an integrator would: a letter doubled at its end.
fn typo(word: &str) -> String {
    format!("{word}{}", word.chars().last().unwrap_or('x'))
}

/// Settings (names, and values a type checks: enums, lists of them, bools),
/// state literals in guards, and error codes in responses, across every
/// shipped platform and workflow file.
fn vocabulary_mutations() -> Vec<Mutation> {
    let quoted = regex::Regex::new(r"state (?:==|!=|in \[) ?'([A-Za-z]+)'").unwrap();
    let code = regex::Regex::new(r"\bcode: ([A-Z][A-Za-z]+)").unwrap();
    let enum_list = regex::Regex::new(r"^\[([a-z_]+)[,\]]").unwrap();
    let word = regex::Regex::new("^[a-z_]+$").unwrap();
    let mut out = Vec::new();
    for (rel, text) in shipped() {
        let is_manifest = rel.file_name().is_some_and(|n| n == "platform.yaml");
        let mut in_settings = false;
        for (i, l) in text.lines().enumerate() {
            let mut push = |new: String, what| {
                let mut lines: Vec<&str> = text.lines().collect();
                lines[i] = &new;
                out.push(Mutation {
                    rel: rel.clone(),
                    line: i,
                    text: lines.join("\n") + "\n",
                    what,
                });
            };
            if is_manifest {
                if l == "settings:" {
                    in_settings = true;
                    continue;
                }
                if !l.starts_with(' ') && !l.is_empty() {
                    in_settings = false;
                }
                let entry = l
                    .strip_prefix("  ")
                    .filter(|e| !e.starts_with([' ', '#', '-']));
                if let (true, Some((name, value))) =
                    (in_settings, entry.and_then(|e| e.split_once(':')))
                {
                    push(format!("  {}:{value}", typo(name)), "setting name");
                    let v = value.trim();
                    if v == "true" || v == "false" || word.is_match(v) {
                        push(format!("  {name}: {}", typo(v)), "setting value");
                    } else if let Some(c) = enum_list.captures(v) {
                        let w = &c[1];
                        push(
                            format!("  {name}: {}", v.replacen(w, &typo(w), 1)),
                            "setting value",
                        );
                    }
                }
            } else {
                if let Some(c) = quoted.captures(l) {
                    let w = c.get(1).unwrap();
                    let mut new = l.to_string();
                    new.replace_range(w.range(), &typo(w.as_str()));
                    push(new, "state literal");
                }
                if let Some(c) = code.captures(l) {
                    let w = c.get(1).unwrap();
                    let mut new = l.to_string();
                    new.replace_range(w.range(), &typo(w.as_str()));
                    push(new, "error code");
                }
            }
        }
    }
    out
}

/// Done-when of the language's second edition: a typo in a setting's name or
/// value, a state literal or an error code of any shipped profile is an
/// error at that line.
#[test]
fn a_typo_in_a_setting_a_state_or_an_error_code_is_reported_at_its_line() {
    let mutations = vocabulary_mutations();
    for (what, least) in [
        ("setting name", 30),
        ("setting value", 20),
        ("state literal", 10),
        ("error code", 25),
    ] {
        let n = mutations.iter().filter(|m| m.what == what).count();
        eprintln!("{n} mutations of: {what}");
        assert!(n >= least, "only {n} mutations of a {what}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("workflows");
    copy_tree(&root().join("workflows"), &base);
    for m in mutations {
        let path = base.join(&m.rel);
        let original = fs::read_to_string(&path).unwrap();
        fs::write(&path, &m.text).unwrap();
        let platform = base.join(m.rel.iter().next().unwrap());
        let report = validate_paths(&[platform]).unwrap();
        fs::write(&path, original).unwrap();
        let found = report.diagnostics.iter().any(|d| {
            let f = report.sources.get(d.span.file);
            d.rule.severity() == hisflow::Severity::Error
                && f.path().ends_with(&m.rel)
                && f.line_col(d.span.range.start).0 == m.line + 1
        });
        assert!(
            found,
            "a typo in the {} at {}:{} ({:?}) was not reported at that line: {:?}",
            m.what,
            m.rel.display(),
            m.line + 1,
            m.text.lines().nth(m.line),
            report
                .diagnostics
                .iter()
                .map(|d| (
                    d.rule.name(),
                    report.sources.get(d.span.file).path().display().to_string(),
                    report.sources.get(d.span.file).line_col(d.span.range.start)
                ))
                .collect::<Vec<_>>()
        );
    }
}
