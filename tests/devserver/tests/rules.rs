//! Roles, four-eyes, approvals, rejection, expiry, usage counts, idempotency.

mod support;

use std::time::{Duration, Instant};

use ks_devserver::harness::DevServer;
use serde_json::json;
use support::*;

fn create_body(keys: &[(&str, u32)]) -> serde_json::Value {
    let r: Vec<_> = keys
        .iter()
        .map(|(k, n)| json!({"keyid": k, "maxusagecount": n}))
        .collect();
    json!({"validms": 60000, "description": "rules test operation", "new-keyusagerestrictions": r})
}

fn ec_body(op: &str, key: &str) -> serde_json::Value {
    sign_body(op, key, &hash("sha256", op.as_bytes()), "none", "p1363")
}

#[test]
fn every_role_allowed_and_refused() {
    let s = DevServer::start();
    let create = |user: &str, keys: &[(&str, u32)]| {
        let t = s.token(user);
        s.api_request(
            "POST",
            "/api/operations",
            Some(&t),
            Some(&create_body(keys)),
        )
    };
    // Creating operations.
    for user in ["adminuser", "adminclient", "orderer-client"] {
        assert_eq!(
            create(user, &[("key1", 1), ("key2", 1)]).status,
            201,
            "{user}"
        );
    }
    assert_eq!(create("orderer-clientkey1", &[("key1", 1)]).status, 201);
    assert_error(
        &create("orderer-clientkey1", &[("key1", 1), ("key2", 1)]),
        403,
        "forbidden",
    );
    assert_error(
        &create("orderer-clientkey2", &[("key1", 1)]),
        403,
        "forbidden",
    );
    assert_error(&create("approver-key2", &[("key2", 1)]), 403, "forbidden");

    // Signing: orderer-client signs with every key, orderer-clientkeyN only with key N,
    // approvers never.
    let op = s.create_operation("orderer-client", &[("key1", 9), ("key5", 9)], 60_000);
    for user in ["adminuser", "adminclient", "orderer-client"] {
        assert_eq!(sign(&s, user, &ec_body(&op, "key5")).status, 201, "{user}");
    }
    let own = s.create_operation("orderer-clientkey5", &[("key5", 1)], 60_000);
    assert_eq!(
        sign(&s, "orderer-clientkey5", &ec_body(&own, "key5")).status,
        201
    );
    assert_error(
        &sign(&s, "orderer-clientkey1", &ec_body(&op, "key5")),
        403,
        "forbidden",
    );
    assert_error(
        &sign(&s, "approver-key5", &ec_body(&op, "key5")),
        403,
        "forbidden",
    );

    // Approving: only approvers of a key of the operation (and admins).
    let op = s.create_operation("orderer-client", &[("key2", 1)], 60_000);
    for user in ["approver-key1", "orderer-client", "orderer-clientkey2"] {
        let t = s.token(user);
        let r = s.api_request(
            "POST",
            &format!("/api/operations/{op}/approve"),
            Some(&t),
            None,
        );
        assert_error(&r, 403, "forbidden");
    }
    assert_eq!(s.operation(&op)["status"], "pending");
    assert_eq!(s.approve("approver-key2", &op)["status"], "approved");
    let op = s.create_operation("orderer-client", &[("key2", 1)], 60_000);
    assert_eq!(s.approve("adminuser", &op)["status"], "approved");

    // Seeing operations: creator, signers and approvers of its keys, admins.
    let t = s.token("orderer-clientkey3");
    let r = s.api_request("GET", &format!("/api/operations/{op}"), Some(&t), None);
    assert_error(&r, 403, "forbidden");
    let t = s.token("approver-key2");
    let r = s.api_request("GET", &format!("/api/operations/{op}"), Some(&t), None);
    assert_eq!(r.status, 200);
    let r = s.api_request("GET", "/api/operations?status=approved", Some(&t), None);
    assert!(r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == op.as_str()));
    let t = s.token("approver-key4");
    let r = s.api_request("GET", "/api/operations", Some(&t), None);
    assert_eq!(
        r.json().as_array().unwrap().len(),
        0,
        "approver-key4 sees no key4 operations"
    );

    // Keys: any valid token lists them; none without.
    let t = s.token("approver-key1");
    let r = s.api_request("GET", "/api/keys", Some(&t), None);
    assert_eq!(r.json().as_array().unwrap().len(), 6);
    assert_error(
        &s.api_request("GET", "/api/keys", None, None),
        401,
        "unauthorized",
    );

    // The audit log is for admins.
    let r = s.api_request("GET", "/api/dev/audit", Some(&t), None);
    assert_error(&r, 403, "forbidden");
    let t = s.token("adminuser");
    let log = s
        .api_request("GET", "/api/dev/audit", Some(&t), None)
        .json();
    let entries = log.as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["action"] == "sign" && e["outcome"] == "ok" && e["key"] == "key5"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "sign" && e["outcome"] == "forbidden"));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "approve" && e["who"] == "approver-key2"));
}

#[test]
fn four_eyes_and_two_distinct_approvers() {
    let s = DevServer::start();
    // adminclient holds every right but cannot approve its own operation.
    let op = s.create_operation("adminclient", &[("key3", 1)], 60_000);
    let t = s.token("adminclient");
    let r = s.api_request(
        "POST",
        &format!("/api/operations/{op}/approve"),
        Some(&t),
        None,
    );
    assert_error(&r, 403, "forbidden");
    assert!(r.json()["message"].as_str().unwrap().contains("four-eyes"));

    // key3 needs two distinct approvers; the same approver twice counts once.
    let st = s.approve("approver-key3", &op);
    assert_eq!(st["status"], "pending");
    assert_eq!(st["approved"], "false");
    let st = s.approve("approver-key3", &op);
    assert_eq!(
        st["keyusagerestrictions"][0]["approvedby"],
        json!(["approver-key3"])
    );
    assert_eq!(st["status"], "pending");
    let r = sign(
        &s,
        "adminclient",
        &sign_body(
            &op,
            "key3",
            &digest_info("sha256", &hash("sha256", b"x")),
            "digestinfo",
            "asn1",
        ),
    );
    assert_error(&r, 409, "operation_pending");
    let st = s.approve("adminuser", &op);
    assert_eq!(st["approved"], "true");
    assert_eq!(st["status"], "approved");
    assert_eq!(st["keyusagerestrictions"][0]["requiredapprovals"], 2);
    let r = sign(
        &s,
        "adminclient",
        &sign_body(
            &op,
            "key3",
            &digest_info("sha256", &hash("sha256", b"x")),
            "digestinfo",
            "asn1",
        ),
    );
    assert_eq!(r.status, 201);

    // Every key of a multi-key operation needs its approvals.
    let op = s.create_operation("orderer-client", &[("key2", 1), ("key4", 1)], 60_000);
    assert_eq!(s.approve("approver-key2", &op)["status"], "pending");
    assert_eq!(s.approve("approver-key4", &op)["status"], "approved");
}

#[test]
fn rejection_is_final() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key1", 1), ("key2", 1)], 60_000);
    let st = s.reject("approver-key2", &op);
    assert_eq!(st["status"], "rejected");
    assert_eq!(st["rejectedby"], "approver-key2");
    let t = s.token("adminuser");
    let r = s.api_request(
        "POST",
        &format!("/api/operations/{op}/approve"),
        Some(&t),
        None,
    );
    assert_error(&r, 409, "operation_rejected");
    let r = sign(&s, "orderer-client", &ec_body(&op, "key2"));
    assert_error(&r, 409, "operation_rejected");
    // Even key1 (no approvers needed) is refused now.
    let r = sign(
        &s,
        "orderer-client",
        &sign_body(
            &op,
            "key1",
            &digest_info("sha256", &hash("sha256", b"x")),
            "digestinfo",
            "asn1",
        ),
    );
    assert_error(&r, 409, "operation_rejected");
    let pending = s.api_request("GET", "/api/operations?status=pending", Some(&t), None);
    assert!(!pending
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == op.as_str()));
}

#[test]
fn expiry_counts_from_creation() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key2", 1)], 1_500);
    let st = s.operation(&op);
    assert_eq!(st["validms"], 1500);
    assert!(st["expiresat"].as_str().unwrap() > st["createdat"].as_str().unwrap());
    // Wait for the state change (bounded), not a fixed sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.operation(&op)["status"] != "expired" {
        assert!(Instant::now() < deadline, "operation never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = s.token("approver-key2");
    let r = s.api_request(
        "POST",
        &format!("/api/operations/{op}/approve"),
        Some(&t),
        None,
    );
    assert_error(&r, 409, "operation_expired");
    let r = sign(&s, "orderer-client", &ec_body(&op, "key2"));
    assert_error(&r, 409, "operation_expired");
}

#[test]
fn usage_exhaustion_and_idempotent_retry() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key5", 2), ("key1", 1)], 60_000);
    let token = s.token("orderer-client");
    let mut body = ec_body(&op, "key5");
    body["requestid"] = json!("6f1c9a52-0d1e-4b1a-9f67-1a2b3c4d5e6f");
    let first = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(first.status, 201);
    // The same requestid again: same answer, nothing consumed.
    for _ in 0..3 {
        let again = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
        assert_eq!(again.status, 201);
        assert_eq!(again.json()["result"], first.json()["result"]);
    }
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 1);
    assert_eq!(s.stats()["signorders"], 1);
    // The same requestid with a different request is refused.
    let mut other = body.clone();
    other["inputdata"] = json!("22".repeat(32));
    assert_error(
        &s.api_request("POST", "/api/signorders", Some(&token), Some(&other)),
        400,
        "invalid_request",
    );
    // The requestid is per caller: another caller's identical id is a new order.
    let admin = s.token("adminclient");
    let r = s.api_request("POST", "/api/signorders", Some(&admin), Some(&body));
    assert_eq!(r.status, 201);
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 2);
    // Used up: a new order is refused, the stored one still replays.
    let r = sign(&s, "orderer-client", &ec_body(&op, "key5"));
    assert_error(&r, 409, "usage_exhausted");
    let again = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(again.status, 201);
    assert_eq!(
        s.operation(&op)["status"],
        "approved",
        "key1 still has a use"
    );
    let r = sign(
        &s,
        "orderer-client",
        &sign_body(
            &op,
            "key1",
            &digest_info("sha256", &hash("sha256", b"x")),
            "digestinfo",
            "asn1",
        ),
    );
    assert_eq!(r.status, 201);
    assert_eq!(s.operation(&op)["status"], "exhausted");
}

#[test]
fn restart_and_kill9_keep_used_counts() {
    let mut s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key5", 3), ("key2", 1)], 600_000);
    s.approve("approver-key2", &op);
    let token = s.token("orderer-client");
    let mut body = ec_body(&op, "key5");
    body["requestid"] = json!("req-1");
    let first = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(first.status, 201);

    s.restart();
    let st = s.operation(&op);
    assert_eq!(st["keyusagerestrictions"][0]["usagecount"], 1);
    assert_eq!(
        st["keyusagerestrictions"][1]["approvedby"],
        json!(["approver-key2"])
    );
    assert_eq!(
        sign(&s, "orderer-client", &ec_body(&op, "key5")).status,
        201
    );

    s.kill9_and_restart();
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 2);
    // The requestid survived too: the replay consumes nothing.
    let again = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(again.json()["result"], first.json()["result"]);
    assert_eq!(
        sign(&s, "orderer-client", &ec_body(&op, "key5")).status,
        201
    );
    s.kill9_and_restart();
    assert_error(
        &sign(&s, "orderer-client", &ec_body(&op, "key5")),
        409,
        "usage_exhausted",
    );
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 3);
    // Keys and certificates are the same after restarts.
    let cert = key_cert(&s, "key5");
    s.restart();
    assert_eq!(key_cert(&s, "key5"), cert);
}

#[test]
fn own_tokens_expire() {
    let s = DevServer::builder()
        .token_lifetime(Duration::from_secs(1))
        .start();
    let t = s.token("adminclient");
    assert_eq!(
        s.api_request("GET", "/api/keys", Some(&t), None).status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.api_request("GET", "/api/keys", Some(&t), None);
        if r.status == 401 {
            assert_error(&r, 401, "unauthorized");
            assert!(r.json()["message"].as_str().unwrap().contains("expired"));
            break;
        }
        assert!(Instant::now() < deadline, "token never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn concurrent_sign_orders_never_exceed_the_usage_count() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key2", 12)], 60_000);
    s.approve("approver-key2", &op);
    let token = s.token("orderer-client");
    let results: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let (s, op, token) = (&s, &op, &token);
                scope.spawn(move || {
                    (0..4)
                        .map(|i| {
                            let body = sign_body(
                                op,
                                "key2",
                                &hash("sha256", format!("{t}-{i}").as_bytes()),
                                "none",
                                "p1363",
                            );
                            s.api_request("POST", "/api/signorders", Some(token), Some(&body))
                                .status
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(results.iter().filter(|&&c| c == 201).count(), 12);
    assert_eq!(results.iter().filter(|&&c| c == 409).count(), 12);
    assert_eq!(
        s.operation(&op)["keyusagerestrictions"][0]["usagecount"],
        12
    );
    assert_eq!(s.stats()["signorders"], 12);
}

#[test]
fn only_the_creator_or_an_admin_signs_under_an_operation() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-clientkey5", &[("key5", 5)], 60_000);
    // orderer-client holds the sign right for key5, but the operation (and
    // the approval behind it) belongs to another pipeline.
    let r = sign(&s, "orderer-client", &ec_body(&op, "key5"));
    assert_error(&r, 403, "forbidden");
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains(&format!("operation {op} belongs to orderer-clientkey5")),
        "{msg}"
    );
    assert!(msg.contains("orderer-client"), "{msg}");
    // Refused with a requestid too, and nothing was spent.
    let mut with_id = ec_body(&op, "key5");
    with_id["requestid"] = json!("6f1d2c1e-0000-4000-8000-000000000001");
    assert_error(&sign(&s, "orderer-client", &with_id), 403, "forbidden");
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 0);
    // The creator signs, and so do admins.
    assert_eq!(
        sign(&s, "orderer-clientkey5", &ec_body(&op, "key5")).status,
        201
    );
    assert_eq!(sign(&s, "adminclient", &ec_body(&op, "key5")).status, 201);
    assert_eq!(sign(&s, "adminuser", &ec_body(&op, "key5")).status, 201);
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 3);
    // The refusal is audited.
    let log = s
        .api_request("GET", "/api/dev/audit", Some(&s.token("adminclient")), None)
        .json();
    assert!(log.as_array().unwrap().iter().any(|e| e["action"] == "sign"
        && e["who"] == "orderer-client"
        && e["operation"] == op.as_str()
        && e["outcome"] == "forbidden"));
}

#[test]
fn the_audit_api_pages_back_with_before_and_limit() {
    let s = DevServer::start();
    for _ in 0..12 {
        s.token("orderer-client");
    }
    let admin = s.token("adminclient");
    let get = |q: &str| s.api_request("GET", &format!("/api/dev/audit{q}"), Some(&admin), None);
    let seqs = |r: &ks_devserver::client::HttpResponse| -> Vec<u64> {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let all = seqs(&get(""));
    assert!(all.len() >= 13 && all.windows(2).all(|w| w[0] < w[1]));
    let last = seqs(&get("?limit=5"));
    assert_eq!(last, all[all.len() - 5..]);
    let before = seqs(&get(&format!("?limit=5&before={}", last[0])));
    assert_eq!(before, all[all.len() - 10..all.len() - 5]);
    for q in ["?limit=0", "?limit=ten", "?limit=10001", "?before=x"] {
        assert_error(&get(q), 400, "invalid_request");
    }
}
