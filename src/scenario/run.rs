//! Running a scenario on a fresh simulated switch, and comparing what came
//! out with what it expects.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value as Json;

use super::load::{Expect, Scenario, StepKind};
use crate::engine::{Engine, Interaction, Observer, Outcome, Response, Session};
use crate::platform::sim::SimSwitch;
use crate::workflow::model::Platform;

/// What one step did and, if it failed, why.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub line: usize,
    pub what: String,
    pub outcome: Option<Outcome>,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub name: String,
    pub path: PathBuf,
    pub steps: Vec<StepResult>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.failures.is_empty())
    }
}

/// Runs every step of `scenario` against a new simulated switch. Meant for a
/// runtime with a paused clock, so that timeouts cost no wall time.
pub async fn run_scenario(
    platform: &Arc<Platform>,
    scenario: &Scenario,
    obs: &mut dyn Observer,
) -> ScenarioResult {
    let sim = Arc::new(SimSwitch::new(scenario.switch.clone()));
    let engine = Engine::new(platform.clone(), sim.clone());
    let mut session: Option<Session> = None;
    let mut sessions = 0;
    let mut results = Vec::new();
    for step in &scenario.steps {
        let mut failures = Vec::new();
        let mut outcome = None;
        let what = match &step.kind {
            StepKind::Request {
                name,
                params,
                expect,
            }
            | StepKind::Workflow {
                name,
                params,
                expect,
            } => {
                let is_request = matches!(step.kind, StepKind::Request { .. });
                let out = if is_request && name == "session.request.login" {
                    if session.is_some() {
                        refused("InvalidState", "the agent is already logged in")
                    } else {
                        sessions += 1;
                        let agent = params
                            .get("agent")
                            .and_then(Json::as_str)
                            .unwrap_or(&scenario.agent)
                            .to_string();
                        let mut s = Session::new(format!("session-{sessions}"), agent);
                        let out = engine.handle(name, params, &mut s, obs).await;
                        if out.response.is_ok() {
                            session = Some(s);
                        }
                        out
                    }
                } else {
                    match session.as_mut() {
                        None => refused("NotLoggedIn", "log in first"),
                        Some(s) => {
                            let out = if is_request {
                                engine.handle(name, params, s, obs).await
                            } else {
                                match platform.workflow(name) {
                                    Some(w) => engine.run(w, params, s, obs).await,
                                    None => refused("Internal", "no such workflow"),
                                }
                            };
                            if s.disposed {
                                session = None;
                            }
                            out
                        }
                    }
                };
                check(expect, &out, &sim, session.as_ref(), &mut failures);
                outcome = Some(out);
                name.clone()
            }
            StepKind::Fault(f) => {
                sim.inject(f.clone());
                format!("fault on {}", f.op)
            }
            StepKind::Latency { op, delay } => {
                sim.set_latency(op, *delay);
                format!("latency {delay:?} on {op}")
            }
            StepKind::Interaction { channel, id } => {
                if let Err(e) = sim.start_interaction(&scenario.agent, channel, id) {
                    failures.push(format!("cannot start an interaction: {e}"));
                }
                if let Some(c) = session.as_mut().and_then(|s| s.channel_mut(channel)) {
                    c.interactions.push(Interaction {
                        id: id.clone(),
                        media: channel.clone(),
                    });
                }
                format!("interaction {id} on {channel}")
            }
            StepKind::EndInteraction { channel } => {
                if let Err(e) = sim.end_interaction(&scenario.agent, channel, None) {
                    failures.push(format!("cannot end interactions: {e}"));
                }
                if let Some(c) = session.as_mut().and_then(|s| s.channel_mut(channel)) {
                    c.interactions.clear();
                }
                format!("interactions end on {channel}")
            }
        };
        results.push(StepResult {
            line: step.line,
            what,
            outcome,
            failures,
        });
    }
    ScenarioResult {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        steps: results,
    }
}

fn refused(code: &str, message: &str) -> Outcome {
    Outcome {
        events: Vec::new(),
        response: Response::error(code, message),
    }
}

fn check(
    expect: &Expect,
    out: &Outcome,
    sim: &SimSwitch,
    session: Option<&Session>,
    failures: &mut Vec<String>,
) {
    if let Some(want) = &expect.response {
        let got = out.response.to_protocol();
        let mut diffs = Vec::new();
        subset(want, &got, "response", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!(
                "the response differs:\n{}\n      actual response: {}",
                diffs.join("\n"),
                got
            ));
        }
    }
    if let Some(want) = &expect.events {
        events(want, out, failures);
    }
    if let Some(want) = &expect.switch {
        let got = serde_json::to_value(sim.state()).unwrap_or(Json::Null);
        let mut diffs = Vec::new();
        subset(want, &got, "switch", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("the switch differs:\n{}", diffs.join("\n")));
        }
    }
    if let Some(want) = &expect.session {
        let got = session.map_or(Json::Null, |s| {
            serde_json::to_value(s).unwrap_or(Json::Null)
        });
        let mut diffs = Vec::new();
        subset(want, &got, "session", &mut diffs);
        if !diffs.is_empty() {
            failures.push(format!("the session differs:\n{}", diffs.join("\n")));
        }
    }
}

/// Compares events in order; on a difference, shows both lists side by side.
fn events(want: &[Json], out: &Outcome, failures: &mut Vec<String>) {
    let mut diffs = Vec::new();
    for (i, w) in want.iter().enumerate() {
        let Some(got) = out.events.get(i) else { break };
        let got = serde_json::json!({ "name": got.name, "data": got.data });
        let w = match w {
            Json::String(name) => serde_json::json!({ "name": name }),
            other => other.clone(),
        };
        subset(&w, &got, &format!("events[{i}]"), &mut diffs);
    }
    if diffs.is_empty() && want.len() == out.events.len() {
        return;
    }
    let name = |j: Option<&Json>| match j {
        Some(Json::String(s)) => s.clone(),
        Some(o) => o
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("?")
            .to_string(),
        None => "—".to_string(),
    };
    let mut table = vec![format!("      {:<4}{:<38}{}", "", "expected", "actual")];
    for i in 0..want.len().max(out.events.len()) {
        let e = name(want.get(i));
        let a = out
            .events
            .get(i)
            .map_or("—".to_string(), |ev| ev.name.clone());
        let mark = if e == a { " " } else { "!" };
        table.push(format!("    {mark} {:<4}{e:<38}{a}", i + 1));
    }
    let mut msg = format!(
        "the events differ ({} expected, {} emitted):\n{}",
        want.len(),
        out.events.len(),
        table.join("\n")
    );
    if !diffs.is_empty() {
        msg.push('\n');
        msg.push_str(&diffs.join("\n"));
    }
    failures.push(msg);
}

/// `want` as a subset of `got`: objects need the listed keys, lists the same
/// length, scalars equality. Each difference is one line.
fn subset(want: &Json, got: &Json, path: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Json::Object(w), Json::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => subset(wv, gv, &format!("{path}.{k}"), out),
                    None if wv.is_null() => {}
                    None => out.push(format!("      {path}.{k}: expected {wv}, missing")),
                }
            }
        }
        (Json::Array(w), Json::Array(g)) => {
            if w.len() != g.len() {
                out.push(format!(
                    "      {path}: expected {} items {want}, got {} items {got}",
                    w.len(),
                    g.len()
                ));
                return;
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(wv, gv, &format!("{path}[{i}]"), out);
            }
        }
        (Json::Number(a), Json::Number(b)) if a.as_f64() == b.as_f64() => {}
        (w, g) if w == g => {}
        (w, g) => out.push(format!("      {path}: expected {w}, got {g}")),
    }
}

#[cfg(test)]
mod tests {
    use super::subset;
    use serde_json::json;

    #[test]
    fn subsets_ignore_unlisted_keys_but_not_list_lengths() {
        let mut d = Vec::new();
        subset(
            &json!({"ok": false, "error": {"code": "X"}}),
            &json!({"ok": false, "error": {"code": "X", "message": "m"}}),
            "r",
            &mut d,
        );
        assert!(d.is_empty(), "{d:?}");
        subset(&json!({"a": [1]}), &json!({"a": [1, 2]}), "r", &mut d);
        subset(&json!({"b": true}), &json!({}), "r", &mut d);
        subset(&json!({"c": 1}), &json!({"c": 1.0}), "r", &mut d);
        assert_eq!(d.len(), 2, "{d:?}");
    }
}
