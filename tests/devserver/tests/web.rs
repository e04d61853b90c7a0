//! The approvers' web page (`/ui/`) over plain HTTPS: cookie flags, CSRF,
//! redirects when logged out, the login rate limit, and the API's rules
//! (four-eyes, per-key rights, two approvers, expiry) through the page.

use std::time::{Duration, Instant};

use ks_devserver::client::HttpResponse;
use ks_devserver::harness::DevServer;

/// A cookie-keeping client that behaves like a browser on one origin.
struct Browser<'a> {
    s: &'a DevServer,
    cookie: Option<String>,
    origin: String,
}

fn text(r: &HttpResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn set_cookies(r: &HttpResponse) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The CSRF token in the page's first form.
fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .unwrap_or_else(|| panic!("no CSRF field in:\n{html}"));
    let rest = &html[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl<'a> Browser<'a> {
    fn new(s: &'a DevServer) -> Self {
        let origin = s.api_url().to_string();
        Browser {
            s,
            cookie: None,
            origin,
        }
    }

    fn keep(&mut self, r: &HttpResponse) {
        for c in set_cookies(r) {
            let pair = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                assert_eq!(k, "__Host-keyclient", "cookie {c}");
                self.cookie = (!v.is_empty()).then(|| pair.to_string());
            }
        }
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        let cookie = self.cookie.clone();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        let url = format!("{}{path}", self.s.api_url());
        let r = self
            .s
            .http()
            .request(method, &url, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.keep(&r);
        r
    }

    fn get(&mut self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], b"")
    }

    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> HttpResponse {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let origin = self.origin.clone();
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", &origin),
            ],
            body.as_bytes(),
        )
    }

    fn login_with(&mut self, user: &str, password: &str) -> HttpResponse {
        let form = self.get("/ui/login");
        assert_eq!(form.status, 200, "{}", text(&form));
        let csrf = csrf_of(&text(&form));
        self.post(
            "/ui/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
        )
    }

    fn login(&mut self, user: &str) {
        let r = self.login_with(user, &format!("{user}-secret"));
        assert_eq!(r.status, 303, "login {user}: {}", text(&r));
        assert_eq!(r.header("location"), Some("/ui/"));
    }

    /// The list page and its CSRF token.
    fn list(&mut self) -> (String, String) {
        let r = self.get("/ui/");
        assert_eq!(r.status, 200, "{}", text(&r));
        let html = text(&r);
        let csrf = csrf_of(&html);
        (html, csrf)
    }

    fn decide(&mut self, op: &str, action: &str) -> HttpResponse {
        let (_, csrf) = self.list();
        self.post(&format!("/ui/operations/{op}/{action}"), &[("csrf", &csrf)])
    }
}

fn approvals(s: &DevServer, op: &str, key: &str) -> usize {
    let doc = s.operation(op);
    doc["keyusagerestrictions"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["keyid"] == key))
        .and_then(|k| k["approvedby"].as_array())
        .map(Vec::len)
        .unwrap_or_else(|| panic!("no {key} in {doc}"))
}

fn audit(s: &DevServer) -> Vec<serde_json::Value> {
    let t = s.token("adminclient");
    let r = s.api_request("GET", "/api/dev/audit", Some(&t), None);
    assert_eq!(r.status, 200);
    r.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn session_cookie_flags_login_and_logout() {
    let s = DevServer::start();
    let mut b = Browser::new(&s);
    let r = b.get("/ui/login");
    assert_eq!(r.status, 200);
    let html = text(&r);
    for needle in [
        r#"<html lang="en">"#,
        r#"<label for="username">"#,
        r#"<label for="password">"#,
        r#"type="password""#,
        "<h1>Log in</h1>",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets: {html}"
    );
    let csp = r.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let flags: Vec<&str> = cookies[0].split(';').map(str::trim).collect();
    for f in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(flags.contains(&f), "{f} missing in {}", cookies[0]);
    }
    let anonymous = b.cookie.clone().expect("pre-login cookie");

    // Wrong password: a clear message, still logged out.
    let csrf = csrf_of(&html);
    let r = b.post(
        "/ui/login",
        &[
            ("csrf", &csrf),
            ("username", "approver-key4"),
            ("password", "nope"),
        ],
    );
    assert_eq!(r.status, 401);
    assert!(
        text(&r).contains("Wrong user name or password."),
        "{}",
        text(&r)
    );
    assert_eq!(b.get("/ui/").status, 303);

    // Right password: a new session id (the pre-login one is worthless).
    let r = b.post(
        "/ui/login",
        &[
            ("csrf", &csrf),
            ("username", "approver-key4"),
            ("password", "approver-key4-secret"),
        ],
    );
    assert_eq!(r.status, 303, "{}", text(&r));
    let session = b.cookie.clone().expect("session cookie");
    assert_ne!(session, anonymous);
    let c = set_cookies(&r).join(" ");
    assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"));
    let (html, csrf) = b.list();
    assert!(
        html.contains(r#"<strong id="whoami">approver-key4</strong>"#),
        "{html}"
    );
    assert!(!html.contains("/ui/audit"), "no audit link for approvers");
    let mut stale = Browser::new(&s);
    stale.cookie = Some(anonymous);
    assert_eq!(
        stale.get("/ui/").status,
        303,
        "the pre-login id is not a session"
    );

    // Logout needs the token too, then ends the session for good.
    assert_eq!(b.post("/ui/logout", &[]).status, 403);
    assert_eq!(b.get("/ui/").status, 200);
    let r = b.post("/ui/logout", &[("csrf", &csrf)]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/ui/login?loggedout=1"));
    assert!(set_cookies(&r).join(" ").contains("Max-Age=0"));
    let mut replay = Browser::new(&s);
    replay.cookie = Some(session);
    assert_eq!(
        replay.get("/ui/").status,
        303,
        "a logged-out session id is dead"
    );
    assert!(text(&b.get("/ui/login?loggedout=1")).contains("You are logged out."));
    let log = audit(&s);
    for (action, outcome) in [
        ("ui-login", "invalid_client"),
        ("ui-login", "ok"),
        ("ui-logout", "ok"),
    ] {
        assert!(
            log.iter()
                .any(|e| e["action"] == action && e["outcome"] == outcome && e["via"] == "ui"),
            "{action}/{outcome} not audited: {log:?}"
        );
    }
}

#[test]
fn logged_out_requests_are_redirected_to_login() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key4", 1)], 60_000);
    let mut b = Browser::new(&s);
    b.cookie = Some("__Host-keyclient=forged".into());
    for path in [
        "/ui",
        "/ui/",
        "/ui/audit",
        &format!("/ui/operations/{op}/approve"),
    ] {
        let r = b.get(path);
        assert_eq!(r.status, 303, "{path}");
        let want = if path == "/ui" { "/ui/" } else { "/ui/login" };
        assert_eq!(r.header("location"), Some(want), "{path}");
    }
    for path in [
        format!("/ui/operations/{op}/approve"),
        format!("/ui/operations/{op}/reject"),
        "/ui/logout".into(),
    ] {
        let r = b.post(&path, &[("csrf", "x")]);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location"), Some("/ui/login"), "{path}");
    }
    let r = b.get("/ui/state.json");
    assert_eq!(
        (r.status, r.json()["login"].as_str()),
        (401, Some("/ui/login"))
    );
    assert_eq!(s.operation(&op)["status"], "pending", "nothing happened");
    // The API is unchanged next to the page.
    assert_eq!(s.api_request("GET", "/", None, None).status, 404);
    assert_eq!(s.api_request("GET", "/uix", None, None).status, 404);
    assert_eq!(b.get("/ui/static/keyclient.js").status, 200);
    assert_eq!(b.get("/ui/no-such-page").status, 404);
}

#[test]
fn forms_refuse_a_missing_or_wrong_csrf_token() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key4", 1)], 60_000);

    // Login form.
    let mut b = Browser::new(&s);
    let csrf = csrf_of(&text(&b.get("/ui/login")));
    let creds = [
        ("username", "approver-key4"),
        ("password", "approver-key4-secret"),
    ];
    let r = b.post("/ui/login", &creds);
    assert_eq!(r.status, 403, "missing token: {}", text(&r));
    let r = b.post("/ui/login", &[creds[0], creds[1], ("csrf", "0000")]);
    assert_eq!(r.status, 403, "wrong token");
    let mut cookieless = Browser::new(&s);
    let r = cookieless.post("/ui/login", &[creds[0], creds[1], ("csrf", &csrf)]);
    assert_eq!(r.status, 403, "a token without its session");
    assert_eq!(b.get("/ui/").status, 303, "still logged out");

    // Approve form.
    b.login("approver-key4");
    let (html, csrf) = b.list();
    assert!(html.contains(&format!(r#"id="approve-{op}""#)), "{html}");
    let path = format!("/ui/operations/{op}/approve");
    let r = b.post(&path, &[]);
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("security token"), "{}", text(&r));
    let r = b.post(&path, &[("csrf", &format!("{csrf}0"))]);
    assert_eq!(r.status, 403);
    let other = {
        let mut o = Browser::new(&s);
        o.login("approver-key4");
        o.list().1
    };
    assert_eq!(
        b.post(&path, &[("csrf", &other)]).status,
        403,
        "another session's token"
    );
    // The right token from another site.
    b.origin = "https://evil.example".into();
    assert_eq!(
        b.post(&path, &[("csrf", &csrf)]).status,
        403,
        "foreign Origin"
    );
    b.origin = s.api_url().to_string();
    assert_eq!(
        s.operation(&op)["status"],
        "pending",
        "no refused form changed anything"
    );
    assert!(audit(&s).iter().any(|e| e["action"] == "approve"
        && e["outcome"] == "invalid_csrf"
        && e["who"] == "approver-key4"));

    let r = b.post(&path, &[("csrf", &csrf)]);
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/ui/")),
        "{}",
        text(&r)
    );
    assert_eq!(s.operation(&op)["status"], "approved");
    let (html, _) = b.list();
    assert!(
        html.contains(&format!("You approved operation {op}; it is now approved.")),
        "{html}"
    );
}

#[test]
fn login_attempts_are_rate_limited() {
    let s = DevServer::start();
    let mut b = Browser::new(&s);
    for i in 0..5 {
        let r = b.login_with("approver-key3", "wrong");
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = b.login_with("approver-key3", "approver-key3-secret");
    assert_eq!(r.status, 429, "even the right password waits: {}", text(&r));
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait));
    assert!(text(&r).contains("Too many failed logins"));
    assert_eq!(b.get("/ui/").status, 303);
    // Another user from the same address is not locked out by that.
    let mut other = Browser::new(&s);
    other.login("approver-key4");
    assert!(audit(&s).iter().any(|e| e["action"] == "ui-login"
        && e["outcome"] == "rate_limited"
        && e["who"] == "approver-key3"));
}

#[test]
fn web_login_and_token_endpoint_share_one_limiter() {
    let s = DevServer::builder()
        .config_toml(
            "[credential_limits]\nfailures_per_client = 3\nfailures_total = 100\nwindow_secs = 600\n",
        )
        .start();
    // Wrong secrets at the token endpoint lock the web login of that user...
    for _ in 0..3 {
        assert_eq!(s.token_request("approver-key4", "wrong").status, 401);
    }
    let mut b = Browser::new(&s);
    let r = b.login_with("approver-key4", "approver-key4-secret");
    assert_eq!(r.status, 429, "{}", text(&r));
    assert!(r.header("retry-after").is_some());
    // ...and wrong passwords on the page lock the token endpoint.
    for i in 0..3 {
        assert_eq!(b.login_with("approver-key3", "wrong").status, 401, "{i}");
    }
    let r = s.token_request("approver-key3", "approver-key3-secret");
    assert_eq!(r.status, 429, "{}", text(&r));
    assert_eq!(r.json()["error"], "rate_limited");
    // Half the budget used on each side is the whole budget.
    assert_eq!(s.token_request("approver-key2", "wrong").status, 401);
    assert_eq!(b.login_with("approver-key2", "wrong").status, 401);
    assert_eq!(s.token_request("approver-key2", "wrong").status, 401);
    assert_eq!(
        b.login_with("approver-key2", "approver-key2-secret").status,
        429
    );
    // Other users are untouched.
    b.login("approver-key1");
}

#[test]
fn control_and_bidi_characters_never_reach_the_page_raw() {
    let s = DevServer::start();
    // A client id is whatever a caller sends; it lands in the audit log.
    assert_eq!(s.token_request("evil\u{202E}nib.exe", "x").status, 401);
    let mut b = Browser::new(&s);
    b.login("adminuser");
    let r = b.get("/ui/audit");
    assert_eq!(r.status, 200);
    let html = text(&r);
    assert!(html.contains("evil[U+202E]nib.exe"), "{html}");
    assert!(!html.contains('\u{202E}'), "raw U+202E in the page");
}

#[test]
fn the_api_rules_hold_through_the_page() {
    let s = DevServer::start();
    // Per-key rights: approver-key2 cannot see or approve a key4 operation.
    let op4 = s.create_operation("orderer-client", &[("key4", 1)], 60_000);
    let mut k2 = Browser::new(&s);
    k2.login("approver-key2");
    let (html, _) = k2.list();
    assert!(!html.contains(&format!(r#"id="op-{op4}""#)), "{html}");
    assert_eq!(k2.get(&format!("/ui/operations/{op4}/approve")).status, 404);
    let r = k2.decide(&op4, "approve");
    assert_eq!(r.status, 403, "{}", text(&r));
    assert_eq!(approvals(&s, &op4, "key4"), 0);

    // Four-eyes: adminuser created it, so adminuser cannot approve it.
    let own = s.create_operation("adminuser", &[("key4", 1)], 60_000);
    let mut admin = Browser::new(&s);
    admin.login("adminuser");
    let (html, _) = admin.list();
    assert!(
        html.contains(&format!(r#"id="op-{own}""#)),
        "admins see every operation"
    );
    assert!(
        !html.contains(&format!(r#"id="approve-{own}""#)),
        "no approve button on one's own operation"
    );
    assert!(html.contains("four-eyes rule"), "{html}");
    let r = admin.get(&format!("/ui/operations/{own}/approve"));
    assert_eq!(r.status, 403);
    let r = admin.decide(&own, "approve");
    assert_eq!(r.status, 403);
    assert!(
        text(&r).contains("four-eyes rule: adminuser created operation"),
        "{}",
        text(&r)
    );
    assert_eq!(approvals(&s, &own, "key4"), 0);

    // key3 needs two different approvers.
    let op3 = s.create_operation("orderer-client", &[("key3", 1)], 60_000);
    let mut k3 = Browser::new(&s);
    k3.login("approver-key3");
    assert_eq!(k3.get(&format!("/ui/operations/{op3}/approve")).status, 200);
    assert_eq!(k3.decide(&op3, "approve").status, 303);
    let (html, _) = k3.list();
    assert!(
        html.contains("it is still pending: key3 has 1 of 2 approvals"),
        "{html}"
    );
    assert!(
        !html.contains(&format!(r#"id="approve-{op3}""#)),
        "nothing left to approve"
    );
    assert!(
        html.contains("You have approved; waiting for other approvers."),
        "{html}"
    );
    assert_eq!(k3.get(&format!("/ui/operations/{op3}/approve")).status, 409);
    assert_eq!(
        k3.decide(&op3, "approve").status,
        303,
        "idempotent, like the API"
    );
    assert_eq!(approvals(&s, &op3, "key3"), 1);
    assert_eq!(s.operation(&op3)["status"], "pending");
    assert_eq!(admin.decide(&op3, "approve").status, 303);
    assert_eq!(s.operation(&op3)["status"], "approved");

    // Rejection through the page is final.
    let op2 = s.create_operation("orderer-client", &[("key2", 1)], 60_000);
    assert_eq!(k2.get(&format!("/ui/operations/{op2}/reject")).status, 200);
    assert_eq!(k2.decide(&op2, "reject").status, 303);
    assert_eq!(s.operation(&op2)["status"], "rejected");
    assert_eq!(s.operation(&op2)["rejectedby"], "approver-key2");

    // Expiry.
    let short = s.create_operation("orderer-client", &[("key4", 1)], 1_500);
    let mut k4 = Browser::new(&s);
    k4.login("approver-key4");
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.operation(&short)["status"] != "expired" {
        assert!(Instant::now() < deadline, "operation {short} never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = k4.decide(&short, "approve");
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(text(&r).contains("expired"));

    // Audited like the API, marked as done through the page.
    let log = audit(&s);
    for (who, action, op, outcome) in [
        ("adminuser", "approve", own.as_str(), "forbidden"),
        ("approver-key3", "approve", op3.as_str(), "ok"),
        ("adminuser", "approve", op3.as_str(), "ok"),
        ("approver-key2", "reject", op2.as_str(), "ok"),
        (
            "approver-key4",
            "approve",
            short.as_str(),
            "operation_expired",
        ),
    ] {
        assert!(
            log.iter().any(|e| e["who"] == who
                && e["action"] == action
                && e["operation"] == op
                && e["outcome"] == outcome
                && e["via"] == "ui"),
            "{who} {action} {op} {outcome} not audited: {log:?}"
        );
    }
}

#[test]
fn admin_audit_log_filters_and_the_live_state() {
    let s = DevServer::start();
    let op4 = s.create_operation("orderer-client", &[("key4", 1)], 60_000);
    let op1 = s.create_operation("orderer-clientkey1", &[("key1", 1)], 60_000);
    let mut k4 = Browser::new(&s);
    k4.login("approver-key4");
    assert_eq!(
        k4.get("/ui/audit").status,
        403,
        "approvers do not read the audit log"
    );

    let state = k4.get("/ui/state.json");
    assert_eq!(state.status, 200);
    let before = state.json()["version"]
        .as_str()
        .expect("version")
        .to_string();
    assert!(state.json()["html"]
        .as_str()
        .is_some_and(|h| h.contains(&format!(r#"id="op-{op4}""#))));
    assert_eq!(
        k4.get("/ui/state.json").json()["version"],
        before.as_str(),
        "stable while nothing changes"
    );
    s.approve("approver-key4", &op4); // through the API
    let after = k4.get("/ui/state.json").json();
    assert_ne!(
        after["version"],
        before.as_str(),
        "an approval changes the state"
    );
    assert!(after["html"]
        .as_str()
        .is_some_and(|h| !h.contains(&format!(r#"id="op-{op4}""#))));

    let mut admin = Browser::new(&s);
    admin.login("adminuser");
    let (html, _) = admin.list();
    assert!(
        html.contains(&format!(r#"id="op-{op1}""#)) && html.contains(&format!(r#"id="op-{op4}""#))
    );
    assert!(html.contains(r#"<th scope="col">Time left</th>"#) && html.contains("/ui/audit"));
    let page = |b: &mut Browser, q: &str| {
        let r = b.get(&format!("/ui/audit{q}"));
        assert_eq!(r.status, 200, "{q}");
        text(&r)
    };
    let all = page(&mut admin, "");
    assert!(
        all.contains(r#"<label for="f-key">Key</label>"#)
            && all.contains(r#"<th scope="col">Outcome</th>"#)
    );
    assert!(all.contains("orderer-clientkey1") && all.contains("approver-key4"));
    let by_key = page(&mut admin, "?key=key4");
    assert!(
        by_key.contains("approver-key4") && !by_key.contains("orderer-clientkey1"),
        "{by_key}"
    );
    let by_user = page(&mut admin, "?user=orderer-clientkey1");
    assert!(
        by_user.contains("orderer-clientkey1") && !by_user.contains(">approver-key4<"),
        "{by_user}"
    );
    let by_op = page(&mut admin, &format!("?operation={op4}&action=approve"));
    assert!(
        by_op.contains(">approver-key4<") && !by_op.contains(">create<"),
        "{by_op}"
    );
    assert!(page(&mut admin, "?user=nobody").contains("No entry matches."));
    let esc = page(&mut admin, "?user=%3Cscript%3E");
    assert!(
        !esc.contains("<script>") && esc.contains("&lt;script&gt;"),
        "filters are escaped"
    );
}

/// The `<tr>` of operation `op` in a list page.
fn row<'h>(html: &'h str, op: &str) -> &'h str {
    let at = html
        .find(&format!(r#"<tr id="op-{op}""#))
        .unwrap_or_else(|| panic!("no row for {op} in:\n{html}"));
    let rest = &html[at..];
    &rest[..rest.find("</tr>").expect("row end")]
}

#[test]
fn approve_is_not_offered_when_the_approvers_keys_are_satisfied() {
    let s = DevServer::start();
    // key2 needs one approval, key3 two: adminuser's approval satisfies key2
    // and leaves key3 pending.
    let op = s.create_operation("orderer-client", &[("key2", 1), ("key3", 1)], 60_000);
    let mut k2 = Browser::new(&s);
    k2.login("approver-key2");
    let (html, _) = k2.list();
    assert!(row(&html, &op).contains(&format!(r#"id="approve-{op}""#)));
    s.approve("adminuser", &op);
    assert_eq!(s.operation(&op)["status"], "pending");
    let (html, _) = k2.list();
    let r = row(&html, &op);
    assert!(!r.contains(&format!(r#"id="approve-{op}""#)), "{r}");
    assert!(r.contains(&format!(r#"id="reject-{op}""#)), "{r}");
    assert!(
        r.contains("Your keys have all the approvals they need"),
        "{r}"
    );
    // Forcing the confirmation page says why, and nothing changes.
    let c = k2.get(&format!("/ui/operations/{op}/approve"));
    assert_eq!(c.status, 409, "{}", text(&c));
    assert!(text(&c).contains("nothing for you to approve"));
    // approver-key3 still has something to approve.
    let mut k3 = Browser::new(&s);
    k3.login("approver-key3");
    let (html, _) = k3.list();
    assert!(row(&html, &op).contains(&format!(r#"id="approve-{op}""#)));
}

#[test]
fn finished_operations_show_no_time_left() {
    let s = DevServer::start();
    let pending = s.create_operation("orderer-client", &[("key4", 1)], 600_000);
    let rejected = s.create_operation("orderer-client", &[("key4", 1)], 600_000);
    s.reject("approver-key4", &rejected);
    let used = s.create_operation("orderer-client", &[("key1", 1)], 600_000);
    let body = serde_json::json!({"operationid": used, "keyid": "key1",
        "inputdata": hex_digest_info(), "inputformat": "hex", "inputpadding": "digestinfo",
        "signatureformat": "asn1", "description": "finished operations test"});
    let t = s.token("orderer-client");
    assert_eq!(
        s.api_request("POST", "/api/signorders", Some(&t), Some(&body))
            .status,
        201
    );
    let expired = s.create_operation("orderer-client", &[("key4", 1)], 1);
    let mut b = Browser::new(&s);
    b.login("adminuser");
    let (html, _) = b.list();
    assert!(row(&html, &pending).contains(r#"<time class="left""#));
    for (op, status) in [
        (&rejected, "rejected"),
        (&used, "exhausted"),
        (&expired, "expired"),
    ] {
        let r = row(&html, op);
        assert!(r.contains(&format!(r#"data-status="{status}""#)), "{r}");
        assert!(!r.contains("<time"), "{status}: {r}");
        assert!(
            r.contains(&format!(r#"<span class="finished">— ({status})</span>"#)),
            "{r}"
        );
    }
    // A finished operation has nothing left to offer.
    let c = b.get(&format!("/ui/operations/{rejected}/reject"));
    assert_eq!(c.status, 409, "{}", text(&c));
}

/// DigestInfo(SHA-256("x")) in hex.
fn hex_digest_info() -> String {
    use sha2::Digest;
    let mut v = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    v.extend(sha2::Sha256::digest(b"x"));
    hex::encode(v)
}

/// The `href` of the link with `id` in `html` (entities decoded).
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!(r#"id="{id}""#))?;
    let rest = &html[at..];
    let h = rest.find(r#"href=""#)? + 6;
    let end = rest[h..].find('"')?;
    Some(rest[h..h + end].replace("&amp;", "&"))
}

/// The sequence numbers shown on an audit page (first column).
fn seqs(html: &str) -> Vec<u64> {
    html.split("<tr><td>")
        .skip(1)
        .filter_map(|r| r.split("</td>").next()?.parse().ok())
        .collect()
}

#[test]
fn the_audit_log_pages_through_every_entry_with_its_filters() {
    let s = DevServer::start();
    // Well past the 500 entries the page used to stop at.
    for _ in 0..560 {
        assert_eq!(
            s.token_request("adminclient", "adminclient-secret").status,
            200
        );
    }
    s.token("orderer-client");
    let mut b = Browser::new(&s);
    b.login("adminuser");
    // Default page size 100; walk "Older" to the end, filter kept.
    let mut url = "/ui/audit?user=adminclient&action=token".to_string();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = b.get(&url);
        assert_eq!(r.status, 200, "{url}: {}", text(&r));
        let html = text(&r);
        let page = seqs(&html);
        assert!(!page.is_empty() && page.len() <= 100, "{url}");
        assert!(html.contains("of 560 entries, newest first"), "{html}");
        seen.extend(page);
        pages += 1;
        match link(&html, "audit-older") {
            Some(next) => {
                assert!(next.contains("user=adminclient") && next.contains("action=token"));
                assert!(next.contains("size=100"), "{next}");
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 560, "every entry exactly once");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeat"
    );

    // A chosen page size; Newer leads back to the same page.
    let first = text(&b.get("/ui/audit?user=adminclient&size=7"));
    assert!(first.contains("1–7 of 560 entries"), "{first}");
    assert!(link(&first, "audit-newer").is_none());
    let second_url = link(&first, "audit-older").expect("older");
    let second = text(&b.get(&second_url));
    assert!(second.contains("8–14 of 560 entries"), "{second}");
    assert_eq!(seqs(&second).len(), 7);
    let back = text(&b.get(&link(&second, "audit-newer").expect("newer")));
    assert_eq!(seqs(&back), seqs(&first));
    assert!(back.contains(r#"id="f-size" name="size" type="number" min="1" max="500" value="7""#));

    // Bad paging parameters are refused with a sentence.
    for q in [
        "size=0",
        "size=501",
        "size=ten",
        "before=x",
        "before=5&after=3",
    ] {
        let r = b.get(&format!("/ui/audit?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", text(&r));
        assert!(text(&r).contains(r#"id="error""#));
    }
}

#[test]
fn approvers_see_the_creators_ci_context() {
    use ks_devserver::harness::TestIssuer;
    let dir = tempfile::tempdir().unwrap();
    let gitlab = TestIssuer::new();
    gitlab.write_jwks(&dir.path().join("gitlab.json"));
    let s = DevServer::builder()
        .config_toml(format!(
            r#"
[[issuers]]
issuer = "https://gitlab.example.test"
audience = "keyserver"
jwks_file = "{}"
[[issuers.map]]
claims = {{ project_path = "group/firmware" }}
user = "orderer-client"
"#,
            dir.path().join("gitlab.json").display()
        ))
        .start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = gitlab.token(&serde_json::json!({
        "iss": "https://gitlab.example.test", "aud": "keyserver",
        "sub": "project_path:group/firmware:ref_type:branch:ref:main",
        "project_path": "group/firmware", "ref": "main", "pipeline_id": "98765",
        "user_login": "mallory\u{202E}nimda", "exp": now + 300}));
    let r = s.api_request(
        "POST",
        "/api/operations",
        Some(&token),
        Some(
            &serde_json::json!({"validms": 60000, "description": "firmware release",
            "new-keyusagerestrictions": [{"keyid": "key4", "maxusagecount": 1}]}),
        ),
    );
    assert_eq!(r.status, 201, "{}", text(&r));
    let op = r.json()["id"].as_str().unwrap().to_string();
    let plain = s.create_operation("orderer-client", &[("key4", 1)], 60_000);
    let mut b = Browser::new(&s);
    b.login("approver-key4");
    let (html, _) = b.list();
    let want = "GitLab CI: project group/firmware, ref main, pipeline 98765, started by mallory[U+202E]nimda";
    assert!(row(&html, &op).contains(want), "{}", row(&html, &op));
    assert!(!html.contains('\u{202E}'));
    assert!(!row(&html, &plain).contains("class=\"context\""));
    let c = text(&b.get(&format!("/ui/operations/{op}/approve")));
    assert!(
        c.contains(&format!(r#"<dd id="context">{want}</dd>"#)),
        "{c}"
    );
    let c = text(&b.get(&format!("/ui/operations/{plain}/approve")));
    assert!(c.contains("no CI details"), "{c}");
}
