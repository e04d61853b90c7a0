//! Bearer tokens: `KSC_ID_TOKEN` as given, or OAuth 2.0 client credentials (API.md §1) cached
//! and refreshed shortly before expiry and once after a 401.
//!
//! The expiry is read from the JWT payload without verifying the signature: the server is the
//! one that checks tokens; we only need to know when to fetch a new one.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::Method;

use crate::config::{Config, KSC_AUTH_SERVER, KSC_CLIENT_ID, KSC_CLIENT_SECRET, KSC_ID_TOKEN};
use crate::error::{sanitize_server_text, Error, ErrorKind, Result};
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

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Hands out tokens for one client.
pub struct TokenSource {
    cached: Mutex<Option<Cached>>,
    /// Set when the server refused `KSC_ID_TOKEN`, so client credentials (if any) take over.
    static_refused: std::sync::atomic::AtomicBool,
}

impl TokenSource {
    /// Nothing fetched yet.
    pub fn new() -> TokenSource {
        TokenSource {
            cached: Mutex::new(None),
            static_refused: std::sync::atomic::AtomicBool::new(false),
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
        // Holding the lock while fetching makes concurrent callers wait for one fetch instead
        // of all hitting the auth server.
        let mut guard = self
            .cached
            .lock()
            .map_err(|_| Error::internal("token lock poisoned"))?;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
            log::debug!("token due for refresh");
        }
        let (token, lifetime) = fetch(config, http)?;
        *guard = Some(Cached {
            token: token.clone(),
            refresh_at: Instant::now() + refresh_after(lifetime),
        });
        Ok(token)
    }

    /// The server refused `token` (HTTP 401): forget it so the next `get` fetches a new one.
    pub fn invalidate(&self, token: &str, config: &Config) {
        use std::sync::atomic::Ordering;
        if config.id_token.as_deref() == Some(token) {
            self.static_refused.store(true, Ordering::Relaxed);
        }
        if let Ok(mut g) = self.cached.lock() {
            if g.as_ref().is_some_and(|c| c.token == token) {
                *g = None;
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
