//! Bearer tokens: `KSC_ID_TOKEN` as given, or OAuth 2.0 client credentials (API.md §1) cached
//! and refreshed shortly before expiry and once after a 401.
//!
//! The expiry is read from the JWT payload without verifying the signature: the server is the
//! one that checks tokens; we only need to know when to fetch a new one.

use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::Method;

use crate::cache::DiskCache;
use crate::config::{Config, KSC_AUTH_SERVER, KSC_CLIENT_ID, KSC_CLIENT_SECRET, KSC_ID_TOKEN};
use crate::error::{sanitize_server_text, Error, ErrorKind, Result};
use crate::flight::Flight;
use crate::http::{join_url, Http, Request, RetryPolicy};

/// Lifetime assumed when neither `exp` nor `expires_in` says.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Refresh at most this long before expiry (less for short-lived tokens).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Longest lifetime believed: a server's `expires_in` or `exp` far in the future must not
/// overflow `Instant` arithmetic (a panic found by fuzzing); refreshing a day-old token early
/// costs one request.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The last second of year 9999: a later (or absurd) `exp` is no expiry at all.
const MAX_EXP_SECS: f64 = 253_402_300_799.0;

/// The `exp` claim of a JWT, read without verification. `None` if the token is not a JWT or
/// has no numeric `exp`.
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = v.get("exp")?.as_f64()?;
    if !exp.is_finite() || !(0.0..=MAX_EXP_SECS).contains(&exp) {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(exp))
}

/// When to refresh a token valid for `lifetime` from now.
fn refresh_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 5).min(MAX_REFRESH_MARGIN);
    lifetime.saturating_sub(margin)
}

#[derive(Clone)]
struct Cached {
    token: String,
    /// Fetch a new one from here on.
    refresh_at: Instant,
    /// Still accepted by the server until here: while one thread refreshes, others keep using it.
    usable_until: Instant,
}

impl Cached {
    fn new(token: String, lifetime: Duration) -> Cached {
        let now = Instant::now();
        Cached {
            token,
            refresh_at: now + refresh_after(lifetime),
            usable_until: now + lifetime.saturating_sub(Duration::from_secs(1)),
        }
    }
}

/// A token in the per-user cache: never the client secret, which only names the entry (hashed)
/// so a changed secret cannot pick up a token obtained with the old one.
#[derive(serde::Serialize, serde::Deserialize)]
struct DiskToken {
    auth: String,
    client: String,
    token: String,
    /// Unix seconds.
    expires: f64,
}

fn disk_name(config: &Config) -> Option<String> {
    Some(crate::cache::entry_name(
        "token",
        &[
            config.auth_server.as_deref()?,
            config.client_id.as_deref()?,
            config.client_secret.as_deref()?,
        ],
    ))
}

/// Hands out tokens for one client.
pub struct TokenSource {
    cached: Flight<Cached>,
    /// Set when the server refused `KSC_ID_TOKEN`, so client credentials (if any) take over.
    static_refused: std::sync::atomic::AtomicBool,
    disk: Option<DiskCache>,
}

impl TokenSource {
    /// Nothing fetched yet; no per-user cache.
    pub fn new() -> TokenSource {
        TokenSource::with_cache(None)
    }

    /// Nothing fetched yet; client-credential tokens also go to (and come from) `disk`.
    pub fn with_cache(disk: Option<DiskCache>) -> TokenSource {
        TokenSource {
            cached: Flight::new(),
            static_refused: std::sync::atomic::AtomicBool::new(false),
            disk,
        }
    }

    /// True if a refused token can be replaced by a fresh one.
    pub fn can_refresh(&self, config: &Config) -> bool {
        config.has_client_credentials()
    }

    /// A token to send now.
    pub fn get(&self, config: &Config, http: &Http) -> Result<String> {
        use std::sync::atomic::Ordering;
        if let Some(t) = &config.id_token {
            if !(self.static_refused.load(Ordering::Relaxed) && config.has_client_credentials()) {
                return Ok(t.clone());
            }
        }
        if !config.has_client_credentials() {
            return Err(Error::new(ErrorKind::Auth, "no token is configured").with_remedy(format!(
                "set {KSC_ID_TOKEN} (e.g. export {KSC_ID_TOKEN}=$(ksc token)), or {KSC_AUTH_SERVER}, {KSC_CLIENT_ID} and {KSC_CLIENT_SECRET}"
            )));
        }
        // Single flight: one thread fetches, unlocked; the others wait for it, or keep using the
        // current token if it is only due for refresh, not expired.
        let c = self.cached.get(
            |c| Instant::now() < c.refresh_at,
            |c| Instant::now() < c.usable_until,
            || {
                if let Some(c) = self.read_disk(config) {
                    return Ok(c);
                }
                let (token, lifetime) = fetch(config, http)?;
                self.write_disk(config, &token, lifetime);
                Ok(Cached::new(token, lifetime))
            },
        )?;
        Ok(c.token)
    }

    fn read_disk(&self, config: &Config) -> Option<Cached> {
        let disk = self.disk.as_ref()?;
        let bytes = disk.read(&disk_name(config)?)?;
        let entry: DiskToken = serde_json::from_slice(&bytes).ok()?;
        if Some(entry.auth.as_str()) != config.auth_server.as_deref()
            || Some(entry.client.as_str()) != config.client_id.as_deref()
            || entry.token.is_empty()
            || entry
                .token
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            || !entry.expires.is_finite()
        {
            return None;
        }
        let left = Duration::try_from_secs_f64(entry.expires - crate::cache::now_secs()).ok()?;
        // Only a token with its whole refresh margin still ahead; else fetch a new one.
        let c = Cached::new(entry.token, left);
        if Instant::now() >= c.refresh_at || left < Duration::from_secs(2) {
            return None;
        }
        log::debug!("token for client {} from the cache", entry.client);
        Some(c)
    }

    fn write_disk(&self, config: &Config, token: &str, lifetime: Duration) {
        let (Some(disk), Some(name)) = (self.disk.as_ref(), disk_name(config)) else {
            return;
        };
        let entry = DiskToken {
            auth: config.auth_server.clone().unwrap_or_default(),
            client: config.client_id.clone().unwrap_or_default(),
            token: token.to_string(),
            expires: crate::cache::now_secs() + lifetime.as_secs_f64(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            disk.write(&name, &bytes);
        }
    }

    /// The server refused `token` (HTTP 401): forget it, here and in the per-user cache, so
    /// the next `get` fetches a new one.
    pub fn invalidate(&self, token: &str, config: &Config) {
        use std::sync::atomic::Ordering;
        if config.id_token.as_deref() == Some(token) {
            self.static_refused.store(true, Ordering::Relaxed);
        }
        self.cached.clear_if(|c| c.token == token);
        if let (Some(disk), Some(name)) = (self.disk.as_ref(), disk_name(config)) {
            let on_disk = disk
                .read(&name)
                .and_then(|b| serde_json::from_slice::<DiskToken>(&b).ok());
            if on_disk.is_some_and(|d| d.token == token) {
                disk.remove(&name);
            }
        }
    }
}

impl Default for TokenSource {
    fn default() -> Self {
        TokenSource::new()
    }
}

/// `POST {auth}/oauth2/token` with client credentials; returns the token and its lifetime.
fn fetch(config: &Config, http: &Http) -> Result<(String, Duration)> {
    let (Some(auth), Some(id), Some(secret)) = (
        config.auth_server.as_deref(),
        config.client_id.as_deref(),
        config.client_secret.as_deref(),
    ) else {
        return Err(Error::internal("fetch without client credentials"));
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = Request {
        method: Method::POST,
        url: join_url(auth, &["oauth2", "token"])?,
        authorization: Some(format!("Basic {basic}")),
        body: Some((
            b"grant_type=client_credentials".to_vec(),
            "application/x-www-form-urlencoded",
        )),
    };
    log::debug!("fetching a token for client {id} from {auth}");
    let resp = http.execute(&req, RetryPolicy::Idempotent)?;
    parse_token_response(resp.status, &resp.body, id)
}

/// Parses the token endpoint's reply.
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    client_id: &str,
) -> Result<(String, Duration)> {
    if status == 400 || status == 401 || status == 403 {
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                let e = v.get("error")?.as_str()?.to_string();
                Some(
                    match v
                        .get("error_description")
                        .or(v.get("message"))
                        .and_then(|d| d.as_str())
                    {
                        Some(d) => format!("{e}: {d}"),
                        None => e,
                    },
                )
            })
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        return Err(Error::new(
            ErrorKind::Auth,
            format!("the auth server refused client {client_id:?}"),
        )
        .with_server(status, None, Some(sanitize_server_text(&detail, 200)))
        .with_remedy(format!("check {KSC_CLIENT_ID} and {KSC_CLIENT_SECRET}")));
    }
    if !(200..300).contains(&status) {
        let kind = if status == 429 {
            ErrorKind::RateLimited
        } else if status >= 500 {
            ErrorKind::Network
        } else {
            ErrorKind::BadResponse
        };
        return Err(
            Error::new(kind, "the auth server failed to issue a token").with_server(
                status,
                None,
                Some(sanitize_server_text(&String::from_utf8_lossy(body), 200)),
            ),
        );
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        Error::bad_response("the token reply is not JSON").with_remedy(format!(
            "check that {KSC_AUTH_SERVER} points at the auth server"
        ))
    })?;
    let token = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control()))
        .ok_or_else(|| Error::bad_response("the token reply has no usable \"access_token\""))?
        .to_string();
    let from_exp = jwt_expiry(&token).map(|exp| {
        exp.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    });
    let from_expires_in = v
        .get("expires_in")
        .and_then(|e| e.as_f64())
        .filter(|e| e.is_finite() && *e >= 0.0)
        .map(|e| Duration::from_secs_f64(e.min(MAX_LIFETIME.as_secs_f64())));
    // Trust the shorter of the two: `expires_in` is immune to clock skew, `exp` is what the
    // server checks.
    let lifetime = match (from_exp, from_expires_in) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => DEFAULT_LIFETIME,
    };
    Ok((token, lifetime.min(MAX_LIFETIME)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"ES256"}"#),
            e.encode(payload)
        )
    }

    #[test]
    fn reads_exp() {
        let t = jwt(r#"{"sub":"x","exp":2000000000}"#);
        assert_eq!(
            jwt_expiry(&t),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(jwt_expiry(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_expiry(&jwt(r#"{"sub":"x"}"#)), None);
        assert_eq!(jwt_expiry("opaque-token"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        assert_eq!(jwt_expiry(&format!("{}.x", jwt(r#"{"exp":1}"#))), None);
        // Padded base64 is tolerated.
        let padded = format!(
            "h.{}.s",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"exp":10}"#)
        );
        assert_eq!(
            jwt_expiry(&padded),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
    }

    #[test]
    fn absurd_expiries_are_bounded_not_a_panic() {
        // Found by fuzz/fuzz_targets/token_reply.rs: these panicked in Duration/SystemTime
        // arithmetic (from the token endpoint, or from KSC_ID_TOKEN).
        for exp in ["1e19", "1e300", "253402300800"] {
            assert_eq!(
                jwt_expiry(&jwt(&format!(r#"{{"exp":{exp}}}"#))),
                None,
                "{exp}"
            );
        }
        assert!(jwt_expiry(&jwt(r#"{"exp":253402300799}"#)).is_some());
        for body in [
            r#"{"access_token":"opaque","expires_in":1e300}"#.to_string(),
            r#"{"access_token":"opaque","expires_in":1e19}"#.to_string(),
            format!(r#"{{"access_token":"{}"}}"#, jwt(r#"{"exp":2e11}"#)),
        ] {
            let (_, life) = parse_token_response(200, body.as_bytes(), "c").expect(&body);
            assert_eq!(life, MAX_LIFETIME, "{body}");
            // What TokenSource::get does with it.
            assert!(Instant::now().checked_add(refresh_after(life)).is_some());
        }
    }

    #[test]
    fn refresh_margin() {
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(5)),
            Duration::from_secs(4)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn token_replies() {
        let exp = SystemTime::now() + Duration::from_secs(100);
        let secs = exp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let t = jwt(&format!(r#"{{"exp":{secs}}}"#));
        let body = format!(r#"{{"access_token":"{t}","token_type":"Bearer","expires_in":3600}}"#);
        let (tok, life) = parse_token_response(200, body.as_bytes(), "c").unwrap();
        assert_eq!(tok, t);
        assert!(life <= Duration::from_secs(100) && life > Duration::from_secs(90));
        let (_, life) =
            parse_token_response(200, br#"{"access_token":"opaque","expires_in":30}"#, "c")
                .unwrap();
        assert_eq!(life, Duration::from_secs(30));
        let (_, life) = parse_token_response(200, br#"{"access_token":"opaque"}"#, "c").unwrap();
        assert_eq!(life, DEFAULT_LIFETIME);

        let e = parse_token_response(401, br#"{"error":"invalid_client"}"#, "me").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(
            e.to_string().contains("invalid_client") && e.to_string().contains("\"me\""),
            "{e}"
        );
        for bad in [
            &b"<html>"[..],
            br#"{"token":"x"}"#,
            br#"{"access_token":""}"#,
            br#"{"access_token":"a b"}"#,
            br#"[1]"#,
        ] {
            assert_eq!(
                parse_token_response(200, bad, "c").unwrap_err().kind(),
                ErrorKind::BadResponse
            );
        }
        assert_eq!(
            parse_token_response(503, b"down", "c").unwrap_err().kind(),
            ErrorKind::Network
        );
    }
}
