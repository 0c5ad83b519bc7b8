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
