//! The approvers' page in a real headless Chromium (issue 15 items 9-10 and
//! issue 13 item 5): where a request comes from (the creator's GitLab or
//! GitHub CI context), Approve withdrawn once the approver's keys have their
//! approvals, no time left on finished operations, the audit log in pages
//! with its filters kept, and control/bidi characters shown escaped.
//! Screenshots are kept in `<target>/test-artefacts/`.

use std::time::SystemTime;

use ks_devserver::harness::{DevServer, TestIssuer};
use ks_e2e::web_support::Browser;
use serde_json::{json, Value};

const GITLAB: &str = "https://gitlab.example.test";
const GITHUB: &str = "https://token.actions.githubusercontent.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A dev server trusting a test GitLab and a test GitHub issuer whose
/// project/repository `*/firmware` tokens get `orderer-client`'s rights.
fn server_with_ci_issuers(dir: &std::path::Path) -> (DevServer, TestIssuer, TestIssuer) {
    let (gitlab, github) = (TestIssuer::new(), TestIssuer::new());
    gitlab.write_jwks(&dir.join("gitlab.json"));
    github.write_jwks(&dir.join("github.json"));
    let config = format!(
        r#"
[[issuers]]
issuer = "{GITLAB}"
audience = "keyserver"
jwks_file = "{gl}"
[[issuers.map]]
claims = {{ project_path = "group/firmware" }}
user = "orderer-client"

[[issuers]]
issuer = "{GITHUB}"
audience = "keyserver"
jwks_file = "{gh}"
[[issuers.map]]
claims = {{ repository = "acme/firmware" }}
user = "orderer-client"
"#,
        gl = dir.join("gitlab.json").display(),
        gh = dir.join("github.json").display(),
    );
    let server = DevServer::builder().config_toml(config).start();
    (server, gitlab, github)
}

fn create(server: &DevServer, token: &str, keys: &[(&str, u32)]) -> String {
    let restrictions: Vec<Value> = keys
        .iter()
        .map(|(k, n)| json!({"keyid": k, "maxusagecount": n}))
        .collect();
    let r = server.api_request(
        "POST",
        "/api/operations",
        Some(token),
        Some(
            &json!({"validms": 600_000, "description": "firmware release build",
            "new-keyusagerestrictions": restrictions}),
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().expect("operation id").to_string()
}

#[test]
fn approvers_see_where_requests_come_from_and_only_what_they_can_still_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, gitlab, github) = server_with_ci_issuers(dir.path());
    let gl_token = gitlab.token(&json!({
        "iss": GITLAB, "aud": "keyserver",
        "sub": "project_path:group/firmware:ref_type:branch:ref:main",
        "project_path": "group/firmware", "ref": "main", "pipeline_id": "98765",
        "user_login": "alice", "exp": now() + 600}));
    let gh_token = github.token(&json!({
        "iss": GITHUB, "aud": "keyserver",
        "sub": "repo:acme/firmware:ref:refs/heads/main",
        "repository": "acme/firmware", "ref": "refs/heads/main", "run_id": 4242,
        "actor": "octocat", "exp": now() + 600}));
    // key2 needs one approval, key3 two.
    let from_gitlab = create(&server, &gl_token, &[("key2", 1), ("key3", 1)]);
    let from_github = create(&server, &gh_token, &[("key2", 1)]);
    let plain = server.create_operation("orderer-client", &[("key2", 1)], 600_000);

    let b = Browser::start(&server);
    b.login("approver-key2");
    let gl_text = "GitLab CI: project group/firmware, ref main, pipeline 98765, started by alice";
    let gh_text =
        "GitHub Actions: repository acme/firmware, ref refs/heads/main, run 4242, started by octocat";
    assert_eq!(b.text(&format!("#op-{from_gitlab} .context")), gl_text);
    assert_eq!(b.text(&format!("#op-{from_github} .context")), gh_text);
    assert!(b.find(&format!("#op-{plain} .context")).is_none());
    b.find(&format!("#approve-{from_gitlab}"))
        .expect("Approve offered while key2 lacks its approval");
    b.screenshot("web-ci-context");

    // adminuser's approval (through the API) satisfies key2 and leaves key3
    // pending: the page withdraws approver-key2's Approve by itself.
    server.approve("adminuser", &from_gitlab);
    b.wait_gone(&format!("#approve-{from_gitlab}"));
    b.wait_text(
        &format!("#op-{from_gitlab} .actions"),
        "Your keys have all the approvals they need",
    );
    assert!(b.find(&format!("#reject-{from_gitlab}")).is_some());
    assert_eq!(server.operation(&from_gitlab)["status"], "pending");
    b.screenshot("web-approve-withdrawn");
    // Forcing the form is refused with the reason, and changes nothing.
    b.open(&format!("/ui/operations/{from_gitlab}/approve"));
    b.wait_text("#error", "nothing for you to approve");
    assert!(b.find("#confirm").is_none());

    // The confirmation page says where the request comes from too.
    b.open("/ui/");
    b.click(&format!("#approve-{from_github}"));
    assert_eq!(b.text("#context"), gh_text);
    b.click("#confirm");
    b.wait_text(
        "#flash",
        &format!("You approved operation {from_github}; it is now approved."),
    );
    b.open(&format!("/ui/operations/{plain}/approve"));
    assert!(b.text("#context").contains("no CI details"));
}

#[test]
fn finished_operations_show_no_time_left() {
    let server = DevServer::start();
    let pending = server.create_operation("orderer-client", &[("key4", 1)], 600_000);
    let rejected = server.create_operation("orderer-client", &[("key4", 1)], 600_000);
    server.reject("approver-key4", &rejected);
    let used = server.create_operation("orderer-client", &[("key5", 1)], 600_000);
    let token = server.token("orderer-client");
    let r = server.api_request(
        "POST",
        "/api/signorders",
        Some(&token),
        Some(&json!({"operationid": used, "keyid": "key5",
            "inputdata": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
            "inputformat": "hex", "inputpadding": "none", "signatureformat": "p1363",
            "description": "finished operations test"})),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let expired = server.create_operation("orderer-client", &[("key4", 1)], 1);

    let b = Browser::start(&server);
    b.login("adminuser");
    b.find(&format!("#op-{pending} time.left"))
        .expect("a pending operation counts down");
    for (op, status) in [
        (&rejected, "rejected"),
        (&used, "exhausted"),
        (&expired, "expired"),
    ] {
        assert_eq!(b.text(&format!("#op-{op} .status")), status);
        assert_eq!(
            b.text(&format!("#op-{op} .time-left")),
            format!("— ({status})")
        );
        assert!(
            b.find(&format!("#op-{op} time")).is_none(),
            "{status} operation {op} shows a countdown"
        );
    }
    b.screenshot("web-finished-operations");
}

#[test]
fn the_audit_log_pages_with_its_filters_and_escapes_control_characters() {
    let server = DevServer::start();
    for _ in 0..260 {
        let r = server.token_request("adminclient", "adminclient-secret");
        assert_eq!(r.status, 200);
    }
    // A client id is whatever a caller sends: it reaches the audit log.
    assert_eq!(server.token_request("evil\u{202E}gnp.exe", "x").status, 401);
    let b = Browser::start(&server);
    b.login("adminuser");
    b.open("/ui/audit");
    b.wait_for("#audit");
    assert!(b.text("#audit").contains("evil[U+202E]gnp.exe"));
    assert!(!b.source().contains('\u{202E}'), "raw U+202E in the page");

    b.fill("#f-user", "adminclient");
    b.fill("#f-action", "token");
    b.fill("#f-size", "100");
    b.click("#filter");
    b.wait_text("#audit caption", "1–100 of 260 entries");
    assert!(b.find("#audit-newer").is_none());
    b.click("#audit-older");
    b.wait_text("#audit caption", "101–200 of 260 entries");
    // The filters are kept across pages, in the form too.
    let kept = b.execute(
        "return [document.getElementById('f-user').value,
                 document.getElementById('f-action').value,
                 document.getElementById('f-size').value];",
        json!([]),
    );
    assert_eq!(kept, json!(["adminclient", "token", "100"]));
    b.click("#audit-older");
    b.wait_text("#audit caption", "201–260 of 260 entries");
    assert!(b.find("#audit-older").is_none(), "no page after the last");
    b.screenshot("web-audit-last-page");
    b.click("#audit-newer");
    b.wait_text("#audit caption", "101–200 of 260 entries");
    b.click("#audit-newest");
    b.wait_text("#audit caption", "1–100 of 260 entries");
}
