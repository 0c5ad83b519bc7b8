//! The scenario suite of every profile: it passes with full transition
//! coverage, and it would notice a change.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{root, rt, run, stderr, stdout};
use hisflow::engine::NoObserver;
use hisflow::scenario::{self, Scenario, StepKind};
use hisflow::workflow::expr::Programs;
use hisflow::{Diagnostics, Platform};

/// Every scenario of workflows/, with its platform.
fn all() -> Vec<(Arc<Platform>, Scenario)> {
    let found = scenario::find(&[root().join("workflows")]).unwrap();
    let dirs: Vec<PathBuf> = found.keys().map(|d| d.join("platform.yaml")).collect();
    let mut report = hisflow::validate_paths(&dirs).unwrap();
    assert!(!report.diagnostics.has_errors());
    report.prepare();
    let platforms: Vec<Arc<Platform>> = std::mem::take(&mut report.platforms)
        .into_iter()
        .map(Arc::new)
        .collect();
    let programs = Programs::default();
    let mut out = Vec::new();
    for (dir, files) in found {
        let dir = dir.canonicalize().unwrap();
        let p = platforms.iter().find(|p| p.dir == dir).unwrap().clone();
        for f in files {
            let mut d = Diagnostics::new();
            let s = scenario::load_scenario(&mut report.sources, &programs, &f, &p, &mut d)
                .unwrap()
                .expect("loads");
            out.push((p.clone(), s));
        }
    }
    out
}

#[test]
fn every_profile_passes_with_full_coverage() {
    let out = run(&root(), &["test", "workflows", "--require-coverage"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    let coverage = text
        .lines()
        .find(|l| l.starts_with("transition coverage:"))
        .unwrap();
    let (covered, total) = coverage
        .trim_start_matches("transition coverage: ")
        .split_once('/')
        .unwrap();
    assert_eq!(covered, total, "{coverage}");
    for profile in [
        "reference",
        "cisco-ucce",
        "avaya-cm",
        "genesys-engage",
        "twilio-taskrouter",
    ] {
        assert!(
            text.lines().any(|l| l == profile),
            "{profile} has no scenarios"
        );
    }
}

fn nothing() -> hisflow::his::SharedObserver {
    std::sync::Arc::new(std::sync::Mutex::new(NoObserver))
}

#[test]
fn changing_any_expected_event_makes_its_scenario_fail_with_a_diff() {
    let rt = rt();
    let mut mutated = 0;
    for (platform, s) in all() {
        let base = rt.block_on(scenario::run_scenario(&platform, &s, nothing()));
        assert!(base.passed(), "{} fails unmutated", s.name);
        for (i, step) in s.steps.iter().enumerate() {
            for j in 0..step.expect.events.as_ref().map_or(0, Vec::len) {
                let mut m = s.clone();
                let ev = &mut m.steps[i].expect.events.as_mut().unwrap()[j];
                *ev = match ev.take() {
                    serde_json::Value::String(_) => serde_json::json!("zz.event.changed"),
                    mut o => {
                        o["name"] = serde_json::json!("zz.event.changed");
                        o
                    }
                };
                let result = rt.block_on(scenario::run_scenario(&platform, &m, nothing()));
                let failures: Vec<&String> =
                    result.steps.iter().flat_map(|s| &s.failures).collect();
                assert!(
                    !result.passed(),
                    "{}: changing event {j} of step {} went unnoticed",
                    s.name,
                    i + 1
                );
                assert!(
                    failures
                        .iter()
                        .any(|f| f.contains("the events differ") && f.contains("zz.event.changed")),
                    "{failures:?}"
                );
                mutated += 1;
            }
        }
    }
    assert!(mutated > 50, "only {mutated} expected events found");
}

#[test]
fn every_error_flow_asserts_the_switch_after_it() {
    for (_, s) in all() {
        let file = s.path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.starts_with("ef") {
            continue;
        }
        let checks_switch = s
            .steps
            .iter()
            .any(|st| matches!(&st.kind, StepKind::Request { .. }) && st.expect.switch.is_some());
        assert!(
            checks_switch,
            "{}: an error flow must assert the switch's state",
            s.path.display()
        );
    }
}

#[test]
fn run_prints_events_and_responses_or_a_json_trace() {
    let out = run(
        &root(),
        &[
            "run",
            "workflows/reference/logout.yaml",
            "--scenario",
            "workflows/reference/scenarios/ef2.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("← event channel.event.stateChanged"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"NotReadyFailed\""), "{text}");

    let out = run(
        &root(),
        &[
            "run",
            "workflows/reference/logout.yaml",
            "--scenario",
            "workflows/reference/scenarios/ef2.yaml",
            "--trace",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.iter().any(|l| l["trace"] == "operation"
        && l["op"] == "agent.set_not_ready"
        && l["outcome"] == "error"));
    assert!(lines.iter().any(|l| l["trace"] == "transition"
        && l["from"] == "make_channels_not_ready"
        && l["on"] == "failed"));
    assert!(
        lines
            .iter()
            .any(|l| l["trace"] == "state_entered" && l["state"] == "not_ready_failure")
    );
    assert!(
        lines.iter().any(|l| l["trace"] == "machine_transition"
            && l["machine"] == "channel"
            && l["entity"] == "voice"
            && l["from"] == "NotReady"
            && l["to"] == "Ready"),
        "the channel machine's transitions are in the trace"
    );

    // An inherited workflow file with a profile's scenario runs on the
    // profile: the scenario's folder names its platform.
    let out = run(
        &root(),
        &[
            "run",
            "workflows/reference/logout.yaml",
            "--scenario",
            "workflows/avaya-cm/scenarios/pending.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A scenario with switch events: they are in the trace and the output.
    let out = run(
        &root(),
        &[
            "run",
            "workflows/reference",
            "--scenario",
            "workflows/reference/scenarios/forced-logout.yaml",
            "--trace",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).lines().any(|l| {
        let l: serde_json::Value = serde_json::from_str(l).unwrap();
        l["trace"] == "switch_event"
            && l["name"] == "agent.event.loggedOut"
            && l["data"]["cause"] == "supervisor"
    }));
    let out = run(
        &root(),
        &[
            "run",
            "workflows/reference",
            "--scenario",
            "workflows/reference/scenarios/forced-logout.yaml",
        ],
    );
    assert!(
        stdout(&out).contains("← closed: Logged out by the switch (supervisor): Shift over"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_broken_scenario_is_a_diagnostic_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("p");
    std::fs::create_dir_all(p.join("scenarios")).unwrap();
    for f in std::fs::read_dir(root().join("workflows/reference")).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, p.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        p.join("scenarios/bad.yaml"),
        "scenario: bad\nsteps:\n  - request: session.request.logot\n  - fault: { op: agent.set_redy, effect: timeout }\n  - workflow: go_redy\n  - latency: { op: agent.logout, delay: soon }\n  - 42\n  - { request: x, fault: y }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("scenarios/shape.yaml"),
        "scenario: [not, text]\nsteps: 3\n",
    )
    .unwrap();
    std::fs::write(
        p.join("scenarios/switch.yaml"),
        "scenario: switch\nswitch:\n  confirm: { agent.reason_codes: 1s, agent.logout: soon, agent.lgout: 1s }\nsteps:\n  - request: [x]\n  - advance: { a: 1 }\n  - sim: [forceLogout]\n  - request: session.request.login\n    expect: { events: notalist }\n  - switch_event: { name: agent.event.logedOut }\n  - switch_event: { name: agent.event.stateChanged, data: { channel: voice } }\n  - switch_event: { name: agent.event.stateChanged, data: { channel: voice, state: [Ready] } }\n  - advance: later\n  - sim: forceLogot\n",
    )
    .unwrap();
    std::fs::write(
        p.join("scenarios/connections.yaml"),
        "scenario: connections\nhis: { detach_grace: a while }\nsteps:\n  - request: session.request.login\n    connection: desk\n  - drop: dsek\n  - receive: nowhere\n  - sim: forceLogout\n    connection: desk\n  - burst: session.request.logout\n  - burst: [{ request: session.request.lgout }]\n  - request: session.request.logout\n    expect: { responses: many }\n",
    )
    .unwrap();
    let out = run(d.path(), &["test", "p"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for said in [
        "`a while` is not a duration",
        "no step before this one used connection `dsek`",
        "did you mean `desk`?",
        "no step before this one used connection `nowhere`",
        "a `sim` step goes on no connection",
        "`burst` must be a list of requests",
        "`responses` must be a list",
        "`agent.reason_codes` answers with data",
        "`soon` is not a duration",
        "`agent.lgout` is not a switch operation; did you mean `agent.logout`?",
        "did you mean `agent.event.loggedOut`?",
        "lacks its required field `state`",
        "must be text",
        "`later` is not a duration",
        "did you mean `forceLogout`?",
        "`request` must be a single value",
        "`advance` must be a single value",
        "`sim` must be a single value",
        "`events` must be a list",
    ] {
        assert!(text.contains(said), "`{said}` missing in:\n{text}");
    }
    assert!(!stderr(&out).contains("panicked"));
    for code in [
        "unknown-request",
        "unknown-operation",
        "unknown-workflow",
        "invalid-value",
        "state-kind",
    ] {
        assert!(
            text.contains(&format!("hisflow::{code}")),
            "{code} missing in:\n{text}"
        );
    }
    assert!(text.contains("did you mean `session.request.logout`?"));
    assert!(text.contains("0 passed, 4 failed"), "{text}");
}

#[test]
fn a_machine_that_fails_on_a_switch_event_fails_the_step() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reference");
    common::copy_tree(&root().join("workflows/reference"), &dir);
    std::fs::remove_dir_all(dir.join("scenarios")).unwrap();
    let machine = std::fs::read_to_string(dir.join("channel.yaml")).unwrap();
    let broken = machine.replacen(
        "  interaction.event.started:\n",
        "  interaction.event.started:\n    when: int(event.interaction) > 0\n",
        1,
    );
    assert_ne!(broken, machine);
    std::fs::write(dir.join("channel.yaml"), broken).unwrap();
    std::fs::create_dir(dir.join("scenarios")).unwrap();
    std::fs::write(
        dir.join("scenarios/call.yaml"),
        "scenario: a call\nsteps:\n  - request: session.request.login\n    params: { agent: agent-1, channels: [voice] }\n  - interaction: { channel: voice, id: call-1 }\n",
    )
    .unwrap();
    let out = run(tmp.path(), &["test", "reference"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "line 5 (sim.request.startInteraction): handling `interaction.event.started` failed"
        ) && text.contains("int(event.interaction)"),
        "{text}"
    );
}
