//! A client of the simulated switch's own protocol (`hisflow switch`'s
//! `/switch`), as a test speaks it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::ws::Ws;

/// A client of the switch's own protocol, as a test speaks it.
pub struct Direct {
    pub ws: Ws,
    next: u64,
    /// Events that came while a reply was awaited.
    pub events: Vec<Value>,
}

impl Direct {
    pub async fn open(addr: &str) -> Direct {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/switch"))
            .await
            .unwrap();
        Direct {
            ws,
            next: 0,
            events: Vec::new(),
        }
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next frame, as JSON.
    pub async fn frame(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame in time")
                .expect("the connection is open")
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The reply to request `id`.
    pub async fn reply(&mut self, id: u64) -> Value {
        loop {
            let f = self.frame().await;
            if f.get("event").is_some() {
                self.events.push(f["event"].clone());
                continue;
            }
            assert_eq!(f["id"], id, "{f}");
            return f;
        }
    }

    pub async fn ask(&mut self, body: Value) -> Value {
        self.next += 1;
        let mut frame = json!({ "id": self.next });
        frame
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        self.send_raw(&frame.to_string()).await;
        self.reply(self.next).await
    }

    pub async fn call(&mut self, agent: &str, op: Value) -> Value {
        self.ask(json!({ "call": { "agent": agent, "op": op } }))
            .await
    }

    pub async fn control(&mut self, agent: &str, name: &str, params: Value) -> Value {
        self.ask(json!({ "control": { "agent": agent, "name": name, "params": params } }))
            .await
    }

    /// The agent's state on `channel`, as the switch has it.
    pub async fn state(&mut self, agent: &str, channel: &str) -> String {
        let r = self
            .call(agent, json!({ "op": "agent.state", "channel": channel }))
            .await;
        r["ok"]["state"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    }

    /// The close frame's code and reason, once the switch ends the
    /// connection.
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
