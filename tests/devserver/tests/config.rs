//! The configuration file: many keys, custom key sets, secrets; the command
//! line; loopback only.

mod support;

use std::process::Command;

use ks_devserver::harness::DevServer;
use support::*;

#[test]
fn extra_keys_for_benchmarks() {
    let s = DevServer::builder()
        .config_toml("[extra_keys]\ncount = 40\n")
        .start();
    let t = s.token("adminclient");
    let keys = s.api_request("GET", "/api/keys", Some(&t), None).json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 46);
    assert_eq!(keys[45]["keyid"], "key46");
    assert_eq!(keys[45]["algorithm"], "EC-P256");
    assert_eq!(keys[45]["approvers"], 0);
    // Distinct keys, each with its own certificate.
    let certs: std::collections::BTreeSet<&str> = keys
        .iter()
        .map(|k| k["certificate"].as_str().unwrap())
        .collect();
    assert_eq!(certs.len(), 46);
    // Per-key users exist for the generated keys.
    let op = s.create_operation("orderer-clientkey46", &[("key46", 1)], 60_000);
    let r = sign(
        &s,
        "orderer-clientkey46",
        &sign_body(&op, "key46", &hash("sha256", b"x"), "none", "asn1"),
    );
    assert_eq!(r.status, 201);
}

#[test]
fn custom_keys_users_and_secrets() {
    let s = DevServer::builder()
        .config_toml(
            r#"
token_lifetime = "10m"
[[keys]]
id = "fw-rsa"
algorithm = "RSA-2048"
approvers = 1
info = "firmware signing key"

[[keys]]
id = "fw-ec"
algorithm = "EC-P384"

[users.adminclient]
secret = "changed-secret"

[users.release-bot]
secret = "bot-secret"
create = true
sign = ["fw-ec"]
"#,
        )
        .start();
    assert_eq!(
        s.token_request("adminclient", "adminclient-secret").status,
        401
    );
    let r = s.token_request("adminclient", "changed-secret");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["expires_in"], 600);
    let t = r.json()["access_token"].as_str().unwrap().to_string();
    let keys = s.api_request("GET", "/api/keys", Some(&t), None).json();
    assert_eq!(keys[0]["keyid"], "fw-rsa");
    assert_eq!(keys[0]["keyinfo"], "firmware signing key");
    assert_eq!(keys[0]["approvers"], 1);
    assert_eq!(keys[1]["algorithm"], "EC-P384");
    assert_eq!(keys.as_array().unwrap().len(), 2);

    let bot = s.token_request("release-bot", "bot-secret").json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let create = |keyid: &str| {
        s.api_request(
            "POST",
            "/api/operations",
            Some(&bot),
            Some(&serde_json::json!({
            "validms": 60000, "description": "release 1.0",
            "new-keyusagerestrictions": [{"keyid": keyid, "maxusagecount": 1}]})),
        )
    };
    assert_eq!(create("fw-ec").status, 201);
    assert_error(&create("fw-rsa"), 403, "forbidden");
    assert_eq!(
        s.token_request("approver-fw-rsa", "approver-fw-rsa-secret")
            .status,
        200
    );
}

#[test]
fn command_line_errors_and_loopback_only() {
    let bin = env!("CARGO_BIN_EXE_ks-devserver");
    for args in [
        vec!["--api-listen", "0.0.0.0:0"],
        vec!["--bogus"],
        vec!["--fault-5xx", "1.5"],
        vec!["--token-lifetime", "soon"],
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out = Command::new(bin).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--allow-non-loopback"));
    // A broken config file is a clear start-up error, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[[keys]]\nid = \"k\"\nalgorithm = \"DSA-1024\"\n").unwrap();
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--auth-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DSA-1024"));
}

#[test]
fn watch_stdin_exits_with_its_parent() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ks-devserver"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--auth-listen",
            "127.0.0.1:0",
            "--watch-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("ks-devserver ready auth=https://127.0.0.1:"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    // Closing stdin (what the death of the test process does) stops it.
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
