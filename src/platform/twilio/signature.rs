//! Twilio's request signature (`X-Twilio-Signature`): HMAC-SHA1, keyed with
//! the account's auth token, over the full URL Twilio requested followed by
//! each form parameter's name and value, sorted by name; Base64. Twilio
//! signs with the primary auth token even when HIS calls its REST API with
//! an API key, so the token is needed to hear events either way.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The text Twilio signs for a form POST to `url`.
pub fn signed_text(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Repeated names keep a stable order: by name, then value.
    sorted.sort();
    let mut text = String::with_capacity(url.len() + params.len() * 32);
    text.push_str(url);
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
    }
    text
}

/// The signature of a form POST to `url`, as Twilio computes it.
pub fn sign(token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut mac = HmacSha1::new_from_slice(token).expect("HMAC takes keys of any length");
    mac.update(signed_text(url, params).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is Twilio's for a form POST to `url`. Compared in
/// constant time; a URL that names its scheme's default port, or lacks it,
/// is tried both ways, as Twilio's own libraries do (a proxy may add or
/// drop it).
pub fn verify(token: &[u8], url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    url_variants(url).iter().any(|u| {
        let mut mac = HmacSha1::new_from_slice(token).expect("HMAC takes keys of any length");
        mac.update(signed_text(u, params).as_bytes());
        mac.verify_slice(&given).is_ok()
    })
}

/// `url` as given, and with its default port added or removed.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, tail) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let other = match authority.rsplit_once(':') {
        Some((host, p)) if p == port => format!("{scheme}://{host}{tail}"),
        Some((_, p)) if p.chars().all(|c| c.is_ascii_digit()) => return out,
        _ => format!("{scheme}://{authority}:{port}{tail}"),
    };
    out.push(other);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A worked example computed outside hisflow, step by step:
    ///
    /// 1. The URL Twilio requested: `https://his.example.com/taskrouter/events`.
    /// 2. The form parameters sorted by name, each name followed by its
    ///    value, appended: `EventTypeworker.activity.update`,
    ///    `WorkerActivityNameOffline`, `WorkerSidWK0001`.
    /// 3. The text signed is therefore
    ///    `https://his.example.com/taskrouter/eventsEventTypeworker.activity.updateWorkerActivityNameOfflineWorkerSidWK0001`.
    /// 4. HMAC-SHA1 of it keyed with the auth token `12345`, Base64:
    ///    `printf '%s' "$TEXT" | openssl dgst -sha1 -hmac 12345 -binary | base64`
    ///    gives `bxa++7ON8Gn90pndmwPSmOUfyls=`.
    #[test]
    fn worked_example() {
        let url = "https://his.example.com/taskrouter/events";
        // Sent in another order than the sorted one.
        let p = params(&[
            ("WorkerSid", "WK0001"),
            ("EventType", "worker.activity.update"),
            ("WorkerActivityName", "Offline"),
        ]);
        assert_eq!(
            signed_text(url, &p),
            "https://his.example.com/taskrouter/eventsEventTypeworker.activity.updateWorkerActivityNameOfflineWorkerSidWK0001"
        );
        assert_eq!(sign(b"12345", url, &p), "bxa++7ON8Gn90pndmwPSmOUfyls=");
        assert!(verify(b"12345", url, &p, "bxa++7ON8Gn90pndmwPSmOUfyls="));
    }

    /// The example of Twilio's webhook security page
    /// (https://www.twilio.com/docs/usage/security), with a query string.
    #[test]
    fn twilio_published_example() {
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        let p = params(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(sign(b"12345", url, &p), "L/OH5YylLD5NRKLltdqwSvS0BnU=");
    }

    #[test]
    fn anything_changed_breaks_it() {
        let url = "https://his.example.com/taskrouter/events";
        let p = params(&[("EventType", "worker.activity.update")]);
        let good = sign(b"12345", url, &p);
        assert!(!verify(b"12346", url, &p, &good), "another token");
        assert!(
            !verify(b"12345", &format!("{url}?x=1"), &p, &good),
            "another URL"
        );
        let other = params(&[("EventType", "worker.activity.updatE")]);
        assert!(!verify(b"12345", url, &other, &good), "another value");
        assert!(!verify(b"12345", url, &p, "not base64!"), "garbage");
        assert!(!verify(b"12345", url, &p, ""), "empty");
    }

    #[test]
    fn the_default_port_may_be_given_or_not() {
        let p = params(&[("A", "1")]);
        let with = sign(b"t", "https://h.example:443/e", &p);
        assert!(verify(b"t", "https://h.example/e", &p, &with));
        let without = sign(b"t", "https://h.example/e", &p);
        assert!(verify(b"t", "https://h.example:443/e", &p, &without));
        assert!(!verify(b"t", "https://h.example:8443/e", &p, &without));
    }
}
