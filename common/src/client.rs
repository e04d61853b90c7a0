//! The KeyServer client: the one object the adapters and `ksc` use.
//!
//! It owns the configuration, the lazily created HTTPS engine, the token source and the key
//! catalog cache. Every method is synchronous and may be called from many threads at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::cache::{entry_name, now_secs, DiskCache};
use crate::catalog;
use crate::config::{Config, KSC_APPROVAL_TIMEOUT, KSC_AUTH_SERVER, KSC_ID_TOKEN};
use crate::duration::format_duration;
use crate::error::{from_server_reply, Error, ErrorKind, Result};
use crate::flight::Flight;
use crate::http::{join_url, CallDeadline, Http, Request, Response, RetryPolicy};
use crate::keys::KeyEntry;
use crate::operation::{parse_created_id, OperationSpec, OperationState, OperationStatus};
use crate::sign::{pad_description, SignRequest};
use crate::token::{jwt_expiry, TokenSource};
use crate::trust::{TrustPolicy, UntrustedKey};

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

/// A key catalog in the per-user cache: the server's reply as received.
#[derive(serde::Serialize, serde::Deserialize)]
struct DiskCatalog {
    url: String,
    identity: String,
    /// Unix seconds.
    fetched: f64,
    body: String,
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
}

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
        Client {
            http: Http::new(&config),
            tokens: TokenSource::with_cache(DiskCache::from_config(&config)),
            disk: DiskCache::from_config(&config),
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
            let fetched = self.config.id_token.is_none() && self.config.has_client_credentials();
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
        let mut refreshed = false;
        loop {
            let token = self.token()?;
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
                if !refreshed && self.tokens.can_refresh(&self.config) {
                    log::info!("token refused (HTTP 401); fetching a new one");
                    self.tokens.invalidate(&token, &self.config);
                    refreshed = true;
                    continue;
                }
                return Err(auth_error(&resp, &token, &self.config));
            }
            return Ok(resp);
        }
    }

    /// The key catalog: from memory, else from the per-user cache if younger than
    /// [`CATALOG_TTL`], else `GET /api/keys`. Concurrent first callers cause one load (single
    /// flight, no lock held on the network). A failed fetch is not cached.
    pub fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
        let _deadline = CallDeadline::start(self.config.deadline);
        Ok(self.loaded_keys()?.keys)
    }

    fn loaded_keys(&self) -> Result<Loaded> {
        self.keys.get(
            |_| true,
            |_| true,
            || match self.catalog_from_disk() {
                Some(l) => Ok(l),
                None => self.fetch_keys(),
            },
        )
    }

    /// Replaces a catalog read from the per-user cache by the server's (once per process: a
    /// catalog already confirmed by the server is returned as is).
    fn refresh_keys(&self) -> Result<Loaded> {
        self.keys
            .get(|l| !l.from_cache, |_| false, || self.fetch_keys())
    }

    /// The name of the catalog entry in the per-user cache: server, identity and trust anchors
    /// (a test server reusing a port has another CA file and another catalog).
    fn catalog_entry(&self) -> Option<(String, String)> {
        let url = self.config.api_server.as_deref()?;
        let identity = if self.config.has_client_credentials() && self.config.id_token.is_none() {
            format!("client:{}", self.config.client_id.as_deref()?)
        } else {
            let token = self.config.id_token.as_deref()?;
            let digest = crate::hash::digest(crate::HashAlg::Sha256, token.as_bytes());
            format!("token:{}", hex::encode(&digest[..16]))
        };
        let ca = self
            .config
            .ca_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Some((entry_name("catalog", &[url, &identity, &ca]), identity))
    }

    fn catalog_from_disk(&self) -> Option<Loaded> {
        let disk = self.disk.as_ref()?;
        // An expired KSC_ID_TOKEN must meet the server's refusal, not a cached answer.
        if let Some(exp) = self.config.id_token.as_deref().and_then(jwt_expiry) {
            if exp <= std::time::SystemTime::now() {
                return None;
            }
        }
        let (name, identity) = self.catalog_entry()?;
        let entry: DiskCatalog = serde_json::from_slice(&disk.read(&name)?).ok()?;
        let age = now_secs() - entry.fetched;
        if Some(entry.url.as_str()) != self.config.api_server.as_deref()
            || entry.identity != identity
            || !(0.0..CATALOG_TTL.as_secs_f64()).contains(&age)
        {
            return None;
        }
        let cat = catalog::parse_keys(entry.body.as_bytes()).ok()?;
        if cat.has_extensions {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        log::debug!("{} keys from the cache ({age:.0}s old)", cat.keys.len());
        self.trusted(cat.keys, true).ok()
    }

    fn fetch_keys(&self) -> Result<Loaded> {
        let resp = self.api(Method::GET, &["api", "keys"], None, RetryPolicy::Idempotent)?;
        if !(200..300).contains(&resp.status) {
            return Err(from_server_reply(resp.status, &resp.body, resp.retry_after));
        }
        let cat = catalog::parse_keys(&resp.body)?;
        if cat.has_extensions {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        log::debug!("{} keys in the catalog", cat.keys.len());
        if let (Some(disk), Some((name, identity)), Ok(body)) = (
            self.disk.as_ref(),
            self.catalog_entry(),
            std::str::from_utf8(&resp.body),
        ) {
            let entry = DiskCatalog {
                url: self.config.api_server.clone().unwrap_or_default(),
                identity,
                fetched: now_secs(),
                body: body.to_string(),
            };
            if let Ok(bytes) = serde_json::to_vec(&entry) {
                disk.write(&name, &bytes);
            }
        }
        self.trusted(cat.keys, false)
    }

    /// Applies `KSC_SIGNING_CA_FILE`/`KSC_KEY_PINS` to a catalog, from the server or from the
    /// per-user cache alike: refused keys are left out (with one warning each) and kept aside
    /// with the reason.
    fn trusted(&self, keys: Vec<KeyEntry>, from_cache: bool) -> Result<Loaded> {
        let (keys, untrusted) = match TrustPolicy::from_config(&self.config)? {
            Some(policy) => {
                let (trusted, untrusted) = policy.partition(keys, std::time::SystemTime::now());
                for u in &untrusted {
                    log::warn!("key {} is not offered: {}", u.entry.keyid, u.reason);
                }
                (trusted, untrusted)
            }
            None => (keys, Vec::new()),
        };
        Ok(Loaded {
            keys: Arc::new(keys),
            untrusted: Arc::new(untrusted),
            from_cache,
        })
    }

    /// The listed keys that `KSC_SIGNING_CA_FILE`/`KSC_KEY_PINS` refused, with the reasons
    /// (empty when neither is set). Loads the catalog if needed.
    pub fn untrusted_keys(&self) -> Result<Arc<Vec<UntrustedKey>>> {
        let _deadline = CallDeadline::start(self.config.deadline);
        Ok(self.loaded_keys()?.untrusted)
    }

    /// One trusted key of the catalog; `NotFound` names the known keys, an untrusted key is a
    /// `VerificationFailed` error with the reason. A key missing from a cached catalog
    /// refreshes it first.
    pub fn key(&self, keyid: &str) -> Result<KeyEntry> {
        Ok(self.key_entry(keyid)?.0)
    }

    /// The key and whether it came from the per-user cache.
    fn key_entry(&self, keyid: &str) -> Result<(KeyEntry, bool)> {
        let loaded = self.loaded_keys()?;
        if let Some(u) = loaded.untrusted.iter().find(|u| u.entry.keyid == keyid) {
            return Err(Error::new(
                ErrorKind::VerificationFailed,
                format!("the key is not trusted: {}", u.reason),
            )
            .with_key(keyid)
            .with_remedy(format!(
                "nothing was signed; check {} and {} (ksc keys shows every key with the reason), and ask the KeyServer administrator which CA issues its signing certificates",
                crate::config::KSC_SIGNING_CA_FILE,
                crate::config::KSC_KEY_PINS
            )));
        }
        match catalog::find_key(&loaded.keys, keyid) {
            Err(e) if e.kind() == ErrorKind::NotFound && loaded.from_cache => {
                log::debug!("key {keyid} not in the cached catalog; asking the server");
                let fresh = self.refresh_keys()?;
                Ok((catalog::find_key(&fresh.keys, keyid)?, fresh.from_cache))
            }
            other => Ok((other?, loaded.from_cache)),
        }
    }

    /// Signs under the configured operation (`KSC_OPERATION_ID`), with a fresh requestid, safe
    /// retries, an approval wait of up to `KSC_APPROVAL_TIMEOUT` when the operation is pending,
    /// and local verification of the returned signature before it is handed out.
    pub fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>> {
        self.sign_with_requestid(keyid, request, &uuid::Uuid::new_v4().to_string())
    }

    /// [`Client::sign`] with the caller's `requestid` (1 to 128 characters): a caller that derives
    /// it from what is signed (`ksc sign` uses operation, key and digest) can repeat an
    /// interrupted run, and a server that honours requestids replays the stored answer instead of
    /// spending a second use.
    pub fn sign_with_requestid(
        &self,
        keyid: &str,
        request: &SignRequest,
        requestid: &str,
    ) -> Result<Vec<u8>> {
        // The approval wait is the user's own, separate bound; the deadline covers the rest.
        let _deadline = CallDeadline::start(
            self.config
                .deadline
                .saturating_add(self.config.approval_timeout),
        );
        let op = self.config.require_operation_id()?.to_string();
        let ctx = |e: Error| e.with_key(keyid).with_operation(&op);
        if requestid.is_empty() || requestid.len() > 128 {
            return Err(ctx(Error::invalid_input(
                "a requestid must be 1 to 128 characters",
            )));
        }
        let (mut entry, mut from_cache) = self.key_entry(keyid).map_err(ctx)?;
        if from_cache && request.validate(&entry.public_key).is_err() {
            // The cached certificate may be out of date: decide with the server's.
            entry = self
                .refresh_keys()
                .and_then(|l| catalog::find_key(&l.keys, keyid))
                .map_err(ctx)?;
            from_cache = false;
        }
        request.validate(&entry.public_key).map_err(ctx)?;
        let requestid = requestid.to_string();
        let started_sign = Instant::now();
        let mut body = request.wire_fields().map_err(ctx)?;
        body.insert("operationid".into(), Value::String(op.clone()));
        body.insert("keyid".into(), Value::String(keyid.to_string()));
        body.insert(
            "description".into(),
            Value::String(pad_description(&self.config.operation_description)),
        );
        body.insert("requestid".into(), Value::String(requestid.clone()));
        let body = Value::Object(body);

        let wait_limit = self.config.approval_timeout;
        let started = Instant::now();
        loop {
            let policy = if self.requestid_supported.load(Ordering::Relaxed) {
                RetryPolicy::Idempotent
            } else {
                RetryPolicy::NotSentOnly
            };
            log::debug!(
                "sign order {requestid}: {} with {keyid} in operation {op}",
                request.describe()
            );
            let resp = self
                .api(Method::POST, &["api", "signorders"], Some(&body), policy)
                .map_err(ctx)?;
            if (200..300).contains(&resp.status) {
                let result = self.finish_sign(&entry, request, &resp.body, &requestid);
                let result = match result {
                    Err(e) if e.kind() == ErrorKind::VerificationFailed && from_cache => {
                        // Checked against a cached certificate: check against the server's
                        // current one before calling the signature wrong (no new sign order).
                        log::info!("key {keyid}: signature does not match the cached certificate; refreshing the catalog");
                        let fresh = self
                            .refresh_keys()
                            .and_then(|l| catalog::find_key(&l.keys, keyid))
                            .map_err(ctx)?;
                        if fresh.public_key == entry.public_key {
                            return Err(ctx(e));
                        }
                        self.finish_sign(&fresh, request, &resp.body, &requestid)
                            .map_err(ctx)
                    }
                    other => other.map_err(ctx),
                };
                if result.is_ok() {
                    log::info!(
                        "signed: key {keyid}, operation {op}, digest {}, {} in {}, request {requestid}",
                        digest_prefix(request),
                        request.describe(),
                        format_duration(started_sign.elapsed())
                    );
                }
                return result;
            }
            let err = ctx(from_server_reply(resp.status, &resp.body, resp.retry_after));
            if err.kind() != ErrorKind::Pending {
                return Err(err);
            }
            let left = wait_limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                let remedy = if wait_limit.is_zero() {
                    format!("have an approver approve it (ksc operation approve {op}), or set {KSC_APPROVAL_TIMEOUT} (e.g. 5m) to wait")
                } else {
                    format!("still not approved after {}; have an approver approve it or raise {KSC_APPROVAL_TIMEOUT}", format_duration(wait_limit))
                };
                return Err(err.with_remedy(remedy));
            }
            // Tell the user once, on stderr, what the signature waits for.
            let mut told = false;
            let mut tell = |st: &OperationStatus| {
                if !told {
                    told = true;
                    eprintln!(
                        "keyserver: {}; waiting up to {} for approval ({KSC_APPROVAL_TIMEOUT})",
                        st.summary(),
                        format_duration(left)
                    );
                }
            };
            self.wait_for_approval(&op, left, &mut tell).map_err(ctx)?;
            // Approved: send the same order again (same requestid).
        }
    }

    /// Checks and decodes a sign reply, then verifies the signature with the certificate's key.
    pub(crate) fn finish_sign(
        &self,
        entry: &KeyEntry,
        request: &SignRequest,
        body: &[u8],
        requestid: &str,
    ) -> Result<Vec<u8>> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| Error::bad_response("the sign reply is not JSON"))?;
        if v.get("requestid").and_then(|r| r.as_str()) == Some(requestid) {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        if let Some(k) = v.get("keyid").and_then(|k| k.as_str()) {
            if k != entry.keyid {
                return Err(Error::new(
                    ErrorKind::VerificationFailed,
                    format!("the server answered for key {k:?} instead"),
                ));
            }
        }
        let result = v
            .get("result")
            .and_then(|r| r.as_str())
            .ok_or_else(|| Error::bad_response("the sign reply has no \"result\""))?;
        let sig = hex::decode(result.trim())
            .map_err(|_| Error::bad_response("the sign reply's \"result\" is not hex"))?;
        let checked = crate::intent::decode_signature(&entry.public_key, request, sig);
        checked.map_err(|e| {
            if e.kind() == ErrorKind::VerificationFailed {
                log::error!(
                    "key {}: the signature returned by the server does not verify; discarded",
                    entry.keyid
                );
                e.with_remedy("the signature was discarded: the server signed with a different key or the reply was altered; check KSC_API_SERVER and contact the KeyServer administrator")
            } else {
                e
            }
        })
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
    if config.id_token.is_some() && !config.has_client_credentials() {
        e = e.with_remedy(format!(
            "fetch a new token (export {KSC_ID_TOKEN}=$(ksc token)) or configure client credentials for automatic refresh"
        ));
    }
    e
}

/// The first 8 bytes of what is signed, in hex, for the one info line per signature: enough to
/// match a log line with a file's digest, never the whole input.
fn digest_prefix(request: &SignRequest) -> String {
    let d: Vec<u8> = match request {
        SignRequest::RsaPkcs1DigestInfo { digest_info } => {
            crate::hash::parse_digest_info(digest_info)
                .map(|(_, digest)| digest)
                .unwrap_or_else(|_| digest_info.clone())
        }
        SignRequest::RsaPkcs1 { digest, .. }
        | SignRequest::RsaPss { digest, .. }
        | SignRequest::Ecdsa { digest, .. } => digest.clone(),
    };
    hex::encode(&d[..d.len().min(8)])
}
