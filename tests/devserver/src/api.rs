//! Request routing and the handlers of both servers (auth and API).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::audit::AuditEntry;
use crate::error::{ApiError, ApiResult};
use crate::faults::{DroppedConnection, Fault, FaultConfig, HoldGate, NO_FAULT_HEADER};
use crate::jwt::TokenVerifier;
use crate::keyring::KeyRing;
use crate::operations::{CreateRequest, KeyUsage, Operation};
use crate::signorders::{execute, SignOrderRequest};
use crate::stats::{InFlight, Stats};
use crate::store::{Store, StoredSign};
use crate::users::{Principal, Users};
use crate::util::now_ms;

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The auth server (tokens).
    Auth,
    /// The API server.
    Api,
}

/// Everything the handlers share.
pub struct App {
    /// Users and rights.
    pub users: Users,
    /// Token issuing and checking.
    pub tokens: TokenVerifier,
    /// Keys.
    pub keys: KeyRing,
    /// Database.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Stats,
    /// Injected faults.
    pub faults: FaultConfig,
    /// The `--fault-hold-keys` gate.
    pub gate: HoldGate,
    /// Request body limit.
    pub max_body: usize,
    /// Sessions of the approvers' web page (`/ui/`).
    pub web: crate::web::WebState,
    /// Failed credential checks (token endpoint and web login alike).
    pub limiter: crate::limits::CredentialLimiter,
    /// Whether SHA-1 DigestInfo inputs are signed (config `allow_sha1`; off by default).
    pub allow_sha1: bool,
}

/// The response type of every handler.
pub type Resp = Response<Full<Bytes>>;

fn json_response(status: u16, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r
}

fn error_response(e: &ApiError) -> Resp {
    let mut r = json_response(e.status, &e.body());
    if let Some(s) = e.retry_after {
        r.headers_mut().insert("retry-after", HeaderValue::from(s));
    }
    if e.status == 401 {
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    }
    r
}

/// Runs blocking work (database, signing) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("worker failed: {e}"))))
}

/// Entry point for one request on `listener`.
pub async fn handle(
    app: Arc<App>,
    listener: Listener,
    req: Request<Incoming>,
) -> Result<Resp, DroppedConnection> {
    Stats::inc(&app.stats.requests);
    let path = req.uri().path().to_string();
    if listener == Listener::Api && path == "/api/dev/stats" {
        return Ok(json_response(200, &app.stats.json()));
    }
    if listener == Listener::Api && path.starts_with("/api/dev/gate/") {
        return Ok(gate_control(&app, req.method(), &path).await);
    }
    // Held across the injected latency too: with latency on, the peak shows
    // whether a client really sends sign orders in parallel.
    let _in_flight = (listener == Listener::Api && path == "/api/signorders")
        .then(|| InFlight::start(&app.stats));
    let exempt = req.headers().contains_key(NO_FAULT_HEADER);
    if !exempt && listener == Listener::Api && path == "/api/keys" && req.method() == Method::GET {
        app.gate.hold().await;
    }
    let mut fault = Fault::None;
    if !exempt && app.faults.any() {
        if !app.faults.latency.is_zero() {
            tokio::time::sleep(app.faults.latency).await;
        }
        fault = app.faults.draw();
        if fault != Fault::None {
            Stats::inc(&app.stats.faults);
        }
        match fault {
            Fault::DropBefore => return Err(DroppedConnection),
            Fault::Error5xx => return Ok(error_response(&ApiError::injected_5xx())),
            Fault::RateLimit => return Ok(error_response(&ApiError::rate_limited(1))),
            _ => {}
        }
    }
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let result = route(&app, listener, req).await;
    // Access log on stderr (the harness keeps it in server.log): no headers,
    // so never a token or a secret.
    eprintln!(
        "ks-devserver: {method} {path} {} {}ms{}",
        match &result {
            Ok(r) => r.status().as_u16().to_string(),
            Err(e) => format!("{} {}", e.status, e.code),
        },
        started.elapsed().as_millis(),
        if fault == Fault::DropAfter {
            " (answer dropped: injected fault)"
        } else {
            ""
        }
    );
    if fault == Fault::DropAfter {
        // The request took effect; the caller never hears about it.
        return Err(DroppedConnection);
    }
    Ok(match result {
        Ok(r) => r,
        Err(e) => {
            if e.status < 500 {
                Stats::inc(&app.stats.client_errors);
            }
            error_response(&e)
        }
    })
}

/// How long one `GET /api/dev/gate/held` waits before answering anyway (the
/// harness asks again): under the harness client's read timeout.
const GATE_POLL: std::time::Duration = std::time::Duration::from_secs(20);

/// The test's side of the hold gate: `GET /api/dev/gate/held` answers once a
/// request is held (or after [`GATE_POLL`]), `POST /api/dev/gate/release`
/// lets them go; both answer `{"held": N}`.
async fn gate_control(app: &App, method: &Method, path: &str) -> Resp {
    if !app.gate.enabled() {
        return error_response(&ApiError::not_found(
            "the hold gate is off (start the server with --fault-hold-keys)",
        ));
    }
    match (path, method) {
        ("/api/dev/gate/held", &Method::GET) => {
            json_response(200, &json!({"held": app.gate.wait_held(GATE_POLL).await}))
        }
        ("/api/dev/gate/release", &Method::POST) => {
            json_response(200, &json!({"held": app.gate.release()}))
        }
        ("/api/dev/gate/held" | "/api/dev/gate/release", _) => error_response(
            &ApiError::method_not_allowed(format!("{method} is not allowed on {path}")),
        ),
        _ => error_response(&ApiError::not_found(format!("no such endpoint {path}"))),
    }
}

async fn route(app: &Arc<App>, listener: Listener, req: Request<Incoming>) -> ApiResult<Resp> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    match listener {
        Listener::Auth => match (segs.as_slice(), &method) {
            (["oauth2", "token"], &Method::POST) => token(app, req).await,
            (["oauth2", "token"], _) => Err(ApiError::method_not_allowed("use POST")),
            ([".well-known", "jwks.json"], &Method::GET) => {
                Ok(json_response(200, &app.tokens.own.jwks()))
            }
            _ => Err(ApiError::not_found(format!("no such endpoint {path}"))),
        },
        Listener::Api if crate::web::is_ui_path(req.uri().path()) => {
            Ok(crate::web::handle(app, req).await)
        }
        Listener::Api => {
            let seg_ok = segs.iter().all(|s| s.len() <= 128);
            if !seg_ok {
                return Err(ApiError::not_found("no such endpoint"));
            }
            match (segs.as_slice(), &method) {
                (["api", "keys"], &Method::GET) => keys(app, &req),
                (["api", "operations"], &Method::POST) => create_operation(app, req).await,
                (["api", "operations"], &Method::GET) => list_operations(app, &req, &query).await,
                (["api", "operations", id], &Method::GET) => {
                    get_operation(app, &req, id.to_string()).await
                }
                (["api", "operations", id, "approve"], &Method::POST) => {
                    decide(app, &req, id.to_string(), true).await
                }
                (["api", "operations", id, "reject"], &Method::POST) => {
                    decide(app, &req, id.to_string(), false).await
                }
                (["api", "signorders"], &Method::POST) => sign_order(app, req).await,
                (["api", "dev", "audit"], &Method::GET) => audit_log(app, &req, &query).await,
                (["api", "keys"], _)
                | (["api", "operations"], _)
                | (["api", "operations", _], _)
                | (["api", "operations", _, "approve" | "reject"], _)
                | (["api", "signorders"], _) => Err(ApiError::method_not_allowed(format!(
                    "{method} is not allowed on {path}"
                ))),
                _ => Err(ApiError::not_found(format!("no such endpoint {path}"))),
            }
        }
    }
}

/// How much of an oversized body is read and discarded before refusing it:
/// closing a connection with unread data makes the kernel send a reset that
/// can destroy the 400 before the client reads it.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// Reads the body within the size limit.
pub(crate) async fn read_body(app: &App, req: Request<Incoming>) -> ApiResult<Bytes> {
    let too_big = || {
        ApiError::invalid(format!(
            "request body is larger than {} bytes",
            app.max_body
        ))
    };
    let declared = match req.headers().get(CONTENT_LENGTH) {
        Some(len) => Some(
            len.to_str()
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| ApiError::invalid("bad Content-Length"))?,
        ),
        None => None,
    };
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_big());
    }
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::invalid(format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= app.max_body {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > app.max_body {
        return Err(too_big());
    }
    Ok(Bytes::from(buf))
}

fn require_json(req: &Request<Incoming>) -> ApiResult<()> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        Ok(())
    } else {
        Err(ApiError::invalid("Content-Type must be application/json"))
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("bad JSON body: {e}")))
}

fn authenticate(app: &App, req: &Request<Incoming>) -> ApiResult<Principal> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header is not a Bearer token"))?;
    if token.len() > 16 * 1024 {
        return Err(ApiError::unauthorized("the bearer token is too long"));
    }
    app.tokens.verify(token, &app.users)
}

pub(crate) fn form_decode(s: &str) -> String {
    fn hexval(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hexval(bytes[i + 1]), hexval(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST /oauth2/token` — OAuth 2.0 client credentials with HTTP Basic.
async fn token(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let invalid_client = || {
        let mut r = json_response(
            401,
            &json!({"error": "invalid_client", "message": "unknown client or wrong secret"}),
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"ks-devserver\""),
        );
        r
    };
    let basic = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = read_body(app, req).await?;
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::invalid(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let body = std::str::from_utf8(&body).map_err(|_| ApiError::invalid("body is not UTF-8"))?;
    let mut grant = None;
    let mut form_id = None;
    let mut form_secret = None;
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match form_decode(k).as_str() {
            "grant_type" => grant = Some(form_decode(v)),
            "client_id" => form_id = Some(form_decode(v)),
            "client_secret" => form_secret = Some(form_decode(v)),
            _ => {}
        }
    }
    match grant.as_deref() {
        Some("client_credentials") => {}
        Some(other) => {
            return Ok(json_response(
                400,
                &json!({"error": "unsupported_grant_type",
                        "message": format!("grant_type {other:?} is not supported; use client_credentials")}),
            ))
        }
        None => return Err(ApiError::invalid("grant_type is missing")),
    }
    // `None`: credentials that cannot even be read (they still count as a
    // failure, under the empty client id).
    let creds = match basic {
        Some(h) => h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
            .and_then(|b64| B64.decode(b64.trim()).ok())
            .and_then(|raw| {
                let raw = String::from_utf8_lossy(&raw).into_owned();
                raw.split_once(':')
                    .map(|(i, s)| (form_decode(i), form_decode(s)))
            }),
        None => form_id.zip(form_secret),
    };
    let client = creds.as_ref().map(|(i, _)| i.as_str()).unwrap_or("");
    let audit_who = client.chars().take(64).collect::<String>();
    let store = app.store.clone();
    // Refused before the secret is compared: a brute force learns nothing.
    if let Err(refusal) = app.limiter.check(client) {
        let entry = AuditEntry::new(&audit_who, "token").outcome("rate_limited");
        blocking(move || store.audit(entry)).await?;
        return Err(ApiError::throttled(refusal.retry_after, refusal.message));
    }
    let user = creds
        .as_ref()
        .and_then(|(id, secret)| app.users.authenticate(id, secret))
        .map(|u| u.name.clone());
    let Some(name) = user else {
        app.limiter.failed(client);
        let entry = AuditEntry::new(&audit_who, "token").outcome("invalid_client");
        blocking(move || store.audit(entry)).await?;
        return Ok(invalid_client());
    };
    let (token, expires_in) = app.tokens.own.issue(&name);
    Stats::inc(&app.stats.tokens);
    let entry = AuditEntry::new(&name, "token");
    blocking(move || store.audit(entry)).await?;
    Ok(json_response(
        200,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}),
    ))
}

/// `GET /api/keys`.
fn keys(app: &Arc<App>, req: &Request<Incoming>) -> ApiResult<Resp> {
    authenticate(app, req)?;
    let list: Vec<Value> = app
        .keys
        .ordered
        .iter()
        .map(|k| {
            json!({
                "keyid": k.spec.id,
                "keyinfo": k.spec.info,
                "certificate": k.cert_pem,
                "approvers": k.spec.approvers,
                "algorithm": k.spec.algorithm.to_string(),
            })
        })
        .collect();
    Ok(json_response(200, &Value::Array(list)))
}

/// `POST /api/operations`.
async fn create_operation(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let p = authenticate(app, &req)?;
    require_json(&req)?;
    let body = read_body(app, req).await?;
    let store = app.store.clone();
    let refuse = |e: ApiError| {
        let entry = AuditEntry::new(&p.id, "create").outcome(e.code);
        let store = store.clone();
        async move {
            blocking(move || store.audit(entry)).await?;
            Err::<Resp, ApiError>(e)
        }
    };
    if !p.rights.create {
        return refuse(ApiError::forbidden(format!(
            "{} may not create operations",
            p.id
        )))
        .await;
    }
    let cr: CreateRequest = parse_json(&body)?;
    cr.validate()?;
    let mut keys = Vec::new();
    for r in &cr.restrictions {
        let Some(k) = app.keys.get(&r.keyid) else {
            return refuse(ApiError::not_found(format!(
                "key {} does not exist",
                r.keyid
            )))
            .await;
        };
        if !p.rights.sign.contains(&r.keyid) {
            return refuse(ApiError::forbidden(format!(
                "{} may not create operations for key {}",
                p.id, r.keyid
            )))
            .await;
        }
        keys.push(KeyUsage {
            keyid: r.keyid.clone(),
            maxusagecount: r.maxusagecount,
            usagecount: 0,
            requiredapprovals: k.spec.approvers,
            approvedby: Vec::new(),
        });
    }
    let now = now_ms();
    let createdby = p.id.clone();
    let createdcontext = p.context.clone();
    let entry = AuditEntry::new(&p.id, "create");
    let op = blocking(move || {
        store.create_operation(
            |id| Operation {
                id,
                description: cr.description,
                createdby,
                createdat_ms: now,
                validms: cr.validms,
                keys,
                rejectedby: None,
                createdcontext,
            },
            entry,
        )
    })
    .await?;
    Stats::inc(&app.stats.operations);
    Ok(json_response(201, &op.to_json(now_ms())))
}

async fn load_visible(app: &Arc<App>, p: &Principal, id: String) -> ApiResult<Operation> {
    let store = app.store.clone();
    let idc = id.clone();
    let op = blocking(move || store.operation(&idc))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("operation {id} does not exist")))?;
    if !op.visible_to(p) {
        return Err(ApiError::forbidden(format!(
            "{} may not see operation {id}",
            p.id
        )));
    }
    Ok(op)
}

/// `GET /api/operations/{id}`.
async fn get_operation(app: &Arc<App>, req: &Request<Incoming>, id: String) -> ApiResult<Resp> {
    let p = authenticate(app, req)?;
    let op = load_visible(app, &p, id).await?;
    Ok(json_response(200, &op.to_json(now_ms())))
}

/// `GET /api/operations[?status=...]`.
async fn list_operations(app: &Arc<App>, req: &Request<Incoming>, query: &str) -> ApiResult<Resp> {
    let p = authenticate(app, req)?;
    let mut want = None;
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        if let Some(("status", v)) = pair.split_once('=') {
            match v {
                "pending" | "approved" | "rejected" | "expired" | "exhausted" => {
                    want = Some(v.to_string())
                }
                "all" => want = None,
                other => {
                    return Err(ApiError::invalid(format!(
                        "unknown status filter {other:?}"
                    )))
                }
            }
        }
    }
    let store = app.store.clone();
    let mut ops = blocking(move || store.operations()).await?;
    ops.sort_by_key(|o| o.createdat_ms);
    let now = now_ms();
    let list: Vec<Value> = ops
        .iter()
        .filter(|o| o.visible_to(&p))
        .filter(|o| want.as_deref().is_none_or(|w| o.status(now).name() == w))
        .map(|o| o.to_json(now))
        .collect();
    Ok(json_response(200, &Value::Array(list)))
}

/// `POST /api/operations/{id}/approve|reject`.
async fn decide(
    app: &Arc<App>,
    req: &Request<Incoming>,
    id: String,
    approve: bool,
) -> ApiResult<Resp> {
    let p = authenticate(app, req)?;
    let entry = AuditEntry::new(&p.id, if approve { "approve" } else { "reject" });
    let op = decide_as(app, p, id, approve, entry).await?;
    Ok(json_response(200, &op.to_json(now_ms())))
}

/// Approves or rejects operation `id` as `p` under the rules of
/// [`Operation::approve`]/[`Operation::reject`], auditing `entry` with the
/// outcome. The API and the web page both decide through here.
pub(crate) async fn decide_as(
    app: &Arc<App>,
    p: Principal,
    id: String,
    approve: bool,
    entry: AuditEntry,
) -> ApiResult<Operation> {
    let store = app.store.clone();
    let now = now_ms();
    blocking(move || {
        store.update_operation(
            &id,
            |op| {
                if !op.visible_to(&p) {
                    return Err(ApiError::forbidden(format!(
                        "{} may not see operation {}",
                        p.id, op.id
                    )));
                }
                if approve {
                    op.approve(&p, now)
                } else {
                    op.reject(&p, now)
                }
            },
            entry,
        )
    })
    .await
}

/// `POST /api/signorders`.
async fn sign_order(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let p = authenticate(app, &req)?;
    require_json(&req)?;
    let body = read_body(app, req).await?;
    let so: SignOrderRequest = parse_json(&body)?;
    so.validate_basic()?;
    let store = app.store.clone();
    let request_key = so.requestid.as_ref().map(|r| format!("{}\n{r}", p.id));
    let fingerprint = so.fingerprint();
    let replay = |stored: StoredSign| -> ApiResult<Resp> {
        if stored.fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "requestid was already used for a different sign order",
            ));
        }
        Stats::inc(&app.stats.signorder_replays);
        Ok(json_response(201, &stored.response))
    };
    if let Some(rk) = request_key.clone() {
        let s = store.clone();
        if let Some(stored) = blocking(move || s.stored_sign(&rk)).await? {
            return replay(stored);
        }
    }
    let audit = AuditEntry::new(&p.id, "sign")
        .op(&so.operationid)
        .key(&so.keyid)
        .digest(&so.inputdata);
    let pre = async {
        let key = app
            .keys
            .get(&so.keyid)
            .ok_or_else(|| ApiError::not_found(format!("key {} does not exist", so.keyid)))?
            .clone();
        let job = so.job_for(&key, app.allow_sha1)?;
        let s = store.clone();
        let op_id = so.operationid.clone();
        let op = blocking(move || s.operation(&op_id))
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("operation {} does not exist", so.operationid))
            })?;
        if !p.rights.sign.contains(&so.keyid) {
            return Err(ApiError::forbidden(format!(
                "{} may not sign with key {}",
                p.id, so.keyid
            )));
        }
        op.check_creator_may_sign(&p)?;
        op.check_can_sign(&so.keyid, now_ms())?;
        Ok((key, job))
    };
    let (key, job) = match pre.await {
        Ok(v) => v,
        Err(e) => {
            let entry = audit.outcome(e.code);
            let s = store.clone();
            blocking(move || s.audit(entry)).await?;
            return Err(e);
        }
    };
    let signature = blocking(move || execute(&job, &key.key)).await?;
    let response = so.response(&signature);
    let stored = StoredSign {
        fingerprint: fingerprint.clone(),
        response: response.clone(),
    };
    let op_id = so.operationid.clone();
    let keyid = so.keyid.clone();
    let rk = request_key.clone();
    let raced = blocking(move || {
        store.commit_sign(&op_id, &keyid, now_ms(), rk.as_deref(), &stored, audit)
    })
    .await?;
    if let Some(stored) = raced {
        return replay(stored);
    }
    Stats::inc(&app.stats.signorders);
    Ok(json_response(201, &response))
}

/// Audit entries `GET /api/dev/audit` returns by default, and at most.
const AUDIT_LIMIT: usize = 1000;
const AUDIT_MAX_LIMIT: usize = 10_000;

/// `GET /api/dev/audit[?limit=N][&before=SEQ]` (admins): the last `limit`
/// entries (oldest first) with a sequence number below `before`; page back
/// with `before` = the first entry's `seq`.
async fn audit_log(app: &Arc<App>, req: &Request<Incoming>, query: &str) -> ApiResult<Resp> {
    let p = authenticate(app, req)?;
    if !p.rights.admin {
        return Err(ApiError::forbidden(format!(
            "{} may not read the audit log",
            p.id
        )));
    }
    let mut limit = AUDIT_LIMIT;
    let mut before = u64::MAX;
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=AUDIT_MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "limit must be a number from 1 to {AUDIT_MAX_LIMIT}"
                        ))
                    })?
            }
            "before" => {
                before = v
                    .parse()
                    .map_err(|_| ApiError::invalid("before must be an audit sequence number"))?
            }
            _ => {}
        }
    }
    let store = app.store.clone();
    let log = blocking(move || store.audit_log(usize::MAX)).await?;
    let older: Vec<AuditEntry> = log.into_iter().filter(|e| e.seq < before).collect();
    let page = &older[older.len().saturating_sub(limit)..];
    Ok(json_response(200, &json!(page)))
}
