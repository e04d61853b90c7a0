//! The wording and log fixes of issue 15, through the real `ksc` against the dev KeyServer:
//! approvals never read "1 of 0" or "2 of 1", an ended validity is not "expires in 0ms", a key
//! outside the operation is said so without advice about roles, a base URL ending in /api and a
//! wrong auth server are named, and logs carry timestamps, an optional JSON form and one info
//! line per signature.

mod support;

use ks_devserver::harness::DevServer;
use support::*;

#[test]
fn status_and_refusals_say_what_happened() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 1), ("key2", 1)], 300_000);
    let env = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );

    // key1 needs no approval; key2 needs one and gets two.
    srv.approve("approver-key2", &op);
    srv.approve("adminclient", &op);
    let status = ksc_ok(&env, &["operation", "status"]);
    assert!(
        status.contains("key1: 0 of 1 uses, no approval needed"),
        "{status}"
    );
    assert!(
        status.contains("key2: 0 of 1 uses, 1 of 1 approvals ("),
        "{status}"
    );
    assert!(
        !status.contains("of 0 approvals") && !status.contains("2 of 1"),
        "{status}"
    );

    // A key that is not in the operation.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write(tmp.path(), "fw.bin", b"firmware");
    let sig = tmp.path().join("fw.sig").display().to_string();
    let err = ksc_code(
        &env,
        &["sign", "--key", "key3", "--in", &data, "--out", &sig],
        4,
    );
    assert!(
        err.contains("the key is not part of this operation"),
        "{err}"
    );
    assert!(
        !err.contains("role") && err.contains("ksc operation create --key"),
        "{err}"
    );

    // KSC_API_SERVER with the API path in it.
    let api = format!("{}/api", srv.api_url());
    let err = ksc_code(&with(env.clone(), "KSC_API_SERVER", &api), &["keys"], 3);
    assert!(
        err.contains("ends in /api") && err.contains(srv.api_url()),
        "{err}"
    );

    // The auth server URL pointing at the API server: the remedy names KSC_AUTH_SERVER.
    let wrong_auth = with(
        env.clone(),
        "KSC_AUTH_SERVER",
        &format!("{}/nowhere", srv.api_url()),
    );
    let out = ksc(&wrong_auth, &["token"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("check KSC_AUTH_SERVER"), "{err}");

    // An operation whose validity ends while waiting: the wait says expired (exit 12), and the
    // status no longer counts down.
    let short = srv.create_operation("orderer-client", &[("key2", 1)], 1_000);
    let err = ksc_code(&env, &["operation", "wait", &short, "--timeout", "60s"], 12);
    assert!(!err.contains("validms"), "{err}");
    let status = ksc_ok(&env, &["operation", "status", &short]);
    assert!(status.contains("the validity has ended"), "{status}");
    assert!(!status.contains("expires in"), "{status}");
    let err = ksc_code(
        &with(env.clone(), "KSC_OPERATION_ID", &short),
        &["sign", "--key", "key2", "--in", &data, "--out", &sig],
        12,
    );
    assert!(err.matches("create a new operation").count() <= 1, "{err}");
    assert!(!err.contains("validms") && err.contains("--valid"), "{err}");
}

#[test]
fn logs_have_timestamps_json_and_one_line_per_signature() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 2)], 300_000);
    let env = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write(tmp.path(), "fw.bin", b"firmware");
    let sig = tmp.path().join("fw.sig").display().to_string();

    let out = ksc(
        &with(env.clone(), "KSC_LOG", "debug"),
        &["sign", "--key", "key1", "--in", &data, "--out", &sig],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let signed: Vec<&str> = stderr.lines().filter(|l| l.contains(" INFO ")).collect();
    assert_eq!(signed.len(), 1, "one info line per signature: {stderr}");
    let line = signed[0];
    let ts = line.split(' ').next().unwrap_or_default();
    assert!(
        ts.len() == 24 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
        "RFC 3339 timestamp first: {line}"
    );
    let digest = hex::encode(ks_common::hash::digest(
        ks_common::HashAlg::Sha256,
        b"firmware",
    ));
    for part in [
        "signed: key key1",
        &format!("operation {op}"),
        &digest[..16],
        "request ksc-",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }
    assert!(
        !stderr.contains("rustls") && !stderr.contains("hyper"),
        "other crates' internals only at trace: {stderr}"
    );

    let json_env = with(with(env, "KSC_LOG", "info"), "KSC_LOG_FORMAT", "json");
    let sig2 = tmp.path().join("fw2.sig").display().to_string();
    let data2 = write(tmp.path(), "fw2.bin", b"firmware 2");
    let out = ksc(
        &json_env,
        &["sign", "--key", "key1", "--in", &data2, "--out", &sig2],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = stderr
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON log line: {stderr}"));
    assert_eq!(v["level"], "INFO", "{v}");
    assert!(
        v["msg"]
            .as_str()
            .unwrap_or_default()
            .starts_with("signed: key key1"),
        "{v}"
    );
    assert!(v["ts"].as_str().unwrap_or_default().ends_with('Z'), "{v}");

    let err = ksc_code(&with(json_env, "KSC_LOG_FORMAT", "xml"), &["keys"], 3);
    assert!(err.contains("KSC_LOG_FORMAT"), "{err}");
}
