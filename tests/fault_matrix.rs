//! The fault matrix: on every shipped platform, the logout meets every
//! switch operation it calls failing in every way — an error, no answer, the
//! switch gone — on the first, a middle and the last channel. Whatever
//! happens, the seed's post-conditions hold: a logout that fails leaves the
//! agent logged in, HIS showing each channel as the switch has it (channels
//! made Not Ready or deactivated before the failure stay so), nothing
//! disposed, an error code of the use case; and the session takes the next
//! logout once the switch is well again.

mod common;

use std::sync::Arc;

use hisflow::his::{Connection, His, Messages, Options, Out};
use hisflow::platform::sim::{Fault, FaultEffect, SimSwitch};
use hisflow::server::config;
use serde_json::{Value, json};

/// The switch operations a logout calls.
const OPS: &[&str] = &["agent.set_not_ready", "channel.deactivate", "agent.logout"];

/// The error codes a failed logout may answer with.
const CODES: &[&str] = &[
    "NotReadyFailed",
    "DeactivationFailed",
    "LogoutFailed",
    "ReasonCodeOutOfRange",
];

async fn answer(
    his: &His,
    conn: &mut Connection,
    rx: &mut Messages,
    name: &str,
    params: Value,
) -> Value {
    his.request(conn, "r", name, &params);
    loop {
        match rx.recv().await {
            Some(Out::Response { body, .. }) => return body,
            Some(_) => continue,
            None => return json!({ "ok": true, "closed": true }),
        }
    }
}

fn effects() -> Vec<(&'static str, FaultEffect)> {
    vec![
        (
            "error",
            FaultEffect::Error {
                code: "InvalidState".into(),
                message: "refused by the matrix".into(),
            },
        ),
        ("timeout", FaultEffect::Timeout),
        ("disconnect", FaultEffect::Disconnect),
    ]
}

/// One case: whether the logout failed (and every post-condition held), or
/// went through (the fault was on what this platform's logout never does);
/// `Err` says which post-condition broke.
async fn case(
    platform: &str,
    op: &str,
    effect: FaultEffect,
    at: Option<usize>,
) -> Result<bool, String> {
    let (p, _) = hisflow::load_platform(&common::root().join("workflows").join(platform)).unwrap();
    let media: Vec<String> = p.settings["media"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let scope_agent = p.settings.get("status_scope").and_then(Value::as_str) == Some("agent");
    let mut switch = config::switch_for(&p, None);
    // A strict switch has the Not Ready code the logout sends.
    if let Some(code) = p
        .settings
        .get("logout_not_ready_reason")
        .and_then(Value::as_str)
    {
        let codes = switch.reason_codes.entry("not_ready".into()).or_default();
        if !codes.is_empty() && !codes.iter().any(|c| c == code) {
            codes.push(code.to_string());
        }
    }
    let sim = Arc::new(SimSwitch::new(switch));
    let his = His::new(Arc::new(p), sim.clone(), Options::default());
    let (mut conn, mut rx) = his.connect();
    let login = answer(
        &his,
        &mut conn,
        &mut rx,
        "session.request.login",
        json!({ "agent": "agent-1", "channels": media }),
    )
    .await;
    if login["ok"] != true {
        return Err(format!("login: {login}"));
    }
    for m in if scope_agent { &media[..1] } else { &media[..] } {
        let r = answer(
            &his,
            &mut conn,
            &mut rx,
            "channel.request.ready",
            json!({ "channel": m }),
        )
        .await;
        if r["ok"] != true {
            return Err(format!("ready on {m}: {r}"));
        }
    }
    let reasons = login["result"]["logout_reasons"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let params = match reasons.first() {
        Some(r) => json!({ "reason": r }),
        None => json!({ "reason": "" }),
    };
    let channel = at.map(|i| media[i.min(media.len() - 1)].clone());
    sim.inject(Fault {
        op: op.into(),
        agent: Some("agent-1".into()),
        channel: channel.clone(),
        call: None,
        effect,
    });
    let r = answer(
        &his,
        &mut conn,
        &mut rx,
        "session.request.logout",
        params.clone(),
    )
    .await;
    let session = his.settle("agent-1").await;
    if r["ok"] == true {
        let a = sim.state().agents["agent-1"].clone();
        if a.logged_in && !a.logout_pending {
            return Err(format!(
                "the logout answered {r} but the switch has the agent logged in"
            ));
        }
        return Ok(false);
    }
    let code = r["error"]["code"].as_str().unwrap_or_default();
    if !CODES.contains(&code) {
        return Err(format!("a failed logout answered {r}"));
    }
    let Some(s) = session else {
        return Err(format!("the logout failed ({r}) but the session is gone"));
    };
    if s.disposed || s.channels.len() != media.len() {
        return Err(format!(
            "the logout failed ({r}) but something was disposed: {s:?}"
        ));
    }
    let at_switch = sim.state().agents["agent-1"].clone();
    if !at_switch.logged_in {
        return Err(format!(
            "the logout failed ({r}) but the switch logged the agent out"
        ));
    }
    for c in &s.channels {
        let theirs = &at_switch.channels[&*c.id];
        if theirs.state != c.state || theirs.active != c.active {
            return Err(format!(
                "after {r}, HIS shows {} {} (active {}) where the switch has {} (active {})",
                c.id, c.state, c.active, theirs.state, theirs.active
            ));
        }
    }
    // The switch is well again: the same session logs out.
    sim.clear_faults("agent-1");
    if !sim.state().connected {
        sim.set_link(true, None);
    }
    let r = answer(&his, &mut conn, &mut rx, "session.request.logout", params).await;
    if r["ok"] != true {
        return Err(format!("the next logout, the switch well again: {r}"));
    }
    Ok(true)
}

#[tokio::test(start_paused = true)]
async fn every_logout_failure_on_every_platform_keeps_the_use_cases_post_conditions() {
    let mut platforms: Vec<String> = std::fs::read_dir(common::root().join("workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    platforms.sort();
    let mut cases = 0;
    let mut failed = 0;
    let mut broken = Vec::new();
    for platform in &platforms {
        for op in OPS {
            // The first, a middle and the last channel; the agent's logout
            // is no channel's.
            let positions: Vec<Option<usize>> = if *op == "agent.logout" {
                vec![None]
            } else {
                vec![Some(0), Some(1), Some(2)]
            };
            for at in positions {
                for (name, effect) in effects() {
                    cases += 1;
                    match case(platform, op, effect, at).await {
                        Ok(true) => failed += 1,
                        Ok(false) => {}
                        Err(why) => broken.push(format!("{platform} {op} {name} at {at:?}: {why}")),
                    }
                }
            }
        }
    }
    eprintln!(
        "fault matrix: {cases} cases over {} platforms; {failed} logouts failed and kept the post-conditions, the others went through",
        platforms.len()
    );
    assert!(
        failed * 2 > cases,
        "only {failed} of {cases} faults made the logout fail"
    );
    assert!(
        broken.is_empty(),
        "{} of {cases} cases broke:\n{}",
        broken.len(),
        broken.join("\n")
    );
}
