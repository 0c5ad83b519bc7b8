//! The MediaBar page in a real headless Chromium (Debian's `chromium`,
//! installed by .ci/run), driven over the DevTools protocol against a real
//! HIS: the Logout use case from the agent's seat, every state the switch
//! sets, the keyboard alone, and WCAG 2.2 AA as axe-core checks it
//! (tests/a11y: the npm package, installed by .ci/run or, failing that, by
//! the first test that needs it).
//!
//! `HISFLOW_SCREENSHOTS=1 cargo test --test mediabar` also writes the
//! screenshots of docs/screenshots/.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use common::chromium::{Page, chromium, new_tab, page_url};
use hisflow::his::{His, Options};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::{self, config};
use serde_json::{Value, json};

impl Page {
    async fn screenshot(&mut self, name: &str) {
        if std::env::var_os("HISFLOW_SCREENSHOTS").is_none() {
            return;
        }
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let dir = common::root().join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

async fn open(url: String, addr: &str) -> Page {
    open_at(url, &format!("http://{addr}/")).await
}

/// A tab of the DevTools target `url`, at `address`, with the MediaBar up.
async fn open_at(url: String, address: &str) -> Page {
    let mut p = Page::connect(&url).await;
    p.call("Page.enable", json!({})).await;
    p.call("Page.navigate", json!({ "url": address })).await;
    p.wait_for("document.readyState === 'complete' && !!window.mediabar")
        .await;
    p
}

async fn login(p: &mut Page, agent: &str) {
    p.wait_for("!document.getElementById('login').hidden").await;
    p.eval(&format!("document.getElementById('agent-id').value = '{agent}'; document.getElementById('login-form').requestSubmit(); true")).await;
    p.wait_for("!document.getElementById('bar').hidden && document.querySelectorAll('.channel').length === document.querySelectorAll('input[name=media]:checked').length").await;
}

async fn state_of(p: &mut Page, channel: &str) -> Value {
    p.eval(&format!(
        "document.querySelector('[data-channel={channel}] .state').textContent"
    ))
    .await
}

/// Whether Logout cannot be used now: it says so to assistive technology
/// (`aria-disabled`, staying focusable), with its reason shown beside it
/// and referenced by `aria-describedby`.
const LOGOUT_UNUSABLE: &str = "(() => { const b = document.getElementById('logout'), why = document.getElementById('logout-why'); return b.getAttribute('aria-disabled') === 'true' && b.getAttribute('aria-describedby') === 'logout-why' && !why.hidden && why.textContent.length > 0; })()";

/// axe-core's browser build, from tests/a11y/node_modules; installed there
/// by `npm ci` (its lock file pins the version) if .ci/run has not.
fn axe_source() -> &'static str {
    static AXE: OnceLock<String> = OnceLock::new();
    AXE.get_or_init(|| {
        let dir = common::root().join("tests/a11y");
        let file = dir.join("node_modules/axe-core/axe.min.js");
        if !file.exists() {
            let ran = std::process::Command::new("npm")
                .args(["ci", "--prefix"])
                .arg(&dir)
                .args(["--no-audit", "--no-fund"])
                .status();
            assert!(
                matches!(ran, Ok(s) if s.success()),
                "axe-core is not installed ({}) and `npm ci --prefix tests/a11y --no-audit --no-fund` failed ({ran:?}): \
                 install Node.js and npm (apt-get install nodejs npm), then run it, as .ci/run does",
                file.display()
            );
        }
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("axe-core: {}: {e}", file.display()))
    })
}

/// Runs axe-core on the page as it is, against WCAG 2.0, 2.1 and 2.2 A and
/// AA: `screen` has no violation.
async fn axe(p: &mut Page, screen: &str) {
    if p.eval("typeof window.axe === 'object'").await != json!(true) {
        let r = p
            .call(
                "Runtime.evaluate",
                json!({ "expression": axe_source(), "returnByValue": true }),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "axe-core did not load: {r}"
        );
    }
    let violations = p
        .eval(
            "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })
               .then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                 nodes: v.nodes.map(n => ({ target: n.target.join(' '), why: n.failureSummary })) })))",
        )
        .await;
    let list = violations.as_array().expect("axe answers a list");
    if !list.is_empty() {
        let mut report = String::new();
        for v in list {
            report += &format!("\n* {} ({}): {}", v["id"], v["impact"], v["help"]);
            for n in v["nodes"].as_array().into_iter().flatten() {
                report += &format!(
                    "\n    {}: {}",
                    n["target"],
                    n["why"].as_str().unwrap_or("").replace('\n', " ")
                );
            }
        }
        panic!(
            "axe-core: {} violation(s) of WCAG 2.2 AA on {screen}:{report}",
            list.len()
        );
    }
}

/// One key pressed and released, as a keyboard does it: `Tab`, `Enter`,
/// ` `, `Escape`, `ArrowDown`, `ArrowUp`; Shift held with `shift`.
async fn press(p: &mut Page, key: &str, shift: bool) {
    let (code, vk, text) = match key {
        "Tab" => ("Tab", 9, ""),
        "Enter" => ("Enter", 13, "\r"),
        " " => ("Space", 32, " "),
        "Escape" => ("Escape", 27, ""),
        "ArrowDown" => ("ArrowDown", 40, ""),
        "ArrowUp" => ("ArrowUp", 38, ""),
        other => panic!("no key {other}"),
    };
    let modifiers = if shift { 8 } else { 0 };
    let mut down = json!({
        "type": if text.is_empty() { "rawKeyDown" } else { "keyDown" },
        "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": modifiers,
    });
    if !text.is_empty() {
        down["text"] = text.into();
        down["unmodifiedText"] = text.into();
    }
    p.call("Input.dispatchKeyEvent", down).await;
    p.call(
        "Input.dispatchKeyEvent",
        json!({ "type": "keyUp", "key": key, "code": code, "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk, "modifiers": modifiers }),
    )
    .await;
}

/// The accessible name of what has the keyboard focus, as Chromium
/// computes it for assistive technology.
async fn focused(p: &mut Page) -> String {
    let node = p
        .call(
            "Runtime.evaluate",
            json!({ "expression": "document.activeElement" }),
        )
        .await;
    let object = node["result"]["objectId"]
        .as_str()
        .expect("an element has the focus")
        .to_string();
    let tree = p
        .call(
            "Accessibility.getPartialAXTree",
            json!({ "objectId": object, "fetchRelatives": false }),
        )
        .await;
    tree["nodes"][0]["name"]["value"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The names of the buttons assistive technology finds on the page.
async fn button_names(p: &mut Page) -> Vec<String> {
    p.call("Accessibility.enable", json!({})).await;
    let tree = p.call("Accessibility.getFullAXTree", json!({})).await;
    tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["ignored"] != json!(true) && n["role"]["value"] == "button")
        .map(|n| n["name"]["value"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Where an element is on the page: `[left, top, width, height]`.
async fn rect(p: &mut Page, selector: &str) -> Value {
    p.eval(&format!(
        "(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }})()"
    ))
    .await
}

/// HIS for a platform folder of workflows/, on an ephemeral port, with the
/// simulated switch `hisflow serve` would start.
async fn his(platform: &str) -> String {
    his_switch(platform, None).await
}

async fn his_with(platform: &str, switch: hisflow::platform::sim::SwitchState) -> String {
    his_switch(platform, Some(switch)).await
}

async fn his_switch(platform: &str, switch: Option<hisflow::platform::sim::SwitchState>) -> String {
    his_tuned(platform, switch, |_| {}).await
}

/// HIS as [`his`] starts it, with the simulated switch changed by `tune`.
async fn his_tuned(
    platform: &str,
    switch: Option<hisflow::platform::sim::SwitchState>,
    tune: impl FnOnce(&mut hisflow::platform::sim::SwitchState),
) -> String {
    let (platform, _) =
        hisflow::load_platform(&common::root().join("workflows").join(platform)).unwrap();
    let mut switch = config::switch_for(&platform, switch);
    tune(&mut switch);
    his_options(
        platform,
        switch,
        Options {
            simulator_controls: true,
            ..Options::default()
        },
    )
    .await
}

/// HIS for `platform` on `switch` with `options`, on an ephemeral port.
async fn his_options(
    platform: hisflow::Platform,
    switch: hisflow::platform::sim::SwitchState,
    options: Options,
) -> String {
    let his = His::new(
        Arc::new(platform),
        Arc::new(SimSwitch::new(switch)),
        options,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server::serve(
        listener,
        his,
        server::Settings::default(),
        std::future::pending(),
    ));
    addr
}

#[test]
fn the_logout_use_case_in_the_browser() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("reference").await;

        let (_browser, port) = chromium();
        let url = page_url(port);
        let mut p = Page::connect(&url).await;
        p.call("Page.enable", json!({})).await;
        p.call("Page.navigate", json!({ "url": format!("http://{addr}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        p.screenshot("login").await;
        axe(&mut p, "Basic Login").await;

        // Basic flow with AF1: the reference switch requires a logout reason.
        login(&mut p, "agent-1").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.screenshot("toolbar").await;
        let corner = p.eval("(() => { const r = document.getElementById('logout').getBoundingClientRect(); return r.right > window.innerWidth - 40 && r.top < 60; })()").await;
        assert_eq!(corner, json!(true), "the Logout button is in the upper right corner");
        assert_eq!(p.eval("document.getElementById('logout').textContent").await, json!("Log out"));
        axe(&mut p, "the toolbar").await;
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        let reasons = p.eval("[...document.querySelectorAll('#reason-list input')].map(i => i.value)").await;
        assert_eq!(reasons, json!(["End of shift", "Lunch", "Meeting", "Training"]), "the reasons collected at login");
        p.screenshot("reasons").await;
        axe(&mut p, "the Logout Reason Selection Screen").await;
        p.eval("document.querySelector('#reason-list input[value=Lunch]').checked = true; document.getElementById('checkmark').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden").await, json!(true));
        assert_eq!(p.eval("document.getElementById('message').textContent").await, json!("You are logged out."));

        // EF1: an interaction disables Logout; forced through, HIS's error is shown.
        login(&mut p, "agent-2").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for(LOGOUT_UNUSABLE).await;
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("!document.getElementById('message').hidden").await;
        let shown = p.eval("document.getElementById('message').textContent").await;
        assert!(shown.as_str().unwrap().contains("interaction is in progress"), "{shown}");
        assert_eq!(p.eval("!document.getElementById('bar').hidden").await, json!(true), "the agent stays where they were");
        p.screenshot("ef1").await;
        axe(&mut p, "the toolbar during an interaction, HIS's EF1 message shown").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for(&format!("!({LOGOUT_UNUSABLE})")).await;

        // EF2: Not Ready fails during logout; the agent stays logged in.
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.eval("document.getElementById('fail-not-ready').click(); true").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        p.eval("document.getElementById('checkmark').click(); true").await;
        p.wait_for("document.getElementById('message').textContent === 'Logout failed. The switch did not make you Not Ready on voice: the switch refused Not Ready. You are still logged in.'").await;
        assert_eq!(p.eval("!document.getElementById('bar').hidden").await, json!(true));
        assert_eq!(state_of(&mut p, "voice").await, json!("Ready"), "voice stays Ready: the Not Ready was refused");
        p.screenshot("ef2").await;
        axe(&mut p, "an error (EF2)").await;

        // A narrow window: nothing runs off the side, Logout stays reachable.
        p.call("Emulation.setDeviceMetricsOverride", json!({ "width": 400, "height": 800, "deviceScaleFactor": 1, "mobile": false })).await;
        let fits = p.eval("document.documentElement.scrollWidth <= window.innerWidth && document.getElementById('logout').getBoundingClientRect().right <= window.innerWidth").await;
        assert_eq!(fits, json!(true), "the toolbar fits a 400 px window");
        p.screenshot("narrow").await;
        p.call("Emulation.clearDeviceMetricsOverride", json!({})).await;

        // The switch offers a call on its own: the MediaBar shows it, and
        // Ready waits.
        p.eval("document.querySelector('#sim-states button[data-channel=voice][data-state=Reserved]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Reserved'").await;
        assert_eq!(p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').disabled").await, json!(true));

        // A supervisor logs the agent out at the switch: back to Basic
        // Login, with the reason.
        p.eval("document.getElementById('force-logout').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(
            p.eval("document.getElementById('message').textContent").await,
            json!("Logged out by the switch (supervisor): Shift over")
        );
        p.screenshot("forced").await;
        axe(&mut p, "the notice of a forced logout").await;

        // Avaya's pending logout: during a call the logout is pending, and
        // completes when the call ends.
        let cm = hisflow::platform::sim::SwitchState {
            pending_logout: true,
            ..Default::default()
        };
        let avaya = his_with("avaya-cm", cm).await;
        p.call("Page.navigate", json!({ "url": format!("http://{avaya}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        p.eval("document.querySelectorAll('input[name=media]').forEach(i => i.checked = i.value === 'voice'); true").await;
        login(&mut p, "agent-4").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=voice]').click(); true").await;
        p.wait_for(LOGOUT_UNUSABLE).await;
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("document.getElementById('logout-why').textContent.includes('Logout pending')").await;
        assert_eq!(p.eval(LOGOUT_UNUSABLE).await, json!(true));
        assert_eq!(p.eval("!document.getElementById('bar').hidden").await, json!(true), "the agent stays on the call");
        p.screenshot("pending").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=voice]').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(
            p.eval("document.getElementById('message').textContent").await,
            json!("Your pending logout completed: the interaction ended.")
        );
        p.eval("document.querySelectorAll('input[name=media]').forEach(i => i.checked = true); true").await;

        // A platform with no logout reasons: Logout goes straight through.
        // Nor Not Ready reasons: Not Ready goes straight to the switch.
        let twilio = his("twilio-taskrouter").await;
        p.call("Page.navigate", json!({ "url": format!("http://{twilio}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        login(&mut p, "agent-3").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=notReady]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Not Ready'").await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden").await, json!(true), "no reason to choose");
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden").await, json!(true), "no reason screen");

        // An optional reason (Genesys): the screen offers to go on without one.
        let genesys = his("genesys-engage").await;
        p.call("Page.navigate", json!({ "url": format!("http://{genesys}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        login(&mut p, "agent-5").await;
        // A state a platform's machine has and the page has no label for is
        // shown as HIS names it.
        p.eval("window.mediabar.frame({ type: 'event', name: 'channel.event.stateChanged', data: { channel: 'voice', state: 'AwayFromDesk' } }); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'AwayFromDesk'").await;
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        assert_eq!(p.eval("document.getElementById('reason-none').hidden").await, json!(false));
        p.eval("document.getElementById('reason-none').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('message').textContent").await, json!("You are logged out."));

        // Finesse signs the desktop out though a chat stayed signed in: the
        // agent is told which.
        // Finesse takes only configured NOT_READY codes: the site has the one
        // logout sends.
        let ucce = his_tuned("cisco-ucce", None, |s| {
            s.reason_codes.insert("not_ready".into(), vec!["Break".into(), "Logout".into()]);
        })
        .await;
        p.call("Page.navigate", json!({ "url": format!("http://{ucce}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        login(&mut p, "agent-6").await;
        p.eval("window.mediabar.request('sim.request.fault', { op: 'channel.deactivate', channel: 'chat', call: 1, effect: { error: { code: 'InvalidState', message: 'E_ARM_STAT_CC_OFFLINE' } } }).then(() => true)").await;
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(
            p.eval("document.getElementById('message').textContent").await,
            json!("You are logged out. The switch kept you signed in on chat.")
        );
    });
}

#[test]
fn the_mediabar_survives_a_reload_a_dropped_connection_and_a_second_login() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("reference").await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        login(&mut p, "agent-7").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        let token = p.eval("JSON.parse(sessionStorage.getItem('hisflow.session')).token").await;
        assert!(token.is_string(), "the tab keeps its token: {token}");

        // A reload: the toolbar comes back as it was, without a login.
        p.call("Page.reload", json!({})).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        p.wait_for("!document.getElementById('bar').hidden && document.querySelectorAll('.channel').length === 3").await;
        assert_eq!(p.eval("document.getElementById('login').hidden").await, json!(true));
        assert_eq!(state_of(&mut p, "voice").await, json!("Ready"), "the session as it was");
        assert_eq!(p.eval("document.getElementById('agent').textContent").await, json!("agent-7"));
        assert_eq!(
            p.eval("JSON.parse(sessionStorage.getItem('hisflow.session')).token").await,
            token,
            "a resume, not a new login"
        );
        p.screenshot("resumed").await;

        // The connection drops: the toolbar says so, reconnects and resumes.
        p.eval("window.mediabar.state.ws.close(); true").await;
        // Nothing to click while offline.
        p.wait_for(&format!("document.getElementById('banner').textContent.includes('reconnecting') && !document.getElementById('banner').hidden && {LOGOUT_UNUSABLE} && document.querySelector('[data-channel=email] [data-action=ready]').disabled")).await;
        p.wait_for("!!window.mediabar.state.ws && document.getElementById('banner').hidden").await;
        p.eval("document.querySelector('[data-channel=email] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=email] .state').textContent === 'Ready'").await;

        // The simulator's own buttons work again after the reconnect; the
        // link the switch dropped is still down after a reload.
        p.eval("document.getElementById('link-down').click(); true").await;
        p.wait_for("document.getElementById('status').textContent.includes('switch is unavailable')").await;
        p.call("Page.reload", json!({})).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        p.wait_for("!document.getElementById('bar').hidden && document.getElementById('status').textContent.includes('switch is unavailable')").await;
        p.eval("document.getElementById('link-up').click(); true").await;
        p.wait_for("!document.getElementById('status').textContent.includes('switch is unavailable')").await;

        // The agent logs in from a second tab: it takes the session over,
        // and the first tab is signed out with the reason.
        let mut q = open(new_tab(port), &addr).await;
        login(&mut q, "agent-7").await;
        assert_eq!(state_of(&mut q, "email").await, json!("Ready"), "the session went on");
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(
            p.eval("document.getElementById('message').textContent").await,
            json!("You logged in from another MediaBar.")
        );
        assert_eq!(p.eval("sessionStorage.getItem('hisflow.session')").await, Value::Null, "the first tab forgot its token");
        p.call("Page.reload", json!({})).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        p.wait_for("!document.getElementById('login').hidden").await;

        // The second tab logs out: its reload shows the login screen.
        q.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        q.wait_for("!document.getElementById('login').hidden").await;
        q.call("Page.reload", json!({})).await;
        q.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        q.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(q.eval("sessionStorage.getItem('hisflow.session')").await, Value::Null);
    });
}

#[test]
fn the_login_asks_for_what_his_requires() {
    use hisflow::his::auth::{self, AuthConfig, Authenticator};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let d = tempfile::tempdir().unwrap();
        let reference = || {
            let (p, _) = hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
            let switch = config::switch_for(&p, None);
            (p, switch)
        };
        let with_auth = |auth: AuthConfig| Options {
            auth: Arc::new(Authenticator::from_config(&auth).unwrap()),
            ..Options::default()
        };

        // Passwords, and no simulator panel: its controls are off.
        let users = d.path().join("users.txt");
        auth::add_user(&users, "agent-1", "open sesame").unwrap();
        let (p, switch) = reference();
        let addr = his_options(p, switch, with_auth(AuthConfig::Users { file: users })).await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        p.wait_for("!document.getElementById('password-field').hidden").await;
        let submit = |pw: &str| format!("document.getElementById('agent-id').value = 'agent-1'; document.getElementById('password').value = '{pw}'; document.getElementById('login-form').requestSubmit(); true");
        p.eval(&submit("guess")).await;
        p.wait_for("document.getElementById('message').textContent.includes('Wrong agent ID or password')").await;
        assert_eq!(p.eval("document.getElementById('login').hidden").await, json!(false));
        assert_eq!(p.eval("document.activeElement.id").await, json!("password"), "the password field takes the focus again");
        p.eval(&submit("open sesame")).await;
        p.wait_for("!document.getElementById('bar').hidden").await;
        assert_eq!(p.eval("document.getElementById('sim').hidden").await, json!(true), "no simulator panel without its controls");
        assert_eq!(p.eval("document.getElementById('password').value").await, json!(""), "the password is not kept in the page");

        // A token from the identity provider, in the page's fragment.
        let secret = d.path().join("secret");
        std::fs::write(&secret, "a shared secret of more than thirty-two bytes").unwrap();
        let (platform, switch) = reference();
        let addr = his_options(platform, switch, with_auth(AuthConfig::Jwt {
            issuer: "https://idp.example".into(),
            audience: "hisflow".into(),
            algorithm: "HS256".into(),
            key_file: secret,
            agent_claim: "preferred_username".into(),
            leeway: None,
        })).await;
        let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"iss": "https://idp.example", "aud": "hisflow", "preferred_username": "agent-42", "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(b"a shared secret of more than thirty-two bytes"),
        ).unwrap();
        let mut p = open_at(new_tab(port), &format!("http://{addr}/#id_token={token}")).await;
        p.wait_for("!document.getElementById('jwt-field').hidden").await;
        assert_eq!(p.eval("document.getElementById('agent-id').hidden").await, json!(true), "the token names the agent");
        assert_eq!(p.eval("location.hash").await, json!(""), "the token leaves the address bar");
        assert_eq!(
            p.eval("document.getElementById('jwt-help').textContent").await,
            json!("This token signs you in as agent-42."),
            "the agent sees whom the token signs in"
        );
        p.eval("document.getElementById('login-form').requestSubmit(); true").await;
        p.wait_for("!document.getElementById('bar').hidden").await;
        assert_eq!(p.eval("document.getElementById('agent').textContent").await, json!("agent-42"));
        assert_eq!(p.eval("document.getElementById('jwt').value").await, json!(""), "the token is not kept in the page");
    });
}

/// The basic flow with AF1 by keyboard alone (Tab, Shift+Tab, Enter, Space,
/// Escape, arrows): the toolbar's focus order, and the reason dialog that
/// holds the focus while it is open and gives it back when it closes.
#[test]
fn the_logout_use_case_by_keyboard_alone() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("reference").await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        p.call("Emulation.setFocusEmulationEnabled", json!({ "enabled": true })).await;
        p.wait_for("!document.getElementById('login').hidden && document.activeElement.id === 'agent-id'").await;

        // Log in: the agent ID field has the focus; Enter submits.
        press(&mut p, "Enter", false).await;
        p.wait_for("!document.getElementById('bar').hidden && document.querySelectorAll('.channel').length === 3").await;
        p.wait_for("document.activeElement.dataset.action === 'ready'").await;
        assert_eq!(focused(&mut p).await, "Ready on voice", "the focus starts on the first channel, not on Log out");

        // The toolbar's order: each channel's controls, left to right, then
        // the simulator; Log out comes first, in the upper right corner.
        let mut order = Vec::new();
        for _ in 0..9 {
            press(&mut p, "Tab", false).await;
            order.push(focused(&mut p).await);
        }
        assert_eq!(
            order,
            [
                "Not Ready on voice", "Deactivate voice",
                "Ready on email", "Not Ready on email", "Deactivate email",
                "Ready on chat", "Not Ready on chat", "Deactivate chat",
                "Simulator",
            ],
            "each channel's controls in turn; Not Ready stays offered on a Not Ready channel, to change its reason"
        );
        for _ in 0..9 {
            press(&mut p, "Tab", true).await;
        }
        assert_eq!(focused(&mut p).await, "Ready on voice");
        press(&mut p, "Tab", true).await;
        assert_eq!(focused(&mut p).await, "Log out");
        press(&mut p, "Tab", false).await;

        // Ready on voice; the button it disables hands the focus on.
        press(&mut p, "Enter", false).await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.wait_for("document.activeElement.dataset.action === 'notReady'").await;
        assert_eq!(focused(&mut p).await, "Not Ready on voice");

        // Log out: the dialog opens with the focus in it.
        press(&mut p, "Tab", true).await;
        assert_eq!(focused(&mut p).await, "Log out");
        press(&mut p, "Enter", false).await;
        p.wait_for("!document.getElementById('reasons').hidden && document.getElementById('reasons').contains(document.activeElement)").await;
        assert_eq!(focused(&mut p).await, "End of shift");
        assert_eq!(p.eval("document.getElementById('bar').inert && document.getElementById('main').inert").await, json!(true), "the page behind is inert");
        let mut stops = Vec::new();
        for i in 0..8 {
            press(&mut p, "Tab", i >= 6).await;
            assert_eq!(
                p.eval("document.getElementById('reasons').contains(document.activeElement)").await,
                json!(true),
                "the focus left the dialog after {} Tab(s)", i + 1
            );
            stops.push(focused(&mut p).await);
        }
        assert_eq!(stops, ["Cancel", "Log out", "End of shift", "Cancel", "Log out", "End of shift", "Log out", "Cancel"]);

        // Escape cancels, and the focus goes back to Log out.
        press(&mut p, "Escape", false).await;
        p.wait_for("document.getElementById('reasons').hidden").await;
        assert_eq!(p.eval("document.activeElement.id").await, json!("logout"));
        assert_eq!(p.eval("document.getElementById('bar').inert || document.getElementById('main').inert").await, json!(false));

        // Again: a reason picked with the arrow keys and Space, confirmed with Enter.
        press(&mut p, " ", false).await;
        p.wait_for("!document.getElementById('reasons').hidden && document.getElementById('reasons').contains(document.activeElement)").await;
        press(&mut p, "ArrowDown", false).await;
        press(&mut p, " ", false).await;
        assert_eq!(p.eval("document.querySelector('#reason-list input:checked').value").await, json!("Lunch"));
        assert_eq!(focused(&mut p).await, "Lunch");
        press(&mut p, "Tab", false).await;
        press(&mut p, "Tab", false).await;
        assert_eq!(focused(&mut p).await, "Log out");
        assert_eq!(p.eval("document.activeElement.id").await, json!("checkmark"));
        press(&mut p, "Enter", false).await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('message').textContent").await, json!("You are logged out."));
        assert_eq!(p.eval("document.activeElement.id").await, json!("agent-id"));
    });
}

/// Every state the switch sets, with its time; Activate after a
/// deactivation; Not Ready with the reasons collected at login; Logout that
/// says why it cannot be used; the connection lost and found again.
#[test]
fn the_toolbar_shows_what_the_switch_has_and_offers_what_the_agent_needs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("reference").await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        login(&mut p, "agent-8").await;
        let since = "document.querySelector('[data-channel=voice] .since').textContent";

        // A call offered, answered, wrapped up: each state with the time in it.
        for (button, shown) in [("Reserved", "Reserved"), ("Talking", "Talking"), ("WorkingAfterCall", "Wrap-up")] {
            p.eval(&format!("document.querySelector('#sim-states button[data-channel=voice][data-state={button}]').click(); true")).await;
            p.wait_for(&format!("document.querySelector('[data-channel=voice] .state').textContent === '{shown}'")).await;
            let start = p.eval(since).await;
            assert!(start == json!("00:00") || start == json!("00:01"), "the time restarts with the state: {start}");
            if button == "Talking" {
                p.eval("document.querySelector('#sim-interactions button[data-channel=voice]').click(); true").await;
                p.wait_for("document.querySelector('[data-channel=voice] .busy').textContent.startsWith('Interaction')").await;
                p.screenshot("talking").await;
            }
            p.wait_for(&format!("!['00:00', '00:01'].includes({since})")).await;
            assert_eq!(p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').disabled").await, json!(button != "WorkingAfterCall"));
            if button == "Talking" {
                p.eval("document.querySelector('#sim-interactions button[data-channel=voice]').click(); true").await;
                p.wait_for("document.querySelector('[data-channel=voice] .busy').textContent === 'No interaction'").await;
            }
        }
        assert_eq!(p.eval("document.getElementById('live').textContent.length > 0").await, json!(true), "state changes are announced");
        // HIS read the channel again: the same state keeps its time, another restarts it.
        p.eval("window.mediabar.frame({ type: 'event', name: 'channel.event.refreshed', data: { channel: 'voice', state: 'WorkingAfterCall', active: true, interactions: [] } }); true").await;
        assert_ne!(p.eval(since).await, json!("00:00"));
        assert_eq!(p.eval("document.querySelector('[data-channel=voice] .busy').textContent").await, json!("No interaction"));
        p.eval("window.mediabar.frame({ type: 'event', name: 'channel.event.refreshed', data: { channel: 'voice', state: 'NotReady', active: true, interactions: [] } }); true").await;
        assert_eq!(p.eval(since).await, json!("00:00"));
        assert_eq!(state_of(&mut p, "voice").await, json!("Not Ready"));
        p.eval("window.mediabar.request('sim.request.setState', { channel: 'voice', state: 'NotReady' }).then(() => true)").await;

        // Deactivate, then Activate: the buttons say what they do to which channel.
        assert_eq!(p.eval("document.querySelector('[data-channel=email] [data-action=deactivate]').getAttribute('aria-label')").await, json!("Deactivate email"));
        p.eval("document.querySelector('[data-channel=email] [data-action=deactivate]').click(); true").await;
        p.wait_for("!document.querySelector('[data-channel=email] .inactive').hidden").await;
        assert_eq!(p.eval("document.querySelector('[data-channel=email] [data-action=activate]').getAttribute('aria-label')").await, json!("Activate email"));
        assert_eq!(p.eval("document.querySelector('[data-channel=email] [data-action=ready]').disabled").await, json!(true), "an inactive channel cannot go Ready");
        p.eval("document.querySelector('[data-channel=email] [data-action=activate]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=email] .inactive').hidden && !!document.querySelector('[data-channel=email] [data-action=deactivate]')").await;
        // A deactivation the page did not ask for (an EF3 that stopped half
        // way, an administrator): Activate brings the channel back.
        p.eval("window.mediabar.request('channel.request.deactivate', { channel: 'chat' }).then(() => true)").await;
        p.wait_for("!document.querySelector('[data-channel=chat] .inactive').hidden").await;
        p.eval("document.querySelector('[data-channel=chat] [data-action=activate]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .inactive').hidden").await;
        p.eval("document.querySelector('[data-channel=chat] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .state').textContent === 'Ready'").await;
        assert_eq!(p.eval("document.getElementById('message').hidden").await, json!(true), "no error: the channel is active again");

        // Not Ready offers the reasons collected at login, and none (the
        // reference switch's Not Ready reason is optional).
        p.eval("document.querySelector('[data-channel=chat] [data-action=notReady]').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        assert_eq!(p.eval("document.getElementById('reasons-title').textContent").await, json!("Not Ready reason"));
        assert_eq!(p.eval("[...document.querySelectorAll('#reason-list input')].map(i => i.value)").await, json!(["Break", "Lunch", "Meeting"]));
        assert_eq!(p.eval("document.getElementById('reason-none').hidden").await, json!(false));
        p.screenshot("not-ready-reasons").await;
        axe(&mut p, "the Not Ready reason dialog").await;
        p.eval("document.querySelector('#reason-list input[value=Lunch]').checked = true; document.getElementById('checkmark').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .state').textContent === 'Not Ready'").await;
        assert_eq!(p.eval("document.querySelector('[data-channel=chat] .reason').textContent").await, json!("Lunch"));
        // Not Ready again, with another reason: the reason changes.
        assert_eq!(p.eval("document.querySelector('[data-channel=chat] [data-action=notReady]').disabled").await, json!(false));
        p.eval("document.querySelector('[data-channel=chat] [data-action=notReady]').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        p.eval("document.querySelector('#reason-list input[value=Break]').checked = true; document.getElementById('checkmark').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .reason').textContent === 'Break'").await;
        assert_eq!(p.eval("document.querySelector('[data-channel=chat] .state').textContent").await, json!("Not Ready"));
        p.eval("document.querySelector('[data-channel=chat] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .state').textContent === 'Ready'").await;
        p.eval("document.querySelector('[data-channel=chat] [data-action=notReady]').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        p.eval("document.getElementById('reason-none').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=chat] .state').textContent === 'Not Ready'").await;
        assert_eq!(p.eval("document.querySelector('[data-channel=chat] .reason').textContent").await, json!(""));

        // An interaction: Logout says why it cannot be used, and does nothing.
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for(LOGOUT_UNUSABLE).await;
        assert_eq!(
            p.eval("document.getElementById('logout-why').textContent").await,
            json!("You cannot log out while an interaction is in progress on email.")
        );
        assert_eq!(p.eval("document.getElementById('logout').disabled").await, json!(false), "it stays focusable, so that its reason is read");
        p.eval("document.getElementById('logout').click(); true").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden && document.getElementById('message').hidden && !document.getElementById('bar').hidden").await, json!(true));
        // HIS's EF1 message goes by itself once the interaction has ended.
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("document.getElementById('message').textContent.includes('interaction is in progress')").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for(&format!("document.getElementById('message').hidden && !({LOGOUT_UNUSABLE})")).await;
        assert_eq!(p.eval("document.getElementById('logout').hasAttribute('aria-describedby') || !document.getElementById('logout-why').hidden").await, json!(false));

        // Every button has a name of its own.
        p.eval("document.getElementById('sim').open = true; true").await;
        let names = button_names(&mut p).await;
        assert!(names.len() > 20, "{names:?}");
        let mut seen = std::collections::BTreeSet::new();
        for n in &names {
            assert!(!n.is_empty(), "a button without a name: {names:?}");
            assert!(seen.insert(n), "two buttons named {n}: {names:?}");
        }
        p.eval("document.getElementById('sim').open = false; true").await;

        // The connection drops: a banner says so until the page has resumed
        // by itself.
        // (HIS is unreachable for a moment: the page cannot open a WebSocket.)
        p.eval("window.OpenSocket = window.WebSocket; window.WebSocket = function () { throw new Error('unreachable'); }; window.mediabar.state.ws.close(); true").await;
        p.wait_for("!document.getElementById('banner').hidden && document.getElementById('banner').textContent.includes('Connection to HIS lost')").await;
        assert_eq!(p.eval(LOGOUT_UNUSABLE).await, json!(true));
        p.screenshot("offline").await;
        axe(&mut p, "the toolbar while the connection is down").await;
        p.eval("window.WebSocket = window.OpenSocket; true").await;
        p.wait_for("document.getElementById('banner').hidden && !!window.mediabar.state.ws").await;
        assert_eq!(state_of(&mut p, "chat").await, json!("Not Ready"), "the session as it was");
    });
}

/// Logout and the first channel do not move as the channels' states
/// change, at 1280 px and at 400 px, and nothing runs off a 400 px window.
#[test]
fn the_toolbar_holds_still_at_1280_and_400_px() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("reference").await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        login(&mut p, "agent-9").await;
        for width in [1280, 400] {
            p.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": false })).await;
            let watched = ["#logout", ".channel[data-channel=voice]", ".channel[data-channel=email]", "[data-channel=voice] [data-action=ready]", "[data-channel=voice] [data-action=notReady]", "[data-channel=voice] [data-action=deactivate]"];
            let mut before = Vec::new();
            for w in watched {
                before.push(rect(&mut p, w).await);
            }
            for (st, shown) in [("Ready", "Ready"), ("Talking", "Talking"), ("NotReady", "Not Ready"), ("WorkingAfterCall", "Wrap-up"), ("NotReady", "Not Ready")] {
                p.eval(&format!("window.mediabar.request('sim.request.setState', {{ channel: 'voice', state: '{st}', reason: 'Back from a long meeting with the team' }}).then(() => true)")).await;
                p.wait_for(&format!("document.querySelector('[data-channel=voice] .state').textContent === '{shown}'")).await;
                for (w, was) in watched.iter().zip(&before) {
                    assert_eq!(&rect(&mut p, w).await, was, "{w} moved at {width} px when voice went {st}");
                }
                let fits = p.eval("document.documentElement.scrollWidth <= window.innerWidth").await;
                assert_eq!(fits, json!(true), "a horizontal scroll bar at {width} px");
            }
            let corner = p.eval("(() => { const r = document.getElementById('logout').getBoundingClientRect(); return r.right > window.innerWidth - 40 && r.top < 60; })()").await;
            assert_eq!(corner, json!(true), "Log out is in the upper right corner at {width} px");
        }
        p.call("Emulation.clearDeviceMetricsOverride", json!({})).await;
    });
}

/// A platform without logout reasons and without deactivation (Amazon
/// Connect): no Activate or Deactivate, Not Ready with its required reason,
/// Logout straight through; accessible all the same.
#[test]
fn a_platform_without_logout_reasons_or_deactivation() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = his("amazon-connect").await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        axe(&mut p, "Basic Login (Amazon Connect)").await;
        login(&mut p, "agent-10").await;
        p.wait_for("document.querySelectorAll('.channel [data-action=deactivate], .channel [data-action=activate]').length === 3").await;
        assert_eq!(
            p.eval("[...document.querySelectorAll('.channel [data-action=deactivate], .channel [data-action=activate]')].every(b => b.hidden)").await,
            json!(true),
            "no channel to (de)activate"
        );
        axe(&mut p, "the toolbar (Amazon Connect)").await;
        let names = button_names(&mut p).await;
        assert!(!names.iter().any(|n| n.starts_with("Deactivate") || n.starts_with("Activate")), "{names:?}");

        // Not Ready needs one of the switch's statuses: no "No reason".
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=notReady]').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        assert_eq!(p.eval("[...document.querySelectorAll('#reason-list input')].map(i => i.value)").await, json!(["Break", "Lunch", "Training", "Offline"]));
        assert_eq!(p.eval("document.getElementById('reason-none').hidden").await, json!(true));
        axe(&mut p, "the Not Ready reason dialog (Amazon Connect)").await;
        p.eval("document.querySelector('#reason-list input[value=Break]').checked = true; document.getElementById('checkmark').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Not Ready'").await;
        assert_eq!(p.eval("document.getElementById('message').hidden").await, json!(true));

        // An interaction holds Logout back here too.
        p.eval("document.querySelector('#sim-interactions button[data-channel=chat]').click(); true").await;
        p.wait_for(LOGOUT_UNUSABLE).await;
        axe(&mut p, "the toolbar during an interaction (Amazon Connect)").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=chat]').click(); true").await;
        p.wait_for(&format!("!({LOGOUT_UNUSABLE})")).await;

        // Logout: no reason to choose.
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden").await, json!(true), "no reason screen");
        assert_eq!(p.eval("document.getElementById('message').textContent").await, json!("You are logged out."));
    });
}

#[test]
fn a_session_that_expired_while_the_connection_was_down_is_explained() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (platform, _) =
            hisflow::load_platform(&common::root().join("workflows/reference")).unwrap();
        // HIS logs out a session left without a connection for 50 ms:
        // shorter than the page takes to reconnect.
        let addr = his_options(
            platform,
            config::default_switch(),
            Options {
                detach_grace: Duration::from_millis(50),
                ..Default::default()
            },
        )
        .await;
        let (_browser, port) = chromium();
        let mut p = open(page_url(port), &addr).await;
        login(&mut p, "agent-9").await;
        p.eval("window.mediabar.state.ws.close(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(
            p.eval("document.getElementById('message').textContent")
                .await,
            json!("Your session ended while the connection was lost: log in again.")
        );
        assert_eq!(
            p.eval("sessionStorage.getItem('hisflow.session')").await,
            Value::Null,
            "the spent token is forgotten"
        );
        axe(&mut p, "the notice of a session that expired").await;
        // Basic Login works from there.
        login(&mut p, "agent-9").await;
    });
}
