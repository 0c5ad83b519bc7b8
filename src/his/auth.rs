//! Who may speak for an agent. A login carries the agent's credentials —
//! a password checked against the users file, or a bearer token from the
//! contact centre's identity provider — and HIS takes the agent id from
//! them, never from the client's say-so alone. A login that takes over a
//! session is a login like any other: it needs the same agent's
//! credentials.
//!
//! Credentials are never logged, never kept, and never reach a workflow:
//! HIS removes them from the login's parameters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

/// The login parameter that carries a password.
pub const PASSWORD: &str = "password";
/// The login parameter that carries a bearer token (a JWT).
pub const JWT: &str = "jwt";

/// How agents prove who they are, as the configuration's `auth` says.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    /// No authentication: the login's `agent` is believed. HIS refuses to
    /// start so unless it listens on a loopback address.
    #[default]
    None,
    /// Agents log in with a password, checked against a users file of
    /// `agent:argon2-hash` lines that `hisflow add-user` writes. The file
    /// is read again when it changes: adding an agent needs no restart.
    Users {
        /// The users file; relative to the configuration file.
        file: PathBuf,
    },
    /// Agents log in with a JWT from the contact centre's identity
    /// provider, sent as the login's `jwt`.
    Jwt {
        /// The `iss` the tokens must carry.
        issuer: String,
        /// The `aud` the tokens must carry (HIS's client id at the
        /// provider).
        audience: String,
        /// The signing algorithm: `HS256` (a shared secret) or `RS256`,
        /// `ES256` (the provider's public key); `HS384`, `HS512`, `RS384`,
        /// `RS512`, `PS256`, `ES384` and `EdDSA` are taken too.
        algorithm: String,
        /// For `HS*`, a file holding the secret; otherwise the provider's
        /// public key as PEM. Relative to the configuration file.
        key_file: PathBuf,
        /// The claim that holds the agent's id on the switch (`sub` by
        /// default).
        #[serde(default = "default_claim")]
        agent_claim: String,
        /// How far a token's `exp` may lie in the past and still count, for
        /// clocks that disagree (`60s` by default).
        #[serde(default)]
        leeway: Option<crate::workflow::duration::Span>,
    },
}

fn default_claim() -> String {
    "sub".into()
}

/// An authenticator that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    UsersFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("`{0}` is not a JWT algorithm HIS takes (HS256, RS256, ES256 …)")]
    Algorithm(String),
    #[error("{}: not a key for {algorithm}: {message}", path.display())]
    Key {
        path: PathBuf,
        algorithm: String,
        message: String,
    },
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// A login that does not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The credentials do not allow it; the text is for the agent.
    Wrong(String),
    /// No check could run in time: not a wrong credential.
    Busy,
}

impl Refused {
    /// What the agent reads.
    pub fn message(&self) -> &str {
        match self {
            Refused::Wrong(why) => why,
            Refused::Busy => "HIS is checking many logins at once: try again in a moment.",
        }
    }
}

/// The longest password and token HIS checks: longer ones are refused
/// before any hash.
pub const MAX_PASSWORD: usize = 1024;
pub const MAX_JWT: usize = 16 * 1024;

/// Checks a login's credentials.
pub enum Authenticator {
    None,
    Users(Users),
    Jwt(Box<Jwt>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets: only which kind.
        f.write_str(self.kind())
    }
}

impl Authenticator {
    /// The authenticator `config` describes.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthError> {
        Ok(match config {
            AuthConfig::None => Authenticator::None,
            AuthConfig::Users { file } => Authenticator::Users(Users::open(file.clone())?),
            AuthConfig::Jwt {
                issuer,
                audience,
                algorithm,
                key_file,
                agent_claim,
                leeway,
            } => Authenticator::Jwt(Box::new(Jwt::new(
                issuer,
                audience,
                algorithm,
                key_file,
                agent_claim,
                leeway.map_or(60, |l| l.0.as_secs()),
            )?)),
        })
    }

    /// What a login must carry: `none`, `password` or `jwt` — the MediaBar
    /// shows the fields it needs.
    pub fn kind(&self) -> &'static str {
        match self {
            Authenticator::None => "none",
            Authenticator::Users(_) => PASSWORD,
            Authenticator::Jwt(_) => JWT,
        }
    }

    /// The token claim that names the agent, where tokens are taken.
    pub fn agent_claim(&self) -> Option<&str> {
        match self {
            Authenticator::Jwt(jwt) => Some(&jwt.claim),
            _ => None,
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Authenticator::None)
    }

    /// The agent a login's `params` prove to be. It may take tens of
    /// milliseconds (a password hash): call it off the async workers.
    pub fn verify(&self, params: &Json) -> Result<String, Refused> {
        let text = |key: &str| params.get(key).and_then(Json::as_str);
        match self {
            Authenticator::None => text("agent").map(str::to_string).ok_or_else(|| {
                Refused::Wrong("parameter `agent` is required and must be text".into())
            }),
            Authenticator::Users(users) => {
                let (Some(agent), Some(password)) = (text("agent"), text(PASSWORD)) else {
                    return Err(Refused::Wrong(
                        "This HIS needs your agent ID and password.".into(),
                    ));
                };
                users.verify(agent, password)?;
                Ok(agent.to_string())
            }
            Authenticator::Jwt(jwt) => {
                let Some(token) = text(JWT) else {
                    return Err(Refused::Wrong(
                        "This HIS needs a sign-in token from your identity provider (`jwt`)."
                            .into(),
                    ));
                };
                if token.len() > MAX_JWT {
                    return Err(Refused::Wrong(
                        "Your sign-in token is not a valid token.".into(),
                    ));
                }
                let agent = jwt.verify(token)?;
                match text("agent") {
                    Some(said) if said != agent => Err(Refused::Wrong(format!(
                        "Your sign-in token is agent {agent}'s, not {said}'s."
                    ))),
                    _ => Ok(agent),
                }
            }
        }
    }
}

/// Removes the credentials from a login's parameters and names the agent
/// they proved: what the login workflow sees.
pub fn strip(params: &Json, agent: &str) -> Json {
    let mut params = params.clone();
    if let Some(p) = params.as_object_mut() {
        p.remove(PASSWORD);
        p.remove(JWT);
        p.insert("agent".into(), Json::String(agent.to_string()));
    }
    params
}

/// The users file: `agent:hash` lines, `#` comments.
pub struct Users {
    path: PathBuf,
    table: Mutex<Loaded>,
    /// A hash of nothing anybody knows: an unknown agent costs a check as
    /// long as a known one's, so that timing does not tell which agents
    /// exist.
    decoy: String,
}

/// The users file as read, and how it looked then.
struct Loaded {
    modified: Option<Stamp>,
    table: Arc<HashMap<String, String>>,
}

/// What tells a file changed: its modification time alone can stay the
/// same over two quick writes; `add-user` replaces the file, so its inode
/// changes too.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

impl Users {
    pub fn open(path: PathBuf) -> Result<Users, AuthError> {
        let (modified, table) = read_users(&path)?;
        Ok(Users {
            path,
            table: Mutex::new(Loaded {
                modified,
                table: Arc::new(table),
            }),
            decoy: hash_password("no agent has this password")?,
        })
    }

    fn verify(&self, agent: &str, password: &str) -> Result<(), Refused> {
        let wrong = || Refused::Wrong("Wrong agent ID or password.".into());
        let table = self.table();
        let hash = table.get(agent).map_or(self.decoy.as_str(), String::as_str);
        let ok = PasswordHash::new(hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        });
        if ok && table.contains_key(agent) {
            Ok(())
        } else {
            Err(wrong())
        }
    }

    /// The table, read again if the file changed. A file broken since HIS
    /// started keeps the table it had, and the log says why.
    fn table(&self) -> Arc<HashMap<String, String>> {
        let mut held = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamp(&self.path);
        if now.is_some() && now != held.modified {
            match read_users(&self.path) {
                Ok((modified, table)) => {
                    tracing::info!(file = %self.path.display(), users = table.len(), "users file read again");
                    *held = Loaded {
                        modified,
                        table: Arc::new(table),
                    };
                }
                Err(e) => {
                    tracing::warn!("{e}; the users as read before stay in force");
                    held.modified = now;
                }
            }
        }
        held.table.clone()
    }
}

type Table = (Option<Stamp>, HashMap<String, String>);

fn read_users(path: &Path) -> Result<Table, AuthError> {
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let modified = stamp(path);
    let text = std::fs::read_to_string(path).map_err(io)?;
    Ok((modified, parse_users(path, &text)?))
}

fn parse_users(path: &Path, text: &str) -> Result<HashMap<String, String>, AuthError> {
    let mut table = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: &str| AuthError::UsersFile {
            path: path.to_path_buf(),
            line: n + 1,
            message: message.into(),
        };
        // A hash has no `:`; an agent id may.
        let Some((agent, hash)) = line.rsplit_once(':') else {
            return Err(bad("expected `agent:hash` (hisflow add-user writes them)"));
        };
        if agent.is_empty() {
            return Err(bad("the agent id is empty"));
        }
        if PasswordHash::new(hash).is_err() {
            return Err(bad("the hash is not a PHC string (`$argon2id$…`)"));
        }
        if table.insert(agent.to_string(), hash.to_string()).is_some() {
            return Err(bad(&format!("agent {agent} has a line already")));
        }
    }
    Ok(table)
}

/// An argon2id hash of `password` with a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Writes `agent`'s password hash into the users file at `path`, replacing
/// the agent's line if it has one. The new file, readable by its owner
/// only, replaces the old one at once: HIS never reads half of it.
pub fn add_user(path: &Path, agent: &str, password: &str) -> Result<(), AuthError> {
    if agent.is_empty() || agent.chars().any(|c| c.is_control()) {
        return Err(AuthError::UsersFile {
            path: path.to_path_buf(),
            line: 0,
            message: "an agent id must be non-empty text without control characters".into(),
        });
    }
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    parse_users(path, &old)?;
    let hash = hash_password(password)?;
    let mut out: Vec<String> = old
        .lines()
        .filter(|l| l.trim().rsplit_once(':').is_none_or(|(a, _)| a != agent))
        .map(str::to_string)
        .collect();
    out.push(format!("{agent}:{hash}"));
    let text = out.join("\n") + "\n";
    let mut next = path.as_os_str().to_owned();
    next.push(".new");
    let next = PathBuf::from(next);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options
        .open(&next)
        .and_then(|mut f| {
            // A file left by an earlier run keeps its mode: set it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&next, path))
        .map_err(io)
}

/// Bearer tokens from the identity provider.
pub struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    claim: String,
}

impl Jwt {
    fn new(
        issuer: &str,
        audience: &str,
        algorithm: &str,
        key_file: &Path,
        claim: &str,
        leeway: u64,
    ) -> Result<Jwt, AuthError> {
        use jsonwebtoken::{Algorithm, DecodingKey};
        let alg: Algorithm = algorithm
            .parse()
            .map_err(|_| AuthError::Algorithm(algorithm.to_string()))?;
        let bytes = std::fs::read(key_file).map_err(|source| AuthError::Io {
            path: key_file.to_path_buf(),
            source,
        })?;
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                // A secret written with an editor ends in a newline that is
                // no part of it.
                let secret = bytes.trim_ascii_end();
                if secret.len() < 32 {
                    return Err(AuthError::Key {
                        path: key_file.to_path_buf(),
                        algorithm: algorithm.into(),
                        message: "a shared secret needs at least 32 bytes".into(),
                    });
                }
                Ok(DecodingKey::from_secret(secret))
            }
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(&bytes),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&bytes),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(&bytes),
            _ => return Err(AuthError::Algorithm(algorithm.to_string())),
        }
        .map_err(|e| AuthError::Key {
            path: key_file.to_path_buf(),
            algorithm: algorithm.into(),
            message: e.to_string(),
        })?;
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        Ok(Jwt {
            key,
            validation,
            claim: claim.to_string(),
        })
    }

    fn verify(&self, token: &str) -> Result<String, Refused> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Json>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| {
            Refused::Wrong(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "Your sign-in token has expired: sign in again.",
                    ErrorKind::ImmatureSignature => "Your sign-in token is not valid yet.",
                    ErrorKind::InvalidIssuer => {
                        "Your sign-in token is from another identity provider."
                    }
                    ErrorKind::InvalidAudience => "Your sign-in token is not for this HIS.",
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        "Your sign-in token's signature is not the identity provider's."
                    }
                    _ => "Your sign-in token is not a valid token.",
                }
                .into(),
            )
        })?
        .claims;
        match claims.get(&self.claim) {
            Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Json::Number(n)) => Ok(n.to_string()),
            _ => Err(Refused::Wrong(format!(
                "Your sign-in token has no `{}` claim to name your agent.",
                self.claim
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn users_file_lines_are_checked() {
        let p = Path::new("users.txt");
        assert!(parse_users(p, "# none\n\n").unwrap().is_empty());
        let e = parse_users(p, "agent-1\n").unwrap_err().to_string();
        assert!(e.contains("users.txt:1"), "{e}");
        let e = parse_users(p, "agent-1:plain\n").unwrap_err().to_string();
        assert!(e.contains("PHC"), "{e}");
        let h = hash_password("pw").unwrap();
        let e = parse_users(p, &format!("a:{h}\na:{h}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2") && e.contains("already"), "{e}");
        // An agent id may hold a colon: the hash never does.
        let t = parse_users(p, &format!("sip:1001:{h}\n")).unwrap();
        assert!(t.contains_key("sip:1001"));
    }

    #[test]
    fn passwords_are_checked_and_never_kept_in_the_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.txt");
        add_user(&path, "agent-1", "correct horse").unwrap();
        add_user(&path, "agent-2", "battery staple").unwrap();
        // A second add replaces the agent's line.
        add_user(&path, "agent-1", "new one").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains("new one"));
        let auth = Authenticator::Users(Users::open(path).unwrap());
        let login = |agent: &str, pw: &str| auth.verify(&json!({"agent": agent, "password": pw}));
        assert_eq!(login("agent-1", "new one"), Ok("agent-1".into()));
        assert!(login("agent-1", "correct horse").is_err());
        assert!(login("agent-2", "new one").is_err());
        assert!(login("nobody", "new one").is_err());
        assert!(auth.verify(&json!({"agent": "agent-1"})).is_err());
        let long = "p".repeat(MAX_PASSWORD + 1);
        assert!(login("agent-1", &long).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("users.txt");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            add_user(&path, "agent-3", "x").unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "a rewrite makes the file its owner's alone"
            );
        }
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "a shared secret of more than thirty-two bytes").unwrap();
        let jwt = Authenticator::from_config(&AuthConfig::Jwt {
            issuer: "i".into(),
            audience: "a".into(),
            algorithm: "HS256".into(),
            key_file: secret,
            agent_claim: "sub".into(),
            leeway: None,
        })
        .unwrap();
        assert!(
            jwt.verify(&json!({"jwt": "a".repeat(MAX_JWT + 1)}))
                .is_err()
        );
        let p = strip(
            &json!({"agent": "x", "password": "p", "channels": []}),
            "agent-1",
        );
        assert_eq!(p, json!({"agent": "agent-1", "channels": []}));
    }
}
