//! A profile reuses what it extends: single states of a workflow replaced,
//! added or removed by an overrides file; scenarios marked `inherit` run on
//! it too; transitions its settings rule out are reported as impossible,
//! with why, rather than as uncovered.

mod common;

use std::fs;
use std::path::Path;

use common::{run, stdout};

const EVENTS: &str = "events: { agent.event.loggedOut: ignore, agent.event.logoutPending: ignore, agent.event.stateChanged: ignore, agent.event.channelActivated: ignore, agent.event.channelDeactivated: ignore, interaction.event.started: ignore, interaction.event.ended: ignore, link.event.down: ignore, link.event.up: ignore }\n";

/// A base platform whose every request runs `w`, which answers by a
/// setting `mode`, and a profile `p` extending it.
fn family(dir: &Path, p_settings: &str) {
    let base = dir.join("base");
    let p = dir.join("p");
    fs::create_dir_all(base.join("scenarios")).unwrap();
    fs::create_dir_all(p.join("scenarios")).unwrap();
    fs::write(
        base.join("platform.yaml"),
        format!(
            "platform: base\nadapter: {{ kind: sim }}\ndeclare:\n  settings:\n    mode: {{ type: enum, values: [plain, fancy], default: plain }}\nrequests:\n  session.request.login: w\n  session.request.logout: w\n  channel.request.ready: w\n  channel.request.notReady: w\n  channel.request.activate: w\n  channel.request.deactivate: w\n{EVENTS}"
        ),
    )
    .unwrap();
    fs::write(
        base.join("w.yaml"),
        "workflow: w\ninput:\n  agent: { type: string, required: false }\n  channels: { type: list, required: false }\nstart: how\nstates:\n  how:\n    choice:\n      - when: platform.mode == 'fancy'\n        next: fancy\n    otherwise: plain\n  fancy:\n    respond: { ok: { result: { how: \"'fancy'\" } } }\n  plain:\n    respond: { ok: { result: { how: \"'plain'\" } } }\n",
    )
    .unwrap();
    fs::write(
        p.join("platform.yaml"),
        format!("platform: p\nextends: base\n{p_settings}"),
    )
    .unwrap();
}

fn scenario(dir: &Path, name: &str, inherit: bool, how: &str) {
    fs::write(
        dir.join("scenarios").join(name),
        format!(
            "scenario: \"{name}\"\ninherit: {inherit}\nsteps:\n  - request: session.request.login\n    params: {{ agent: a, channels: [voice] }}\n    expect:\n      response: {{ ok: true, result: {{ how: {how} }} }}\n"
        ),
    )
    .unwrap();
}

#[test]
fn a_transition_the_settings_rule_out_is_impossible_not_uncovered() {
    let d = tempfile::tempdir().unwrap();
    family(d.path(), "settings: { mode: fancy }\n");
    scenario(&d.path().join("p"), "fancy.yaml", false, "fancy");
    let out = run(d.path(), &["test", "p", "--require-coverage"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("transition coverage: 1/1"), "{text}");
    assert!(
        text.contains("impossible: how --otherwise--> plain  (11:16): `platform.mode == 'fancy'` is always true on p, and is checked first"),
        "{text}"
    );

    // Under the default setting it is the other way round.
    family(d.path(), "");
    scenario(&d.path().join("p"), "fancy.yaml", false, "plain");
    let out = run(d.path(), &["test", "p", "--require-coverage"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("impossible: how --guard 1--> fancy  (10:15): `platform.mode == 'fancy'` is never true on p"),
        "{text}"
    );
    assert!(!text.contains("--otherwise-->"), "{text}");

    // A setting no profile decides leaves both possible: one is untaken.
    fs::write(
        d.path().join("base/w.yaml"),
        fs::read_to_string(d.path().join("base/w.yaml"))
            .unwrap()
            .replace(
                "platform.mode == 'fancy'",
                "platform.mode == 'fancy' || size(request.channels) > 1",
            ),
    )
    .unwrap();
    let out = run(d.path(), &["test", "p", "--require-coverage"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not taken: how --guard 1--> fancy"), "{text}");
    assert!(!text.contains("impossible:"), "{text}");
}

/// The lines of `platform`'s section of a `hisflow test` report.
fn section(text: &str, platform: &str) -> String {
    text.lines()
        .skip_while(|l| *l != platform)
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_profile_runs_the_scenarios_it_inherits_unless_it_has_its_own() {
    let d = tempfile::tempdir().unwrap();
    family(d.path(), "");
    let base = d.path().join("base");
    scenario(&base, "shared.yaml", true, "plain");
    scenario(&base, "own.yaml", false, "plain");
    let out = run(d.path(), &["test", "p"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let under_p = section(&text, "p");
    assert!(under_p.contains("PASS  shared.yaml"), "{text}");
    assert!(!under_p.contains("own.yaml"), "{text}");

    // The profile's file of the same name replaces the inherited one.
    family(d.path(), "settings: { mode: fancy }\n");
    scenario(&d.path().join("p"), "shared.yaml", false, "fancy");
    let out = run(d.path(), &["test", "p", "base"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("PASS  shared.yaml").count(), 2, "{text}");
    assert!(
        text.contains("p/scenarios/shared.yaml") && text.contains("base/scenarios/shared.yaml"),
        "{text}"
    );

    // A scenario file named on the command line runs alone.
    let out = run(d.path(), &["test", "p/scenarios/shared.yaml"]);
    assert_eq!(stdout(&out).matches("PASS").count(), 1, "{}", stdout(&out));
}

#[test]
fn an_override_changes_single_states_and_render_marks_them() {
    let d = tempfile::tempdir().unwrap();
    family(d.path(), "");
    let p = d.path().join("p");
    fs::write(
        p.join("w.yaml"),
        "overrides: w\nstates:\n  plain:\n    respond: { ok: { result: { how: \"'plain, overridden'\" } } }\n",
    )
    .unwrap();
    scenario(&p, "plain.yaml", false, "'plain, overridden'");
    let out = run(d.path(), &["test", "p"]);
    assert!(out.status.success(), "{}", stdout(&out));

    let out = run(d.path(), &["render", "p/w.yaml"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("class plain changed"), "{text}");
    assert!(
        text.contains("%% changed: states p/w.yaml writes over base/w.yaml"),
        "{text}"
    );

    // Removing the state the base still leads to is an error at the
    // transition, in the base's file.
    fs::write(p.join("w.yaml"), "overrides: w\nremove: [plain]\n").unwrap();
    let out = run(d.path(), &["validate", "p", "--format", "json"]);
    let found = common::positions(&stdout(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        found.iter().any(|(f, l, _, c)| f.ends_with("base/w.yaml")
            && *l == 11
            && c == "hisflow::undefined-target"),
        "{found:?}"
    );
}

#[test]
fn a_platform_describes_the_simulated_switch_and_a_wrong_description_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    family(
        d.path(),
        "adapter:\n  kind: sim\n  switch:\n    confirm: { agent.reason_codes: 1s }\n",
    );
    let out = run(d.path(), &["validate", "p", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let found = common::positions(&stdout(&out));
    assert_eq!(
        found,
        [(
            "p/platform.yaml".to_string(),
            6,
            16,
            "hisflow::invalid-value".to_string()
        )],
        "{found:?}"
    );
}

/// Done-when of per-profile coverage: each shipped platform, with what it
/// inherits, is proven by its own scenarios.
#[test]
fn every_shipped_platform_passes_its_own_coverage() {
    let root = common::root();
    let mut platforms: Vec<String> = fs::read_dir(root.join("workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    platforms.sort();
    assert!(platforms.len() >= 7, "{platforms:?}");
    for p in platforms {
        let out = run(
            &root,
            &["test", &format!("workflows/{p}"), "--require-coverage"],
        );
        let text = stdout(&out);
        assert!(
            out.status.success(),
            "{p}:\n{}",
            text.lines()
                .filter(|l| l.contains("FAIL")
                    || l.contains("not taken")
                    || l.starts_with("transition"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn a_wrong_key_or_value_of_the_simulated_switch_is_reported_at_it() {
    let d = tempfile::tempdir().unwrap();
    for (switch, line, col) in [
        (
            "    reason_codes: { logout: [a] }\n    confirms: { agent.logout: 1s }\n",
            7,
            5,
        ),
        (
            "    reason_codes: { logout: [a] }\n    strict_not_ready: maybe\n",
            7,
            5,
        ),
    ] {
        family(
            d.path(),
            &format!("adapter:\n  kind: sim\n  switch:\n{switch}"),
        );
        let out = run(d.path(), &["validate", "p", "--format", "json"]);
        let found = common::positions(&stdout(&out));
        assert_eq!(
            found,
            [(
                "p/platform.yaml".to_string(),
                line,
                col,
                "hisflow::invalid-value".to_string()
            )],
            "{switch}"
        );
    }
}

#[test]
fn a_scenarios_folder_named_on_the_command_line_stands_for_its_scenarios() {
    let d = tempfile::tempdir().unwrap();
    family(d.path(), "");
    scenario(&d.path().join("p"), "plain.yaml", false, "plain");
    let out = run(d.path(), &["validate", "p/scenarios"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("0 errors"),
        "{}",
        common::stderr(&out)
    );
    let out = run(d.path(), &["test", "p/scenarios"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("PASS  plain.yaml"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_inherited_scenario_that_fails_says_where_the_profiles_own_goes() {
    let d = tempfile::tempdir().unwrap();
    family(d.path(), "settings: { mode: fancy }\n");
    scenario(&d.path().join("base"), "shared.yaml", true, "plain");
    let out = run(d.path(), &["test", "p"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "inherited: where p answers differently, write its own p/scenarios/shared.yaml"
        ),
        "{text}"
    );
}
