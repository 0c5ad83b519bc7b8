//! Hostile and broken input: each gets a diagnostic or a clear error and the
//! right exit code, never a panic or a hang.

mod common;

use std::fs;

use common::{positions, run, stderr, stdout};

fn dir_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join(name), bytes).unwrap();
    d
}

/// Runs `validate` on one file and returns (exit code, codes reported).
fn validate_file(bytes: &[u8]) -> (Option<i32>, Vec<String>, String) {
    let d = dir_with("w.yaml", bytes);
    let out = run(d.path(), &["validate", "w.yaml", "--format", "json"]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "panic: {err}");
    let codes = positions(&stdout(&out)).into_iter().map(|p| p.3).collect();
    (out.status.code(), codes, err)
}

#[test]
fn empty_file() {
    let (code, codes, _) = validate_file(b"");
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::invalid-value"]);
}

#[test]
fn binary_garbage() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (code, codes, _) = validate_file(&garbage);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::not-utf8"]);
}

#[test]
fn text_that_is_not_yaml() {
    let (code, codes, _) = validate_file(b"\x01\x02 ]] :: {{ \"unterminated\n");
    assert_eq!(code, Some(1));
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert!(
        codes[0] == "hisflow::yaml-syntax" || codes[0] == "hisflow::invalid-value",
        "{codes:?}"
    );
}

#[test]
fn anchors_and_aliases_are_refused() {
    let (code, codes, _) =
        validate_file(b"workflow: w\nstart: &s a\nstates:\n  a: { respond: { ok: {} } }\nx: *s\n");
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::yaml-anchor"]);
}

#[test]
fn a_ten_megabyte_file_is_refused_without_parsing() {
    let mut big = b"workflow: w\nstart: a\nstates:\n  a: { respond: { ok: {} } }\n".to_vec();
    big.extend(
        std::iter::repeat_n(
            b"# padding padding padding padding padding\n".as_slice(),
            250_000,
        )
        .flatten(),
    );
    assert!(big.len() > 10_000_000);
    let (code, codes, _) = validate_file(&big);
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::file-too-large"]);
}

#[test]
fn deeply_nested_block_mappings() {
    // One more space per level: 1,000 levels fit under the size limit.
    let mut text = String::from("workflow: w\nstart: a\nstates:\n");
    for depth in 0..1_000 {
        text.push_str(&" ".repeat(1 + depth));
        text.push_str("k:\n");
    }
    let (code, codes, _) = validate_file(text.as_bytes());
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::too-deep"]);
}

#[test]
fn ten_thousand_nested_flow_sequences_and_dashes() {
    let flow = format!(
        "workflow: w\nstart: a\nstates: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(validate_file(flow.as_bytes()).1, ["hisflow::too-deep"]);
    let dashes = format!("workflow: w\nstart: a\nstates:\n{}x\n", "- ".repeat(10_000));
    assert_eq!(validate_file(dashes.as_bytes()).1, ["hisflow::too-deep"]);
}

#[test]
fn nesting_just_under_the_limit_still_loads() {
    // 30 levels of flow nesting inside a state: refused by the language, not the loader.
    let text = format!(
        "workflow: w\nstart: a\nstates:\n  a:\n    respond: {{ ok: {{ result: {{ x: {}1{} }} }} }}\n",
        "[".repeat(25),
        "]".repeat(25)
    );
    let (_, codes, _) = validate_file(text.as_bytes());
    assert!(
        !codes.contains(&"hisflow::too-deep".to_string()),
        "{codes:?}"
    );
}

#[test]
fn a_directory_with_no_workflows_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("notes.txt"), "hello").unwrap();
    let out = run(d.path(), &["validate", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no workflow files"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_path_that_does_not_exist_is_a_usage_error() {
    let d = tempfile::tempdir().unwrap();
    let out = run(d.path(), &["validate", "nowhere/at/all.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read nowhere/at/all.yaml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_state_that_is_not_a_mapping_and_wrong_types_are_reported_together() {
    let text = b"workflow: w\nstart: a\nstates:\n  a: 42\n  b:\n    choice: not-a-list\n  c:\n    respond: { ok: {} }\n";
    let (code, codes, _) = validate_file(text);
    assert_eq!(code, Some(1));
    assert_eq!(
        codes
            .iter()
            .filter(|c| *c == "hisflow::invalid-value")
            .count(),
        2,
        "{codes:?}"
    );
}

#[test]
fn a_byte_order_mark_is_not_content() {
    let (code, codes, err) = validate_file(
        b"\xef\xbb\xbfworkflow: w\nstart: a\nstates:\n  a: { respond: { ok: {} } }\n",
    );
    assert_eq!((code, codes.len()), (Some(0), 0), "{codes:?} {err}");
}

#[test]
fn a_second_yaml_document_is_refused_where_it_starts() {
    let d = dir_with(
        "w.yaml",
        b"---\nworkflow: w\nstart: a\nstates:\n  a: { respond: { ok: {} } }\n---\nworkflow: x\n",
    );
    let out = run(d.path(), &["validate", "w.yaml", "--format", "json"]);
    let found = positions(&stdout(&out));
    assert_eq!(
        found
            .iter()
            .map(|p| (p.1, p.2, p.3.as_str()))
            .collect::<Vec<_>>(),
        [(6, 1, "hisflow::yaml-syntax")],
        "the leading `---` is fine; the second starts a document"
    );
}

/// A copy of the reference platform in a temporary folder.
fn reference_copy() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let to = d.path().join("reference");
    fs::create_dir_all(to.join("scenarios")).unwrap();
    for sub in ["", "scenarios"] {
        for f in fs::read_dir(common::root().join("workflows/reference").join(sub)).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                fs::copy(&f, to.join(sub).join(f.file_name().unwrap())).unwrap();
            }
        }
    }
    d
}

#[test]
fn a_syntax_error_in_one_file_is_one_diagnostic() {
    let d = reference_copy();
    let logout = d.path().join("reference/logout.yaml");
    let text = fs::read_to_string(&logout).unwrap();
    fs::write(
        &logout,
        text.replacen("  check_interactions:", "  check_interactions: [", 1),
    )
    .unwrap();
    let out = run(d.path(), &["validate", "reference", "--format", "json"]);
    let codes: Vec<String> = positions(&stdout(&out)).into_iter().map(|p| p.3).collect();
    assert_eq!(
        codes,
        ["hisflow::yaml-syntax"],
        "no unknown-workflow for the request, no unknown-request in the scenarios"
    );
}

#[test]
fn a_scenario_file_is_validated_as_a_scenario() {
    let d = reference_copy();
    let basic = d.path().join("reference/scenarios/basic.yaml");
    let text = fs::read_to_string(&basic).unwrap();
    fs::write(
        &basic,
        text.replacen("session.request.logout", "session.request.lgout", 1),
    )
    .unwrap();
    let out = run(
        d.path(),
        &[
            "validate",
            "reference/scenarios/basic.yaml",
            "--format",
            "json",
        ],
    );
    let found = positions(&stdout(&out));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        found.iter().map(|p| p.3.as_str()).collect::<Vec<_>>(),
        ["hisflow::unknown-request"],
        "{found:?}"
    );
    assert!(found[0].0.ends_with("scenarios/basic.yaml"));
}

#[test]
fn a_foreach_is_never_told_to_use_otherwise() {
    let d = dir_with(
        "w.yaml",
        b"workflow: w\nstart: each\nstates:\n  each:\n    foreach: session.channels\n    as: c\n    do: { op: agent.set_ready, args: { channel: c.id } }\n    on: { done: end }\n  end: { respond: { ok: {} } }\n",
    );
    let out = run(d.path(), &["validate", "w.yaml"]);
    let text = stdout(&out);
    assert!(text.contains("outcome `failed` not handled"), "{text}");
    assert!(
        !text.contains("otherwise"),
        "a foreach takes no `otherwise`: {text}"
    );
}

#[test]
fn an_on_with_nothing_under_it_is_a_lost_transition() {
    let (code, codes, _) = validate_file(
        b"workflow: w\nstart: a\nstates:\n  a:\n    op: agent.logout\n    on:\n    otherwise: b\n  b: { respond: { ok: {} } }\n",
    );
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::invalid-value"]);
}

#[test]
fn an_expression_nested_25000_deep_is_refused_before_the_parser_sees_it() {
    let deep = format!("{}true{}", "(".repeat(25_000), ")".repeat(25_000));
    let text = format!(
        "workflow: w\nstart: a\nstates:\n  a:\n    choice:\n      - when: \"{deep}\"\n        next: b\n    otherwise: b\n  b: {{ respond: {{ ok: {{}} }} }}\n"
    );
    let (code, codes, _) = validate_file(text.as_bytes());
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::too-deep"]);
}

#[test]
fn comprehensions_nested_four_deep_are_refused() {
    let (code, codes, _) = validate_file(
        b"workflow: w\nstart: a\nstates:\n  a:\n    choice:\n      - when: session.channels.all(a, session.channels.all(b, session.channels.all(c, session.channels.all(d, true))))\n        next: b\n    otherwise: b\n  b: { respond: { ok: {} } }\n",
    );
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::too-deep"]);
    // Three deep is allowed.
    let (code, _, _) = validate_file(
        b"workflow: w\nstart: a\nstates:\n  a:\n    choice:\n      - when: session.channels.all(a, session.channels.all(b, session.channels.all(c, true)))\n        next: b\n    otherwise: b\n  b: { respond: { ok: {} } }\n",
    );
    assert_eq!(code, Some(0));
}

#[test]
fn a_diagnostic_past_column_65535_is_rendered_without_its_line() {
    let long = "a".repeat(70_000);
    let d = dir_with(
        "w.yaml",
        format!("workflow: w\nstart: a\nstates:\n  a:\n    respond: {{ ok: {{ result: {{ x: \"{long}\", y: session.nope }} }} }}\n")
            .as_bytes(),
    );
    let out = run(d.path(), &["validate", "w.yaml"]);
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("`session` has no field `nope`"), "{text}");
    assert!(text.contains("w.yaml:5:70"), "{text}");
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_entered_once_and_a_fifo_is_never_read() {
    let d = tempfile::tempdir().unwrap();
    common::copy_tree(
        &common::root().join("workflows/reference"),
        &d.path().join("reference"),
    );
    std::os::unix::fs::symlink(d.path(), d.path().join("reference/loop")).unwrap();
    let out = run(d.path(), &["test", "."]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(" passed, 0 failed"),
        "{}",
        stdout(&out)
    );

    let fifo = d.path().join("reference/scenarios/fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for cmd in ["test", "validate"] {
        let out = run(d.path(), &[cmd, "."]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{cmd}: a file that cannot be read"
        );
        assert!(
            stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn sixty_thousand_holes_or_a_chain_of_500_platforms_are_refused_at_once() {
    let holes = vec!["${request.x}"; 60_000].join(" ");
    let text = format!(
        "workflow: w\ninput:\n  x: {{ type: string, required: false }}\nstart: a\nstates:\n  a:\n    respond:\n      error: {{ code: Internal, message: \"{holes}\" }}\n"
    );
    let (code, codes, _) = validate_file(text.as_bytes());
    assert_eq!(code, Some(1));
    assert_eq!(codes, ["hisflow::too-deep"]);

    let d = tempfile::tempdir().unwrap();
    common::copy_tree(
        &common::root().join("workflows/reference"),
        &d.path().join("p0"),
    );
    let manifest = d.path().join("p0/platform.yaml");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace("platform: reference", "platform: p0");
    fs::write(&manifest, text).unwrap();
    fs::remove_dir_all(d.path().join("p0/scenarios")).unwrap();
    for i in 1..=500 {
        let dir = d.path().join(format!("p{i}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("platform.yaml"),
            format!("platform: p{i}\nextends: p{}\n", i - 1),
        )
        .unwrap();
    }
    let out = run(d.path(), &["validate", ".", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let found = positions(&stdout(&out));
    assert!(
        found.iter().all(|f| f.3 == "hisflow::too-deep"),
        "{found:?}"
    );
    // Each platform deeper than 16 is told so in its own manifest; the
    // others are fine.
    let flagged = |i: usize| {
        found.iter().any(|f| {
            f.0.ends_with(&format!("/p{i}/platform.yaml")) || f.0 == format!("p{i}/platform.yaml")
        })
    };
    assert!((1..=15).all(|i| !flagged(i)), "{found:?}");
    assert!((17..=500).all(flagged), "{} flagged", found.len());
}

#[test]
fn comprehensions_over_lists_the_expression_writes_are_held_to_the_evaluation_budget() {
    let guard = |when: &str| {
        format!(
            "workflow: w\nstart: a\nstates:\n  a:\n    choice:\n      - when: \"{when}\"\n        next: b\n    otherwise: b\n  b: {{ respond: {{ ok: {{}} }} }}\n"
        )
    };
    for over in [
        "lists.range(1000).all(a, lists.range(1000).all(b, true))",
        "lists.range(size(session.channels)).map(x, x).size() > 0",
    ] {
        let (code, codes, _) = validate_file(guard(over).as_bytes());
        assert_eq!(code, Some(1), "{over}");
        assert_eq!(codes, ["hisflow::too-deep"], "{over}");
    }
    let (code, codes, _) =
        validate_file(guard("lists.range(300).all(a, lists.range(300).all(b, true))").as_bytes());
    assert_eq!((code, codes), (Some(0), vec![]));
}

#[test]
fn extends_names_a_sibling_folder_never_a_path() {
    let d = tempfile::tempdir().unwrap();
    // A platform outside the folder being validated.
    common::copy_tree(
        &common::root().join("workflows/reference"),
        &d.path().join("outside/reference"),
    );
    let here = d.path().join("here/p");
    fs::create_dir_all(&here).unwrap();
    for bad in ["../../outside/reference", "/etc", ".."] {
        fs::write(
            here.join("platform.yaml"),
            format!("platform: p\nextends: \"{bad}\"\n"),
        )
        .unwrap();
        let out = run(
            &d.path().join("here"),
            &["validate", ".", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let found = positions(&stdout(&out));
        assert_eq!(
            found.iter().map(|f| f.3.as_str()).collect::<Vec<_>>(),
            ["hisflow::unknown-platform"],
            "{bad}: {found:?}"
        );
    }
}

/// A workflow that is one long chain of states validates on a 2 MiB
/// thread: the graph checks walk it without recursing once per state
/// (a recursive SCC search overflowed the stack of `hisflow lsp`).
#[test]
fn a_long_chain_of_states_does_not_overflow_the_stack() {
    let n = 12_000;
    let mut text = String::from("workflow: chain\nstart: s0\nstates:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  s{i}:\n    emit: channel.event.stateChanged\n    next: s{}\n",
            i + 1
        ));
    }
    text.push_str(&format!("  s{n}:\n    respond:\n      ok: {{}}\n"));
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.yaml");
    std::fs::write(&path, text).unwrap();
    let report = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || hisflow::validate_paths(&[path]).unwrap())
        .unwrap()
        .join()
        .expect("validation finishes without overflowing its stack");
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert!(errors.is_empty(), "{:?}", &errors[..errors.len().min(3)]);
}
