//! The KeyServer client: the one object the adapters and `ksc` use.
//!
//! It owns the configuration, the lazily created HTTPS engine, the token source and the key
//! catalog cache. Every method is synchronous and may be called from many threads at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::catalog;
use crate::config::{Config, KSC_APPROVAL_TIMEOUT, KSC_ID_TOKEN};
use crate::duration::format_duration;
use crate::error::{from_server_reply, Error, ErrorKind, Result};
use crate::http::{join_url, Http, Request, Response, RetryPolicy};
use crate::keys::KeyEntry;
use crate::operation::{parse_created_id, OperationSpec, OperationState, OperationStatus};
use crate::sign::{pad_description, SignRequest};
use crate::token::{jwt_expiry, TokenSource};

/// First poll interval while waiting for approval; grows by half each poll.
const POLL_START: Duration = Duration::from_millis(500);
/// Longest poll interval.
const POLL_MAX: Duration = Duration::from_secs(5);

/// A KeyServer client. `Send + Sync`; share it in an `Arc`.
pub struct Client {
    config: Config,
    http: Http,
    tokens: TokenSource,
    keys: Mutex<Option<Arc<Vec<KeyEntry>>>>,
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
    /// A client for `config`; does no I/O (the HTTPS client is created on first use).
    pub fn new(config: Config) -> Client {
        Client {
            http: Http::new(&config),
            config,
            tokens: TokenSource::new(),
            keys: Mutex::new(None),
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
        self.tokens.get(&self.config, &self.http)
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
            log::debug!("{} {}", req.method, req.url);
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

    /// The key catalog (`GET /api/keys`), fetched once per process and cached. A failed fetch
    /// is not cached.
    pub fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
        // Held across the fetch so concurrent first callers cause one GET, not many.
        let mut g = self
            .keys
            .lock()
            .map_err(|_| Error::internal("key cache lock poisoned"))?;
        if let Some(k) = g.as_ref() {
            return Ok(k.clone());
        }
        let resp = self.api(Method::GET, &["api", "keys"], None, RetryPolicy::Idempotent)?;
        if !(200..300).contains(&resp.status) {
            return Err(from_server_reply(resp.status, &resp.body, resp.retry_after));
        }
        let cat = catalog::parse_keys(&resp.body)?;
        if cat.has_extensions {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        log::debug!("{} keys in the catalog", cat.keys.len());
        let keys = Arc::new(cat.keys);
        *g = Some(keys.clone());
        Ok(keys)
    }

    /// One key of the catalog; `NotFound` names the known keys.
    pub fn key(&self, keyid: &str) -> Result<KeyEntry> {
        crate::catalog::find_key(&self.keys()?, keyid)
    }

    /// Signs under the configured operation (`KSC_OPERATION_ID`), with a fresh requestid, safe
    /// retries, an approval wait of up to `KSC_APPROVAL_TIMEOUT` when the operation is pending,
    /// and local verification of the returned signature before it is handed out.
    pub fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>> {
        let op = self.config.require_operation_id()?.to_string();
        let ctx = |e: Error| e.with_key(keyid).with_operation(&op);
        let entry = self.key(keyid).map_err(ctx)?;
        request.validate(&entry.public_key).map_err(ctx)?;
        let requestid = uuid::Uuid::new_v4().to_string();
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
                return self
                    .finish_sign(&entry, request, &resp.body, &requestid)
                    .map_err(ctx);
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

    fn decide(&self, id: &str, verb: &str) -> Result<OperationStatus> {
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
