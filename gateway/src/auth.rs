//! Who is calling: 1.x's credentials (`u`/`p` parameters, Basic auth, `Authorization: Token
//! user:password`, JWT bearer tokens signed with `[http] shared-secret`) checked against the
//! users of the catalog, for the HTTP API and Flight SQL alike.
//!
//! ```text
//!   request ─▶ credentials(params, headers) ─▶ Auth::authenticate ─▶ Caller (a user, or none)
//!                                                 │ bcrypt (cached per user) / HMAC-SHA2 JWT
//!                                                 │ failures counted per client address
//!   /query: users::authorize_query(statements) ─▶ 403 `error authorizing query: ...`
//!   /write: WRITE on the database            ─▶ 403 `"u" user is not authorized to write ...`
//! ```
//!
//! As in 1.x, credentials are checked only once an admin user exists; until then the query
//! authorizer lets through nothing but the creation of the first admin. Passwords never reach a
//! log: statements print them as `[REDACTED]` and the request log drops the `p` parameter.
//! Errors carry 1.x's texts and are answered 401 (who), 403 (what) or 429 (too many failures).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use catalog::{MetaService, Privilege, UserInfo};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Failed logins one client address may make within [`FAILURE_WINDOW`] before further attempts
/// are refused until the window has passed (`[http] max-failed-logins`' default).
pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a bearer token from a Flight `Handshake` stays valid.
pub const HANDSHAKE_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Most handshake tokens kept at once (the oldest go first).
const MAX_HANDSHAKE_TOKENS: usize = 10_000;

/// Why a caller is not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Missing or wrong credentials (401), with 1.x's text.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credentials are fine but the privilege is missing (403), with 1.x's text.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed logins from this address (429).
    #[error("too many failed logins from this address: try again in {0} seconds")]
    TooManyFailures(u64),
}

/// Credentials as a request carries them.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    User { name: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User { name, .. } => write!(f, "User({name}, [REDACTED])"),
            Self::Bearer(_) => f.write_str("Bearer([REDACTED])"),
        }
    }
}

/// 1.x's `parseCredentials`: `u` and `p` parameters (both non-empty), else the Authorization
/// header: `Bearer <jwt>`, `Token user:password` (1.8's v2 compatibility), or Basic.
pub fn credentials(
    u: Option<&str>,
    p: Option<&str>,
    authorization: Option<&str>,
) -> Result<Credentials, AuthError> {
    if let (Some(u), Some(p)) = (u, p)
        && !u.is_empty()
        && !p.is_empty()
    {
        return Ok(Credentials::User {
            name: u.to_string(),
            password: p.to_string(),
        });
    }
    let unparsable =
        || AuthError::Unauthenticated("unable to parse authentication credentials".into());
    let header = authorization
        .filter(|h| !h.is_empty())
        .ok_or_else(unparsable)?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts.len() == 2 && parts[0] == "Bearer" {
        return Ok(Credentials::Bearer(parts[1].to_string()));
    }
    if let Some(rest) = header.strip_prefix("Token ")
        && let Some((name, password)) = rest.trim().split_once(':')
    {
        return Ok(Credentials::User {
            name: name.to_string(),
            password: password.to_string(),
        });
    }
    basic(header).ok_or_else(unparsable)
}

/// Go's `Request.BasicAuth`: `Basic base64(user:password)` (the scheme case-insensitive;
/// Go's Flight client leaves the padding off, which is accepted too).
pub fn basic(header: &str) -> Option<Credentials> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some(Credentials::User {
        name: name.to_string(),
        password: password.to_string(),
    })
}

/// The authenticated caller of a request: `None` while auth is off, or (as 1.x) while no admin
/// user exists.
pub type Caller = Option<Arc<UserInfo>>;

/// Checks credentials against the catalog's users.
#[derive(Debug)]
pub struct Auth {
    enabled: bool,
    meta: Arc<MetaService>,
    /// `[http] shared-secret`: the HMAC key of JWT bearer tokens (empty: JWTs are refused).
    shared_secret: String,
    /// Per user, what a password that matched the user's bcrypt hash digests to (salted), so
    /// that bcrypt runs once per user and password, not once per request (1.x keeps such a
    /// cache too). An entry is good only while the user's hash is the one it was made with.
    verified: Mutex<HashMap<String, (String, [u8; 32])>>,
    salt: [u8; 16],
    /// Failed logins per client address: when the window started, and how many.
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// `[http] max-failed-logins` (0: no limit).
    max_failures: u32,
    /// Bearer tokens handed out by Flight handshakes: token → (user, expiry).
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

impl Auth {
    pub fn new(
        enabled: bool,
        shared_secret: String,
        max_failures: u32,
        meta: Arc<MetaService>,
    ) -> Self {
        Self {
            enabled,
            max_failures,
            meta,
            shared_secret,
            verified: Mutex::default(),
            salt: rand::random(),
            failures: Mutex::default(),
            tokens: Mutex::default(),
        }
    }

    /// `[http] auth-enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether credentials are checked for this request: auth is on and an admin exists.
    pub fn checks_credentials(&self) -> bool {
        self.enabled && self.meta.catalog().admin_exists()
    }

    /// The caller of a request that carries `creds` (`Err` when they are missing: the
    /// caller's parse error is answered then), from `client`.
    pub async fn caller(
        &self,
        creds: Result<Credentials, AuthError>,
        client: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        if !self.checks_credentials() {
            return Ok(None);
        }
        if let Some(ip) = client {
            self.check_rate(ip)?;
        }
        let outcome = match creds {
            Ok(c) => self.authenticate(&c).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(user) => Ok(Some(user)),
            Err(e) => {
                if let Some(ip) = client {
                    self.count_failure(ip);
                }
                tracing::info!(client = ?client, error = %e, "authentication failed");
                Err(e)
            }
        }
    }

    /// The user that `creds` name, if they hold (1.x's texts otherwise).
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Arc<UserInfo>, AuthError> {
        match creds {
            Credentials::User { name, password } => {
                if name.is_empty() {
                    return Err(AuthError::Unauthenticated("username required".into()));
                }
                let failed = || AuthError::Unauthenticated("authorization failed".into());
                let user = self.meta.catalog().user(name).cloned().ok_or_else(failed)?;
                if self.password_matches(&user, password).await {
                    Ok(Arc::new(user))
                } else {
                    Err(failed())
                }
            }
            Credentials::Bearer(token) => {
                // A token a Flight handshake gave out, else a JWT.
                let handshake = {
                    let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
                    tokens
                        .get(token)
                        .filter(|(_, expires)| *expires > Instant::now())
                        .map(|(user, _)| user.clone())
                };
                let name = match handshake {
                    Some(name) => name,
                    None => jwt_username(token, &self.shared_secret, unix_now())?,
                };
                self.meta
                    .catalog()
                    .user(&name)
                    .cloned()
                    .map(Arc::new)
                    .ok_or_else(|| AuthError::Unauthenticated("user not found".into()))
            }
        }
    }

    async fn password_matches(&self, user: &UserInfo, password: &str) -> bool {
        let digest = self.digest(password);
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((hash, d)) = cache.get(&user.name)
                && *hash == user.hash
            {
                return *d == digest;
            }
        }
        if querier::users::verify_password(password, &user.hash).await {
            let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(user.name.clone(), (user.hash.clone(), digest));
            true
        } else {
            false
        }
    }

    fn digest(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn check_rate(&self, ip: IpAddr) -> Result<(), AuthError> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((since, n)) = failures.get(&ip) {
            let age = since.elapsed();
            if self.max_failures > 0 && *n >= self.max_failures && age < FAILURE_WINDOW {
                return Err(AuthError::TooManyFailures(
                    (FAILURE_WINDOW - age).as_secs().max(1),
                ));
            }
        }
        Ok(())
    }

    fn count_failure(&self, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if failures.len() > 100_000 {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(ip).or_insert((now, 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// A bearer token for `user` (a Flight handshake's answer), valid for
    /// [`HANDSHAKE_TOKEN_TTL`].
    pub fn issue_token(&self, user: &str) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if tokens.len() >= MAX_HANDSHAKE_TOKENS {
            tokens.retain(|_, (_, expires)| *expires > now);
            if tokens.len() >= MAX_HANDSHAKE_TOKENS
                && let Some(oldest) = tokens
                    .iter()
                    .min_by_key(|(_, (_, e))| *e)
                    .map(|(t, _)| t.clone())
            {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(token.clone(), (user.to_string(), now + HANDSHAKE_TOKEN_TTL));
        token
    }

    /// Whether `caller` may write to `database` (`/write`), with 1.x's 403 texts.
    pub fn authorize_write(&self, caller: &Caller, database: &str) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        match caller {
            None => Err(AuthError::Forbidden(format!(
                "user is required to write to database {database:?}"
            ))),
            Some(u) if u.authorize_database(Privilege::Write, database) => Ok(()),
            Some(u) => Err(AuthError::Forbidden(format!(
                "{:?} user is not authorized to write to database {database:?}",
                u.name
            ))),
        }
    }

    /// Whether `caller` may run `statements` with `database` as the request's database (1.x's
    /// query authorizer); `Ok` while auth is off.
    pub fn authorize_query(
        &self,
        caller: &Caller,
        statements: &[querier::influxql::Statement],
        database: &str,
    ) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let users = self.meta.catalog().users.len();
        querier::users::authorize_query(users, caller.as_deref(), statements, database)
            .map_err(|e| AuthError::Forbidden(format!("error authorizing query: {e}")))
    }

    /// Whether `caller` may read `database` (a SQL query of it), with the texts of 1.x's query
    /// authorizer (`what`: the statement, as the text names it).
    pub fn authorize_read(
        &self,
        caller: &Caller,
        database: &str,
        what: &str,
    ) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let forbidden = |m: String| AuthError::Forbidden(format!("error authorizing query: {m}"));
        match caller {
            _ if self.meta.catalog().users.is_empty() => Err(forbidden(
                "create admin user first or disable authentication".into(),
            )),
            None => Err(forbidden("no user provided".into())),
            Some(u) if u.authorize_database(Privilege::Read, database) => Ok(()),
            Some(u) => Err(forbidden(format!(
                "{} not authorized to execute statement '{what}', requires READ on {database}",
                u.name
            ))),
        }
    }

    /// The databases `caller` may read over SQL: `None` for all of them.
    pub fn readable_databases(&self, caller: &Caller) -> Option<Vec<String>> {
        if !self.enabled {
            return None;
        }
        let Some(u) = caller.as_ref() else {
            return Some(Vec::new());
        };
        if u.admin {
            return None;
        }
        Some(
            self.meta
                .catalog()
                .databases
                .keys()
                .filter(|d| u.authorize_database(Privilege::Read, d))
                .cloned()
                .collect(),
        )
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Go's base64 error text, for a segment of a token.
fn decode_segment(seg: &str) -> Result<Vec<u8>, AuthError> {
    use base64::DecodeError as E;
    let trimmed = seg.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| {
            let at = match e {
                E::InvalidByte(i, _) | E::InvalidLastSymbol(i, _) => i,
                E::InvalidLength(n) => n,
                E::InvalidPadding => trimmed.len(),
            };
            AuthError::Unauthenticated(format!("illegal base64 data at input byte {at}"))
        })
}

/// The user a JWT bearer token names, checked as 1.x checks it (jwt-go's `Parse` with an HMAC
/// key, then `exp` and `username` required), with its texts.
pub fn jwt_username(token: &str, secret: &str, now: f64) -> Result<String, AuthError> {
    let bad = |m: &str| AuthError::Unauthenticated(m.to_string());
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(bad("token contains an invalid number of segments"));
    }
    let header: serde_json::Value =
        serde_json::from_slice(&decode_segment(parts[0])?).map_err(|e| bad(&e.to_string()))?;
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&decode_segment(parts[1])?).map_err(|e| bad(&e.to_string()))?;
    let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    if !["HS256", "HS384", "HS512"].contains(&alg) {
        if [
            "none", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
        ]
        .contains(&alg)
        {
            return Err(bad(&format!("unexpected signing method: {alg}")));
        }
        return Err(bad("signing method (alg) is unavailable."));
    }
    // jwt-go validates the claims first, then the signature; the later failure is the one
    // reported.
    let number = |k: &str| claims.get(k).and_then(|v| v.as_f64());
    let mut failure: Option<&str> = None;
    if number("exp").is_some_and(|exp| exp != 0.0 && now > exp) {
        failure = Some("Token is expired");
    }
    if number("iat").is_some_and(|iat| iat != 0.0 && now < iat) {
        failure = Some("Token used before issued");
    }
    if number("nbf").is_some_and(|nbf| nbf != 0.0 && now < nbf) {
        failure = Some("Token is not valid yet");
    }
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = decode_segment(parts[2])?;
    let key = secret.as_bytes();
    let valid = !secret.is_empty()
        && match alg {
            "HS256" => verify::<Hmac<Sha256>>(key, &signed, &signature),
            "HS384" => verify::<Hmac<Sha384>>(key, &signed, &signature),
            _ => verify::<Hmac<Sha512>>(key, &signed, &signature),
        };
    if !valid {
        failure = Some("signature is invalid");
    }
    if let Some(f) = failure {
        return Err(bad(f));
    }
    if !number("exp").is_some_and(|exp| exp > 0.0) {
        return Err(bad("token expiration required"));
    }
    match claims.get("username") {
        Some(serde_json::Value::String(u)) if u.is_empty() => {
            Err(bad("token must contain a username"))
        }
        Some(serde_json::Value::String(u)) => Ok(u.clone()),
        _ => Err(bad("username in token must be a string")),
    }
}

fn verify<M: Mac + hmac::digest::KeyInit>(key: &[u8], signed: &str, signature: &[u8]) -> bool {
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            mac.verify_slice(signature).is_ok()
        }
        Err(_) => false,
    }
}

/// `uri` as the request log may show it: the `p` parameter's value replaced, as 1.x's access
/// log does.
pub fn redact_uri(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some(("p", _)) => "p=%5BREDACTED%5D".to_string(),
            _ => kv.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn token(alg: &str, claims: &str, secret: &str) -> String {
        let head = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        let body = b64(claims.as_bytes());
        let signed = format!("{head}.{body}");
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes())
            .expect("any key length");
        mac.update(signed.as_bytes());
        format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
    }

    #[test]
    fn jwts_are_checked_as_1x_checks_them() {
        let now = 1_000_000.0;
        let ok = token("HS256", r#"{"username":"bob","exp":1000100}"#, "s3cret");
        assert_eq!(jwt_username(&ok, "s3cret", now), Ok("bob".into()));
        let text = |t: &str| match jwt_username(t, "s3cret", now) {
            Err(AuthError::Unauthenticated(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            jwt_username(&ok, "wrong", now),
            Err(AuthError::Unauthenticated("signature is invalid".into()))
        );
        assert_eq!(
            text(&token(
                "HS256",
                r#"{"username":"bob","exp":999000}"#,
                "s3cret"
            )),
            "Token is expired"
        );
        // Expired and forged: the signature is what jwt-go reports.
        assert_eq!(
            text(&token(
                "HS256",
                r#"{"username":"bob","exp":999000}"#,
                "other"
            )),
            "signature is invalid"
        );
        assert_eq!(
            text(&token("HS256", r#"{"username":"bob"}"#, "s3cret")),
            "token expiration required"
        );
        assert_eq!(
            text(&token(
                "HS256",
                r#"{"username":"bob","exp":"1000100"}"#,
                "s3cret"
            )),
            "token expiration required"
        );
        assert_eq!(
            text(&token(
                "HS256",
                r#"{"username":"","exp":1000100}"#,
                "s3cret"
            )),
            "token must contain a username"
        );
        assert_eq!(
            text(&token("HS256", r#"{"username":5,"exp":1000100}"#, "s3cret")),
            "username in token must be a string"
        );
        assert_eq!(
            text(&token(
                "HS256",
                r#"{"username":"bob","exp":1000100,"nbf":1000100}"#,
                "s3cret"
            )),
            "Token is not valid yet"
        );
        assert_eq!(
            text(&token(
                "RS256",
                r#"{"username":"bob","exp":1000100}"#,
                "s3cret"
            )),
            "unexpected signing method: RS256"
        );
        assert_eq!(
            text(&token(
                "none",
                r#"{"username":"bob","exp":1000100}"#,
                "s3cret"
            )),
            "unexpected signing method: none"
        );
        assert_eq!(text("abc"), "token contains an invalid number of segments");
        assert_eq!(text("a.b.c"), "illegal base64 data at input byte 1");
        // No shared secret configured: no JWT is valid.
        assert_eq!(
            jwt_username(&ok, "", now),
            Err(AuthError::Unauthenticated("signature is invalid".into()))
        );
    }

    #[test]
    fn credentials_come_the_ways_1x_reads_them() {
        let user = |n: &str, p: &str| {
            Ok(Credentials::User {
                name: n.into(),
                password: p.into(),
            })
        };
        assert_eq!(
            credentials(Some("bob"), Some("pw"), None),
            user("bob", "pw")
        );
        // `u` without `p` falls through to the header.
        let unparsable = Err(AuthError::Unauthenticated(
            "unable to parse authentication credentials".into(),
        ));
        assert_eq!(credentials(Some("bob"), None, None), unparsable);
        // Basic bob:b
        assert_eq!(
            credentials(None, None, Some("Basic Ym9iOmI=")),
            user("bob", "b")
        );
        assert_eq!(
            credentials(None, None, Some("Basic Ym9iOmI")),
            user("bob", "b")
        );
        assert_eq!(credentials(None, None, Some("Basic !!!")), unparsable);
        assert_eq!(
            credentials(None, None, Some("Token bob:b")),
            user("bob", "b")
        );
        assert_eq!(
            credentials(None, None, Some("Bearer t.o.k")),
            Ok(Credentials::Bearer("t.o.k".into()))
        );
        assert_eq!(
            format!("{:?}", user("bob", "secret")),
            "Ok(User(bob, [REDACTED]))"
        );
    }

    #[test]
    fn the_request_log_never_shows_a_password() {
        assert_eq!(
            redact_uri("/query?u=bob&p=secret&q=SHOW"),
            "/query?u=bob&p=%5BREDACTED%5D&q=SHOW"
        );
        assert_eq!(redact_uri("/ping"), "/ping");
    }
}
