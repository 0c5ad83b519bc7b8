//! A real HIS over a real WebSocket: a server on an ephemeral port, and
//! clients that check every frame against the protocol's schema.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hisflow::his::{His, Options};
use hisflow::platform::sim::SimSwitch;
use hisflow::server::{self, config};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Every frame either side sends must be one the protocol's schema allows.
pub fn check_frame(frame: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let v = SCHEMA.get_or_init(|| {
        let text =
            std::fs::read_to_string(super::root().join("schemas/protocol.schema.json")).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    });
    let errors: Vec<String> = v.iter_errors(frame).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{frame} breaks the protocol schema: {errors:?}"
    );
}

/// Starts HIS for a platform folder of workflows/ and returns its address,
/// on the simulated switch `hisflow serve` would start for it.
pub async fn start(platform: &str) -> String {
    let (p, _) = hisflow::load_platform(&super::root().join("workflows").join(platform)).unwrap();
    start_with(platform, config::switch_for(&p, None)).await
}

pub async fn start_with(platform: &str, switch: hisflow::platform::sim::SwitchState) -> String {
    serve(platform, switch, Options::default()).await.addr
}

/// What [`serve`] started.
pub struct Served {
    pub addr: String,
    pub his: Arc<His>,
    pub sim: Arc<SimSwitch>,
}

/// HIS for a platform folder of workflows/, on `switch`, with `options`,
/// served on an ephemeral port; the simulator's controls on, as the tests
/// drive the switch through them.
pub async fn serve(
    platform: &str,
    switch: hisflow::platform::sim::SwitchState,
    options: Options,
) -> Served {
    serve_exactly(
        platform,
        switch,
        Options {
            simulator_controls: true,
            ..options
        },
    )
    .await
}

/// [`serve`] with `options` as they are.
pub async fn serve_exactly(
    platform: &str,
    switch: hisflow::platform::sim::SwitchState,
    options: Options,
) -> Served {
    serve_on(platform, Arc::new(SimSwitch::new(switch)), options).await
}

/// HIS for a platform folder of workflows/ on the switch `sim`, which may
/// outlive it, with `options` as they are.
pub async fn serve_on(platform: &str, sim: Arc<SimSwitch>, options: Options) -> Served {
    let (p, _) = hisflow::load_platform(&super::root().join("workflows").join(platform)).unwrap();
    let his = His::new(Arc::new(p), sim.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server::serve(
        listener,
        his.clone(),
        server::Settings {
            max_frame: 4096,
            ..Default::default()
        },
        std::future::pending(),
    ));
    Served { addr, his, sim }
}

/// The reference platform served with `settings` (HIS's defaults, the
/// default switch), for tests of the transport's own limits.
pub async fn serve_settings(settings: server::Settings) -> (String, Arc<His>) {
    serve_configured(Options::default(), settings).await
}

/// The reference platform served with HIS's `options` and the transport's
/// `settings`, on the default switch.
pub async fn serve_configured(options: Options, settings: server::Settings) -> (String, Arc<His>) {
    let (p, _) = hisflow::load_platform(&super::root().join("workflows/reference")).unwrap();
    let sim = Arc::new(SimSwitch::new(config::default_switch()));
    let his = His::new(Arc::new(p), sim, options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server::serve(
        listener,
        his.clone(),
        settings,
        std::future::pending(),
    ));
    (addr, his)
}

pub async fn connect(addr: &str) -> Ws {
    tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap()
        .0
}

pub struct Client {
    pub ws: Ws,
    next: u32,
}

impl Client {
    pub async fn new(addr: &str) -> Client {
        Client {
            ws: connect(addr).await,
            next: 0,
        }
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The frames up to and including the response; events first.
    pub async fn recv_until_response(&mut self) -> (Vec<Value>, Value) {
        let mut events = Vec::new();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("an answer in time")
                .expect("a frame")
                .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            check_frame(&v);
            if v["type"] == "response" {
                return (events, v);
            }
            events.push(v);
        }
    }

    pub async fn request(&mut self, name: &str, params: Value) -> (Vec<Value>, Value) {
        self.next += 1;
        let id = format!("r{}", self.next);
        self.send_raw(
            &json!({ "type": "request", "id": id, "name": name, "params": params }).to_string(),
        )
        .await;
        let (events, response) = self.recv_until_response().await;
        assert_eq!(response["id"], json!(id));
        (events, response)
    }

    pub async fn login(&mut self, agent: &str, channels: &[&str]) -> Value {
        let (_, r) = self
            .request(
                "session.request.login",
                json!({ "agent": agent, "channels": channels }),
            )
            .await;
        assert_eq!(r["ok"], true, "{r}");
        r
    }

    /// Logs in and returns the session's resume token.
    pub async fn login_token(&mut self, agent: &str, channels: &[&str]) -> String {
        let r = self.login(agent, channels).await;
        r["result"]["token"].as_str().expect("a token").to_string()
    }

    /// The next frame, which must be an event HIS sent unprompted.
    pub async fn pushed(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("an event in time")
                .expect("a frame")
                .unwrap();
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t).unwrap();
            check_frame(&v);
            assert_eq!(v["type"], "event", "{v}");
            return v;
        }
    }

    /// The close frame's code and reason, after the server ends the connection.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("closed in time")
            {
                Some(Ok(Message::Close(Some(f)))) => return (f.code.into(), f.reason.to_string()),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return (0, String::new()),
                Some(Ok(_)) => continue,
            }
        }
    }
}

pub fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["name"].as_str().unwrap()).collect()
}
