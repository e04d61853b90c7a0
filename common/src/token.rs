//! Bearer tokens: `KSC_ID_TOKEN` as given, a token file re-read when its token nears expiry,
//! OAuth 2.0 client credentials (API.md §1), or GitHub Actions' OIDC token; fetched ones are
//! cached and refreshed shortly before expiry and once after a 401.
//!
//! The expiry is read from the JWT payload without verifying the signature: the server is the
//! one that checks tokens; we only need to know when to fetch a new one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::Method;

use crate::cache::DiskCache;
use crate::config::{
    Config, IdentitySource, ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL,
    KSC_AUTH_SERVER, KSC_CLIENT_ID, KSC_CLIENT_SECRET, KSC_ID_TOKEN, KSC_ID_TOKEN_FILE,
    KSC_ID_TOKEN_SOURCE, KSC_OIDC_AUDIENCE,
};
use crate::duration::format_duration;
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

/// A token file larger than this is not a token (and is not read whole into memory).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// The claims of a JWT, read without verification. `None` if the token is not a JWT
/// (three dot-separated base64url parts, a JSON object in the middle).
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The `exp` claim of a JWT, read without verification. `None` if the token is not a JWT or
/// has no numeric `exp`.
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let v = jwt_claims(token)?;
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

/// The identity a configuration selects (`KSC_ID_TOKEN_SOURCE`; in `auto`, the first of
/// `KSC_ID_TOKEN`, `KSC_ID_TOKEN_FILE`, client credentials, GitHub Actions OIDC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// `KSC_ID_TOKEN` as given.
    Token,
    /// The token in `KSC_ID_TOKEN_FILE`.
    File(PathBuf),
    /// Client credentials (`KSC_AUTH_SERVER`, `KSC_CLIENT_ID`, `KSC_CLIENT_SECRET`).
    Client,
    /// GitHub Actions' OIDC token service.
    Github,
    /// Nothing configured.
    None,
}

impl Identity {
    /// The identity `config` selects.
    pub fn of(config: &Config) -> Identity {
        let file = || config.id_token_file.clone().map(Identity::File);
        let picked = match config.id_token_source {
            IdentitySource::Token => Some(Identity::Token),
            IdentitySource::File => file(),
            IdentitySource::Client => Some(Identity::Client),
            IdentitySource::Github => Some(Identity::Github),
            IdentitySource::Auto => config
                .id_token
                .as_ref()
                .map(|_| Identity::Token)
                .or_else(file)
                .or_else(|| config.has_client_credentials().then_some(Identity::Client))
                .or_else(|| config.github_oidc.as_ref().map(|_| Identity::Github)),
        };
        picked.unwrap_or(Identity::None)
    }

    /// Names the identity for messages (never the token or secret itself).
    pub fn describe(&self, config: &Config) -> String {
        match self {
            Identity::Token => KSC_ID_TOKEN.to_string(),
            Identity::File(p) => format!("{KSC_ID_TOKEN_FILE} ({})", p.display()),
            Identity::Client => format!(
                "client credentials (client {:?})",
                config.client_id.as_deref().unwrap_or_default()
            ),
            Identity::Github => format!(
                "GitHub Actions' OIDC token (audience {:?})",
                config.oidc_audience().unwrap_or_default()
            ),
            Identity::None => "no identity".to_string(),
        }
    }
}

/// One line saying which identity is used and why, when that is not obvious: more than one is
/// configured, or the job's ambient GitHub Actions token is used. `ksc` prints it on stderr;
/// the libraries log it at `info`.
pub fn identity_notice(config: &Config) -> Option<String> {
    let chosen = Identity::of(config);
    let mut unused = Vec::new();
    if config.id_token.is_some() && chosen != Identity::Token {
        unused.push(KSC_ID_TOKEN.to_string());
    }
    if config.id_token_file.is_some() && !matches!(chosen, Identity::File(_)) {
        unused.push(KSC_ID_TOKEN_FILE.to_string());
    }
    if config.has_client_credentials() && chosen != Identity::Client {
        unused.push(format!("{KSC_CLIENT_ID}/{KSC_CLIENT_SECRET}"));
    }
    if config.github_oidc.is_some() && chosen != Identity::Github {
        unused.push("GitHub Actions' OIDC token (ACTIONS_ID_TOKEN_REQUEST_*)".to_string());
    }
    if unused.is_empty() && chosen != Identity::Github {
        return None;
    }
    let why = match (config.id_token_source, &chosen) {
        (IdentitySource::Auto, Identity::Token | Identity::File(_)) => {
            "a given token always wins over logging in".to_string()
        }
        (IdentitySource::Auto, Identity::Client) => {
            "explicit client credentials win over the CI job's ambient token".to_string()
        }
        (IdentitySource::Auto, _) => "no other identity is set".to_string(),
        (source, _) => format!("{KSC_ID_TOKEN_SOURCE}={}", source.name()),
    };
    let mut line = format!("using {} ({why})", chosen.describe(config));
    if !unused.is_empty() {
        line.push_str(&format!(
            "; also set but not used: {}; set {KSC_ID_TOKEN_SOURCE} (token, file, client or github) to choose",
            unused.join(", ")
        ));
    }
    Some(line)
}

/// Hands out tokens for one client.
pub struct TokenSource {
    cached: Flight<Cached>,
    /// Set when the server refused `KSC_ID_TOKEN`, so client credentials (if any) take over.
    static_refused: std::sync::atomic::AtomicBool,
    disk: Option<DiskCache>,
    /// The last token the server refused (HTTP 401): a token file still holding it has not been
    /// rotated, and sending it again would only be refused again.
    refused: Mutex<Option<String>>,
    /// The identity notice is logged once per process.
    announced: std::sync::Once,
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
            refused: Mutex::new(None),
            announced: std::sync::Once::new(),
        }
    }

    /// True if a refused token can be replaced by a fresh one.
    pub fn can_refresh(&self, config: &Config) -> bool {
        match Identity::of(config) {
            Identity::Token => {
                config.id_token_source == IdentitySource::Auto && config.has_client_credentials()
            }
            Identity::Client | Identity::File(_) | Identity::Github => true,
            Identity::None => false,
        }
    }

    /// A token to send now.
    pub fn get(&self, config: &Config, http: &Http) -> Result<String> {
        use std::sync::atomic::Ordering;
        self.announced.call_once(|| {
            if let Some(n) = identity_notice(config) {
                log::info!("{n}");
            }
        });
        match Identity::of(config) {
            Identity::Token => {
                let refused = self.static_refused.load(Ordering::Relaxed);
                match &config.id_token {
                    Some(t) if !(refused && self.can_refresh(config)) => return Ok(t.clone()),
                    Some(_) => {}
                    None => return Err(Error::internal("token identity without KSC_ID_TOKEN")),
                }
            }
            Identity::File(path) => return self.file_token(&path),
            Identity::Github => return self.github_token(config, http),
            Identity::Client => {}
            Identity::None => {
                return Err(Error::new(ErrorKind::Auth, "no token is configured").with_remedy(format!(
                    "set {KSC_ID_TOKEN} (e.g. export {KSC_ID_TOKEN}=$(ksc token)), {KSC_ID_TOKEN_FILE}, or {KSC_AUTH_SERVER}, {KSC_CLIENT_ID} and {KSC_CLIENT_SECRET}; in GitHub Actions give the job `permissions: id-token: write`"
                )))
            }
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

    /// The token in `path`, re-read when the one in hand is within the refresh margin of its
    /// expiry (a cheap file read: picks up a rotation as soon as the CI system writes it).
    fn file_token(&self, path: &Path) -> Result<String> {
        let c = self.cached.get(
            |c| Instant::now() < c.refresh_at,
            |c| Instant::now() < c.usable_until,
            || {
                let previous = self.cached.peek();
                match self.read_token_file(path) {
                    Ok(c) => Ok(c),
                    // Caught mid-rotation (a writer that truncates first): the token in hand is
                    // still good; try the file again at the next use.
                    Err(e) => match previous.filter(|p| Instant::now() < p.usable_until) {
                        Some(p) => {
                            log::warn!("{e}; using the token read before");
                            Ok(Cached {
                                refresh_at: Instant::now(),
                                ..p
                            })
                        }
                        None => Err(e),
                    },
                }
            },
        )?;
        Ok(c.token)
    }

    fn read_token_file(&self, path: &Path) -> Result<Cached> {
        let token = read_token_file(path)?;
        let refused = self.refused.lock().map(|r| r.clone()).unwrap_or_default();
        if refused.as_deref() == Some(token.as_str()) {
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "the server refused the token in {} (HTTP 401) and the file holds no newer one",
                    path.display()
                ),
            )
            .with_remedy(format!(
                "check that the CI system writes a token KeyServer trusts (issuer and audience) to {KSC_ID_TOKEN_FILE}"
            )));
        }
        let Some(exp) = jwt_expiry(&token) else {
            // No expiry to go by: read the file again at every use.
            log::debug!(
                "{KSC_ID_TOKEN_FILE} {}: a token without exp",
                path.display()
            );
            return Ok(Cached {
                token,
                refresh_at: Instant::now(),
                usable_until: Instant::now() + MAX_LIFETIME,
            });
        };
        let left = match exp.duration_since(SystemTime::now()) {
            Ok(left) if left > Duration::from_secs(1) => left.min(MAX_LIFETIME),
            _ => {
                let ago = SystemTime::now().duration_since(exp).unwrap_or_default();
                return Err(Error::new(
                    ErrorKind::Auth,
                    format!(
                        "the token in {} expired at {} ({} ago) and the file holds nothing newer",
                        path.display(),
                        crate::logging::rfc3339(exp),
                        format_duration(ago)
                    ),
                )
                .with_remedy(
                    "the CI system should rotate it: a Kubernetes projected token or a Vault agent rewrites the file before expiry (is the agent running?); a GitLab id_token lives as long as the job's token lifetime (sign sooner after the job starts, or raise the lifetime)",
                ));
            }
        };
        // A new token is worth an info line; the same one read again (near its expiry) is not.
        let level = match self.cached.peek() {
            Some(p) if p.token == token => log::Level::Debug,
            _ => log::Level::Info,
        };
        log::log!(
            level,
            "{KSC_ID_TOKEN_FILE} {}: token valid until {} ({} left)",
            path.display(),
            crate::logging::rfc3339(exp),
            format_duration(left)
        );
        let now = Instant::now();
        Ok(Cached {
            token,
            refresh_at: now + left.saturating_sub(MAX_REFRESH_MARGIN),
            usable_until: now + left - Duration::from_secs(1),
        })
    }

    /// GitHub Actions' OIDC token, fetched anew shortly before the one in hand expires.
    fn github_token(&self, config: &Config, http: &Http) -> Result<String> {
        let c = self.cached.get(
            |c| Instant::now() < c.refresh_at,
            |c| Instant::now() < c.usable_until,
            || {
                let (token, lifetime) = fetch_github(config, http)?;
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
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(token.to_string());
        }
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

/// Reads `KSC_ID_TOKEN_FILE`: one JWT, surrounding whitespace ignored. Every problem is an
/// error naming the setting and the file (never its content).
pub fn read_token_file(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let shown = path.display();
    let problem = |what: String| Error::config(KSC_ID_TOKEN_FILE, what);
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => problem(format!(
            "{shown}: no such file (has the CI system written the token yet?)"
        )),
        _ => problem(format!("{shown}: cannot read it: {e}")),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| problem(format!("{shown}: cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(problem(format!(
            "{shown} is larger than {MAX_TOKEN_FILE} bytes: not a token"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| problem(format!("{shown} does not hold a JWT (not text)")))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(problem(format!(
            "{shown} is empty (has the CI system written the token yet?)"
        )));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) || jwt_claims(token).is_none() {
        return Err(problem(format!(
            "{shown} does not hold a JWT (one header.payload.signature line)"
        )));
    }
    Ok(token.to_string())
}

/// GitHub Actions' OIDC token for `KSC_OIDC_AUDIENCE`: `GET` the runner's request URL with
/// `audience=`, the request token as bearer. Bounded by the call's deadline like every request.
fn fetch_github(config: &Config, http: &Http) -> Result<(String, Duration)> {
    let gh = config.github_oidc.as_ref().ok_or_else(|| {
        Error::config(
            KSC_ID_TOKEN_SOURCE,
            format!("github needs {ACTIONS_ID_TOKEN_REQUEST_URL} and {ACTIONS_ID_TOKEN_REQUEST_TOKEN}, which GitHub Actions sets only in a job with `permissions: id-token: write`"),
        )
    })?;
    let audience = config.oidc_audience().ok_or_else(|| {
        Error::config(
            KSC_OIDC_AUDIENCE,
            "not set, and no KSC_API_SERVER to default to",
        )
    })?;
    let mut url = reqwest::Url::parse(&gh.request_url)
        .map_err(|e| Error::config(ACTIONS_ID_TOKEN_REQUEST_URL, format!("is not a URL: {e}")))?;
    url.query_pairs_mut().append_pair("audience", audience);
    let req = Request {
        method: Method::GET,
        url,
        authorization: Some(format!("Bearer {}", gh.request_token)),
        body: None,
    };
    log::debug!("fetching GitHub Actions' OIDC token (audience {audience:?})");
    let resp = http.execute(&req, RetryPolicy::Idempotent)?;
    parse_github_reply(resp.status, &resp.body)
}

/// Parses the reply of GitHub's token service: `{"value": "<JWT>"}`.
pub fn parse_github_reply(status: u16, body: &[u8]) -> Result<(String, Duration)> {
    let detail = || Some(sanitize_server_text(&String::from_utf8_lossy(body), 200));
    if status == 401 || status == 403 {
        return Err(Error::new(
            ErrorKind::Auth,
            format!("GitHub Actions' token service refused {ACTIONS_ID_TOKEN_REQUEST_TOKEN}"),
        )
        .with_server(status, None, detail())
        .with_remedy(
            "give the job `permissions: id-token: write`, and request the token from the job itself (the request token is valid only in its own job, while it runs)",
        ));
    }
    if !(200..300).contains(&status) {
        let kind = match status {
            429 => ErrorKind::RateLimited,
            500.. => ErrorKind::Network,
            _ => ErrorKind::BadResponse,
        };
        return Err(Error::new(
            kind,
            "GitHub Actions' token service failed to issue a token",
        )
        .with_server(status, None, detail())
        .with_remedy(format!(
            "check {ACTIONS_ID_TOKEN_REQUEST_URL} (set by the runner) and {KSC_OIDC_AUDIENCE}"
        )));
    }
    let token = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("value")?.as_str().map(str::to_string))
        .filter(|t| !t.chars().any(|c| c.is_whitespace() || c.is_control()))
        .filter(|t| jwt_claims(t).is_some())
        .ok_or_else(|| {
            Error::bad_response("GitHub Actions' token service replied without a JWT in \"value\"")
                .with_remedy(format!(
                    "check that {ACTIONS_ID_TOKEN_REQUEST_URL} is the runner's value"
                ))
        })?;
    let lifetime = match jwt_expiry(&token) {
        Some(exp) => exp
            .duration_since(SystemTime::now())
            .map_err(|_| Error::bad_response("GitHub Actions' token service issued an expired token (is this machine's clock right?)"))?,
        None => DEFAULT_LIFETIME,
    };
    Ok((token, lifetime.min(MAX_LIFETIME)))
}

/// A fix for a 401 to `token` that a fresh token did not cure, by identity: the audience for
/// GitHub's token, the file for a token file. `None` when the caller's generic advice fits.
pub fn refused_remedy(config: &Config, token: &str) -> Option<String> {
    let aud = jwt_claims(token)
        .and_then(|c| c.get("aud").cloned())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "none".into());
    match Identity::of(config) {
        Identity::Github => Some(format!(
            "the token's audience is {aud}: set {KSC_OIDC_AUDIENCE} to the audience KeyServer's administrator configured for GitHub's issuer (default: KSC_API_SERVER), and check that its claim mapping covers this repository and ref"
        )),
        Identity::File(p) => Some(format!(
            "the token in {} (audience {aud}) is not one KeyServer accepts: check the issuer and audience the CI system writes there",
            p.display()
        )),
        _ => None,
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

    fn secs_from_now(d: i64) -> i64 {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + d
    }

    fn config_with(pairs: &[(&str, &str)], env: &[(&str, &str)]) -> Config {
        let s = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<crate::config::Settings>()
        };
        Config::resolve(&s(pairs), &s(env)).unwrap()
    }

    const GH: [(&str, &str); 2] = [
        (
            ACTIONS_ID_TOKEN_REQUEST_URL,
            "https://gh.example/token?api-version=2.0",
        ),
        (ACTIONS_ID_TOKEN_REQUEST_TOKEN, "request-secret"),
    ];

    #[test]
    fn identity_precedence_and_notice() {
        let api = (crate::config::KSC_API_SERVER, "https://ks.example:8200");
        let creds = [
            api,
            (KSC_AUTH_SERVER, "https://auth.example"),
            (KSC_CLIENT_ID, "ci"),
            (KSC_CLIENT_SECRET, "s3cret"),
        ];
        // GitHub's ambient token alone: used, and said so.
        let c = config_with(&[api], &GH);
        assert_eq!(Identity::of(&c), Identity::Github);
        let n = identity_notice(&c).unwrap();
        assert!(
            n.contains("GitHub Actions' OIDC token (audience \"https://ks.example:8200\")")
                && n.contains("no other identity is set")
                && !n.contains("request-secret"),
            "{n}"
        );
        // Explicit client credentials win over the ambient token.
        let c = config_with(&creds, &GH);
        assert_eq!(Identity::of(&c), Identity::Client);
        let n = identity_notice(&c).unwrap();
        assert!(n.contains("also set but not used: GitHub"), "{n}");
        // A token file wins over client credentials; KSC_ID_TOKEN over the file.
        let mut with_file = creds.to_vec();
        with_file.push((KSC_ID_TOKEN_FILE, "/run/token"));
        let c = config_with(&with_file, &GH);
        assert_eq!(Identity::of(&c), Identity::File("/run/token".into()));
        with_file.push((KSC_ID_TOKEN, "a.b.c"));
        let c = config_with(&with_file, &[]);
        assert_eq!(Identity::of(&c), Identity::Token);
        let n = identity_notice(&c).unwrap();
        assert!(
            n.contains("using KSC_ID_TOKEN (a given token always wins")
                && n.contains("KSC_ID_TOKEN_FILE, KSC_CLIENT_ID/KSC_CLIENT_SECRET"),
            "{n}"
        );
        // The user's choice wins over the order.
        with_file.push((KSC_ID_TOKEN_SOURCE, "GitHub"));
        let c = config_with(&with_file, &GH);
        assert_eq!(Identity::of(&c), Identity::Github);
        assert!(identity_notice(&c)
            .unwrap()
            .contains("(KSC_ID_TOKEN_SOURCE=github)"));
        // One identity, nothing ambiguous: no notice.
        assert_eq!(identity_notice(&config_with(&creds, &[])), None);
        assert_eq!(Identity::of(&config_with(&[api], &GH[..1])), Identity::None);
    }

    #[test]
    fn token_file_errors_name_the_setting_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        let err = |f: &Path| read_token_file(f).unwrap_err().to_string();
        let e = err(&f);
        assert!(
            e.contains(KSC_ID_TOKEN_FILE) && e.contains("no such file"),
            "{e}"
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(err(&f).contains("is empty"), "{}", err(&f));
        for bad in ["opaque-token", "a.b", "a b.c.d", "x.eyJleHAiOjF9.s extra"] {
            std::fs::write(&f, bad).unwrap();
            let e = err(&f);
            assert!(e.contains("does not hold a JWT") && !e.contains(bad), "{e}");
        }
        std::fs::write(&f, vec![b'a'; 70_000]).unwrap();
        assert!(err(&f).contains("larger than"), "{}", err(&f));
        let t = jwt(r#"{"exp":2000000000}"#);
        std::fs::write(&f, format!("{t}\n")).unwrap();
        assert_eq!(read_token_file(&f).unwrap(), t);
        let e = err(dir.path());
        assert!(e.contains(KSC_ID_TOKEN_FILE), "{e}");
    }

    #[test]
    fn token_file_is_reread_near_expiry_and_after_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        let config = config_with(
            &[
                (crate::config::KSC_API_SERVER, "https://ks.example:8200"),
                (KSC_ID_TOKEN_FILE, f.to_str().unwrap()),
            ],
            &[],
        );
        let http = Http::new(&config);
        let source = TokenSource::new();
        let long = jwt(&format!(r#"{{"sub":"a","exp":{}}}"#, secs_from_now(3600)));
        std::fs::write(&f, &long).unwrap();
        assert_eq!(source.get(&config, &http).unwrap(), long);
        // Far from expiry: the file is not read at every use.
        let other = jwt(&format!(r#"{{"sub":"b","exp":{}}}"#, secs_from_now(3600)));
        std::fs::write(&f, &other).unwrap();
        assert_eq!(source.get(&config, &http).unwrap(), long);
        // Refused: the file is read again, once.
        assert!(source.can_refresh(&config));
        source.invalidate(&long, &config);
        assert_eq!(source.get(&config, &http).unwrap(), other);
        // A token near expiry is used, but the file is read again at the next use.
        let near = jwt(&format!(r#"{{"sub":"c","exp":{}}}"#, secs_from_now(30)));
        let source = TokenSource::new();
        std::fs::write(&f, &near).unwrap();
        assert_eq!(source.get(&config, &http).unwrap(), near);
        std::fs::write(&f, &other).unwrap();
        assert_eq!(source.get(&config, &http).unwrap(), other);
        // A refused token still in the file is not sent again.
        source.invalidate(&other, &config);
        let e = source.get(&config, &http).unwrap_err().to_string();
        assert!(
            e.contains("refused the token in") && e.contains("no newer one"),
            "{e}"
        );
        // An expired one: when, and who should rotate it.
        let old = jwt(&format!(r#"{{"exp":{}}}"#, secs_from_now(-90)));
        std::fs::write(&f, &old).unwrap();
        let e = TokenSource::new()
            .get(&config, &http)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expired at 20")
                && e.contains("1m30s ago")
                && e.contains("the CI system should rotate it")
                && !e.contains(&old),
            "{e}"
        );
    }

    #[test]
    fn github_replies() {
        let exp = secs_from_now(300);
        let t = jwt(&format!(r#"{{"aud":"ks","exp":{exp}}}"#));
        let (tok, life) =
            parse_github_reply(200, format!(r#"{{"value":"{t}"}}"#).as_bytes()).unwrap();
        assert_eq!(tok, t);
        assert!(life <= Duration::from_secs(300) && life > Duration::from_secs(290));
        let e = parse_github_reply(401, b"bad token").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(
            e.to_string().contains(ACTIONS_ID_TOKEN_REQUEST_TOKEN)
                && e.to_string().contains("id-token: write"),
            "{e}"
        );
        assert_eq!(
            parse_github_reply(503, b"down").unwrap_err().kind(),
            ErrorKind::Network
        );
        for bad in [
            &b"<html>"[..],
            br#"{"value":"opaque"}"#,
            br#"{"token":"a.b.c"}"#,
        ] {
            assert_eq!(
                parse_github_reply(200, bad).unwrap_err().kind(),
                ErrorKind::BadResponse
            );
        }
        let expired = jwt(&format!(r#"{{"exp":{}}}"#, secs_from_now(-10)));
        let e =
            parse_github_reply(200, format!(r#"{{"value":"{expired}"}}"#).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[test]
    fn refused_github_token_names_the_audience_setting() {
        let c = config_with(
            &[(crate::config::KSC_API_SERVER, "https://ks.example")],
            &GH,
        );
        let r = refused_remedy(&c, &jwt(r#"{"aud":"wrong"}"#)).unwrap();
        assert!(
            r.contains("\"wrong\"") && r.contains(KSC_OIDC_AUDIENCE),
            "{r}"
        );
        let c = config_with(
            &[(crate::config::KSC_API_SERVER, "https://ks.example")],
            &[],
        );
        assert_eq!(refused_remedy(&c, "x"), None);
    }
}
