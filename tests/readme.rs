//! What README.md and docs/ show the commands print is what they print, and
//! the files they link exist.

mod common;

use std::fs;

use common::{root, run, stdout};

fn readme() -> String {
    fs::read_to_string(root().join("README.md")).unwrap()
}

/// The line that follows `prompt` in a console block of `text`.
fn after<'a>(text: &'a str, prompt: &str) -> &'a str {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == prompt)
        .unwrap_or_else(|| panic!("no `{prompt}`"));
    lines.next().unwrap()
}

#[test]
fn the_tour_shows_what_validate_and_test_print() {
    let text = readme();
    let validated = common::stderr(&run(&root(), &["validate", "workflows/"]));
    assert_eq!(
        after(&text, "$ hisflow validate workflows/"),
        validated.trim_end(),
        "README's tour"
    );
    let tested = stdout(&run(&root(), &["test", "workflows/", "--require-coverage"]));
    let line = |prefix: &str| {
        tested
            .lines()
            .find(|l| l.starts_with(prefix) || l.ends_with(prefix))
            .unwrap_or_else(|| panic!("`hisflow test` prints no `{prefix}`"))
            .to_string()
    };
    let coverage = line("transition coverage:");
    let passed = line("failed");
    for (doc, body) in [
        ("README.md", text.clone()),
        (
            "docs/scenarios.md",
            fs::read_to_string(root().join("docs/scenarios.md")).unwrap(),
        ),
    ] {
        assert!(body.contains(&coverage), "{doc} does not show `{coverage}`");
        assert!(body.contains(&passed), "{doc} does not show `{passed}`");
    }
}

#[test]
fn the_tour_shows_what_validate_prints_for_a_broken_workflow() {
    let prompt = "$ hisflow validate tests/fixtures/invalid/unknown-field";
    let text = readme();
    let shown: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != prompt)
        .skip(1)
        .take_while(|l| !l.starts_with("$ "))
        .collect();
    assert!(!shown.is_empty(), "no `{prompt}` in README.md");
    let printed = stdout(&run(
        &root(),
        &["validate", "tests/fixtures/invalid/unknown-field"],
    ));
    assert_eq!(
        shown.join("\n").trim_end(),
        printed.trim_end(),
        "README's tour"
    );
}

#[test]
fn the_rule_count_is_the_number_of_rules() {
    let n = hisflow::Rule::ALL.len();
    // Wherever the paragraph's lines break.
    let words = readme().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("`hisflow rules` lists the {n} rules")),
        "README must say `hisflow rules` lists the {n} rules"
    );
}

#[test]
fn every_relative_link_of_the_readme_and_docs_exists() {
    let mut files = vec![root().join("README.md")];
    for e in fs::read_dir(root().join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let dir = file.parent().unwrap();
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap();
            if target.is_empty() || target.contains("://") || target.contains(' ') {
                continue;
            }
            assert!(
                dir.join(target).exists(),
                "{} links {target}, which does not exist",
                file.display()
            );
        }
    }
}
