//! Signing through a [`Client`]: the sign order (requestid, safe retries, approval wait) and
//! the checks on its reply, including local verification of the returned signature.

use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::Method;
use serde_json::Value;

use crate::catalog;
use crate::config::KSC_APPROVAL_TIMEOUT;
use crate::duration::format_duration;
use crate::error::{from_server_reply, Error, ErrorKind, Result};
use crate::http::{CallDeadline, RetryPolicy};
use crate::keys::KeyEntry;
use crate::operation::OperationStatus;
use crate::sign::{pad_description, SignRequest};

use super::Client;

impl Client {
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
