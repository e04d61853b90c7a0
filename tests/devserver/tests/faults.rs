//! Fault knobs: dropped connections, latency, 5xx (off by default).

mod support;

use std::time::{Duration, Instant};

use ks_devserver::harness::DevServer;
use serde_json::json;
use support::*;

#[test]
fn dropped_connections_and_requestid_retry() {
    let s = DevServer::builder().fault_drop(1.0).start();
    let op = s.create_operation("orderer-client", &[("key2", 1)], 60_000);
    s.approve("approver-key2", &op);
    let token = s.token("orderer-client");
    let mut body = sign_body(&op, "key2", &hash("sha256", b"fw"), "none", "p1363");
    body["requestid"] = json!("drop-test-1");
    let auth = format!("Bearer {token}");
    // Every non-exempt request loses its connection without an answer.
    for _ in 0..4 {
        let r = s.http().request(
            "POST",
            &format!("{}/api/signorders", s.api_url()),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        );
        assert!(r.is_err(), "expected a dropped connection, got {r:?}");
    }
    // Whether or not the lost requests were processed, retrying with the
    // requestid yields one signature and spends one use.
    let r = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 1);
    assert!(s.stats()["faults"].as_u64().unwrap() >= 4);
}

#[test]
fn latency_applies_to_clients_not_the_harness() {
    let s = DevServer::builder()
        .fault_latency(Duration::from_millis(1500))
        .start();
    let t0 = Instant::now();
    let r = s
        .http()
        .request("GET", &format!("{}/api/keys", s.api_url()), &[], b"")
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    let t0 = Instant::now();
    s.stats();
    // Generous bound: a loaded CI machine is slow, but not 1.5 s per request slow.
    assert!(t0.elapsed() < Duration::from_millis(1500));
}

#[test]
fn faults_are_off_by_default() {
    let s = DevServer::start();
    for _ in 0..30 {
        let r = s
            .http()
            .request("GET", &format!("{}/api/keys", s.api_url()), &[], b"")
            .unwrap();
        assert_eq!(r.status, 401);
    }
    assert_eq!(s.stats()["faults"], 0);
}
