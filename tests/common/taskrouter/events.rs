//! Event Callbacks: signed as Twilio signs its webhooks, and sent one at a
//! time, in order, as TaskRouter sends a Workspace's events.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::sync::mpsc;

use super::model::Outgoing;
use super::{AUTH_TOKEN, Delivered, Shared};

/// How long TaskRouter waits for a receiver to answer an event.
const RECEIVER_TIMEOUT: Duration = Duration::from_secs(15);

/// HMAC-SHA1, keyed with the token, of the URL followed by every parameter's
/// name and value, parameters sorted by name in byte order (a repeated
/// name's values sorted too), in standard Base64.
pub(super) fn sign(url: &str, params: &[(String, String)], token: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_string();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The fake's one sender: the next event leaves once the receiver has
/// answered the last one, or failed to.
pub(super) async fn deliver(shared: Arc<Shared>, mut queued: mpsc::UnboundedReceiver<Outgoing>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(RECEIVER_TIMEOUT)
        .user_agent("TwilioProxy/1.1")
        .build()
        .expect("the event sender's client");
    while let Some(event) = queued.recv().await {
        let signature = sign(&event.url, &event.params, AUTH_TOKEN);
        let status = client
            .post(&event.url)
            .header("X-Twilio-Signature", &signature)
            .form(&event.params)
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16());
        shared.with(|s| {
            s.deliveries.push(Delivered {
                event_type: event.event_type,
                url: event.url,
                params: event.params,
                signature,
                status,
            })
        });
        shared.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}
