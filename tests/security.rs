//! Who may speak for an agent, over the real server: passwords from a users
//! file, bearer tokens from an identity provider (HS256, RS256, ES256), a
//! takeover that needs the same agent's credentials, and TLS.
//!
//! tests/fixtures/auth/rsa-*.pem is a key pair made for these tests only.

mod common;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::ws::{Client, serve_configured};
use futures_util::{SinkExt, StreamExt};
use hisflow::his::Options;
use hisflow::his::auth::{self, AuthConfig, Authenticator};
use hisflow::server::Settings;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

async fn his_with(auth: AuthConfig) -> String {
    let auth = Authenticator::from_config(&auth).unwrap();
    let options = Options {
        auth: Arc::new(auth),
        ..Default::default()
    };
    serve_configured(options, Settings::default()).await.0
}

async fn login(addr: &str, params: Value) -> (Client, Value) {
    let mut c = Client::new(addr).await;
    let (_, r) = c.request("session.request.login", params).await;
    (c, r)
}

fn refused(r: &Value, says: &str) {
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "Unauthenticated", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_file_lets_in_only_the_right_password_and_a_takeover_needs_it_too() {
    let d = tempfile::tempdir().unwrap();
    let users = d.path().join("users.txt");
    auth::add_user(&users, "agent-1", "correct horse").unwrap();
    let addr = his_with(AuthConfig::Users {
        file: users.clone(),
    })
    .await;

    let (_, r) = login(&addr, json!({"agent": "agent-1", "channels": ["voice"]})).await;
    refused(&r, "password");
    let asked = std::time::Instant::now();
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-1", "password": "wrong", "channels": ["voice"]}),
    )
    .await;
    refused(&r, "Wrong agent ID or password");
    assert!(
        asked.elapsed() >= hisflow::his::REFUSAL_DELAY,
        "a refusal waits: guesses are slow"
    );
    // An agent the file does not list gets the same answer.
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-9", "password": "correct horse", "channels": ["voice"]}),
    )
    .await;
    refused(&r, "Wrong agent ID or password");

    let (mut first, r) = login(
        &addr,
        json!({"agent": "agent-1", "password": "correct horse", "channels": ["voice"]}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        !r.to_string().contains("correct horse"),
        "the password came back: {r}"
    );

    // Someone else naming agent-1 cannot take the session over …
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-1", "password": "guess", "channels": ["voice"]}),
    )
    .await;
    refused(&r, "Wrong agent ID or password");
    let (_, r) = first
        .request("channel.request.ready", json!({"channel": "voice"}))
        .await;
    assert_eq!(r["ok"], true, "the first MediaBar keeps its session: {r}");

    // … the agent with their password can.
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-1", "password": "correct horse", "channels": ["voice"]}),
    )
    .await;
    assert_eq!(r["result"]["resumed"], true, "{r}");
    assert_eq!(first.closed().await.0, hisflow::server::TAKEN_OVER);

    // An agent added while HIS runs may log in at once.
    auth::add_user(&users, "agent-2", "battery staple").unwrap();
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-2", "password": "battery staple", "channels": ["voice"]}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
}

/// Claims for `agent`, valid for `ttl` seconds from now (negative: expired).
fn claims(agent: &str, ttl: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({ "iss": "https://idp.example", "aud": "hisflow", "sub": agent, "exp": now + ttl, "iat": now })
}

fn sign(alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, key).unwrap()
}

fn jwt_config(algorithm: &str, key_file: std::path::PathBuf) -> AuthConfig {
    AuthConfig::Jwt {
        issuer: "https://idp.example".into(),
        audience: "hisflow".into(),
        algorithm: algorithm.into(),
        key_file,
        agent_claim: "sub".into(),
        leeway: None,
    }
}

async fn jwt_login(addr: &str, token: &str) -> (Client, Value) {
    login(addr, json!({"jwt": token, "channels": ["voice"]})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_name_the_agent_and_expired_or_foreign_ones_are_refused() {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let d = tempfile::tempdir().unwrap();

    // ES256: a key pair made here; the provider's public key in a file.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ec_public = d.path().join("ec.pem");
    std::fs::write(&ec_public, pair.public_key_pem()).unwrap();
    let ec = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
    let addr = his_with(jwt_config("ES256", ec_public)).await;

    let (_, r) = jwt_login(&addr, &sign(Algorithm::ES256, &ec, &claims("agent-7", 300))).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["result"]["agent"], "agent-7",
        "the agent is the token's: {r}"
    );

    let (_, r) = login(&addr, json!({"agent": "agent-7", "channels": ["voice"]})).await;
    refused(&r, "sign-in token");
    let (_, r) = jwt_login(
        &addr,
        &sign(Algorithm::ES256, &ec, &claims("agent-8", -600)),
    )
    .await;
    refused(&r, "expired");
    let mut foreign = claims("agent-8", 300);
    foreign["aud"] = json!("another-app");
    let (_, r) = jwt_login(&addr, &sign(Algorithm::ES256, &ec, &foreign)).await;
    refused(&r, "not for this HIS");
    let mut foreign = claims("agent-8", 300);
    foreign["iss"] = json!("https://evil.example");
    let (_, r) = jwt_login(&addr, &sign(Algorithm::ES256, &ec, &foreign)).await;
    refused(&r, "another identity provider");
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap();
    let (_, r) = jwt_login(
        &addr,
        &sign(Algorithm::ES256, &other, &claims("agent-8", 300)),
    )
    .await;
    refused(&r, "signature");
    let (_, r) = jwt_login(&addr, "not.a.token").await;
    refused(&r, "not a valid token");
    // A token of one agent cannot log in another.
    let (_, r) = login(
        &addr,
        json!({"agent": "agent-9", "jwt": sign(Algorithm::ES256, &ec, &claims("agent-8", 300)), "channels": ["voice"]}),
    )
    .await;
    refused(&r, "agent-8's, not agent-9's");

    // RS256 with the provider's public key.
    let rsa_dir = common::root().join("tests/fixtures/auth");
    let addr = his_with(jwt_config("RS256", rsa_dir.join("rsa-public.pem"))).await;
    let rsa = EncodingKey::from_rsa_pem(&std::fs::read(rsa_dir.join("rsa-private.pem")).unwrap())
        .unwrap();
    let (_, r) = jwt_login(
        &addr,
        &sign(Algorithm::RS256, &rsa, &claims("agent-3", 300)),
    )
    .await;
    assert_eq!(r["result"]["agent"], "agent-3", "{r}");
    // A token signed with the shared-secret algorithm and the public key
    // as the secret (the classic confusion) is refused.
    let public = std::fs::read(rsa_dir.join("rsa-public.pem")).unwrap();
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public),
        &claims("agent-4", 300),
    );
    let (_, r) = jwt_login(&addr, &confused).await;
    refused(&r, "signature");

    // HS256 with a shared secret.
    let secret = d.path().join("secret");
    std::fs::write(&secret, "a shared secret of more than thirty-two bytes\n").unwrap();
    let addr = his_with(jwt_config("HS256", secret)).await;
    let hs = EncodingKey::from_secret(b"a shared secret of more than thirty-two bytes");
    let (_, r) = jwt_login(&addr, &sign(Algorithm::HS256, &hs, &claims("agent-5", 300))).await;
    assert_eq!(r["result"]["agent"], "agent-5", "{r}");
}

#[test]
fn an_authenticator_that_cannot_be_built_says_why() {
    let d = tempfile::tempdir().unwrap();
    let short = d.path().join("short");
    std::fs::write(&short, "too short").unwrap();
    let e = Authenticator::from_config(&jwt_config("HS256", short)).unwrap_err();
    assert!(e.to_string().contains("at least 32 bytes"), "{e}");
    let e = Authenticator::from_config(&jwt_config("none", d.path().join("x"))).unwrap_err();
    assert!(e.to_string().contains("not a JWT algorithm"), "{e}");
    let garbage = d.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let e = Authenticator::from_config(&jwt_config("ES256", garbage)).unwrap_err();
    assert!(e.to_string().contains("not a key for ES256"), "{e}");
    let users = d.path().join("users.txt");
    std::fs::write(&users, "agent-1:plaintext\n").unwrap();
    let e = Authenticator::from_config(&AuthConfig::Users { file: users }).unwrap_err();
    assert!(e.to_string().contains("users.txt:1"), "{e}");
}

/// A certificate for `localhost`, made here, written to `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, signing_key.serialize_pem()).unwrap();
    (c, k, cert.der().to_vec())
}

async fn tls_connect(
    addr: &str,
    der: &[u8],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der.to_vec().into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_tls_with_its_certificate_and_nothing_else() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(d.path());
    let tls = hisflow::server::listener::tls_acceptor(&cert, &key).unwrap();
    let (addr, _his) = serve_configured(
        Options::default(),
        Settings {
            tls: Some(tls),
            header_timeout: std::time::Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await;

    // The MediaBar's page over HTTPS.
    let mut s = tls_connect(&addr, &der).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut page = Vec::new();
    s.read_to_end(&mut page).await.ok();
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(
        page.contains("MediaBar") || page.contains("<html"),
        "{page:.200}"
    );

    // A login over WSS.
    let s = tls_connect(&addr, &der).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws", s)
        .await
        .unwrap();
    let login = json!({"type": "request", "id": "1", "name": "session.request.login",
                       "params": {"agent": "agent-1", "channels": ["voice"]}});
    ws.send(Message::Text(login.to_string().into()))
        .await
        .unwrap();
    let r = loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("the connection ended")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "response" {
            break v;
        }
    };
    assert_eq!(r["ok"], true, "{r}");

    // A client that does not trust the certificate gets no connection.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    assert!(tls_connect(&addr, other.cert.der()).await.is_err());

    // Plain HTTP to the TLS port gets no page.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut back = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tcp.read_to_end(&mut back),
    )
    .await
    .expect("the server ends the connection");
    assert!(!String::from_utf8_lossy(&back).contains("200 OK"));

    // A client that connects and never starts its handshake is dropped at
    // the header deadline, as a silent plain-HTTP client is.
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("dropped within the deadline");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[test]
fn a_bad_certificate_or_key_is_refused_with_the_file_named() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(d.path());
    let e = hisflow::server::listener::tls_acceptor(&key, &key).unwrap_err();
    assert!(e.contains("no certificate"), "{e}");
    let e = hisflow::server::listener::tls_acceptor(&cert, &cert).unwrap_err();
    assert!(e.contains("private key") && e.contains("cert.pem"), "{e}");
    let elsewhere = tempfile::tempdir().unwrap();
    let (_, other_key, _) = certificate(elsewhere.path());
    let e = hisflow::server::listener::tls_acceptor(&cert, &other_key).unwrap_err();
    assert!(e.contains("do not make a TLS identity"), "{e}");
}
