//! The `twilio-taskrouter` adapter over real HTTP, against the contract fake
//! of TaskRouter (tests/common/taskrouter): HIS serves the twilio-taskrouter
//! profile, MediaBars speak the WebSocket protocol, the fake answers REST
//! calls and sends signed Event Callbacks to HIS's webhook. Every Logout flow
//! of the use case, a supervisor's forced logout, forged events, throttling
//! and a service that does not answer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::taskrouter::{ACCOUNT_SID, AUTH_TOKEN, Fake, Refusal, WORKSPACE_SID};
use common::ws::Client;
use hisflow::his::{His, Options};
use hisflow::platform::deploy::{self, AdapterConfig};
use hisflow::server;
use serde_json::{Value, json};

const AGENT: &str = "agent-1";

/// HIS on the twilio-taskrouter profile, driving the fake.
struct Rig {
    fake: Fake,
    worker: String,
    addr: String,
    webhook: String,
    his: Arc<His>,
}

fn env(name: &str) -> Option<String> {
    match name {
        "TEST_TWILIO_ACCOUNT_SID" => Some(ACCOUNT_SID.to_string()),
        "TEST_TWILIO_AUTH_TOKEN" => Some(AUTH_TOKEN.to_string()),
        _ => None,
    }
}

/// The adapter's configuration for the fake at `base`, its webhook at `webhook`.
fn config(base: &str, webhook: &str) -> AdapterConfig {
    let yaml = format!(
        "kind: twilio-taskrouter\n\
         workspace_sid: {WORKSPACE_SID}\n\
         base_url: {base}\n\
         credentials: {{ account_sid_env: TEST_TWILIO_ACCOUNT_SID, auth_token_env: TEST_TWILIO_AUTH_TOKEN }}\n\
         worker: {{ attribute: contact_uri, value: 'client:{{agent}}' }}\n\
         webhook: {{ url: '{webhook}' }}\n\
         request_timeout: 2s\n"
    );
    marked_yaml::from_yaml(0, &yaml).unwrap()
}

async fn rig() -> Rig {
    rig_via(None).await
}

/// The rig, HIS reaching the fake at `base` when given (a proxy).
async fn rig_via(base: Option<&str>) -> Rig {
    let fake = Fake::start().await;
    let worker = fake.add_worker(
        "Agent One",
        json!({ "contact_uri": format!("client:{AGENT}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let webhook = format!("http://{addr}/taskrouter/events");
    fake.set_callback(&webhook);
    let (platform, _) =
        hisflow::load_platform(&common::root().join("workflows/twilio-taskrouter")).unwrap();
    let started = deploy::start(
        &platform,
        Some(&config(base.unwrap_or(&fake.base_url), &webhook)),
        Default::default,
        env,
    )
    .await
    .unwrap();
    let his = His::new(Arc::new(platform), started.adapter, Options::default());
    tokio::spawn(server::serve(
        listener,
        his.clone(),
        server::Settings {
            inbound: started.inbound,
            ..Default::default()
        },
        std::future::pending(),
    ));
    Rig {
        fake,
        worker,
        addr,
        webhook,
        his,
    }
}

impl Rig {
    async fn login(&self, channels: &[&str]) -> Client {
        let mut c = Client::new(&self.addr).await;
        c.login(AGENT, channels).await;
        self.fake.settled().await;
        c
    }

    fn activity(&self) -> String {
        self.fake.worker(&self.worker).activity_name
    }

    fn channel_available(&self, channel: &str) -> bool {
        self.fake.worker(&self.worker).channels[channel]
    }

    /// Sends HIS's webhook an Event Callback of `params`, signed with
    /// `token` as TaskRouter signs; HIS's answer.
    async fn send_signed(&self, params: &[(&str, &str)], token: &str) -> u16 {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = Fake::sign(&self.webhook, &owned, token);
        self.fake
            .send_event_raw(&self.webhook, params, Some(&signature))
            .await
    }

    /// The REST calls made so far that changed something.
    fn updates(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| (r.path, r.form))
            .collect()
    }
}

/// TaskRouter answers the next `times` POSTs to a path ending in `path`
/// with a Twilio error.
fn refusal(
    path: impl Into<String>,
    status: u16,
    code: u32,
    message: &str,
    times: usize,
) -> Refusal {
    Refusal {
        method: "POST".into(),
        path_ends_with: path.into(),
        status,
        code,
        message: message.into(),
        times,
    }
}

fn error_of(response: &Value) -> (&str, &str) {
    assert_eq!(response["ok"], false, "{response}");
    (
        response["error"]["code"].as_str().unwrap(),
        response["error"]["message"].as_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_flow_login_ready_and_logout() {
    let rig = rig().await;
    let mut c = rig.login(&["voice", "email"]).await;
    // Logging in takes the Worker out of Offline, into the Not Ready Activity.
    assert_eq!(rig.activity(), "Unavailable");

    let (events, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Available");
    // The Activity is the Worker's: both channels went Ready, by the event.
    let ready: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "channel.event.stateChanged" && e["data"]["state"] == "Ready")
        .map(|e| e["data"]["channel"].as_str().unwrap())
        .collect();
    assert_eq!(ready.len(), 2, "{events:?}");

    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    let (code, _) = c.closed().await;
    assert_eq!(code, 1000);
    rig.fake.settled().await;
    assert_eq!(rig.activity(), "Offline");
    assert!(!rig.channel_available("voice"));
    assert!(!rig.channel_available("email"));
    // The move to Offline rejects the work on offer.
    let offline: Vec<_> = rig
        .updates()
        .into_iter()
        .filter(|(p, f)| p.ends_with(&rig.worker) && f.iter().any(|(k, _)| k == "ActivitySid"))
        .collect();
    assert!(
        offline
            .iter()
            .any(|(_, f)| f.contains(&("RejectPendingReservations".into(), "true".into()))),
        "{offline:?}"
    );
    assert_eq!(rig.his.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_reasons_are_the_workspace_s_unavailable_activities() {
    let rig = rig().await;
    let mut c = Client::new(&rig.addr).await;
    let r = c.login(AGENT, &["voice"]).await;
    let reasons = &r["result"]["not_ready_reasons"];
    assert_eq!(reasons, &json!(["Unavailable", "Break"]), "{r}");
    // TaskRouter takes no logout reason (AF1 does not apply): none offered.
    assert_eq!(r["result"]["logout_reasons"], json!([]));

    let (_, r) = c
        .request(
            "channel.request.notReady",
            json!({ "channel": "voice", "reason": "Break" }),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Break");

    let (_, r) = c
        .request(
            "channel.request.notReady",
            json!({ "channel": "voice", "reason": "Lunch" }),
        )
        .await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "NotReadyFailed", "{r}");
    assert!(message.contains("Lunch"), "{message}");
    assert_eq!(rig.activity(), "Break", "a refused reason changes nothing");

    // A reason the agent gives at logout is not passed on.
    let (_, r) = c
        .request(
            "session.request.logout",
            json!({ "reason": "End of shift" }),
        )
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ef1_a_reservation_in_progress_refuses_the_logout() {
    let rig = rig().await;
    let mut c = rig.login(&["voice", "email"]).await;
    let (task, reservation) = rig.fake.offer(&rig.worker, "voice");
    let e = c.pushed().await;
    assert_eq!(e["data"]["state"], "Reserved", "{e}");
    rig.fake.accept(&reservation);
    let e = c.pushed().await;
    assert_eq!(e["name"], "channel.event.interactionStarted", "{e}");
    assert_eq!(e["data"]["interaction"], json!(task));
    let e = c.pushed().await;
    assert_eq!(e["data"]["state"], "Talking", "{e}");
    rig.fake.settled().await;

    let before = rig.updates().len();
    let (events, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(error_of(&r).0, "OngoingInteraction");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        rig.updates().len(),
        before,
        "nothing was asked of TaskRouter"
    );
    assert_eq!(rig.activity(), "Unavailable");

    // Once the task is done, the logout goes through.
    rig.fake.complete(&reservation);
    rig.fake.settled().await;
    let mut ended = false;
    while !ended {
        let e = c.pushed().await;
        ended = e["name"] == "channel.event.interactionEnded";
    }
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ef2_a_refused_activity_update_keeps_the_agent_logged_in() {
    let rig = rig().await;
    let mut c = rig.login(&["voice", "email"]).await;
    rig.fake.refuse(refusal(
        format!("/Workers/{}", rig.worker),
        400,
        20001,
        "Worker cannot move to this Activity now",
        1,
    ));
    let (_, r) = c.request("session.request.logout", json!({})).await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "NotReadyFailed");
    assert!(
        message.contains("Worker cannot move to this Activity now") && message.contains("20001"),
        "the switch's own words reach the agent: {message}"
    );
    rig.fake.settled().await;
    assert_eq!(rig.activity(), "Unavailable");
    assert!(rig.channel_available("voice") && rig.channel_available("email"));
    // Still logged in: the next request is served.
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ef3_a_refused_channel_update_keeps_the_agent_logged_in() {
    let rig = rig().await;
    let mut c = rig.login(&["voice", "email"]).await;
    rig.fake.refuse(refusal(
        "/Channels/email",
        400,
        20001,
        "Worker Channel cannot be updated",
        1,
    ));
    let (_, r) = c.request("session.request.logout", json!({})).await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "DeactivationFailed");
    assert!(
        message.contains("email") && message.contains("Worker Channel cannot be updated"),
        "{message}"
    );
    rig.fake.settled().await;
    // Channels are deactivated in order: voice, made unavailable before
    // email failed, stays so; the Worker stays in the Activity logout set.
    assert!(!rig.channel_available("voice"));
    assert!(rig.channel_available("email"));
    assert_eq!(rig.activity(), "Offline");
    assert_eq!(rig.his.session_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_moving_the_worker_offline_logs_the_agent_out() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    rig.fake.set_activity(&rig.worker, "Offline");
    let (code, reason) = c.closed().await;
    assert_eq!(code, 1000);
    assert!(reason.contains("supervisor"), "{reason}");
    assert_eq!(rig.his.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_event_is_refused_and_changes_nothing() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let params = [
        ("EventType", "worker.activity.update"),
        ("AccountSid", ACCOUNT_SID),
        ("WorkspaceSid", WORKSPACE_SID),
        ("WorkerSid", rig.worker.as_str()),
        ("WorkerActivityName", "Offline"),
    ];
    let offline_sid = rig
        .fake
        .requests()
        .iter()
        .flat_map(|r| r.form.clone())
        .find(|(k, _)| k == "ActivitySid")
        .map(|(_, v)| v);
    let mut forged = params.to_vec();
    if let Some(sid) = &offline_sid {
        forged.push(("WorkerActivitySid", sid.as_str()));
    }
    for signature in [None, Some("bm90IGEgc2lnbmF0dXJl"), Some("")] {
        let status = rig
            .fake
            .send_event_raw(&rig.webhook, &forged, signature)
            .await;
        assert_eq!(status, 403, "signature {signature:?}");
    }
    // Signed with another token: refused too.
    assert_eq!(rig.send_signed(&forged, "not-the-auth-token").await, 403);
    // Nothing happened: the session is there and answers.
    assert_eq!(rig.his.session_count(), 1);
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    // The same event signed as TaskRouter signs it is taken.
    assert_eq!(rig.send_signed(&forged, AUTH_TOKEN).await, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_are_tried_again_after_retry_after() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let from = rig.fake.requests().len();
    rig.fake.throttle(1, Some(1));
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Available");
    let seen = rig.fake.requests();
    let seen = &seen[from..];
    assert_eq!(seen[0].status, Some(429));
    assert_eq!(seen[1].path, seen[0].path, "the same request, again");
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_does_not_answer_times_out_with_a_clear_error() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    rig.fake.hang(true);
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "ReadyFailed", "{r}");
    assert!(message.contains("Ready on voice"), "{message}");
    rig.fake.hang(false);
    // The service is back: so is the agent.
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_stops_hisflow_from_starting_with_a_clear_error() {
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{closed}");
    let (platform, _) =
        hisflow::load_platform(&common::root().join("workflows/twilio-taskrouter")).unwrap();
    let err = deploy::start(
        &platform,
        Some(&config(&base, "https://his.example.com/taskrouter/events")),
        Default::default,
        env,
    )
    .await
    .err()
    .expect("no service, no start")
    .to_string();
    assert!(
        err.contains("could not be reached") && err.contains(&base),
        "{err}"
    );
    assert!(!err.contains(AUTH_TOKEN));

    // Wrong credentials are told apart from a missing service.
    let fake = Fake::start().await;
    let bad = |name: &str| match name {
        "TEST_TWILIO_AUTH_TOKEN" => Some("wrong".to_string()),
        other => env(other),
    };
    let err = deploy::start(
        &platform,
        Some(&config(
            &fake.base_url,
            "https://his.example.com/taskrouter/events",
        )),
        Default::default,
        bad,
    )
    .await
    .err()
    .expect("refused credentials, no start")
    .to_string();
    assert!(err.contains("401") && err.contains("20003"), "{err}");
}

/// A port free a moment ago, for a webhook URL that must be written before
/// HIS listens on it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The configuration file `hisflow serve` and `hisflow doctor` read, for the
/// fake at `base`.
fn config_file(dir: &std::path::Path, base: &str, port: u16) -> std::path::PathBuf {
    config_file_with(
        dir,
        base,
        port,
        &format!("http://127.0.0.1:{port}/taskrouter/events"),
    )
}

fn config_file_with(
    dir: &std::path::Path,
    base: &str,
    port: u16,
    webhook: &str,
) -> std::path::PathBuf {
    let path = dir.join("his.yaml");
    let platform = common::root().join("workflows/twilio-taskrouter");
    std::fs::write(
        &path,
        format!(
            "platform: {}\nlisten: 127.0.0.1:{port}\nadapter:\n  kind: twilio-taskrouter\n  workspace_sid: {WORKSPACE_SID}\n  base_url: {base}\n  worker: {{ attribute: contact_uri, value: 'client:{{agent}}' }}\n  webhook: {{ url: '{webhook}' }}\n",
            platform.display()
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_drives_taskrouter_through_the_websocket_protocol() {
    use std::io::{BufRead, BufReader};
    let fake = Fake::start().await;
    let worker = fake.add_worker(
        "Agent One",
        json!({ "contact_uri": format!("client:{AGENT}") }),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(dir.path(), &fake.base_url, port);
    fake.set_callback(&format!("http://127.0.0.1:{port}/taskrouter/events"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hisflow"))
        .args(["serve", "--config", cfg.to_str().unwrap(), "--log-json"])
        .current_dir(dir.path())
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        // Every trace, to show none holds a credential.
        .env("RUST_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs = Vec::new();
    let started = std::time::Instant::now();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve listens in time");
        let listening = line.contains("HIS listening");
        logs.push(line);
        if listening {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let addr = format!("127.0.0.1:{port}");
    let mut c = Client::new(&addr).await;
    c.login(AGENT, &["voice", "chat"]).await;
    assert_eq!(fake.worker(&worker).activity_name, "Unavailable");
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "chat" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    fake.settled().await;
    assert_eq!(fake.worker(&worker).activity_name, "Offline");
    // Every event reached HIS and was taken.
    assert!(
        fake.deliveries().iter().all(|d| d.status == Some(204)),
        "{:?}",
        fake.deliveries()
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        logs.push(line);
    }
    let all = logs.join("\n");
    assert!(
        all.contains("TaskRouter Workspace"),
        "the log names the switch"
    );
    assert!(!all.contains(AUTH_TOKEN), "a credential reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_deployment_one_line_per_check() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config_file(dir.path(), &fake.base_url, port);
    fake.set_callback(&format!("http://127.0.0.1:{port}/taskrouter/events"));
    let run = |token: &'static str, cfg: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            common::hisflow(&common::root())
                .args(["doctor", "--config", cfg.to_str().unwrap()])
                .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
                .env("TWILIO_AUTH_TOKEN", token)
                .output()
                .unwrap()
        })
    };
    let out = run(AUTH_TOKEN, cfg.clone()).await.unwrap();
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    for (status, name) in [
        ("ok", "platform"),
        ("ok", "configuration"),
        ("ok", "credentials"),
        ("ok", "workspace"),
        ("ok", "activities"),
        ("ok", "not ready reasons"),
        ("ok", "task channel"),
        ("ok", "event callback"),
        // Plain http on loopback: TaskRouter could not call it.
        ("warn", "webhook"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(status)
                    && l[4..].trim_start().starts_with(&format!("{name}:"))),
            "no `{status} {name}` line in:\n{text}"
        );
    }
    assert!(text.contains("Unavailable, Break"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains(AUTH_TOKEN));

    let out = run("wrong-token", cfg.clone()).await.unwrap();
    let text = common::stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL  credentials: refused")),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1), "{text}");

    // The Workspace sends its events elsewhere: HIS would hear nothing.
    fake.set_callback("https://elsewhere.example.com/events");
    let out = run(AUTH_TOKEN, cfg).await.unwrap();
    let text = common::stdout(&out);
    assert!(
        text.lines().any(|l| l.starts_with("FAIL  event callback")),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_gone_mid_session_is_told_to_the_agent() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let Rig { fake, .. } = rig;
    drop(fake);
    let (events, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "ReadyFailed", "{r}");
    assert!(
        message.contains("TaskRouter could not be reached"),
        "the agent reads why: {message}"
    );
    // The link is down for every session: the MediaBar shows it.
    let mut told = events
        .iter()
        .any(|e| e["name"] == "session.event.switchUnavailable");
    while !told {
        told = c.pushed().await["name"] == "session.event.switchUnavailable";
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_tried_again() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    rig.fake.refuse(refusal(
        format!("/Workers/{}", rig.worker),
        503,
        20503,
        "Service Unavailable",
        2,
    ));
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Available");
    let answered: Vec<Option<u16>> = rig
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert!(
        answered.ends_with(&[Some(503), Some(503), Some(200)]),
        "{answered:?}"
    );
}

#[test]
fn the_example_configuration_in_docs_is_one_serve_takes() {
    let path = common::root().join("docs/examples/taskrouter.yaml");
    let cfg = hisflow::server::config::read(&path).unwrap();
    let Some(AdapterConfig::TwilioTaskrouter(adapter)) = &cfg.adapter else {
        panic!("the example describes a TaskRouter Workspace");
    };
    adapter.check().unwrap();
    assert_eq!(adapter.worker.value_for("alice"), "client:alice");
    let (platform, _) = hisflow::load_platform(cfg.platform.as_ref().unwrap()).unwrap();
    assert_eq!(platform.adapter, "twilio-taskrouter");
    // And the schema editors complete it from agrees.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("schemas/config.schema.json")).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let value = hisflow::workflow::load::yaml_to_json(&text).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_a_webhook_taskrouter_cannot_reach() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let webhook = format!("https://127.0.0.1:{port}/taskrouter/events");
    let cfg = config_file_with(dir.path(), &fake.base_url, port, &webhook);
    fake.set_callback(&webhook);
    let out = tokio::task::spawn_blocking(move || {
        common::hisflow(&common::root())
            .args(["doctor", "--config", cfg.to_str().unwrap()])
            .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = common::stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL  webhook") && l.contains("cannot reach from the Internet")),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_must_describe_the_switch_its_platform_names() {
    let fake = Fake::start().await;
    let twilio = hisflow::load_platform(&common::root().join("workflows/twilio-taskrouter"))
        .unwrap()
        .0;
    let reference = hisflow::load_platform(&common::root().join("workflows/reference"))
        .unwrap()
        .0;
    let described = config(&fake.base_url, "https://his.example.com/taskrouter/events");
    let err =
        |r: Result<deploy::Started, deploy::DeployError>| r.err().expect("refused").to_string();

    let none = err(deploy::start(&twilio, None, Default::default, env).await);
    assert!(
        none.contains("adapter: { kind: sim }") && none.contains("docs/adapters.md"),
        "{none}"
    );
    let other = err(deploy::start(&reference, Some(&described), Default::default, env).await);
    assert!(other.contains("written for `sim`"), "{other}");
    // The simulated switch may stand in for TaskRouter.
    let sim: AdapterConfig = marked_yaml::from_yaml(0, "kind: sim").unwrap();
    let started = deploy::start(&twilio, Some(&sim), Default::default, env)
        .await
        .unwrap();
    assert_eq!(started.adapter.kind(), "sim");
    assert!(started.inbound.is_none());

    // An Activity the Workspace lacks stops it, naming those it has.
    let AdapterConfig::TwilioTaskrouter(mut c) = described else {
        unreachable!()
    };
    c.activities.ready = "Ready".into();
    let missing = err(deploy::start(
        &twilio,
        Some(&AdapterConfig::TwilioTaskrouter(c)),
        Default::default,
        env,
    )
    .await);
    assert!(
        missing.contains("no Activity `Ready`") && missing.contains("Available"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_canceled_at_the_switch_ends_the_interaction() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let (task, reservation) = rig.fake.offer(&rig.worker, "voice");
    rig.fake.accept(&reservation);
    rig.fake.settled().await;
    let mut talking = false;
    while !talking {
        talking = c.pushed().await["data"]["state"] == "Talking";
    }
    rig.fake.wrapup(&reservation);
    let e = c.pushed().await;
    assert_eq!(e["name"], "channel.event.interactionEnded", "{e}");
    assert_eq!(e["data"]["interaction"], json!(task));
    let e = c.pushed().await;
    assert_eq!(e["data"]["state"], "WorkingAfterCall", "{e}");
    rig.fake.complete(&reservation);
    let e = c.pushed().await;
    assert_eq!(
        e["data"]["state"], "NotReady",
        "back to the Activity's state: {e}"
    );

    // A Task that ends with no word of its reservation (completed through
    // the REST API by another application) ends the interaction too.
    let (task, reservation) = rig.fake.offer(&rig.worker, "voice");
    rig.fake.accept(&reservation);
    rig.fake.settled().await;
    let mut talking = false;
    while !talking {
        talking = c.pushed().await["data"]["state"] == "Talking";
    }
    let params = [
        ("EventType", "task.completed"),
        ("AccountSid", ACCOUNT_SID),
        ("WorkspaceSid", WORKSPACE_SID),
        ("TaskSid", task.as_str()),
    ];
    assert_eq!(rig.send_signed(&params, AUTH_TOKEN).await, 204);
    let mut ended = false;
    while !ended {
        let e = c.pushed().await;
        ended = e["name"] == "channel.event.interactionEnded"
            && e["data"]["interaction"] == json!(task);
    }
    // A logout is no longer refused.
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_in_wrap_up_goes_ready_and_logs_out() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let (_, reservation) = rig.fake.offer(&rig.worker, "voice");
    rig.fake.accept(&reservation);
    rig.fake.wrapup(&reservation);
    rig.fake.settled().await;
    let mut wrapping = false;
    while !wrapping {
        wrapping = c.pushed().await["data"]["state"] == "WorkingAfterCall";
    }
    // Ready leaves wrap-up: TaskRouter's event confirms it on voice.
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Available");

    // Back into wrap-up, then logout: the change is confirmed there too.
    let (_, reservation) = rig.fake.offer(&rig.worker, "voice");
    rig.fake.accept(&reservation);
    rig.fake.wrapup(&reservation);
    rig.fake.settled().await;
    let mut wrapping = false;
    while !wrapping {
        wrapping = c.pushed().await["data"]["state"] == "WorkingAfterCall";
    }
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(rig.activity(), "Offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_stale_event_changes_nothing() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    // A supervisor's Offline, recorded on its way to an earlier session…
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
    rig.fake.settled().await;
    let recorded = rig
        .fake
        .deliveries()
        .into_iter()
        .rev()
        .find(|d| {
            d.event_type == "worker.activity.update"
                && d.param("WorkerActivityName") == Some("Offline")
        })
        .expect("TaskRouter said the Worker went Offline");
    // …is sent again to the next session: taken once already, it is
    // acknowledged and changes nothing.
    let mut c = rig.login(&["voice"]).await;
    let params: Vec<(&str, &str)> = recorded
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        rig.fake
            .send_event_raw(&rig.webhook, &params, Some(&recorded.signature))
            .await,
        204
    );
    // A signed event sent ten minutes ago is refused.
    let old = (std::time::SystemTime::now() - Duration::from_secs(600))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let (secs, ms) = (old.as_secs().to_string(), old.as_millis().to_string());
    let mut stale: Vec<(String, String)> = recorded
        .params
        .iter()
        .filter(|(k, _)| !["Sid", "Timestamp", "TimestampMs"].contains(&k.as_str()))
        .cloned()
        .collect();
    stale.push(("Timestamp".into(), secs));
    stale.push(("TimestampMs".into(), ms));
    let borrowed: Vec<(&str, &str)> = stale
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(rig.send_signed(&borrowed, AUTH_TOKEN).await, 403);
    assert_eq!(rig.his.session_count(), 1, "the session is still there");
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_activity_is_no_not_ready_reason() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let (_, r) = c
        .request(
            "channel.request.notReady",
            json!({ "channel": "voice", "reason": "Offline" }),
        )
        .await;
    let (code, message) = error_of(&r);
    assert_eq!(code, "NotReadyFailed");
    assert!(message.contains("log out instead"), "{message}");
    assert_eq!(rig.activity(), "Unavailable");
}

/// A TCP proxy to `to` on a port of its own, which can be stopped (its
/// port then refuses connections) and started again on the same port.
struct Proxy {
    port: u16,
    to: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(to: &str) -> Proxy {
        let mut p = Proxy {
            port: 0,
            to: to.trim_start_matches("http://").to_string(),
            task: None,
        };
        p.resume().await;
        p
    }

    async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.port = listener.local_addr().unwrap().port();
        let to = self.to.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: stopping the proxy ends the
            // connections it holds too.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let to = to.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_is_down_while_taskrouter_cannot_be_reached_and_up_when_it_answers() {
    let fake = Fake::start().await;
    let mut proxy = Proxy::start(&fake.base_url).await;
    let base = format!("http://127.0.0.1:{}", proxy.port);
    // The rig's own fake is not used: HIS reaches `fake` through the proxy.
    let rig = rig_via(Some(&base)).await;
    let worker = fake.add_worker(
        "Agent One",
        json!({ "contact_uri": format!("client:{AGENT}") }),
    );
    fake.set_callback(&rig.webhook);
    let mut c = Client::new(&rig.addr).await;
    c.login(AGENT, &["voice"]).await;
    assert_eq!(fake.worker(&worker).activity_name, "Unavailable");

    proxy.stop();
    let (events, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(error_of(&r).0, "ReadyFailed", "{r}");
    let mut down = events
        .iter()
        .any(|e| e["name"] == "session.event.switchUnavailable");
    while !down {
        down = c.pushed().await["name"] == "session.event.switchUnavailable";
    }
    let readyz = |addr: String| async move {
        reqwest::get(format!("http://{addr}/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        readyz(rig.addr.clone()).await,
        503,
        "not ready without its switch"
    );
    // TaskRouter is back: HIS notices by itself, with no request of the
    // agent's, and reads the channel again.
    proxy.resume().await;
    let mut up = false;
    while !up {
        up = c.pushed().await["name"] == "session.event.switchAvailable";
    }
    assert_eq!(readyz(rig.addr.clone()).await, 200);
    let (_, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(fake.worker(&worker).activity_name, "Available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_must_be_exactly_one_worker() {
    let rig = rig().await;
    for name in ["Agent Two", "Agent Two Again"] {
        rig.fake
            .add_worker(name, json!({ "contact_uri": "client:agent-2" }));
    }
    for (agent, says) in [
        (
            "agent-2",
            "TaskRouter has 2 Workers whose `contact_uri` is `client:agent-2`",
        ),
        (
            "agent-3",
            "TaskRouter has no Worker whose `contact_uri` is `client:agent-3`",
        ),
    ] {
        let mut c = Client::new(&rig.addr).await;
        let (_, r) = c
            .request(
                "session.request.login",
                json!({ "agent": agent, "channels": ["voice"] }),
            )
            .await;
        let (code, message) = error_of(&r);
        assert_eq!(code, "LoginFailed", "{r}");
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(rig.his.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_event_older_than_one_taken_changes_nothing() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let send = |activity: &'static str, at: u128, sid: &'static str| {
        let rig = &rig;
        async move {
            let params: Vec<(String, String)> = [
                ("EventType", "worker.activity.update".to_string()),
                ("AccountSid", ACCOUNT_SID.to_string()),
                ("WorkspaceSid", WORKSPACE_SID.to_string()),
                ("Sid", sid.to_string()),
                ("WorkerSid", rig.worker.clone()),
                ("WorkerActivitySid", rig.fake.activity_sid(activity)),
                ("WorkerActivityName", activity.to_string()),
                ("TimestampMs", at.to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let borrowed: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            rig.send_signed(&borrowed, AUTH_TOKEN).await
        }
    };
    // A supervisor made the Worker Available, then (later) Break; the
    // Offline said before both arrives last: it is taken for what it is,
    // an old word, and logs nobody out.
    assert_eq!(send("Available", now, "EV01").await, 204);
    let mut ready = false;
    while !ready {
        ready = c.pushed().await["data"]["state"] == "Ready";
    }
    assert_eq!(send("Offline", now - 1_000, "EV02").await, 204);
    assert_eq!(send("Break", now + 1_000, "EV03").await, 204);
    let e = c.pushed().await;
    assert_eq!(e["data"]["state"], "NotReady", "{e}");
    assert_eq!(e["data"]["reason"], "Break", "{e}");
    assert_eq!(
        rig.his.session_count(),
        1,
        "the old Offline logged nobody out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_on_a_channel_his_did_not_log_in_on_is_not_reported() {
    let rig = rig().await;
    let mut c = rig.login(&["voice"]).await;
    let (_, reservation) = rig.fake.offer(&rig.worker, "chat");
    rig.fake.accept(&reservation);
    rig.fake.settled().await;
    assert!(
        rig.fake
            .deliveries()
            .iter()
            .any(|d| d.event_type == "reservation.accepted"),
        "TaskRouter did send the events"
    );
    // Whatever HIS sent meanwhile comes before this response.
    let (events, r) = c
        .request("channel.request.ready", json!({ "channel": "voice" }))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        events.iter().all(|e| e["data"]["channel"] != "chat"),
        "{events:?}"
    );
    // Nor does the interaction on chat hold the logout back.
    let (_, r) = c.request("session.request.logout", json!({})).await;
    assert_eq!(r["ok"], true, "{r}");
}
