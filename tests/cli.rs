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
