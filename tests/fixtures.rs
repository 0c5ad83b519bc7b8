//! One fixture folder per rule under tests/fixtures/invalid/<rule>/: the
//! validator must report exactly the diagnostics its `expect` file lists, at
//! those lines and columns, and render them as the snapshot shows.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::{positions, root, run, stdout};
use hisflow::{Rule, Severity};

/// Rules whose input cannot be a small committed file; tests/bad_input.rs
/// generates it.
const GENERATED: &[&str] = &["file-too-large"];

fn fixtures() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join("tests/fixtures/invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_rule_has_a_fixture() {
    let have: BTreeSet<String> = fixtures().into_iter().collect();
    for rule in Rule::ALL {
        assert!(
            have.contains(rule.name()) || GENERATED.contains(&rule.name()),
            "rule {} has no fixture folder tests/fixtures/invalid/{}",
            rule.code(),
            rule.name()
        );
    }
    for name in &have {
        assert!(
            Rule::ALL.iter().any(|r| r.name() == name),
            "fixture {name} names no rule"
        );
    }
}

#[test]
fn each_fixture_reports_exactly_its_expected_diagnostics() {
    let dir = root().join("tests/fixtures/invalid");
    for name in fixtures() {
        let expect = fs::read_to_string(dir.join(&name).join("expect"))
            .unwrap_or_else(|_| panic!("{name}/expect"));
        let expected: BTreeSet<(String, u64, u64, String)> = expect
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (place, code) = l.split_once(' ').unwrap();
                let mut parts = place.rsplitn(3, ':');
                let col = parts.next().unwrap().parse().unwrap();
                let line = parts.next().unwrap().parse().unwrap();
                let file = parts.next().unwrap();
                (format!("{name}/{file}"), line, col, code.to_string())
            })
            .collect();
        assert!(
            expected
                .iter()
                .any(|(_, _, _, c)| c == &format!("hisflow::{name}")),
            "{name}/expect must list a hisflow::{name} diagnostic"
        );
        let out = run(&dir, &["validate", &name, "--format", "json"]);
        let got: BTreeSet<_> = positions(&stdout(&out)).into_iter().collect();
        assert_eq!(got, expected, "fixture {name}");

        let rule = Rule::ALL.iter().find(|r| r.name() == name).unwrap();
        let code = out.status.code();
        match rule.severity() {
            Severity::Error => assert_eq!(code, Some(1), "{name} exits 1"),
            Severity::Warning => {
                assert_eq!(code, Some(0), "{name}: warnings alone exit 0");
                let denied = run(&dir, &["validate", &name, "--deny-warnings"]);
                assert_eq!(
                    denied.status.code(),
                    Some(1),
                    "{name}: --deny-warnings exits 1"
                );
            }
        }
    }
}

#[test]
fn each_fixture_renders_as_its_snapshot() {
    let dir = root().join("tests/fixtures/invalid");
    for name in fixtures() {
        let out = run(&dir, &["validate", &name]);
        let text = stdout(&out);
        // Each diagnostic's header links the explanation of its rule.
        let rule = Rule::by_name(&name).unwrap();
        assert!(
            text.contains(&format!("{} ({})\n", rule.code(), rule.url())),
            "{name}: {text}"
        );
        insta::with_settings!({ snapshot_suffix => name.clone(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!("invalid", text);
        });
    }
}
