//! Headless Chromium (Debian's `chromium`, installed by .ci/run), driven
//! over the DevTools protocol.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Chromium, ended when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Cdp =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A tab, driven over its DevTools WebSocket.
pub struct Page {
    pub cdp: Cdp,
    pub next: u64,
}

impl Page {
    /// The tab of the DevTools target `url`.
    pub async fn connect(url: &str) -> Page {
        let (cdp, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { cdp, next: 0 }
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.cdp
            .send(Message::Text(
                json!({ "id": id, "method": method, "params": params })
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(15), self.cdp.next())
                .await
                .unwrap_or_else(|_| panic!("Chromium did not answer {method} {params}"));
            let Some(Ok(Message::Text(t))) = next else {
                panic!("Chromium went away")
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    pub async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    pub async fn wait_for(&mut self, js: &str) {
        let start = Instant::now();
        while self.eval(js).await != json!(true) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out waiting for: {js}"
            );
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

/// Chromium, headless, with a DevTools port of its choosing.
pub fn chromium() -> (Browser, u16) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (apt-get install chromium)");
    let file = profile.path().join("DevToolsActivePort");
    let start = Instant::now();
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.lines().next()?.parse().ok())
        {
            break port;
        }
        // A loaded machine (every test binary at once, several browsers)
        // can take long; one that never opens is not left behind.
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Chromium did not open its DevTools port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        Browser {
            child,
            _profile: profile,
        },
        port,
    )
}

/// The DevTools WebSocket of Chromium's page.
pub fn page_url(port: u16) -> String {
    let start = Instant::now();
    loop {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Chromium's DevTools HTTP server may keep the connection open.
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // Chromium builds the page's WebSocket address from the Host header.
        s.write_all(
            format!(
                "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(body)
            && let Some(url) = targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        {
            return url.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no page target: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A new tab: its DevTools WebSocket.
pub fn new_tab(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(2000)))
        .unwrap();
    s.write_all(
        format!(
            "PUT /json/new?about:blank HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let target: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}"));
    target["webSocketDebuggerUrl"].as_str().unwrap().to_string()
}
