//! Golden tests of the command line: what it prints and how it exits.

mod common;

use std::fs;
use std::process::Command;

use common::{root, run, stderr, stdout};

#[test]
fn the_shipped_workflows_validate_clean() {
    let out = run(&root(), &["validate", "workflows"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    let summary = stderr(&out);
    assert!(
        summary.contains("files checked: 0 errors, 0 warnings"),
        "{summary}"
    );

    let json = run(
        &root(),
        &[
            "validate",
            "workflows",
            "--format",
            "json",
            "--deny-warnings",
        ],
    );
    assert_eq!(json.status.code(), Some(0));
    assert_eq!(stdout(&json).trim(), "[]");
}

#[test]
fn json_output_has_the_documented_fields() {
    let out = run(
        &root().join("tests/fixtures/invalid"),
        &["validate", "undefined-target/w.yaml", "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let d = &v[0];
    for key in [
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "severity",
        "code",
        "url",
        "message",
        "help",
    ] {
        assert!(d.get(key).is_some(), "missing {key} in {d}");
    }
    assert_eq!(d["file"], "undefined-target/w.yaml");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(7), Some(11))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(7), Some(15))
    );
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "hisflow::undefined-target");
    assert_eq!(
        d["url"],
        hisflow::Rule::by_name("undefined-target").unwrap().url()
    );
    assert_eq!(d["help"], "did you mean `done`?");
}

#[test]
fn a_single_file_is_checked_in_its_platform_and_reported_alone() {
    let out = run(
        &root(),
        &["validate", "workflows/avaya-cm/deactivate_channel.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("0 errors"));
}

/// A platform validated from inside its folder (`.`) has its scenarios
/// checked, named as from there.
#[test]
fn validate_dot_in_a_platform_checks_its_scenarios() {
    let dir = root().join("tests/fixtures/invalid/unknown-channel");
    let out = run(&dir, &["validate", ".", "--format", "short"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("scenarios/s.yaml:6:29: error: `fax` is not a channel"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&root(), &["validate"]).status.code(), Some(2));
    assert_eq!(run(&root(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        run(
            &root(),
            &[
                "render",
                "workflows/reference/logout.yaml",
                "--format",
                "png"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(run(&root(), &["--help"]).status.code(), Some(0));
}

#[test]
fn render_mermaid_of_logout() {
    let out = run(
        &root(),
        &[
            "render",
            "workflows/reference/logout.yaml",
            "--format",
            "mermaid",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("stateDiagram-v2"));
    insta::assert_snapshot!("logout_mermaid", text);
}

#[test]
fn render_dot_of_logout() {
    let out = run(
        &root(),
        &[
            "render",
            "workflows/reference/logout.yaml",
            "--format",
            "dot",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("logout_dot", stdout(&out));
}

#[test]
fn render_refuses_a_file_with_errors() {
    let out = run(
        &root().join("tests/fixtures/invalid"),
        &["render", "dead-end/w.yaml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("hisflow::dead-end"));
    assert!(stderr(&out).contains("it has errors"));
}

#[test]
fn render_writes_to_a_file() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("logout.dot");
    let out = run(
        &root(),
        &[
            "render",
            "workflows/reference/logout.yaml",
            "--format",
            "dot",
            "-o",
            target.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(fs::read_to_string(target).unwrap().starts_with("digraph"));
}

/// Every Logout workflow of every profile, drawn as DOT, is accepted by
/// Graphviz itself. `.ci/run` installs graphviz.
#[test]
fn every_logout_render_passes_dot() {
    let report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    assert!(!report.platforms.is_empty());
    for p in &report.platforms {
        let logout = p
            .handler("session.request.logout")
            .expect("a logout workflow");
        let dot = hisflow::render::Dot(logout).to_string();
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("graphviz `dot` is installed (apt-get install graphviz)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(dot.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "dot rejects {}'s logout: {}",
            p.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    }
}

#[test]
fn schema_prints_both_schemas() {
    let out = run(&root(), &["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let expected: String = hisflow::schema::all().into_iter().map(|(_, s)| s).collect();
    assert_eq!(stdout(&out), expected);
}

/// docs/diagrams/ holds the Mermaid render of every Logout workflow; it is
/// regenerated with `cargo run -- diagrams docs/diagrams` and must be current.
#[test]
fn diagrams_are_current() {
    let report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    for p in &report.platforms {
        let logout = p.handler("session.request.logout").unwrap();
        let path = root()
            .join("docs/diagrams")
            .join(format!("{}-logout.md", p.name));
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            hisflow::render::diagram_page(p, logout),
            "{} is stale: run `cargo run -- diagrams docs/diagrams`",
            path.display()
        );
    }
    let reference = report
        .platforms
        .iter()
        .find(|p| p.name == "reference")
        .unwrap();
    assert_eq!(reference.machines.len(), 2);
    for m in &reference.machines {
        let path = root()
            .join("docs/diagrams")
            .join(format!("reference-{}-machine.md", m.name));
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed,
            hisflow::render::machine_page(reference, m),
            "{} is stale: run `cargo run -- diagrams docs/diagrams`",
            path.display()
        );
    }
}

#[test]
fn every_machine_render_passes_dot() {
    for m in ["channel", "session"] {
        let file = format!("workflows/reference/{m}.yaml");
        let out = run(&root(), &["render", &file, "--format", "dot"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("(any state)") || m == "session", "{text}");
        let mut dot = std::process::Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("graphviz's dot is installed");
        use std::io::Write;
        dot.stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let done = dot.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&done.stderr)
        );
        let mermaid = stdout(&run(&root(), &["render", &file]));
        assert!(mermaid.contains("stateDiagram-v2"), "{mermaid}");
        // Mermaid draws a state only a computed target reaches only when
        // the state is described.
        if m == "channel" {
            for state in hisflow::platform::events::AGENT_STATES {
                assert!(
                    mermaid.contains(&format!("    {state} : {state}\n")),
                    "{state}: {mermaid}"
                );
            }
        }
    }
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let mut child = common::hisflow(&root())
        .arg("operations")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_ne!(
        out.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn rules_lists_every_code() {
    let out = run(&root(), &["rules"]);
    let text = stdout(&out);
    for r in hisflow::Rule::ALL {
        assert!(text.contains(&r.code()), "{} missing", r.code());
    }
}

#[test]
fn rules_explains_a_rule_named_or_coded_and_suggests_a_misspelt_one() {
    use hisflow::workflow::rules::Explanation;
    let rule = hisflow::Rule::by_name("dead-end").unwrap();
    let section = Explanation::of(rule).markdown();
    for name in ["dead-end", "hisflow::dead-end"] {
        let out = run(&root(), &["rules", name]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{section}{}\n", rule.url()));
        assert!(stdout(&out).contains("```yaml\nworkflow: w\n"));
    }
    let out = run(&root(), &["rules", "dead-end", "--markdown"]);
    assert_eq!(stdout(&out), section);

    let out = run(&root(), &["rules", "dead-ends"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("no rule `dead-ends`; did you mean `dead-end`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rules_markdown_prints_docs_rules_md() {
    let out = run(&root(), &["rules", "--markdown"]);
    assert_eq!(out.status.code(), Some(0));
    let written = fs::read_to_string(root().join("docs/rules.md")).unwrap();
    assert!(
        stdout(&out) == written,
        "`hisflow rules --markdown` is not docs/rules.md: regenerate it with `cargo run -- rules --markdown > docs/rules.md`"
    );
}

/// The fields docs/workflow-language.md lists for `--format json` are the
/// ones it prints, no more.
#[test]
fn the_json_fields_are_the_documented_ones() {
    let doc = fs::read_to_string(root().join("docs/workflow-language.md")).unwrap();
    let words = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, after) = words
        .split_once("`--format json` prints one array of `{")
        .expect("the JSON output's paragraph");
    let (list, _) = after.split_once("}`").unwrap();
    let mut documented: Vec<&str> = list.split(", ").collect();
    documented.sort_unstable();

    let out = run(
        &root().join("tests/fixtures/invalid"),
        &["validate", "duplicate-key", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let d = v[0].as_object().unwrap();
    let mut printed: Vec<&str> = d.keys().map(String::as_str).collect();
    printed.sort_unstable();
    assert_eq!(documented, printed);
    assert_eq!(d["related"][0]["label"], "first defined here");
}

#[test]
fn short_and_github_formats_are_one_line_a_diagnostic() {
    let mut args = vec![
        "validate",
        "--format",
        "short",
        "tests/fixtures/invalid/dead-end",
        "tests/fixtures/invalid/cel-syntax",
    ];
    let out = run(&root(), &args);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("validate_short", stdout(&out));
    args[2] = "github";
    let out = run(&root(), &args);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("validate_github", stdout(&out));
}

#[cfg(unix)]
#[test]
fn a_file_that_cannot_be_read_exits_3_and_a_missing_path_2() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("w.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = run(&root(), &["validate", fifo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = run(&root(), &["validate", "no/such/path.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_rule_is_ignored_for_a_run_or_on_a_line() {
    let fixture = root().join("tests/fixtures/invalid/dead-end");
    let out = run(&fixture, &["validate", ".", "--ignore", "dead-end"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("1 ignored"), "{}", stderr(&out));
    let out = run(&fixture, &["validate", ".", "--ignore", "dead-ends"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no such rule"), "{}", stderr(&out));

    let d = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture.join("w.yaml")).unwrap();
    for (comment, code) in [
        ("  # hisflow-ignore: dead-end\n  stuck:", 0),
        (
            "  stuck: # hisflow-ignore: unreachable-state, hisflow::dead-end",
            0,
        ),
        ("  # hisflow-ignore: unreachable-state\n  stuck:", 1),
    ] {
        std::fs::write(d.path().join("w.yaml"), text.replace("  stuck:", comment)).unwrap();
        let out = run(d.path(), &["validate", "."]);
        assert_eq!(out.status.code(), Some(code), "{comment}: {}", stdout(&out));
    }
}

#[test]
fn test_reports_for_ci_in_json_and_junit() {
    let d = tempfile::tempdir().unwrap();
    common::copy_tree(
        &root().join("workflows/reference"),
        &d.path().join("reference"),
    );
    let af1 = d.path().join("reference/scenarios/af1.yaml");
    let text = std::fs::read_to_string(&af1).unwrap();
    std::fs::write(&af1, text.replacen("code: NeedInfo", "code: NeedMore", 1)).unwrap();

    let out = run(d.path(), &["test", "reference", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let scenarios = report["scenarios"].as_array().unwrap();
    let failed: Vec<&serde_json::Value> =
        scenarios.iter().filter(|s| s["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(failed[0]["file"].as_str().unwrap().ends_with("af1.yaml"));
    let why = failed[0]["failures"][0].as_str().unwrap();
    assert!(
        why.starts_with("line ") && why.contains("NeedMore"),
        "{why}"
    );
    assert_eq!(report["failed"], 1);
    assert_eq!(
        report["passed"].as_u64().unwrap() as usize,
        scenarios.len() - 1
    );
    assert!(report["coverage"]["total"].as_u64().unwrap() > 0);

    let out = run(d.path(), &["test", "reference", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(1));
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), scenarios.len());
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert!(
        xml.contains(&format!(
            "<testsuites name=\"hisflow\" tests=\"{}\" failures=\"1\">",
            scenarios.len()
        )),
        "{xml}"
    );
    assert_eq!(
        xml.matches("<testsuite ").count(),
        xml.matches("</testsuite>").count()
    );
}

/// `--format sarif` is a valid SARIF 2.1.0 log (checked against the OASIS
/// schema kept in tests/sarif/), whose results point at the same regions
/// as the JSON output and whose rules link to their docs.
#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let mut schema: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root().join("tests/sarif/sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The published schema's patterns for `language` have a stray `]`,
    // which the validator's check of the schema itself refuses as a regex.
    // hisflow writes no `language`; the patterns get their evident meaning.
    fn mend(v: &mut serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(m) => {
                let mut n = 0;
                for (k, x) in m.iter_mut() {
                    if k == "pattern" && x == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" {
                        *x = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
                        n += 1;
                    } else {
                        n += mend(x);
                    }
                }
                n
            }
            serde_json::Value::Array(a) => a.iter_mut().map(mend).sum(),
            _ => 0,
        }
    }
    assert!(mend(&mut schema) > 0);
    let validator = jsonschema::validator_for(&schema).expect("the SARIF schema compiles");
    let dir = root().join("tests/fixtures/invalid");
    let mut results = 0;
    for case in [
        "undefined-target",
        "duplicate-key",
        "unused-flow",
        "cel-syntax",
    ] {
        let path = format!("{case}/");
        let sarif = run(&dir, &["validate", &path, "--format", "sarif"]);
        let json = run(&dir, &["validate", &path, "--format", "json"]);
        assert_eq!(sarif.status.code(), json.status.code(), "{case}");
        let log: serde_json::Value = serde_json::from_str(&stdout(&sarif)).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{case}: {errors:#?}");

        let run0 = &log["runs"][0];
        let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), hisflow::Rule::ALL.len());
        let plain: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
        let plain = plain.as_array().unwrap();
        let found = run0["results"].as_array().unwrap();
        assert_eq!(found.len(), plain.len(), "{case}");
        assert!(!found.is_empty(), "{case}: the fixture finds nothing");
        for (s, j) in found.iter().zip(plain) {
            assert_eq!(s["ruleId"], j["code"]);
            assert_eq!(s["level"], j["severity"]);
            let rule = &rules[s["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(rule["id"], s["ruleId"]);
            let code = j["code"].as_str().unwrap();
            assert_eq!(
                rule["helpUri"].as_str().unwrap(),
                hisflow::Rule::by_name(code).unwrap().url()
            );
            let loc = &s["locations"][0]["physicalLocation"];
            let file = j["file"].as_str().unwrap();
            assert_eq!(
                loc["artifactLocation"]["uri"],
                file.trim_start_matches("./")
            );
            let region = &loc["region"];
            assert_eq!(region["startLine"], j["line"]);
            assert_eq!(region["startColumn"], j["column"]);
            assert_eq!(region["endLine"], j["end_line"]);
            assert_eq!(region["endColumn"], j["end_column"]);
            results += 1;
        }
    }
    assert!(results >= 4);
}

/// `-` validates a file read from stdin as if it were saved at
/// `--stdin-filename`: against its platform folder, by that name.
#[test]
fn stdin_is_validated_in_place_of_the_named_file() {
    use std::io::Write;
    let feed = |args: &[&str], input: &[u8]| {
        let mut child = common::hisflow(&root())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A refusal may come before stdin is read: a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait_with_output().unwrap()
    };
    let name = "workflows/reference/go_ready.yaml";
    let text = fs::read_to_string(root().join(name)).unwrap();
    let args = [
        "validate",
        "--format",
        "short",
        "-",
        "--stdin-filename",
        name,
    ];

    let out = feed(&args, text.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A state the rest of the folder does not have: only the buffer
    // changed, so the file on disk cannot be what was checked.
    let broken = text.replacen("next: done", "next: donee", 1);
    assert_ne!(broken, text);
    let out = feed(&args, broken.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let first = stdout(&out);
    assert!(
        first.starts_with(&format!("{name}:"))
            && first.contains("`donee`")
            && first.contains("[hisflow::undefined-target]"),
        "{first}"
    );

    // A file not yet on disk is checked in its folder, named as given.
    let new = "workflows/reference/not_saved_yet.yaml";
    let out = feed(
        &[
            "validate",
            "--format",
            "short",
            "-",
            "--stdin-filename",
            new,
        ],
        b"workflow: x\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(&format!("{new}:1:1:")),
        "{}",
        stdout(&out)
    );
    assert!(!root().join(new).exists());

    // A platform not yet saved is a platform: its manifest is checked.
    let d = tempfile::tempdir().unwrap();
    common::copy_tree(
        &root().join("workflows/reference"),
        &d.path().join("reference"),
    );
    std::fs::create_dir(d.path().join("newplat")).unwrap();
    let mut child = common::hisflow(d.path())
        .args([
            "validate",
            "--format",
            "short",
            "-",
            "--stdin-filename",
            "newplat/platform.yaml",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"platform: newplat\nextends: reference\nadapter:\n  kind: bogus\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("[hisflow::unknown-adapter]"),
        "{}",
        stdout(&out)
    );

    // Stdin stands for one file, never a folder's files.
    let out = feed(
        &[
            "validate",
            "-",
            "--stdin-filename",
            "workflows/reference/scenarios",
        ],
        b"x: 1\n",
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a folder"), "{}", stderr(&out));

    let out = feed(&["validate", "-"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--stdin-filename"),
        "{}",
        stderr(&out)
    );
    let out = feed(&["validate", "workflows", "--stdin-filename", name], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// `run --trace` says where each state entered is written and why an
/// operation failed: what a reader needs to go from a trace to the file.
#[test]
fn the_trace_points_at_states_and_tells_operation_errors() {
    let out = run(
        &root(),
        &[
            "run",
            "workflows/avaya-cm",
            "--scenario",
            "workflows/avaya-cm/scenarios/ef2.yaml",
            "--trace",
        ],
    );
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut files = std::collections::BTreeSet::new();
    for entry in lines.iter().filter(|e| e["trace"] == "state_entered") {
        let at = entry["at"].as_str().unwrap();
        let (file, line) = at.rsplit_once(':').unwrap();
        let text = fs::read_to_string(root().join(file)).unwrap();
        let written = text
            .lines()
            .nth(line.parse::<usize>().unwrap() - 1)
            .unwrap();
        let state = entry["state"].as_str().unwrap();
        assert_eq!(written.trim(), format!("{state}:"), "{at}");
        files.insert(file.to_string());
    }
    // Avaya's own files and the reference files it inherits.
    assert!(
        files.contains("workflows/avaya-cm/go_not_ready.yaml"),
        "{files:?}"
    );
    assert!(
        files.contains("workflows/reference/logout.yaml"),
        "{files:?}"
    );

    let failed = lines
        .iter()
        .find(|e| e["trace"] == "operation" && e["outcome"] == "error")
        .expect("ef2 has an operation the switch refuses");
    assert_eq!(failed["error"]["code"], "CS3/12");
    assert_eq!(
        failed["error"]["message"],
        "Agent state inconsistent with request"
    );
    assert!(
        lines
            .iter()
            .filter(|e| e["trace"] == "operation" && e["outcome"] == "ok")
            .all(|e| e.get("error").is_none())
    );
}
