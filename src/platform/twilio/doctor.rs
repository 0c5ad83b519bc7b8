//! `hisflow doctor`'s checks of a TaskRouter deployment against the real
//! service, before agents arrive: each check one line, and every check run
//! that can be (one failing does not hide the others' findings).

use std::net::IpAddr;

use super::config::Config;
use super::rest::{Failure, Rest};
use super::{Directory, EVENT_TYPES, roles};
use crate::platform::deploy::{Check, Status};

fn check(status: Status, name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        status,
        name,
        detail: detail.into(),
    }
}

/// Runs every check of `config` for a platform whose media are `media`.
pub async fn run(
    config: &Config,
    env: impl Fn(&str) -> Option<String>,
    media: &[String],
) -> Vec<Check> {
    use Status::*;
    let mut out = Vec::new();
    if let Err(e) = config.check() {
        out.push(check(Fail, "configuration", e.0));
        return out;
    }
    out.push(check(
        Ok,
        "configuration",
        format!("Workspace {}, at {}", config.workspace_sid, config.base_url),
    ));
    let keys = match config.credentials.read(env) {
        Result::Ok(k) => k,
        Err(e) => {
            out.push(check(Fail, "credentials", e.0));
            return out;
        }
    };
    let how = if config.credentials.api_key_env.is_some() {
        "API key"
    } else {
        "Account SID and auth token"
    };
    let rest = match Rest::new(config, keys) {
        Result::Ok(r) => r,
        Err(e) => {
            out.push(check(Fail, "credentials", e.0));
            return out;
        }
    };
    let workspace = match rest.workspace().await {
        Result::Ok(w) => {
            out.push(check(Ok, "credentials", format!("accepted ({how})")));
            out.push(check(
                Ok,
                "workspace",
                format!("{} \"{}\" found", w.sid, w.friendly_name),
            ));
            w
        }
        Err(f) => {
            let (name, detail) = match f.status() {
                Some(401 | 403) => ("credentials", format!("refused ({how}): {f}")),
                Some(404) => (
                    "workspace",
                    format!(
                        "{} not found with these credentials: {f}",
                        config.workspace_sid
                    ),
                ),
                _ => ("credentials", f.to_string()),
            };
            out.push(check(Fail, name, detail));
            return out;
        }
    };
    match rest.activities().await {
        Result::Ok(activities) => {
            let directory = Directory { activities };
            match roles(config, &directory) {
                Result::Ok(r) => {
                    out.push(check(
                        Ok,
                        "activities",
                        format!(
                            "Ready `{}`, Not Ready `{}`, offline `{}`",
                            r.ready.friendly_name,
                            r.not_ready.friendly_name,
                            r.offline.friendly_name
                        ),
                    ));
                    let reasons: Vec<String> = directory
                        .names(false)
                        .into_iter()
                        .filter(|n| *n != r.offline.friendly_name)
                        .collect();
                    out.push(check(
                        Ok,
                        "not ready reasons",
                        if reasons.is_empty() {
                            "none (no unavailable Activity besides the offline one)".to_string()
                        } else {
                            reasons.join(", ")
                        },
                    ));
                }
                Err(e) => out.push(check(Fail, "activities", e)),
            }
        }
        Err(f) => out.push(check(Fail, "activities", failed(&f))),
    }
    match rest.task_channels().await {
        Result::Ok(channels) => {
            for m in media {
                let unique = config.task_channel(m);
                let found = channels.iter().any(|c| c.unique_name == unique);
                out.push(if found {
                    check(Ok, "task channel", format!("{m}: `{unique}`"))
                } else {
                    let have: Vec<&str> = channels.iter().map(|c| c.unique_name.as_str()).collect();
                    check(
                        Fail,
                        "task channel",
                        format!(
                            "{m}: no task channel `{unique}`; the Workspace has {} (map it with `task_channels`)",
                            have.join(", ")
                        ),
                    )
                });
            }
        }
        Err(f) => out.push(check(Fail, "task channel", failed(&f))),
    }
    let url = &config.webhook.url;
    match workspace.event_callback_url.as_deref() {
        Some(u) if u == url => out.push(check(Ok, "event callback", format!("the Workspace sends its events to {url}"))),
        Some(u) if !u.is_empty() => out.push(check(
            Fail,
            "event callback",
            format!("the Workspace sends its events to {u}, not to {url}: HIS would hear nothing (set the Workspace's Event Callback URL)"),
        )),
        _ => out.push(check(
            Fail,
            "event callback",
            format!("the Workspace has no Event Callback URL: set it to {url}"),
        )),
    }
    if let Some(filter) = workspace
        .events_filter
        .as_deref()
        .filter(|f| !f.trim().is_empty())
    {
        let sent: Vec<&str> = filter.split(',').map(str::trim).collect();
        let missing: Vec<&str> = EVENT_TYPES
            .iter()
            .copied()
            .filter(|t| !sent.contains(t))
            .collect();
        out.push(if missing.is_empty() {
            check(Ok, "event filter", "every event type HIS maps is sent")
        } else {
            check(
                Fail,
                "event filter",
                format!(
                    "the Workspace's events filter leaves out {}",
                    missing.join(", ")
                ),
            )
        });
    }
    out.push(reachable(url).await);
    out
}

fn failed(f: &Failure) -> String {
    f.to_string()
}

/// Whether TaskRouter can reach the webhook, as far as can be told from
/// here: https, a name that resolves to public addresses, and HIS
/// answering at it (refusing an unsigned request, as it must).
async fn reachable(url: &str) -> Check {
    use Status::*;
    let name = "webhook";
    let Some(rest) = url.strip_prefix("https://") else {
        return check(
            Warn,
            name,
            format!(
                "{url} is not https: events, and their signatures, would cross the Internet in clear text"
            ),
        );
    };
    let authority = rest.split('/').next().unwrap_or("");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:443")
    };
    let addrs: Vec<IpAddr> = match tokio::net::lookup_host(&with_port).await {
        Result::Ok(a) => a.map(|a| a.ip()).collect(),
        Err(e) => return check(Fail, name, format!("{authority} does not resolve: {e}")),
    };
    if let Some(private) = addrs.iter().find(|ip| !is_public(ip)) {
        return check(
            Fail,
            name,
            format!(
                "{authority} resolves to {private}, which TaskRouter cannot reach from the Internet"
            ),
        );
    }
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Result::Ok(c) => c,
        Err(e) => return check(Warn, name, format!("cannot probe {url}: {e}")),
    };
    match client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("EventType=hisflow.doctor")
        .send()
        .await
    {
        Result::Ok(r) if r.status() == reqwest::StatusCode::FORBIDDEN => check(
            Ok,
            name,
            format!("{url} answers, and refuses an unsigned event (403)"),
        ),
        Result::Ok(r) => check(
            Warn,
            name,
            format!(
                "{url} answers {} to an unsigned event; HIS answers 403: is HIS behind it?",
                r.status()
            ),
        ),
        Err(e) => check(
            Warn,
            name,
            format!(
                "{url} resolves to public addresses but does not answer from here ({}); is HIS running?",
                e
            ),
        ),
    }
}

/// Whether an address is one the Internet routes to.
fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for private in [
            "10.1.2.3",
            "192.168.0.1",
            "127.0.0.1",
            "100.64.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "192.0.2.1",
        ] {
            assert!(!is_public(&private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "2001:4860:4860::8888", "100.128.0.1"] {
            assert!(is_public(&public.parse().unwrap()), "{public}");
        }
    }
}
