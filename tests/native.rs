//! The native guard evaluator agrees with CEL on every guard of the shipped
//! workflows, over random sessions and requests; and it does answer for them.

mod common;

use common::root;
use hisflow::engine::values;
use hisflow::engine::{Channel, Interaction, Session};
use hisflow::workflow::expr::{CompiledExpr, env};
use hisflow::workflow::model::{Entity, Response, StateKind};
use hisflow::workflow::native::{Inputs, V};
use proptest::prelude::*;
use serde_json::json;

/// Every expression of the shipped workflows, with its platform's settings
/// and whether it is a guard, a value or a foreach's list.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Use {
    Guard,
    Value,
    List,
}

/// What `self` is while an expression runs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum This {
    /// A workflow's expression: no `self`.
    Nothing,
    /// A machine's: the first channel, or the session.
    Channel,
    Session,
}

fn expressions() -> Vec<(serde_json::Value, Use, CompiledExpr)> {
    all_expressions()
        .into_iter()
        .filter(|(_, _, _, t)| *t == This::Nothing)
        .map(|(s, u, e, _)| (s, u, e))
        .collect()
}

fn all_expressions() -> Vec<(serde_json::Value, Use, CompiledExpr, This)> {
    let mut report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    report.prepare();
    let mut out = Vec::new();
    for p in &report.platforms {
        let settings = serde_json::Value::Object(
            p.settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        for m in &p.machines {
            let this = match m.entity {
                Entity::Channel => This::Channel,
                Entity::Session => This::Session,
            };
            for t in &m.transitions {
                let mut add =
                    |u: Use, e: &CompiledExpr| out.push((settings.clone(), u, e.clone(), this));
                t.guard.iter().for_each(|g| add(Use::Guard, g));
                t.set.iter().for_each(|(_, e)| add(Use::Value, e));
                t.emit
                    .iter()
                    .flat_map(|e| &e.data)
                    .for_each(|(_, e)| add(Use::Value, e));
            }
        }
        let mut add =
            |u: Use, e: &CompiledExpr| out.push((settings.clone(), u, e.clone(), This::Nothing));
        for w in p.workflows.values() {
            for (_, s) in w.states() {
                match &s.kind {
                    StateKind::Choice(g) => g.iter().for_each(|g| add(Use::Guard, g)),
                    StateKind::Op(op) => op.args.iter().for_each(|(_, e)| add(Use::Value, e)),
                    StateKind::Emit(e) => e.data.iter().for_each(|(_, e)| add(Use::Value, e)),
                    StateKind::Call(c) => c.args.iter().for_each(|(_, e)| add(Use::Value, e)),
                    StateKind::Foreach(f) => add(Use::List, &f.items),
                    StateKind::Respond(Response::NeedInfo {
                        free_text, choices, ..
                    }) => {
                        free_text.iter().for_each(|e| add(Use::Guard, e));
                        choices.iter().for_each(|e| add(Use::Value, e));
                    }
                    StateKind::Respond(Response::Ok { result, .. }) => {
                        result.iter().for_each(|(_, e)| add(Use::Value, e))
                    }
                    StateKind::Respond(_) => {}
                    StateKind::Wait(w) => w.guard.iter().for_each(|g| add(Use::Guard, g)),
                }
            }
        }
    }
    out
}

fn guards() -> Vec<(serde_json::Value, CompiledExpr)> {
    expressions()
        .into_iter()
        .filter(|(_, u, _)| *u == Use::Guard)
        .map(|(s, _, e)| (s, e))
        .collect()
}

fn channel() -> impl Strategy<Value = (bool, usize, bool, usize)> {
    (any::<bool>(), 0usize..5, any::<bool>(), 0usize..3)
}

fn session(chs: &[(bool, usize, bool, usize)], reasons: usize) -> Session {
    let mut s = Session::new("s", "a");
    for (i, (present, state, active, n)) in chs.iter().enumerate() {
        if !present {
            continue;
        }
        let media = ["voice", "email", "chat"][i];
        s.channels.push(Channel {
            id: media.into(),
            media: media.into(),
            state: ["Ready", "NotReady", "LoggedOff", "Reserved", "Talking"][*state].into(),
            active: *active,
            interactions: (0..*n)
                .map(|k| Interaction {
                    id: format!("i{k}"),
                    media: media.into(),
                })
                .collect(),
        });
    }
    s.logout_reasons = ["Lunch", "End of shift", "2 Lunch"][..reasons]
        .iter()
        .map(|r| r.to_string())
        .collect();
    s.not_ready_reasons = s.logout_reasons.clone();
    s
}

#[test]
fn the_native_evaluator_covers_every_shipped_expression() {
    let all = expressions();
    // `map` builds new values, which the native evaluator (it reads values
    // in place) leaves to CEL: Avaya's reason names at login, once a session.
    let outside: Vec<&str> = all
        .iter()
        .filter(|(_, _, e)| e.native().is_none() && !e.source().contains(".map("))
        .map(|(_, _, e)| e.source())
        .collect();
    assert!(all.len() > 100, "{} expressions", all.len());
    assert!(outside.is_empty(), "outside the native subset: {outside:?}");
}

#[test]
fn the_native_evaluator_covers_the_shipped_guards() {
    let all = guards();
    let native = all.iter().filter(|(_, g)| g.native().is_some()).count();
    assert!(all.len() > 30, "{} guards", all.len());
    assert_eq!(
        native,
        all.len(),
        "guards outside the native subset: {:?}",
        all.iter()
            .filter(|(_, g)| g.native().is_none())
            .map(|(_, g)| g.source())
            .collect::<Vec<_>>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("HISFLOW_PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200), failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn native_and_cel_agree(chs in proptest::collection::vec(channel(), 3), reasons in 0usize..4, reason in proptest::option::of(prop_oneof![Just("Lunch"), Just("Coffee"), Just("2 Lunch")]), ch in proptest::option::of(prop_oneof![Just("voice"), Just("email"), Just("chat"), Just("fax")])) {
        let s = session(&chs, reasons);
        let mut req = serde_json::Map::new();
        if let Some(r) = reason { req.insert("reason".into(), json!(r)); }
        if let Some(c) = ch { req.insert("channel".into(), json!(c)); }
        let request = values::request(&serde_json::Value::Object(req));
        let error = values::no_error();
        // Every field a switch event can have, so that any machine's
        // expression finds its own.
        // A record, as the engine builds an event's value.
        let event = values::from_json_ordered(&json!({"name": "agent.event.stateChanged", "channel": "voice", "state": "Talking", "reason": "Break", "interaction": "call-1", "cause": "supervisor"}));
        let mut answered = 0;
        let no_vars = hisflow::workflow::record::Record::new(Vec::new());
        for (settings, u, g, this) in all_expressions() {
            let platform = values::from_json_ordered(&settings);
            let entity = match this {
                This::Nothing => None,
                // A session may have no channel: then a machine's expression
                // has no `self` to read, for either evaluator.
                This::Channel => s.channels.first().map(|c| V::Obj(c)),
                This::Session => Some(V::Obj(&s)),
            };
            let vars = Inputs { platform: V::of(platform.as_ref()), request: V::Rec(&request), session: V::Obj(&s), error: V::Rec(&error), event: V::of(event.as_ref()), entity, vars: V::Rec(&no_vars), item: None, budget: hisflow::workflow::record::EVAL_BUDGET };
            let cel = values::with_value(env(), &g, &vars, None, |v| v.downcast_ref::<cel::common::types::CelBool>().map(|b| *b.inner())).map(|b| b.unwrap_or(false));
            let lookup = vars;
            let Some(n) = g.native() else { continue };
            match u {
                Use::Guard => if let Ok(native) = n.eval_bool(&lookup) {
                    answered += 1;
                    prop_assert_eq!(Ok(native), cel.clone(), "{} disagrees", g.source());
                },
                Use::Value => if let Ok(native) = n.eval(&lookup) {
                    answered += 1;
                    let cel = values::with_value(env(), &g, &vars, None, values::to_json).unwrap();
                    // The engine's own values as CEL's, the way HIS hands them on.
                    let native = values::to_json(native.to_val().as_ref()).unwrap();
                    prop_assert_eq!(Ok(native), cel, "{} disagrees", g.source());
                },
                Use::List => if let Ok(items) = n.eval_list(&lookup) {
                    answered += 1;
                    let native: Vec<serde_json::Value> = items.into_iter().map(|v| values::to_json(v.to_val().as_ref()).unwrap()).collect();
                    let cel = values::with_value(env(), &g, &vars, None, values::to_json).unwrap();
                    prop_assert_eq!(Ok(serde_json::Value::Array(native)), cel, "{} disagrees", g.source());
                },
            }
        }
        prop_assert!(answered > 0);
    }
}

/// Each platform's expressions are worked out for its own settings when it
/// is readied to run, even where platforms share a workflow file: the
/// reference confirms by reply, Cisco UCCE by event, and the same guard of
/// the same file is decided both ways.
#[test]
fn each_platform_decides_a_shared_guard_by_its_own_settings() {
    // The guard's value on `p`, if its settings decided it beforehand.
    let decided = |p: &hisflow::Platform| {
        let logout = p.workflow("logout").expect("a logout workflow");
        let state = logout.state(logout.state_id("confirmed_how")?);
        let StateKind::Choice(guards) = &state.kind else {
            panic!("confirmed_how is a choice");
        };
        assert_eq!(guards[0].source(), "platform.confirmation == 'event'");
        match guards[0].native().and_then(|n| n.constant()) {
            Some(V::Bool(b)) => Some(b),
            None => None,
            other => panic!("{}: not a boolean: {other:?}", p.name),
        }
    };
    let mut report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    // Validation alone leaves it to run time: `hisflow validate` runs nothing.
    assert!(report.platforms.iter().all(|p| decided(p).is_none()));
    report.prepare();
    let named = |name: &str| {
        let p = report.platforms.iter().find(|p| p.name == name);
        decided(p.expect("a shipped platform"))
    };
    assert_eq!(named("reference"), Some(false));
    assert_eq!(named("cisco-ucce"), Some(true));
    // What loads a platform to run it gets it prepared.
    let (ucce, _) = hisflow::load_platform(&root().join("workflows/cisco-ucce")).unwrap();
    assert_eq!(decided(&ucce), Some(true));
}
