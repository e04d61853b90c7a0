//! The approvers' web page ("keyclient" in the tutorial) under `/ui/` on the
//! API listener: log in with a demo user's client secret, see the operations
//! one may act on, approve or reject them after a confirmation, and (admins)
//! read the audit log.
//!
//! The page never has rules of its own: what it offers is decided by dry
//! runs of [`Operation::approve`]/[`Operation::reject`], and what it does goes
//! through `crate::api::decide_as`, the function behind
//! `POST /api/operations/{id}/approve|reject`. So the page cannot do what the
//! API refuses, and its actions are audited like the API's (marked `via: ui`).
//!
//! Security: a session cookie `__Host-keyclient` (HttpOnly, Secure,
//! SameSite=Strict, the id rotated at login), a per-session CSRF token in
//! every POST form (login and logout included) checked in constant time, an
//! Origin check, logins rate-limited together with the token endpoint
//! ([`crate::limits`]), a strict Content-Security-Policy (only
//! the page's own stylesheet and script), no caching.

// Handlers return a finished page as their error value (a redirect to the
// login page, a refusal); it is built once per request, boxing gains nothing.
#![allow(clippy::result_large_err)]

pub mod html;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Digest;

use crate::api::{blocking, decide_as, form_decode, read_body, App, Resp};
use crate::audit::AuditEntry;
use crate::error::ApiError;
use crate::operations::{Operation, Status};
use crate::users::Principal;
use crate::util::now_ms;

use html::{AuditFilter, OpView, Viewer};
pub use session::WebState;
use session::{same_secret, Flash, COOKIE as SESSION_COOKIE};

/// The client's address; the listener puts it into every request's
/// extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

const CSS: &str = include_str!("static/keyclient.css");
const JS: &str = include_str!("static/keyclient.js");

/// Operations shown at most on the list.
const MAX_LISTED: usize = 200;
/// Audit entries per page by default, and at most.
const AUDIT_PAGE: usize = 100;
const AUDIT_MAX_PAGE: usize = 500;

/// Is `path` one of the page's?
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

fn base(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with the latter Chromium sends
    // `Origin: null` on our own form posts, which the Origin check refuses.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    r
}

fn html_resp(status: u16, body: String) -> Resp {
    base(status, "text/html; charset=utf-8", body)
}

fn json_resp(status: u16, body: &serde_json::Value) -> Resp {
    base(status, "application/json", body.to_string())
}

/// 303 See Other to `to`.
fn redirect(to: &'static str) -> Resp {
    let mut r = base(303, "text/plain; charset=utf-8", format!("see {to}"));
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static(to));
    r
}

fn set_cookie(mut r: Resp, session_id: Option<&str>) -> Resp {
    let value = match session_id {
        Some(id) => format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"),
        None => format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

fn message(status: u16, viewer: Option<&Viewer>, title: &str, text: &str) -> Resp {
    html_resp(status, html::message_page(viewer, title, text))
}

fn internal(viewer: Option<&Viewer>, e: &ApiError) -> Resp {
    message(e.status.max(400), viewer, "Error", &e.message)
}

/// The session cookie's value, if the request has one.
fn session_id(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A logged-in request.
struct Ctx {
    sid: String,
    user: String,
    csrf: String,
    principal: Principal,
}

impl Ctx {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            user: &self.user,
            admin: self.principal.rights.admin,
            csrf: &self.csrf,
        }
    }
}

/// The logged-in user, or a redirect to the login page.
fn logged_in(app: &App, req: &Request<Incoming>) -> Result<Ctx, Resp> {
    let sid = session_id(req).ok_or_else(|| redirect("/ui/login"))?;
    let s = app.web.get(&sid).ok_or_else(|| redirect("/ui/login"))?;
    let user = s.user.ok_or_else(|| redirect("/ui/login"))?;
    let u = app.users.get(&user).ok_or_else(|| redirect("/ui/login"))?;
    Ok(Ctx {
        principal: Principal {
            id: u.name.clone(),
            rights: u.rights.clone(),
            context: None,
        },
        sid,
        user,
        csrf: s.csrf,
    })
}

/// A parsed `application/x-www-form-urlencoded` body.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(s: &str) -> Form {
        Form(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a POST carries besides its body.
struct PostMeta {
    sid: Option<String>,
    origin_ok: bool,
    form_type: bool,
}

fn post_meta(req: &Request<Incoming>) -> PostMeta {
    let host = req.headers().get(HOST).and_then(|v| v.to_str().ok());
    // Browsers send Origin with every POST; when present it must be us.
    let origin_ok = match req.headers().get("origin").map(|v| v.to_str()) {
        None => true,
        Some(Ok(o)) => host.is_some_and(|h| o.eq_ignore_ascii_case(&format!("https://{h}"))),
        Some(Err(_)) => false,
    };
    let form_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    PostMeta {
        sid: session_id(req),
        origin_ok,
        form_type,
    }
}

async fn read_form(app: &App, req: Request<Incoming>, meta: &PostMeta) -> Result<Form, Resp> {
    let body = read_body(app, req)
        .await
        .map_err(|e| message(400, None, "Bad request", &e.message))?;
    if !meta.form_type {
        return Err(message(
            400,
            None,
            "Bad request",
            "forms must be sent as application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| message(400, None, "Bad request", "the form is not UTF-8"))?;
    Ok(Form::parse(text))
}

/// The refusal of a POST without the session's CSRF token (or from a
/// foreign origin).
fn csrf_refusal(viewer: Option<&Viewer>) -> Resp {
    message(
        403,
        viewer,
        "Refused",
        "The form's security token is missing or wrong (or it came from another site). \
         Reload the page and try again.",
    )
}

fn csrf_ok(meta: &PostMeta, form: &Form, expected: &str) -> bool {
    meta.origin_ok
        && form
            .get("csrf")
            .is_some_and(|t| !t.is_empty() && same_secret(t, expected))
}

async fn audit(app: &App, entry: AuditEntry) -> Result<(), ApiError> {
    let store = app.store.clone();
    blocking(move || store.audit(entry)).await
}

/// Entry point for every path under `/ui`.
pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let rest = path.strip_prefix("/ui").unwrap_or("");
    if rest.is_empty() {
        return redirect("/ui/");
    }
    let segs: Vec<&str> = rest.split('/').skip(1).collect();
    let segs: &[&str] = match segs.as_slice() {
        [head @ .., ""] => head,
        s => s,
    };
    if segs.iter().any(|s| s.len() > 128) {
        return message(404, None, "Not found", "There is no such page.");
    }
    match (segs, &method) {
        ([], &Method::GET) => list(app, &req).await,
        (["static", "keyclient.css"], &Method::GET) => {
            let mut r = base(200, "text/css; charset=utf-8", CSS);
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
            r
        }
        (["static", "keyclient.js"], &Method::GET) => {
            let mut r = base(200, "text/javascript; charset=utf-8", JS);
            r.headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
            r
        }
        (["login"], &Method::GET) => login_form(app, &req),
        (["login"], &Method::POST) => login(app, req).await,
        (["logout"], &Method::POST) => logout(app, req).await,
        (["state.json"], &Method::GET) => state(app, &req).await,
        (["operations", id, action @ ("approve" | "reject")], &Method::GET) => {
            confirm(app, &req, id, *action == "approve").await
        }
        (["operations", id, action @ ("approve" | "reject")], &Method::POST) => {
            let (id, approve) = (id.to_string(), *action == "approve");
            decide(app, req, id, approve).await
        }
        (["audit"], &Method::GET) => audit_log(app, &req).await,
        ([] | ["login" | "logout" | "state.json" | "audit"], _)
        | (["operations", _, "approve" | "reject"], _)
        | (["static", _], _) => {
            let mut r = message(
                405,
                None,
                "Method not allowed",
                "This page does not accept that method.",
            );
            r.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, POST"));
            r
        }
        _ => message(404, None, "Not found", "There is no such page."),
    }
}

fn login_form(app: &App, req: &Request<Incoming>) -> Resp {
    if logged_in(app, req).is_ok() {
        return redirect("/ui/");
    }
    let info = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "loggedout=1"))
        .then_some("You are logged out.");
    // Reuse the anonymous session (and its token) if there is one.
    let existing = session_id(req).and_then(|sid| app.web.get(&sid).map(|s| (sid, s)));
    match existing {
        Some((_, s)) if s.user.is_none() => html_resp(200, html::login(&s.csrf, "", None, info)),
        _ => {
            let sid = app.web.create(None);
            let csrf = app.web.get(&sid).map(|s| s.csrf).unwrap_or_default();
            set_cookie(
                html_resp(200, html::login(&csrf, "", None, info)),
                Some(&sid),
            )
        }
    }
}

async fn login(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let meta = post_meta(&req);
    let form = match read_form(app, req, &meta).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let session = meta
        .sid
        .as_deref()
        .and_then(|sid| app.web.get(sid).map(|s| (sid.to_string(), s)));
    let Some((sid, session)) = session else {
        return message(
            403,
            None,
            "Refused",
            "The login form has expired or cookies are blocked. Open the login page again.",
        );
    };
    if !csrf_ok(&meta, &form, &session.csrf) {
        return csrf_refusal(None);
    }
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("");
    let who: String = username.chars().take(64).collect();
    // The same limiter as the token endpoint's: failures here and there
    // count together, so neither gets around the other's limit.
    if let Err(refusal) = app.limiter.check(&username) {
        let secs = refusal.retry_after;
        let _ = audit(
            app,
            AuditEntry::new(&who, "ui-login")
                .via("ui")
                .outcome("rate_limited"),
        )
        .await;
        let mut r = html_resp(
            429,
            html::login(
                &session.csrf,
                &username,
                Some(&format!(
                    "Too many failed logins. Try again in {secs} seconds."
                )),
                None,
            ),
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
        return r;
    }
    let Some(user) = app.users.authenticate(&username, password) else {
        app.limiter.failed(&username);
        let _ = audit(
            app,
            AuditEntry::new(&who, "ui-login")
                .via("ui")
                .outcome("invalid_client"),
        )
        .await;
        return html_resp(
            401,
            html::login(
                &session.csrf,
                &username,
                Some("Wrong user name or password."),
                None,
            ),
        );
    };
    let name = user.name.clone();
    if let Err(e) = audit(app, AuditEntry::new(&name, "ui-login").via("ui")).await {
        return internal(None, &e);
    }
    // A new session id at login: a planted pre-login cookie is worthless.
    app.web.remove(&sid);
    let new_sid = app.web.create(Some(name));
    set_cookie(redirect("/ui/"), Some(&new_sid))
}

async fn logout(app: &Arc<App>, req: Request<Incoming>) -> Resp {
    let meta = post_meta(&req);
    let form = match read_form(app, req, &meta).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some((sid, s)) = meta
        .sid
        .as_deref()
        .and_then(|sid| app.web.get(sid).map(|s| (sid.to_string(), s)))
    else {
        return redirect("/ui/login");
    };
    if !csrf_ok(&meta, &form, &s.csrf) {
        return csrf_refusal(None);
    }
    app.web.remove(&sid);
    if let Some(user) = &s.user {
        let _ = audit(app, AuditEntry::new(user, "ui-logout").via("ui")).await;
    }
    set_cookie(redirect("/ui/login?loggedout=1"), None)
}

/// What `p` may do with `op` now, by dry runs of the API's own rules.
fn view(op: Operation, p: &Principal, now: u64) -> OpView {
    let status = op.status(now);
    let visible = op.visible_to(p);
    let mut a = op.clone();
    let approve = a.approve(p, now);
    // Offered only while one of the viewer's keys still lacks approvals: an
    // approval beyond a key's requirement changes nothing that matters.
    let needed = op.keys.iter().any(|k| {
        p.rights.approve.contains(&k.keyid)
            && k.approvedby.len() < k.requiredapprovals as usize
            && !k.approvedby.contains(&p.id)
    });
    let can_approve = visible && status == Status::Pending && approve.is_ok() && a != op && needed;
    let mut r = op.clone();
    let can_reject = visible
        && matches!(status, Status::Pending | Status::Approved)
        && r.reject(p, now).is_ok()
        && r != op;
    let holds = op.keys.iter().any(|k| p.rights.approve.contains(&k.keyid));
    let note = if can_approve || status != Status::Pending {
        None
    } else if holds {
        Some(match approve {
            Err(e) => e.message,
            Ok(()) if op.keys.iter().any(|k| k.approvedby.contains(&p.id)) => {
                "You have approved; waiting for other approvers.".into()
            }
            Ok(()) => {
                "Your keys have all the approvals they need; waiting for the other keys' approvers."
                    .into()
            }
        })
    } else if op.createdby == p.id {
        Some("Created by you; waiting for approvers.".into())
    } else {
        None
    };
    OpView {
        left_ms: op.expires_ms().saturating_sub(now),
        op,
        status,
        can_approve,
        can_reject,
        note,
    }
}

/// The operations `p` sees on the list: admins every one, others the
/// pending ones they hold an approve right for or created.
async fn views(app: &App, p: &Principal) -> Result<Vec<OpView>, ApiError> {
    let store = app.store.clone();
    let mut ops = blocking(move || store.operations()).await?;
    ops.sort_by_key(|o| std::cmp::Reverse((o.createdat_ms, o.id.parse::<u64>().unwrap_or(0))));
    let now = now_ms();
    Ok(ops
        .into_iter()
        .filter(|o| o.visible_to(p))
        .filter(|o| {
            p.rights.admin
                || (o.status(now) == Status::Pending
                    && (o.createdby == p.id
                        || o.keys.iter().any(|k| p.rights.approve.contains(&k.keyid))))
        })
        .take(MAX_LISTED)
        .map(|o| view(o, p, now))
        .collect())
}

/// Changes whenever anything shown on the list changes (not the clock).
fn version(p: &Principal, views: &[OpView]) -> String {
    let doc: Vec<serde_json::Value> = views
        .iter()
        .map(|v| {
            serde_json::json!([
                v.op.id,
                v.status.name(),
                v.op.keys,
                v.op.rejectedby,
                v.can_approve,
                v.can_reject,
                v.note
            ])
        })
        .collect();
    let text = serde_json::json!([p.id, doc]).to_string();
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..16])
}

async fn list(app: &Arc<App>, req: &Request<Incoming>) -> Resp {
    let ctx = match logged_in(app, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let views = match views(app, &ctx.principal).await {
        Ok(v) => v,
        Err(e) => return internal(Some(&ctx.viewer()), &e),
    };
    let flash = app.web.take_flash(&ctx.sid);
    let v = version(&ctx.principal, &views);
    html_resp(
        200,
        html::ops_page(&ctx.viewer(), flash.as_ref(), &views, &v),
    )
}

/// `GET /ui/state.json`: the list's version and its HTML, for the script
/// that keeps the page current. Logged out: 401 with the login address.
async fn state(app: &Arc<App>, req: &Request<Incoming>) -> Resp {
    let Ok(ctx) = logged_in(app, req) else {
        return json_resp(
            401,
            &serde_json::json!({"error": "unauthorized", "message": "log in again", "login": "/ui/login"}),
        );
    };
    match views(app, &ctx.principal).await {
        Ok(views) => json_resp(
            200,
            &serde_json::json!({
                "version": version(&ctx.principal, &views),
                "html": html::ops_section(&views, ctx.principal.rights.admin),
            }),
        ),
        Err(e) => json_resp(e.status, &e.body()),
    }
}

async fn load(app: &App, id: &str) -> Result<Option<Operation>, ApiError> {
    let store = app.store.clone();
    let id = id.to_string();
    blocking(move || store.operation(&id)).await
}

async fn confirm(app: &Arc<App>, req: &Request<Incoming>, id: &str, approve: bool) -> Resp {
    let ctx = match logged_in(app, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let viewer = ctx.viewer();
    let op = match load(app, id).await {
        Ok(Some(op)) if op.visible_to(&ctx.principal) => op,
        Ok(_) => {
            return message(
                404,
                Some(&viewer),
                "Not found",
                &format!("There is no operation {id} you may see."),
            )
        }
        Err(e) => return internal(Some(&viewer), &e),
    };
    let now = now_ms();
    // The same dry run that decides what the list offers, with its reason.
    let mut trial = op.clone();
    let outcome = if approve {
        trial.approve(&ctx.principal, now)
    } else {
        trial.reject(&ctx.principal, now)
    };
    let v = view(op, &ctx.principal, now);
    let allowed = if approve { v.can_approve } else { v.can_reject };
    if !allowed {
        let (status, text) = match outcome {
            Err(e) => (e.status, e.message),
            Ok(()) => (
                409,
                format!(
                    "There is nothing for you to {} in operation {id}: it is {}{}",
                    if approve { "approve" } else { "reject" },
                    v.status.name(),
                    match (&v.note, v.status) {
                        (Some(n), Status::Pending) => format!(". {n}"),
                        _ => ".".into(),
                    }
                ),
            ),
        };
        return message(status, Some(&viewer), "Not possible", &text);
    }
    html_resp(200, html::confirm_page(&viewer, &v, approve))
}

async fn decide(app: &Arc<App>, req: Request<Incoming>, id: String, approve: bool) -> Resp {
    let ctx = match logged_in(app, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let meta = post_meta(&req);
    let form = match read_form(app, req, &meta).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let action = if approve { "approve" } else { "reject" };
    let viewer = ctx.viewer();
    if !csrf_ok(&meta, &form, &ctx.csrf) {
        let id: String = id.chars().take(128).collect();
        let entry = AuditEntry::new(&ctx.user, action)
            .op(&id)
            .via("ui")
            .outcome("invalid_csrf");
        let _ = audit(app, entry).await;
        return csrf_refusal(Some(&viewer));
    }
    let entry = AuditEntry::new(&ctx.user, action).via("ui");
    match decide_as(app, ctx.principal.clone(), id.clone(), approve, entry).await {
        Ok(op) => {
            let now = now_ms();
            let state = match op.status(now) {
                Status::Pending => {
                    let missing: Vec<String> = op
                        .keys
                        .iter()
                        .filter(|k| k.approvedby.len() < k.requiredapprovals as usize)
                        .map(|k| {
                            format!(
                                "{} has {} of {} approvals",
                                k.keyid,
                                k.approvedby.len(),
                                k.requiredapprovals
                            )
                        })
                        .collect();
                    format!("it is still pending: {}", missing.join(", "))
                }
                s => format!("it is now {}", s.name()),
            };
            let text = format!(
                "You {} operation {}; {state}.",
                if approve { "approved" } else { "rejected" },
                op.id
            );
            app.web.set_flash(&ctx.sid, Flash { ok: true, text });
            redirect("/ui/")
        }
        Err(e) => message(e.status, Some(&viewer), "Refused", &e.message),
    }
}

fn query_params(q: &str) -> Vec<(String, String)> {
    Form::parse(q).0
}

async fn audit_log(app: &Arc<App>, req: &Request<Incoming>) -> Resp {
    let ctx = match logged_in(app, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let viewer = ctx.viewer();
    if !ctx.principal.rights.admin {
        return message(
            403,
            Some(&viewer),
            "Refused",
            &format!("{} may not read the audit log.", ctx.user),
        );
    }
    let mut filter = AuditFilter::default();
    let mut size = AUDIT_PAGE;
    let (mut before, mut after) = (None, None);
    let bad = |text: String| message(400, Some(&viewer), "Bad request", &text);
    let number = |name: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| format!("{name} must be a whole number, not {v:?}."))
    };
    for (k, v) in query_params(req.uri().query().unwrap_or("")) {
        let v: String = v.trim().chars().take(128).collect();
        match k.as_str() {
            "key" => filter.key = v,
            "user" => filter.user = v,
            "operation" => filter.operation = v,
            "action" => filter.action = v,
            "size" if !v.is_empty() => match number("The page size", &v) {
                Ok(n) if (1..=AUDIT_MAX_PAGE as u64).contains(&n) => size = n as usize,
                Ok(_) => {
                    return bad(format!(
                        "The page size must be between 1 and {AUDIT_MAX_PAGE}."
                    ))
                }
                Err(e) => return bad(e),
            },
            "before" if !v.is_empty() => match number("before", &v) {
                Ok(n) => before = Some(n),
                Err(e) => return bad(e),
            },
            "after" if !v.is_empty() => match number("after", &v) {
                Ok(n) => after = Some(n),
                Err(e) => return bad(e),
            },
            _ => {}
        }
    }
    if before.is_some() && after.is_some() {
        return bad("Give before or after, not both.".into());
    }
    let store = app.store.clone();
    let loaded = blocking(move || Ok((store.audit_log(usize::MAX)?, store.operations()?))).await;
    let (log, ops) = match loaded {
        Ok(l) => l,
        Err(e) => return internal(Some(&viewer), &e),
    };
    let keys_of: std::collections::HashMap<String, Vec<String>> = ops
        .into_iter()
        .map(|o| (o.id, o.keys.into_iter().map(|k| k.keyid).collect()))
        .collect();
    // Newest first; pages are cut by sequence number, so entries arriving
    // meanwhile never shift a page under the reader.
    let matching: Vec<AuditEntry> = log
        .into_iter()
        .rev()
        .filter(|e| {
            let keys = e.operation.as_ref().and_then(|o| keys_of.get(o));
            filter.matches(e, keys.map(Vec::as_slice).unwrap_or(&[]))
        })
        .collect();
    let total = matching.len();
    let start = match (before, after) {
        (Some(b), _) => matching.iter().position(|e| e.seq < b).unwrap_or(total),
        (_, Some(a)) => matching
            .iter()
            .position(|e| e.seq <= a)
            .unwrap_or(total)
            .saturating_sub(size),
        _ => 0,
    };
    let end = (start + size).min(total);
    let shown = &matching[start..end];
    let nav = html::AuditNav {
        size,
        first: start,
        newer_after: (start > 0).then(|| shown.first().map(|e| e.seq)).flatten(),
        older_before: (end < total).then(|| shown.last().map(|e| e.seq)).flatten(),
    };
    html_resp(200, html::audit_page(&viewer, &filter, shown, total, &nav))
}
