//! The native guard evaluator agrees with CEL on every guard of the shipped
//! workflows, over random sessions and requests; and it does answer for them.

mod common;

use common::root;
use hisflow::engine::values::{self, SessionView, Vars};
use hisflow::engine::{Channel, Interaction, Session};
use hisflow::workflow::expr::{CompiledExpr, env};
use hisflow::workflow::model::{Response, StateKind};
use proptest::prelude::*;
use serde_json::json;

fn guards() -> Vec<(serde_json::Value, CompiledExpr)> {
    let report = hisflow::validate_paths(&[root().join("workflows")]).unwrap();
    let mut out = Vec::new();
    for p in &report.platforms {
        let settings = serde_json::Value::Object(
            p.settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        for w in p.workflows.values() {
            for (_, s) in w.states() {
                match &s.kind {
                    StateKind::Choice(g) => {
                        out.extend(g.iter().map(|g| (settings.clone(), g.clone())))
                    }
                    StateKind::Respond(Response::NeedInfo {
                        free_text: Some(f), ..
                    }) => out.push((settings.clone(), f.clone())),
                    _ => {}
                }
            }
        }
    }
    out
}

fn channel() -> impl Strategy<Value = (bool, usize, bool, usize)> {
    (any::<bool>(), 0usize..3, any::<bool>(), 0usize..3)
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
            state: ["Ready", "NotReady", "LoggedOff"][*state].into(),
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
        let view = SessionView::new(&s);
        let mut req = serde_json::Map::new();
        if let Some(r) = reason { req.insert("reason".into(), json!(r)); }
        if let Some(c) = ch { req.insert("channel".into(), json!(c)); }
        let request = values::from_json(&serde_json::Value::Object(req));
        let error = values::no_error();
        let mut answered = 0;
        for (settings, g) in guards() {
            let platform = values::from_json(&settings);
            let vars = Vars { platform: platform.as_ref(), request: request.as_ref(), session: view.value(), error: error.as_ref() };
            let cel = values::with_value(env(), &g, &vars, None, |v| v.downcast_ref::<cel::common::types::CelBool>().map(|b| *b.inner())).map(|b| b.unwrap());
            let lookup = |name: &str| -> Option<&dyn cel::common::value::Val> {
                match name { "request" => Some(vars.request), "session" => Some(vars.session), "platform" => Some(vars.platform), "error" => Some(vars.error), _ => None }
            };
            if let Ok(native) = g.native().unwrap().eval_bool(&lookup) {
                answered += 1;
                prop_assert_eq!(Ok(native), cel.clone(), "{} disagrees", g.source());
            }
        }
        prop_assert!(answered > 0);
    }
}
