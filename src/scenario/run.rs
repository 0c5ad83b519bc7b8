//! Running a scenario: a fresh simulated switch under a fresh HIS, and one
//! connection that plays the MediaBar. Each step's requests go through HIS
//! as any client's do; what the connection receives while the step runs
//! (and until the session has handled everything the step caused) is what
//! the step's expectations are checked against.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value as Json;

use super::load::{Expect, MAIN, Scenario, StepKind};
use crate::engine::{Both, Event, Observer, Session};
use crate::his::{Connection, His, Messages, Options, Out, SharedObserver};
use crate::platform::sim::SimSwitch;
use crate::workflow::model::Platform;

/// What one step did and, if it failed, why.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub line: usize,
    pub what: String,
    /// The events the connection received during the step, in order.
    pub events: Vec<Event>,
    /// The response to the step's request, in the protocol's shape.
    pub response: Option<Json>,
    /// A burst's responses, in the order its requests were sent.
    pub responses: Vec<Json>,
    /// The reason HIS closed the connection with, if it did.
    pub closed: Option<String>,
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

/// Faults HIS met handling switch events.
#[derive(Default)]
struct Faults(Vec<String>);

impl Observer for Faults {
    fn fault(&mut self, _agent: &str, message: &str) {
        self.0.push(message.to_string());
    }
}

/// One of the scenario's MediaBar connections, and what it received that
/// no step has looked at yet.
struct Client {
    conn: Connection,
    rx: Messages,
    pending: Vec<Out>,
    closed: bool,
}

/// The scenario's connections by name, and the token HIS gave last.
struct Clients {
    by_name: BTreeMap<String, Client>,
    token: Option<String>,
}

impl Clients {
    /// The connection `name`; a new one if it never was, or HIS closed it
    /// (as the MediaBar opens a new one for the next login).
    fn get(&mut self, his: &His, name: &str) -> &mut Client {
        // A close no step has looked at yet counts: HIS is done with it.
        if let Some(c) = self.by_name.get_mut(name) {
            while let Some(out) = c.rx.try_recv() {
                c.pending.push(out);
            }
            if c.pending
                .iter()
                .any(|o| matches!(o, Out::Close(_) | Out::Overflow))
            {
                c.closed = true;
            }
        }
        if self.by_name.get(name).is_none_or(|c| c.closed) {
            let (conn, rx) = his.connect();
            self.by_name.insert(
                name.to_string(),
                Client {
                    conn,
                    rx,
                    pending: Vec::new(),
                    closed: false,
                },
            );
        }
        self.by_name.get_mut(name).expect("inserted above")
    }

    /// `params` with every `$token` replaced by the token HIS gave last.
    fn fill(&self, params: &Json) -> Json {
        match params {
            Json::String(s) if s == TOKEN => self
                .token
                .as_ref()
                .map_or_else(|| params.clone(), |t| Json::String(t.clone())),
            Json::Object(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), self.fill(v))).collect())
            }
            Json::Array(l) => Json::Array(l.iter().map(|v| self.fill(v)).collect()),
            other => other.clone(),
        }
    }

    /// Moves what every connection received into its `pending`.
    fn gather(&mut self) {
        for c in self.by_name.values_mut() {
            while let Some(out) = c.rx.try_recv() {
                c.pending.push(out);
            }
        }
    }

    /// Takes connection `name`'s pending messages into `step`.
    fn take(&mut self, name: &str, step: &mut StepResult) {
        let Some(c) = self.by_name.get_mut(name) else {
            return;
        };
        for out in std::mem::take(&mut c.pending) {
            take(out, step, &mut self.token, &mut c.closed);
        }
    }
}

/// The placeholder a step's parameters use for the token HIS gave last.
pub const TOKEN: &str = "$token";

impl Clients {
    /// Everything connection `name` receives until the responses to every
    /// id in `ids`; the step's `responses` in the order of `ids`.
    async fn until_responses(&mut self, name: &str, ids: &[String], step: &mut StepResult) {
        let Clients { by_name, token } = self;
        let Some(c) = by_name.get_mut(name) else {
            return;
        };
        let mut answered: Vec<(usize, Json)> = Vec::new();
        while answered.len() < ids.len() {
            let Some(out) = c.rx.recv().await else { break };
            if let Out::Response { id: Some(r), body } = &out
                && let Some(k) = ids.iter().position(|i| i == r)
            {
                answered.push((k, body.clone()));
            }
            take(out, step, token, &mut c.closed);
        }
        answered.sort_by_key(|(k, _)| *k);
        step.responses = answered.into_iter().map(|(_, b)| b).collect();
    }
}

fn take(out: Out, step: &mut StepResult, token: &mut Option<String>, closed: &mut bool) {
    match out {
        Out::Event(e) => step.events.push(e),
        Out::Response { body, .. } => {
            if let Some(t) = body["result"]["token"].as_str() {
                *token = Some(t.to_string());
            }
            step.response = Some(body);
        }
        Out::Close(c) => {
            *closed = true;
            step.closed = Some(c.reason().to_string());
        }
        Out::Overflow => {
            *closed = true;
            step.closed = Some("overflow".into());
        }
    }
}

/// Runs every step of `scenario` against a new simulated switch, reporting
/// every run to `obs`. Meant for a runtime with a paused clock, so that
/// timeouts cost no wall time.
pub async fn run_scenario(
    platform: &Arc<Platform>,
    scenario: &Scenario,
    obs: SharedObserver,
) -> ScenarioResult {
    let sim = Arc::new(SimSwitch::new(scenario.switch.clone()));
    let faults = Arc::new(Mutex::new(Faults::default()));
    let both: SharedObserver = Arc::new(Mutex::new(Both(obs, faults.clone())));
    let defaults = Options::default();
    let options = Options {
        detach_grace: scenario.his.detach_grace.unwrap_or(defaults.detach_grace),
        expiry_reason: scenario.his.expiry_reason.clone(),
        ..defaults
    };
    let his = His::observed(platform.clone(), sim.clone(), options, both);
    let mut clients = Clients {
        by_name: BTreeMap::new(),
        token: None,
    };
    let mut results = Vec::new();
    for (n, step) in scenario.steps.iter().enumerate() {
        let mut result = StepResult {
            line: step.line,
            what: String::new(),
            events: Vec::new(),
            response: None,
            responses: Vec::new(),
            closed: None,
            failures: Vec::new(),
        };
        let id = format!("step-{}", n + 1);
        // The connection whose messages the step's expectations are about.
        let mut on = None;
        match &step.kind {
            StepKind::Request {
                name,
                params,
                connection,
            } => {
                result.what = name.clone();
                let params = clients.fill(params);
                let c = clients.get(&his, connection);
                his.request(&mut c.conn, &id, name, &params);
                clients
                    .until_responses(connection, std::slice::from_ref(&id), &mut result)
                    .await;
                on = Some(connection);
            }
            StepKind::Workflow {
                name,
                params,
                connection,
            } => {
                result.what = format!("workflow {name}");
                let params = clients.fill(params);
                let c = clients.get(&his, connection);
                his.run_workflow(&mut c.conn, &id, name, &params);
                clients
                    .until_responses(connection, std::slice::from_ref(&id), &mut result)
                    .await;
                on = Some(connection);
            }
            StepKind::Burst {
                requests,
                connection,
            } => {
                result.what = format!("burst of {}", requests.len());
                let filled: Vec<Json> = requests.iter().map(|(_, p)| clients.fill(p)).collect();
                let c = clients.get(&his, connection);
                let ids: Vec<String> = (0..requests.len()).map(|k| format!("{id}-{k}")).collect();
                for ((name, _), (rid, params)) in requests.iter().zip(ids.iter().zip(&filled)) {
                    his.request(&mut c.conn, rid, name, params);
                }
                clients.until_responses(connection, &ids, &mut result).await;
                on = Some(connection);
            }
            StepKind::Drop(name) => {
                result.what = format!("connection {name} goes away");
                clients.by_name.remove(name);
            }
            StepKind::Receive(name) => {
                result.what = format!("what connection {name} received");
                on = Some(name);
            }
            StepKind::Control { name, params } => {
                result.what = name.clone();
                if let Err(e) = sim.run_control(&scenario.agent, name, params) {
                    result
                        .failures
                        .push(format!("the simulated switch refused: {e}"));
                }
            }
            StepKind::SwitchEvent(e) => {
                result.what = format!("switch event {}", e.name);
                sim.emit(e.clone());
            }
            StepKind::Advance(d) => {
                result.what = format!("{d:?} pass");
                tokio::time::sleep(*d).await;
                // Timers due at this very instant (a confirmation `d` from
                // now) woke with this one: let them run before the step is
                // judged, whichever woke first.
                for _ in 0..16 {
                    tokio::task::yield_now().await;
                }
            }
            StepKind::Fault(f) => {
                result.what = format!("fault on {}", f.op);
                sim.inject(f.clone());
            }
            StepKind::Latency { op, delay } => {
                result.what = format!("latency {delay:?} on {op}");
                sim.set_latency(op, *delay);
            }
        }
        // Whatever the step set off — deferred events, confirmations due
        // now — is handled before its outcome is judged.
        let session = his.settle(&scenario.agent).await;
        clients.gather();
        // Steps that go on no connection are about the main one: what the
        // switch did reaches the agent's MediaBar.
        let on = on.map_or(MAIN, String::as_str).to_string();
        clients.take(&on, &mut result);
        let failures = check(&step.expect, &result, &sim, session.as_ref());
        result.failures.extend(failures);
        // A machine or event workflow that failed has no client to tell: the
        // scenario does.
        let faults = std::mem::take(&mut faults.lock().unwrap_or_else(|e| e.into_inner()).0);
        result.failures.extend(faults);
        results.push(result);
    }
    ScenarioResult {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        steps: results,
    }
}

/// The failures of a step against what it expects.
fn check(
    expect: &Expect,
    got: &StepResult,
    sim: &SimSwitch,
    session: Option<&Session>,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(want) = &expect.response {
        let got = got.response.clone().unwrap_or(Json::Null);
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
    if let Some(want) = &expect.responses {
        let mut diffs = Vec::new();
        if want.len() != got.responses.len() {
            diffs.push(format!(
                "      expected {} responses, got {}",
                want.len(),
                got.responses.len()
            ));
        }
        for (i, (w, g)) in want.iter().zip(&got.responses).enumerate() {
            subset(w, g, &format!("responses[{i}]"), &mut diffs);
        }
        if !diffs.is_empty() {
            failures.push(format!(
                "the responses differ:\n{}\n      actual responses: {}",
                diffs.join("\n"),
                Json::from(got.responses.clone())
            ));
        }
    }
    if let Some(want) = &expect.events {
        events(want, &got.events, &mut failures);
    }
    if let Some(want) = &expect.closed {
        let ok = match (want, &got.closed) {
            (Json::Bool(false), None) => true,
            (Json::Bool(true), Some(_)) => true,
            (Json::String(w), Some(r)) => w == r,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "the connection {}: expected {}",
                match &got.closed {
                    Some(r) => format!("closed with reason {r:?}"),
                    None => "stayed open".to_string(),
                },
                match want {
                    Json::Bool(false) => "it to stay open".to_string(),
                    Json::Bool(true) => "it to close".to_string(),
                    other => format!("it to close with reason {other}"),
                }
            ));
        }
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
    failures
}

/// Compares events in order; on a difference, shows both lists side by side.
fn events(want: &[Json], got: &[Event], failures: &mut Vec<String>) {
    let mut diffs = Vec::new();
    for (i, w) in want.iter().enumerate() {
        let Some(got) = got.get(i) else { break };
        let got = serde_json::json!({ "name": got.name, "data": got.data });
        let w = match w {
            Json::String(name) => serde_json::json!({ "name": name }),
            other => other.clone(),
        };
        subset(&w, &got, &format!("events[{i}]"), &mut diffs);
    }
    if diffs.is_empty() && want.len() == got.len() {
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
    for i in 0..want.len().max(got.len()) {
        let e = name(want.get(i));
        let a = got.get(i).map_or("—".to_string(), |ev| ev.name.to_string());
        let mark = if e == a { " " } else { "!" };
        table.push(format!("    {mark} {:<4}{e:<38}{a}", i + 1));
    }
    let mut msg = format!(
        "the events differ ({} expected, {} emitted):\n{}",
        want.len(),
        got.len(),
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
