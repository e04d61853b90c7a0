//! The harness itself: start, token, operation, approve, sign, restart.

use ks_devserver::harness::DevServer;
use serde_json::json;

#[test]
fn harness_round_trip() {
    let mut s = DevServer::start();
    assert!(s.api_url().starts_with("https://127.0.0.1:"));
    assert!(s.auth_url().starts_with("https://127.0.0.1:"));
    assert!(s.ca_file().is_file());
    assert!(s.signing_ca_file().is_file());
    assert!(s.data_dir().join("state.redb").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data_dir().join("keys/key1.key.pem")), 0o600);
    assert_eq!(mode(&s.data_dir().join("ca.key.pem")), 0o600);
    assert_eq!(mode(s.ca_file()), 0o644);

    let op = s.create_operation("orderer-client", &[("key1", 1), ("key4", 1)], 60_000);
    assert_eq!(s.operation(&op)["approved"], "false");
    let st = s.approve("approver-key4", &op);
    assert_eq!(st["approved"], "true");
    assert_eq!(st["status"], "approved");

    let token = s.token("orderer-client");
    let env = s.client_env(&token, &op);
    let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "KSC_API_SERVER",
            "KSC_CA_FILE",
            "KSC_ID_TOKEN",
            "KSC_OPERATION_ID"
        ]
    );

    let body = json!({"operationid": op, "keyid": "key4", "inputdata": "11".repeat(48),
        "inputformat": "hex", "inputpadding": "none", "signatureformat": "p1363",
        "description": "harness test"});
    let r = s.api_request("POST", "/api/signorders", Some(&token), Some(&body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"].as_str().map(str::len), Some(192));
    assert_eq!(s.stats()["signorders"], 1);

    let api = s.api_url().to_string();
    s.restart();
    assert_eq!(s.api_url(), api, "restart keeps the ports");
    assert_eq!(s.operation(&op)["keyusagerestrictions"][1]["usagecount"], 1);
    // Tokens survive restarts (the token key is persisted).
    let r = s.api_request("GET", "/api/keys", Some(&token), None);
    assert_eq!(r.status, 200);
    s.kill9_and_restart();
    assert_eq!(s.operation(&op)["keyusagerestrictions"][1]["usagecount"], 1);
}

#[test]
fn builder_options_reach_the_server() {
    let s = DevServer::builder()
        .token_lifetime(std::time::Duration::from_secs(5))
        .fault_5xx(1.0)
        .start();
    let r = s.token_request("adminclient", "adminclient-secret");
    assert_eq!(r.json()["expires_in"], 5);
    // Harness requests are exempt from faults; a plain request is not.
    let plain = s
        .http()
        .request("GET", &format!("{}/api/keys", s.api_url()), &[], b"")
        .unwrap();
    assert_eq!(plain.status, 503);
}
