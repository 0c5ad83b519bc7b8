//! The MediaBar page in a real headless Chromium (Debian's `chromium`,
//! installed by .ci/run), driven over the DevTools protocol against a real
//! HIS: the Logout use case from the agent's seat.
//!
//! `HISFLOW_SCREENSHOTS=1 cargo test --test mediabar` also writes the
//! screenshots of docs/screenshots/.

mod common;

use std::sync::Arc;
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

        // Basic flow with AF1: the reference switch requires a logout reason.
        login(&mut p, "agent-1").await;
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.screenshot("toolbar").await;
        let corner = p.eval("(() => { const r = document.getElementById('logout').getBoundingClientRect(); return r.right > window.innerWidth - 40 && r.top < 60; })()").await;
        assert_eq!(corner, json!(true), "the Logout button is in the upper right corner");
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        let reasons = p.eval("[...document.querySelectorAll('#reason-list input')].map(i => i.value)").await;
        assert_eq!(reasons, json!(["End of shift", "Lunch", "Meeting", "Training"]), "the reasons collected at login");
        p.screenshot("reasons").await;
        p.eval("document.querySelector('#reason-list input[value=Lunch]').checked = true; document.getElementById('checkmark').click(); true").await;
        p.wait_for("!document.getElementById('login').hidden").await;
        assert_eq!(p.eval("document.getElementById('reasons').hidden").await, json!(true));
        assert_eq!(p.eval("document.getElementById('message').textContent").await, json!("You are logged out."));

        // EF1: an interaction disables Logout; forced through, HIS's error is shown.
        login(&mut p, "agent-2").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for("document.getElementById('logout').disabled").await;
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("!document.getElementById('message').hidden").await;
        let shown = p.eval("document.getElementById('message').textContent").await;
        assert!(shown.as_str().unwrap().contains("interaction is in progress"), "{shown}");
        assert_eq!(p.eval("!document.getElementById('bar').hidden").await, json!(true), "the agent stays where they were");
        p.screenshot("ef1").await;
        p.eval("document.querySelector('#sim-interactions button[data-channel=email]').click(); true").await;
        p.wait_for("!document.getElementById('logout').disabled").await;

        // EF2: Not Ready fails during logout; the agent stays logged in.
        p.eval("document.querySelector('[data-channel=voice] [data-action=ready]').click(); true").await;
        p.wait_for("document.querySelector('[data-channel=voice] .state').textContent === 'Ready'").await;
        p.eval("document.getElementById('fail-not-ready').click(); true").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        p.eval("document.getElementById('logout').click(); true").await;
        p.wait_for("!document.getElementById('reasons').hidden").await;
        p.eval("document.getElementById('checkmark').click(); true").await;
        p.wait_for("document.getElementById('message').textContent.includes('The switch did not make you Not Ready on voice')").await;
        assert_eq!(p.eval("!document.getElementById('bar').hidden").await, json!(true));
        assert_eq!(state_of(&mut p, "voice").await, json!("Ready"), "voice stays Ready: the Not Ready was refused");
        p.screenshot("ef2").await;

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
        p.wait_for("document.getElementById('logout').disabled").await;
        p.eval("window.mediabar.logout('Lunch').then(() => true)").await;
        p.wait_for("document.getElementById('status').textContent.includes('Logout pending')").await;
        assert_eq!(p.eval("document.getElementById('logout').disabled").await, json!(true));
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
        let twilio = his("twilio-taskrouter").await;
        p.call("Page.navigate", json!({ "url": format!("http://{twilio}/") })).await;
        p.wait_for("document.readyState === 'complete' && !!window.mediabar").await;
        login(&mut p, "agent-3").await;
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
        p.wait_for("document.getElementById('status').textContent.includes('Reconnecting') && document.getElementById('logout').disabled && document.querySelector('[data-channel=email] [data-action=ready]').disabled").await;
        p.wait_for("!!window.mediabar.state.ws && !document.getElementById('status').textContent.includes('Reconnecting')").await;
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
