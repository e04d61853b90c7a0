//! `ksc doctor`: the real `ksc` against the dev KeyServer, healthy and broken in each way a
//! check is meant to catch, with the settings' sources and secrets never shown.

mod support;

use std::process::Output;

use ks_devserver::harness::{DevServer, TestIssuer};
use serde_json::Value;
use support::*;

const ORDERER: &str = "orderer-client";

fn doctor(env: &[(String, String)], extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["doctor"];
    args.extend_from_slice(extra);
    let Output {
        status,
        stdout,
        stderr,
    } = ksc(env, &args);
    (
        status.code(),
        String::from_utf8(stdout).expect("utf-8 stdout"),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn doctor_json(env: &[(String, String)], extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = doctor(env, &args);
    let v = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\nstderr: {err}"));
    (code, v)
}

/// The line of check `name` (e.g. `tls KSC_API_SERVER`).
fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| {
            let t = l.trim_start();
            ["ok    ", "FAIL  ", "skip  "]
                .iter()
                .any(|p| t.starts_with(&format!("{p}{name}:")))
        })
        .unwrap_or_else(|| panic!("no check {name:?} in:\n{out}"))
}

fn status_of<'a>(out: &'a str, name: &str) -> &'a str {
    line(out, name)
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v}"))
}

fn setting<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no setting {name}: {v}"))
}

#[test]
fn healthy_setup_passes_every_check_and_spends_nothing() {
    let srv = DevServer::start();
    let op = srv.create_operation(ORDERER, &[("key1", 2)], 600_000);
    let env = with(user_settings(&srv, ORDERER), "KSC_OPERATION_ID", &op);
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for name in [
        "config",
        "dns KSC_API_SERVER",
        "tcp KSC_API_SERVER",
        "tls KSC_API_SERVER",
        "auth",
        "keys",
        "operation",
    ] {
        assert_eq!(status_of(&out, name), "ok", "{name}:\n{out}");
    }
    assert!(
        line(&out, "tls KSC_API_SERVER")
            .contains(&format!("KSC_CA_FILE {}", srv.ca_file().display())),
        "the CA source is named:\n{out}"
    );
    assert!(line(&out, "tcp KSC_API_SERVER").contains("connected to 127.0.0.1:"));
    assert!(line(&out, "keys").contains("key1") && line(&out, "keys").contains("key3"));
    assert!(
        line(&out, "operation").contains("key1 2 of 2 uses left"),
        "{out}"
    );
    assert!(out.contains("All checks passed."));
    // Secrets: masked with their length, never shown.
    let secret = format!("{ORDERER}-secret");
    assert!(
        !out.contains(&secret) && !err.contains(&secret),
        "{out}{err}"
    );
    assert!(
        out.contains(&format!("set, {} chars", secret.len())),
        "{out}"
    );
    // Doctor never signs and never creates an operation.
    let st = srv.operation(&op);
    assert_eq!(
        st["keyusagerestrictions"][0]["usagecount"], 0,
        "no use spent: {st}"
    );
    let all = ksc_ok(
        &user_settings(&srv, "adminclient"),
        &["operation", "list", "--all", "--json"],
    );
    let ops: Value = serde_json::from_str(&all).expect("JSON");
    assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops}");

    // --json: one document, booleans as booleans.
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["failed"], 0);
    for c in v["checks"].as_array().expect("checks") {
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["skipped"], false, "{c}");
        assert_eq!(c["status"], "ok", "{c}");
    }
    let s = setting(&v, "KSC_CLIENT_SECRET");
    assert_eq!(s["secret"], true);
    assert_eq!(s["set"], true);
    assert!(!v.to_string().contains(&secret));
}

#[test]
fn sources_are_flag_env_file_and_default() {
    let srv = DevServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("ksc.conf");
    std::fs::write(
        &conf,
        format!(
            "KSC_CA_FILE={}\nKSC_DEADLINE=45s\nKSC_APPROVAL_TIMEOUT=2m\n",
            srv.ca_file().display()
        ),
    )
    .expect("write config");
    // The environment names the config file and a wrong API server; the flag wins over it.
    let env = vec![
        ("KSC_CONFIG".to_string(), conf.display().to_string()),
        ("KSC_API_SERVER".into(), "https://wrong.invalid:1".into()),
        ("KSC_AUTH_SERVER".into(), srv.auth_url().to_string()),
        ("KSC_CLIENT_ID".into(), ORDERER.into()),
        ("KSC_CLIENT_SECRET".into(), format!("{ORDERER}-secret")),
        ("KSC_APPROVAL_TIMEOUT".into(), "3m".into()),
    ];
    let (code, v) = doctor_json(&env, &["--api-server", srv.api_url()]);
    assert_eq!(code, Some(0), "{v}");
    let api = setting(&v, "KSC_API_SERVER");
    assert_eq!(api["source"], "flag", "{api}");
    assert_eq!(api["flag"], "--api-server");
    assert_eq!(api["value"], srv.api_url());
    let ca = setting(&v, "KSC_CA_FILE");
    assert_eq!(ca["source"], "file", "{ca}");
    assert_eq!(ca["file"], conf.display().to_string());
    assert_eq!(setting(&v, "KSC_DEADLINE")["value"], "45s");
    // The environment beats the file.
    let wait = setting(&v, "KSC_APPROVAL_TIMEOUT");
    assert_eq!(
        (&wait["source"], &wait["value"]),
        (&"env".into(), &"3m".into())
    );
    assert_eq!(setting(&v, "KSC_CONFIG")["source"], "env");
    let timeout = setting(&v, "KSC_HTTP_CLIENT_TIMEOUT");
    assert_eq!(timeout["source"], "default", "{timeout}");
    assert_eq!(timeout["value"], "10s");
    assert_eq!(timeout["set"], false);
    let token = setting(&v, "KSC_ID_TOKEN");
    assert_eq!(
        (&token["value"], &token["set"]),
        (&Value::Null, &false.into())
    );
    // Every variable the library reads is listed, from the tables in config.rs.
    assert_eq!(
        v["settings"].as_array().map(Vec::len),
        Some(ks_common::config::ALL_VARIABLES.len() + ks_common::config::AMBIENT_VARIABLES.len())
    );
    // The operation check has nothing to look at.
    assert_eq!(check(&v, "operation")["status"], "skip");
    assert_eq!(check(&v, "operation")["ok"], false);

    // --config is a flag too; the text form shows where each value came from.
    let env2: Vec<_> = env.into_iter().filter(|(k, _)| k != "KSC_CONFIG").collect();
    let (code, out, _) = doctor(
        &env2,
        &[
            "--config",
            conf.to_str().expect("utf-8 path"),
            "--api-server",
            srv.api_url(),
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("[flag --config]"), "{out}");
    assert!(out.contains(&format!("[file {}]", conf.display())), "{out}");
    assert!(out.contains("[default]") && out.contains("[env]"), "{out}");
}

#[test]
fn wrong_ca_file_fails_tls_with_the_fix_and_skips_the_rest() {
    let srv = DevServer::start();
    // A real CA, but not the one that issued the server's TLS certificate.
    let env = with(
        user_settings(&srv, ORDERER),
        "KSC_CA_FILE",
        &srv.signing_ca_file().display().to_string(),
    );
    let env = with(env, "KSC_OPERATION_ID", "1");
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_eq!(status_of(&out, "tcp KSC_API_SERVER"), "ok", "{out}");
    let tls = line(&out, "tls KSC_API_SERVER");
    assert!(tls.starts_with("  FAIL"), "{out}");
    assert!(tls.contains("not issued by a CA in"), "{out}");
    assert!(
        out.contains(
            "fix: point KSC_CA_FILE at the PEM CA certificate that issued the server's certificate"
        ),
        "{out}"
    );
    for name in ["auth", "keys", "operation"] {
        assert_eq!(status_of(&out, name), "skip", "{name}:\n{out}");
        assert!(line(&out, name).contains("the tls check of KSC_API_SERVER failed"));
    }
    let (code, v) = doctor_json(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["ok"], false);
    let tls = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "tls")
        .expect("tls");
    assert_eq!(
        (&tls["ok"], &tls["status"]),
        (&false.into(), &"fail".into())
    );
    assert!(tls["fix"]
        .as_str()
        .is_some_and(|f| f.contains("KSC_CA_FILE")));
    assert_eq!(check(&v, "auth")["skipped"], true);
}

#[test]
fn unknown_host_fails_dns() {
    let env = vec![
        (
            "KSC_API_SERVER".to_string(),
            "https://ksc-doctor-test.invalid:8200".to_string(),
        ),
        ("KSC_ID_TOKEN".into(), "not-a-jwt-but-a-secret-value".into()),
    ];
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let dns = line(&out, "dns KSC_API_SERVER");
    assert!(dns.starts_with("  FAIL"), "{out}");
    assert!(dns.contains("ksc-doctor-test.invalid"), "{out}");
    assert!(
        out.contains("fix: check the host name in KSC_API_SERVER"),
        "{out}"
    );
    assert_eq!(status_of(&out, "tcp KSC_API_SERVER"), "skip");
    assert_eq!(status_of(&out, "auth"), "skip");
    assert!(!out.contains("not-a-jwt-but-a-secret-value"), "{out}");
    assert!(out.contains("set, 28 chars"), "{out}");
}

#[test]
fn closed_port_fails_tcp_with_the_address() {
    // A port that was just free: bound, then released, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // With credentials in the URL, which are never shown either.
    let env = vec![(
        "KSC_API_SERVER".to_string(),
        format!("https://doc:pa55w0rd@127.0.0.1:{port}"),
    )];
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_eq!(status_of(&out, "dns KSC_API_SERVER"), "ok", "{out}");
    let tcp = line(&out, "tcp KSC_API_SERVER");
    assert!(tcp.starts_with("  FAIL"), "{out}");
    assert!(tcp.contains(&format!("127.0.0.1:{port}")), "{out}");
    assert!(out.contains(&format!("listening on port {port}")), "{out}");
    assert_eq!(status_of(&out, "tls KSC_API_SERVER"), "skip");
    assert!(
        !out.contains("pa55w0rd") && !err.contains("pa55w0rd"),
        "{out}{err}"
    );
    assert!(out.contains("https://***@127.0.0.1:"), "{out}");
}

#[test]
fn wrong_client_secret_fails_auth_without_showing_it() {
    let srv = DevServer::start();
    let wrong = "doctor-wrong-secret-4711";
    let env = with(user_settings(&srv, ORDERER), "KSC_CLIENT_SECRET", wrong);
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert_eq!(status_of(&out, "tls KSC_API_SERVER"), "ok", "{out}");
    let auth = line(&out, "auth");
    assert!(auth.starts_with("  FAIL"), "{out}");
    assert!(auth.contains(ORDERER), "{out}");
    assert!(
        out.contains("fix: check KSC_CLIENT_ID and KSC_CLIENT_SECRET"),
        "{out}"
    );
    assert_eq!(status_of(&out, "keys"), "skip");
    assert!(!out.contains(wrong) && !err.contains(wrong), "{out}{err}");
}

#[test]
fn id_token_is_shown_by_its_claims_only() {
    let srv = DevServer::start();
    let token = srv.token(ORDERER);
    // A given token wins over client credentials on the same command line: doctor says so.
    let env = with(user_settings(&srv, ORDERER), "KSC_ID_TOKEN", &token);
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(!out.contains(&token) && !err.contains(&token), "{out}{err}");
    for part in token.split('.') {
        assert!(!out.contains(part), "a token part leaked: {out}");
    }
    let shown = out
        .lines()
        .find(|l| l.trim_start().starts_with("KSC_ID_TOKEN"))
        .expect("KSC_ID_TOKEN line");
    assert!(
        shown.contains("JWT") && shown.contains("exp=") && shown.contains("(in "),
        "{shown}"
    );
    assert!(
        line(&out, "auth").contains("also set but not used: KSC_CLIENT_ID/KSC_CLIENT_SECRET"),
        "{out}"
    );
    let (_, v) = doctor_json(&env, &[]);
    let t = setting(&v, "KSC_ID_TOKEN");
    assert!(t["jwt"]["exp"].as_u64().is_some(), "{t}");
    assert!(!v.to_string().contains(&token));
}

#[test]
fn unknown_rejected_and_expired_operations_fail() {
    let srv = DevServer::start();
    let base = user_settings(&srv, ORDERER);
    let (code, out, _) = doctor(&with(base.clone(), "KSC_OPERATION_ID", "999999"), &[]);
    assert_eq!(code, Some(1), "{out}");
    let op = line(&out, "operation");
    assert!(
        op.starts_with("  FAIL") && op.contains("no such operation"),
        "{out}"
    );
    assert!(out.contains("fix: check KSC_OPERATION_ID, or create a new operation"));
    assert_eq!(status_of(&out, "keys"), "ok", "{out}");

    let rejected = srv.create_operation(ORDERER, &[("key2", 1)], 600_000);
    srv.reject("approver-key2", &rejected);
    let (code, out, _) = doctor(&with(base.clone(), "KSC_OPERATION_ID", &rejected), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "operation").contains("rejected by approver-key2"),
        "{out}"
    );

    // Valid for 1 ms: over before ksc has even started.
    let expired = srv.create_operation(ORDERER, &[("key1", 1)], 1);
    let (code, out, _) = doctor(&with(base.clone(), "KSC_OPERATION_ID", &expired), &[]);
    assert_eq!(code, Some(1), "{out}");
    let op = line(&out, "operation");
    assert!(op.starts_with("  FAIL") && op.contains("expired"), "{out}");
    assert!(out.contains("fix: create a new operation"), "{out}");

    // Pending is not a fault: the line says what it waits for.
    let pending = srv.create_operation(ORDERER, &[("key3", 1)], 600_000);
    let (code, out, _) = doctor(&with(base, "KSC_OPERATION_ID", &pending), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "operation").contains("0 of 2 approvals"),
        "{out}"
    );
}

#[test]
fn bad_configuration_fails_first_and_usage_errors_exit_2() {
    let env = vec![
        (
            "KSC_API_SERVER".to_string(),
            "https://127.0.0.1:1".to_string(),
        ),
        ("KSC_HTTP_CLIENT_TIMEOUT".into(), "soon".into()),
    ];
    let (code, out, _) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}");
    let cfg = line(&out, "config");
    assert!(
        cfg.starts_with("  FAIL") && cfg.contains("KSC_HTTP_CLIENT_TIMEOUT"),
        "{out}"
    );
    for name in ["dns", "tcp", "tls", "auth", "keys", "operation"] {
        assert_eq!(status_of(&out, name), "skip", "{name}: {out}");
    }
    // The settings are still listed, with the bad value as given.
    assert!(out.contains("soon  [env]"), "{out}");

    // An unreadable config file: listed, and the config check says why.
    let env = vec![(
        "KSC_CONFIG".to_string(),
        "/nonexistent/ksc.conf".to_string(),
    )];
    let (code, out, _) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        line(&out, "config").contains("cannot read /nonexistent/ksc.conf"),
        "{out}"
    );

    // No API server at all.
    let (code, out, _) = doctor(&[], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("fix: export KSC_API_SERVER="), "{out}");

    ksc_code(&[], &["doctor", "--bogus"], 2);
    ksc_code(&[], &["doctor", "extra"], 2);
}

#[test]
fn signing_ca_check_in_the_catalog() {
    let srv = DevServer::start();
    let trusted = with(
        user_settings(&srv, ORDERER),
        "KSC_SIGNING_CA_FILE",
        &srv.signing_ca_file().display().to_string(),
    );
    let (code, out, _) = doctor(&trusted, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "keys").contains("every one trusted by KSC_SIGNING_CA_FILE"),
        "{out}"
    );
    // The TLS CA did not issue the signing certificates: no key is trusted.
    let wrong = with(
        user_settings(&srv, ORDERER),
        "KSC_SIGNING_CA_FILE",
        &srv.ca_file().display().to_string(),
    );
    let (code, out, _) = doctor(&wrong, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(line(&out, "keys").starts_with("  FAIL"), "{out}");
    assert!(
        out.contains("fix: point KSC_SIGNING_CA_FILE at the CA"),
        "{out}"
    );
}

#[test]
fn a_token_the_server_does_not_trust_fails_auth_with_the_reason() {
    let srv = DevServer::start();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    // Well-formed and unexpired, but from an issuer this server was never told about.
    let token = TestIssuer::new().token(&serde_json::json!({
        "iss": "https://ci.untrusted.example", "sub": "project_path:x", "aud": "keyserver", "exp": exp
    }));
    let env = vec![
        ("KSC_API_SERVER".to_string(), srv.api_url().to_string()),
        ("KSC_CA_FILE".into(), srv.ca_file().display().to_string()),
        ("KSC_ID_TOKEN".into(), token.clone()),
    ];
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let auth = line(&out, "auth");
    assert!(
        auth.starts_with("  FAIL")
            && auth.contains("refused the token")
            && auth.contains("HTTP 401"),
        "{out}"
    );
    assert!(out.contains("iss=https://ci.untrusted.example"), "{out}");
    assert!(out.contains("fix: fetch a new token"), "{out}");
    assert!(!out.contains(&token) && !err.contains(&token));
    assert_eq!(status_of(&out, "keys"), "skip");

    // No credentials at all: the server is fine, the auth check says what to set.
    let (code, out, _) = doctor(&env[..2], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(status_of(&out, "tls KSC_API_SERVER"), "ok", "{out}");
    assert!(
        line(&out, "auth").contains("no token is configured"),
        "{out}"
    );
    assert!(out.contains("fix: set KSC_ID_TOKEN"), "{out}");
}

#[test]
fn a_key_pin_that_does_not_match_fails_the_catalog() {
    let srv = DevServer::start();
    let env = with(
        user_settings(&srv, ORDERER),
        "KSC_KEY_PINS",
        &format!("key1=sha256:{}", "00".repeat(32)),
    );
    let (code, out, _) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}");
    let keys = line(&out, "keys");
    assert!(
        keys.starts_with("  FAIL") && keys.contains("key1:"),
        "{out}"
    );
    assert!(out.contains("check KSC_KEY_PINS"), "{out}");
}

#[test]
fn an_operation_of_another_identity_is_pointed_out() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-clientkey1", &[("key1", 1)], 600_000);
    let env = with(user_settings(&srv, ORDERER), "KSC_OPERATION_ID", &op);
    let (code, out, _) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "operation")
            .contains("created by orderer-clientkey1, not by this identity (orderer-client)"),
        "{out}"
    );
}

#[test]
fn github_request_token_is_masked_and_a_token_file_is_checked() {
    let srv = DevServer::start();
    let request_token = "doctor-github-request-token-0815";
    // Explicit client credentials win over the runner's ambient GitHub variables.
    let env = with(
        with(
            user_settings(&srv, ORDERER),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            request_token,
        ),
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "https://token.actions.example/oidc?api-version=2.0",
    );
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        !out.contains(request_token) && !err.contains(request_token),
        "{out}{err}"
    );
    let shown = out
        .lines()
        .find(|l| l.trim_start().starts_with("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
        .expect("the runner's request token is listed");
    assert!(shown.contains("env"), "{shown}");

    // A token file: read for the auth check, never shown.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("id-token");
    let token = srv.token(ORDERER);
    std::fs::write(&file, &token).unwrap();
    let mut env: Vec<(String, String)> = user_settings(&srv, ORDERER)
        .into_iter()
        .filter(|(k, _)| k != "KSC_CLIENT_ID" && k != "KSC_CLIENT_SECRET" && k != "KSC_AUTH_SERVER")
        .collect();
    env.push(("KSC_ID_TOKEN_FILE".into(), file.display().to_string()));
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(status_of(&out, "auth"), "ok", "{out}");
    for part in token.split('.') {
        assert!(!out.contains(part) && !err.contains(part), "{out}{err}");
    }
    // The same file emptied: auth fails naming the setting, the catalog is skipped.
    std::fs::write(&file, "").unwrap();
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(line(&out, "auth").starts_with("  FAIL"), "{out}");
    assert!(out.contains("KSC_ID_TOKEN_FILE"), "{out}");
    assert_eq!(status_of(&out, "keys"), "skip", "{out}");
}

#[test]
fn the_identity_source_setting_decides_what_doctor_checks() {
    let srv = DevServer::start();
    // A stale exported token that KSC_ID_TOKEN_SOURCE=client puts aside: not checked, not
    // reported as expired; the client credentials are, at KSC_AUTH_SERVER.
    let stale = {
        use base64::Engine as _;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"sub":"orderer-client","exp":1000000000}"#),
            b64("not-a-signature")
        )
    };
    let env = with(
        with(user_settings(&srv, ORDERER), "KSC_ID_TOKEN", &stale),
        "KSC_ID_TOKEN_SOURCE",
        "client",
    );
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let auth = line(&out, "auth");
    assert!(auth.contains("client credentials"), "{out}");
    assert!(auth.contains("KSC_ID_TOKEN_SOURCE=client"), "{out}");
    assert!(!out.contains("has expired"), "{out}");
    assert!(!out.contains(&stale) && !err.contains(&stale), "{out}{err}");
    // Without the setting the given token wins (auto order), and its expiry is the failure.
    let env = with(user_settings(&srv, ORDERER), "KSC_ID_TOKEN", &stale);
    let (code, out, err) = doctor(&env, &[]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        line(&out, "auth").contains("KSC_ID_TOKEN has expired"),
        "{out}"
    );
}
