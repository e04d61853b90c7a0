//! The KeyServer client: the one object the adapters and `ksc` use.
//!
//! It owns the configuration, the lazily created HTTPS engine, the token source and the key
//! catalog cache. Every method is synchronous and may be called from many threads at once.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::cache::DiskCache;
use crate::config::{
    Config, ACTIONS_ID_TOKEN_REQUEST_URL, KSC_AUTH_SERVER, KSC_DEADLINE, KSC_ID_TOKEN,
};
use crate::duration::format_duration;
use crate::error::{from_server_reply, Error, ErrorKind, Result};
use crate::flight::Flight;
use crate::http::{join_url, CallDeadline, Http, Request, Response, RetryPolicy};
use crate::keys::KeyEntry;
use crate::operation::{parse_created_id, OperationSpec, OperationState, OperationStatus};
use crate::token::{jwt_expiry, refused_remedy, Identity, TokenSource};
use crate::trust::{TrustPolicy, UntrustedKey};

mod key_catalog;
mod sign;

/// First poll interval while waiting for approval; grows by half each poll.
const POLL_START: Duration = Duration::from_millis(500);
/// Longest poll interval.
const POLL_MAX: Duration = Duration::from_secs(5);
/// How long a key catalog from the per-user cache is used without asking the server. A key
/// unknown to it or a certificate that does not verify a signature refreshes it at once.
pub const CATALOG_TTL: Duration = Duration::from_secs(300);

/// The key catalog as this process knows it.
#[derive(Clone)]
struct Loaded {
    keys: Arc<Vec<KeyEntry>>,
    /// Keys the trust settings refused, with the reasons.
    untrusted: Arc<Vec<UntrustedKey>>,
    /// Read from the per-user cache, not yet confirmed by the server in this process.
    from_cache: bool,
}

/// A KeyServer client. `Send + Sync`; share it in an `Arc`.
pub struct Client {
    config: Config,
    http: Http,
    tokens: TokenSource,
    keys: Flight<Loaded>,
    disk: Option<DiskCache>,
    /// Whether the server deduplicates sign orders by `requestid`: learned from the key list's
    /// extension fields or from a sign reply echoing our requestid. Until then a sign order is
    /// only retried when it provably never reached the server.
    requestid_supported: AtomicBool,
    /// `KSC_SIGNING_CA_FILE`/`KSC_KEY_PINS` parsed, with the CA file's (mtime, size) when it
    /// was read: reused by every catalog load until the file changes.
    trust: Mutex<Option<(TrustStamp, Arc<TrustPolicy>)>>,
}

/// What identifies one version of the signing CA file (`None`: no file, pins only).
type TrustStamp = Option<(Option<std::time::SystemTime>, u64)>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The one way from settings to a working client: configuration from `overrides` (the
    /// environment and `KSC_CONFIG` still win, see [`Config::load`]), logging started from it
    /// (once per process), and a client that does no I/O yet. `ksc` and
    /// `signer::connect` (the adapters) use it.
    pub fn connect(overrides: &crate::config::Settings) -> Result<Client> {
        let config = Config::load(overrides)?;
        crate::logging::init(&config);
        Ok(Client::new(config))
    }

    /// A client for `config`; does no I/O (the HTTPS client is created on first use).
    pub fn new(config: Config) -> Client {
        // The directory is named once; the token source gets its own handle on it.
        let disk = DiskCache::from_config(&config);
        let token_disk = disk.as_ref().map(|d| DiskCache::at(d.dir().to_path_buf()));
        Client {
            http: Http::new(&config),
            tokens: TokenSource::with_cache(token_disk),
            disk,
            trust: Mutex::new(None),
            config,
            keys: Flight::new(),
            requestid_supported: AtomicBool::new(false),
        }
    }

    /// A client configured from the environment (and `KSC_CONFIG`).
    pub fn from_env() -> Result<Client> {
        Ok(Client::new(Config::from_env()?))
    }

    /// The configuration this client uses.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A valid bearer token (`KSC_ID_TOKEN`, or a cached/fresh client-credentials token).
    pub fn token(&self) -> Result<String> {
        let _deadline = CallDeadline::start(self.config.deadline);
        self.tokens.get(&self.config, &self.http).map_err(|e| {
            // A token that had to be fetched failed at the auth server: name that setting,
            // not the API server's.
            let identity = Identity::of(&self.config);
            // GitHub's token service did not answer: the generic network advice would name
            // KeyServer's settings, which are not involved.
            if identity == Identity::Github
                && matches!(e.kind(), ErrorKind::Network | ErrorKind::RateLimited)
            {
                return e.with_remedy(format!(
                    "GitHub Actions' token service ({ACTIONS_ID_TOKEN_REQUEST_URL}, set by the runner) did not answer or failed: check the job's network, then retry; or raise {KSC_DEADLINE}"
                ));
            }
            let fetched = identity == Identity::Client;
            if fetched && !e.has_own_remedy() && e.kind() != ErrorKind::Internal {
                let auth = self.config.auth_server.as_deref().unwrap_or("");
                e.with_remedy(format!(
                    "check {KSC_AUTH_SERVER} ({auth}): the auth server's base URL, reachable, with KSC_CA_FILE trusting its certificate"
                ))
            } else {
                e
            }
        })
    }

    /// Sends an authenticated API request; on a 401 fetches a fresh token once and repeats.
    fn api(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        policy: RetryPolicy,
    ) -> Result<Response> {
        let url = join_url(self.config.require_api_server()?, segments)?;
        self.api_at(method, url, body, policy)
    }

    /// An authenticated GET with query parameters.
    fn api_query(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Response> {
        let mut url = join_url(self.config.require_api_server()?, segments)?;
        url.query_pairs_mut().extend_pairs(query);
        self.api_at(Method::GET, url, None, RetryPolicy::Idempotent)
    }

    fn api_at(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&Value>,
        policy: RetryPolicy,
    ) -> Result<Response> {
        let body = match body {
            Some(v) => Some((
                serde_json::to_vec(v).map_err(|e| Error::internal(format!("JSON: {e}")))?,
                "application/json",
            )),
            None => None,
        };
        // The 401 and the token it refused, once a fresh token was asked for.
        let mut refused: Option<(Response, String)> = None;
        loop {
            let token = match self.token() {
                Ok(t) => t,
                // A token file still holding the refused token: the server's reason says more
                // than "the file holds no newer one".
                Err(e)
                    if e.kind() == ErrorKind::Auth
                        && matches!(Identity::of(&self.config), Identity::File(_)) =>
                {
                    return Err(match &refused {
                        Some((resp, old)) => auth_error(resp, old, &self.config),
                        None => e,
                    })
                }
                Err(e) => return Err(e),
            };
            let req = Request {
                method: method.clone(),
                url: url.clone(),
                authorization: Some(format!("Bearer {token}")),
                body: body.clone(),
            };
            log::debug!("{} {}", req.method, crate::redact::url(&req.url));
            let resp = self.http.execute(&req, policy)?;
            log::debug!("{} {} -> HTTP {}", req.method, req.url.path(), resp.status);
            if resp.status == 401 {
                if refused.is_none() && self.tokens.can_refresh(&self.config) {
                    log::info!("token refused (HTTP 401); fetching a new one");
                    self.tokens.invalidate(&token, &self.config);
                    refused = Some((resp, token));
                    continue;
                }
                return Err(auth_error(&resp, &token, &self.config));
            }
            return Ok(resp);
        }
    }

    /// Creates an operation (`POST /api/operations`); returns its id. Never repeated once it may
    /// have reached the server (a repeat would create a second operation).
    pub fn create_operation(&self, spec: &OperationSpec) -> Result<String> {
        let _deadline = CallDeadline::start(self.config.deadline);
        let body = spec.to_json()?;
        let resp = self.api(
            Method::POST,
            &["api", "operations"],
            Some(&body),
            RetryPolicy::NotSentOnly,
        )?;
        if !(200..300).contains(&resp.status) {
            let mut e = from_server_reply(resp.status, &resp.body, resp.retry_after);
            if let [(k, _)] = spec.keys.as_slice() {
                e = e.with_key(k);
            }
            return Err(e);
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|_| Error::bad_response("the create-operation reply is not JSON"))?;
        parse_created_id(&v)
    }

    /// The status of operation `id` (`GET /api/operations/{id}`).
    pub fn operation(&self, id: &str) -> Result<OperationStatus> {
        let _deadline = CallDeadline::start(self.config.deadline);
        let resp = self
            .api(
                Method::GET,
                &["api", "operations", id],
                None,
                RetryPolicy::Idempotent,
            )
            .map_err(|e| e.with_operation(id))?;
        if !(200..300).contains(&resp.status) {
            return Err(
                from_server_reply(resp.status, &resp.body, resp.retry_after).with_operation(id)
            );
        }
        let v: Value = serde_json::from_slice(&resp.body).map_err(|_| {
            Error::bad_response("the operation status is not JSON").with_operation(id)
        })?;
        OperationStatus::parse(id, &v)
    }

    /// The operations this identity may see (`GET /api/operations?status=`, an extension):
    /// `filter` is `all` or a state name (`pending`, `approved`, ...).
    pub fn operations(&self, filter: &str) -> Result<Vec<OperationStatus>> {
        let url_segments = ["api", "operations"];
        let resp = self.api_query(&url_segments, &[("status", filter)])?;
        if resp.status == 404 || resp.status == 405 {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the server cannot list operations (an extension of the dev KeyServer)",
            )
            .with_remedy("see the operations in the KeyServer web UI (keyclient)"));
        }
        if !(200..300).contains(&resp.status) {
            return Err(from_server_reply(resp.status, &resp.body, resp.retry_after));
        }
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|_| Error::bad_response("the operation list is not JSON"))?;
        let list = v
            .as_array()
            .ok_or_else(|| Error::bad_response("the operation list is not a JSON array"))?;
        list.iter()
            .map(|o| {
                let id = o
                    .get("id")
                    .and_then(|i| i.as_str().map(String::from).or_else(|| Some(i.to_string())))
                    .unwrap_or_default();
                OperationStatus::parse(&id, o)
            })
            .collect()
    }

    fn decide(&self, id: &str, verb: &str) -> Result<OperationStatus> {
        let _deadline = CallDeadline::start(self.config.deadline);
        let resp = self
            .api(
                Method::POST,
                &["api", "operations", id, verb],
                None,
                RetryPolicy::NotSentOnly,
            )
            .map_err(|e| e.with_operation(id))?;
        if !(200..300).contains(&resp.status) {
            let e = from_server_reply(resp.status, &resp.body, resp.retry_after).with_operation(id);
            if resp.status == 404 || resp.status == 405 {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!("the server has no {verb} API (an extension of the dev KeyServer)"),
                )
                .with_operation(id)
                .with_remedy("approve in the KeyServer web UI (keyclient)"));
            }
            return Err(e);
        }
        // The reply is the operation status on the dev server; ask if it is anything else.
        match serde_json::from_slice::<Value>(&resp.body) {
            Ok(v) if v.get("approved").is_some() || v.get("status").is_some() => {
                OperationStatus::parse(id, &v)
            }
            _ => self.operation(id),
        }
    }

    /// Approves operation `id` with this client's identity (extension API).
    pub fn approve(&self, id: &str) -> Result<OperationStatus> {
        self.decide(id, "approve")
    }

    /// Rejects operation `id` with this client's identity (extension API).
    pub fn reject(&self, id: &str) -> Result<OperationStatus> {
        self.decide(id, "reject")
    }

    /// Polls operation `id` with backoff until it is approved (`Ok`), reaches a final state
    /// (`Rejected`/`Expired`/`Exhausted` error) or `timeout` passes (`Pending` error).
    /// `progress` is called after every poll that found it still pending.
    pub fn wait_for_approval(
        &self,
        id: &str,
        timeout: Duration,
        progress: &mut dyn FnMut(&OperationStatus),
    ) -> Result<OperationStatus> {
        let start = Instant::now();
        let mut delay = POLL_START;
        loop {
            let st = self.operation(id)?;
            let final_error =
                |kind: ErrorKind, what: String| Err(Error::new(kind, what).with_operation(id));
            match st.state {
                OperationState::Approved => return Ok(st),
                OperationState::Rejected => {
                    let by = if st.rejected_by.is_empty() {
                        String::new()
                    } else {
                        format!(" by {}", st.rejected_by.join(", "))
                    };
                    return final_error(
                        ErrorKind::Rejected,
                        format!("the operation was rejected{by}"),
                    );
                }
                OperationState::Expired => {
                    return final_error(
                        ErrorKind::Expired,
                        "the operation expired before it was approved".into(),
                    )
                }
                OperationState::Exhausted => {
                    return final_error(
                        ErrorKind::Exhausted,
                        "every use in the operation is spent".into(),
                    )
                }
                OperationState::Pending => {}
            }
            if st.expires_in() == Some(Duration::ZERO) {
                return final_error(
                    ErrorKind::Expired,
                    "the operation expired before it was approved".into(),
                );
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(Error::new(
                    ErrorKind::Pending,
                    format!(
                        "still not approved after {} ({})",
                        format_duration(timeout),
                        st.summary()
                            .strip_prefix(&format!("operation {}: ", st.id))
                            .unwrap_or(&st.summary())
                    ),
                )
                .with_operation(id));
            }
            progress(&st);
            std::thread::sleep(delay.min(timeout - elapsed));
            delay = (delay + delay / 2).min(POLL_MAX);
        }
    }
}

/// A 401 that a fresh token cannot fix: say why the token is refused if we can tell.
fn auth_error(resp: &Response, token: &str, config: &Config) -> Error {
    let mut e = from_server_reply(resp.status, &resp.body, None);
    if let Some(exp) = jwt_expiry(token) {
        if let Ok(ago) = std::time::SystemTime::now().duration_since(exp) {
            e = Error::new(
                ErrorKind::Auth,
                format!("the token expired {} ago", format_duration(ago)),
            )
            .with_server(401, e.server_code().map(String::from), None);
        }
    }
    if let Some(r) = refused_remedy(config, token) {
        e = e.with_remedy(r);
    } else if Identity::of(config) == Identity::Token && !config.has_client_credentials() {
        e = e.with_remedy(format!(
            "fetch a new token (export {KSC_ID_TOKEN}=$(ksc token)) or configure client credentials for automatic refresh"
        ));
    }
    e
}
