//! docs/rules.md is what the rules' texts (src/workflow/rules/*.md) make of
//! it, it has a section wherever a diagnostic's URL points, and every example
//! in it does what it says: written to a folder and validated, each failing
//! example reports its rule and nothing else, and the fixed one is clean.

mod common;

use std::fs;
use std::path::Path;

use common::{root, run, stderr, stdout};
use hisflow::Rule;
use hisflow::workflow::rules::{ExampleFile, Explanation, markdown};

const REGENERATE: &str = "regenerate it: `cargo run -- rules --markdown > docs/rules.md`, or `UPDATE_DOCS=1 cargo test --test rules`";

#[test]
fn docs_rules_md_is_generated_from_the_rules_texts() {
    let path = root().join("docs/rules.md");
    let generated = markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        fs::write(&path, &generated).unwrap();
        return;
    }
    let written = fs::read_to_string(&path).unwrap_or_default();
    if written != generated {
        let line = written
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| written.lines().count().min(generated.lines().count()));
        panic!(
            "docs/rules.md differs from the rules' texts from line {}; {REGENERATE}",
            line + 1
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_rule_has_one_section_where_its_url_points() {
    let doc = fs::read_to_string(root().join("docs/rules.md")).unwrap();
    let anchors: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect();
    for r in Rule::ALL {
        let url = r.url();
        let (page, fragment) = url.split_once('#').expect("a URL with a fragment");
        assert!(
            page.ends_with("/docs/rules.md"),
            "{} links {page}",
            r.code()
        );
        assert_eq!(
            anchors.iter().filter(|a| *a == fragment).count(),
            1,
            "docs/rules.md needs exactly one section with the anchor #{fragment} of {}",
            r.code()
        );
    }
    assert_eq!(
        anchors.len(),
        Rule::ALL.len(),
        "docs/rules.md has a section per rule and no other: {anchors:?}"
    );
}

/// Writes `files` under `dir`, replacing those already there.
fn write(dir: &Path, files: &[ExampleFile]) {
    for f in files {
        let path = dir.join(f.path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, f.bytes()).unwrap();
    }
}

/// `hisflow validate example --format json`, run beside the folder: the
/// codes and URLs of what it reports, and its exit code.
fn validate(parent: &Path) -> (Vec<(String, String)>, Option<i32>) {
    let out = run(parent, &["validate", "example", "--format", "json"]);
    let found: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|_| panic!("no JSON: {}", stderr(&out)));
    let found = found
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["url"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (found, out.status.code())
}

#[test]
fn each_failing_example_breaks_its_rule_alone_and_each_fix_is_clean() {
    let mut wrong = Vec::new();
    for r in Rule::ALL {
        let e = Explanation::of(*r);
        if e.no_example.is_some() {
            continue;
        }
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("example");
        write(&dir, &e.failing_files());
        let (found, code) = validate(d.path());
        let expected = (r.code(), r.url());
        if found.is_empty() || found.iter().any(|f| *f != expected) {
            wrong.push(format!(
                "{}: the failing example reports {found:?}",
                r.code()
            ));
        }
        let exit = match r.severity() {
            hisflow::Severity::Error => 1,
            hisflow::Severity::Warning => 0,
        };
        if code != Some(exit) {
            wrong.push(format!(
                "{}: the failing example exits {code:?}, not {exit}",
                r.code()
            ));
        }
        write(&dir, &e.fixed_files());
        let (found, code) = validate(d.path());
        if !found.is_empty() || code != Some(0) {
            wrong.push(format!(
                "{}: the fixed example reports {found:?} and exits {code:?}",
                r.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A rule whose text gives no example must be shown here another way.
#[test]
fn each_rule_without_an_example_is_checked_here() {
    for r in Rule::ALL {
        if Explanation::of(*r).no_example.is_none() {
            continue;
        }
        match r.name() {
            "file-too-large" => file_too_large(),
            other => {
                panic!("{other} has no example in its text and no check in tests/rules.rs: add one")
            }
        }
    }
}

/// A valid workflow padded with a comment: one byte over the limit is
/// refused, at the limit it validates.
fn file_too_large() {
    use hisflow::workflow::load::MAX_FILE_BYTES;
    let text = "workflow: w\nstart: done\nstates:\n  done:\n    respond:\n      ok: {}\n#";
    let padded = |len: usize| format!("{text}{}\n", "x".repeat(len - text.len() - 1));
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("example");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("w.yaml"), padded(MAX_FILE_BYTES + 1)).unwrap();
    let (found, code) = validate(d.path());
    let rule = Rule::by_name("file-too-large").unwrap();
    assert_eq!(found, [(rule.code(), rule.url())]);
    assert_eq!(code, Some(1));
    fs::write(dir.join("w.yaml"), padded(MAX_FILE_BYTES)).unwrap();
    assert_eq!(validate(d.path()), (Vec::new(), Some(0)));
}

/// The limits the texts give, in their words, are the validator's.
#[test]
fn the_limits_the_texts_give_are_the_validators() {
    use hisflow::workflow::{expr, load, record, validate};
    let words = |name: &str| {
        let rule = Rule::by_name(name).unwrap();
        Explanation::of(rule)
            .markdown()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let thousands = |n: usize| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let too_deep = words("too-deep");
    for said in [
        format!("indented more than {} columns", load::MAX_BLOCK_COLUMNS),
        format!("more than {} `[` and `{{`", load::MAX_FLOW_DEPTH),
        format!("more than {} brackets", expr::MAX_EXPR_DEPTH),
        format!("more than {} comprehensions", expr::MAX_COMPREHENSION_DEPTH),
        format!("more than {} times", thousands(record::EVAL_BUDGET)),
        format!("more than {} `${{…}}` holes", expr::MAX_TEMPLATE_HOLES),
        format!("more than {} platforms", validate::MAX_EXTENDS),
    ] {
        assert!(too_deep.contains(&said), "too-deep does not say {said:?}");
    }
    assert_eq!(load::MAX_FILE_BYTES, 1 << 20);
    assert!(words("file-too-large").contains(&format!(
        "larger than 1 MiB ({} bytes)",
        thousands(load::MAX_FILE_BYTES)
    )));
}
