//! Native CI identity against the dev KeyServer trusting a test issuer:
//! GitHub Actions' OIDC token (a stand-in for GitHub's token service issues
//! it) renewed while `ksc operation wait` waits, used by `ksc` and by the
//! provider; a token file; the errors of every new setting, with nothing spent
//! and no secret in any log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ks_devserver::harness::{DevServer, TestIssuer};
use ks_e2e::github_oidc_support::{
    job_claims, server_trusting, GithubTokenService, AUDIENCE, REPOSITORY,
};
use ks_e2e::tutorial_support::{artefact, clean_command, openssl_verify_with_cert, tool};
use serde_json::json;

const REQUEST_TOKEN: &str = "ghs_request-token-of-this-job-8f3a1c";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `ksc` with the dev server's API and CA, and nothing else.
fn ksc(server: &DevServer) -> Command {
    let mut cmd = clean_command(artefact("ksc"));
    cmd.env("KSC_API_SERVER", server.api_url())
        .env("KSC_CA_FILE", server.ca_file())
        .env("KSC_CACHE", "off");
    cmd
}

/// ... in a GitHub Actions job served by `gh`.
fn ksc_in_job(server: &DevServer, gh: &GithubTokenService) -> Command {
    let mut cmd = ksc(server);
    cmd.env("ACTIONS_ID_TOKEN_REQUEST_URL", gh.request_url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .env("KSC_OIDC_AUDIENCE", AUDIENCE);
    cmd
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run ksc");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

fn ok(cmd: &mut Command) -> (String, String) {
    let (out, err) = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed:\n{err}");
    (String::from_utf8_lossy(&out.stdout).trim().to_string(), err)
}

fn fails(cmd: &mut Command) -> String {
    let (out, err) = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded:\n{err}");
    err
}

fn uses(server: &DevServer, op: &str, key: &str) -> u64 {
    let st = server.operation(op);
    st["keyusagerestrictions"]
        .as_array()
        .expect("uses")
        .iter()
        .find(|u| u["keyid"] == key)
        .and_then(|u| u["usagecount"].as_u64())
        .unwrap_or_else(|| panic!("no usage of {key}: {st}"))
}

fn firmware(dir: &Path) -> PathBuf {
    let f = dir.join("firmware.bin");
    std::fs::write(&f, b"firmware signed with a CI identity\n".repeat(100)).expect("write");
    f
}

fn assert_no_secret(logs: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !logs.contains(s.as_str()),
            "a token or secret appears in the logs:\n{logs}"
        );
        // Not even the signature part of a JWT.
        if let Some(sig) = s.rsplit('.').next().filter(|p| p.len() > 20) {
            assert!(
                !logs.contains(sig),
                "a token's signature appears in the logs"
            );
        }
    }
}

#[test]
fn github_oidc_token_is_renewed_during_a_wait_and_signs() {
    tool("openssl", "openssl");
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting(&issuer, tmp.path());
    // Tokens live 4 s: a wait of several polls outlives many of them.
    let gh = GithubTokenService::start(issuer, REQUEST_TOKEN, 4);
    let mut logs = String::new();

    let (op, err) = ok(ksc_in_job(&server, &gh).env("KSC_LOG", "trace").args([
        "operation",
        "create",
        "--key",
        "key4=2",
        "--valid",
        "10m",
    ]));
    assert!(
        err.contains(&format!(
            "ksc: using GitHub Actions' OIDC token (audience \"{AUDIENCE}\") (no other identity is set)"
        )),
        "{err}"
    );
    logs.push_str(&err);
    let st = server.operation(&op);
    assert_eq!(st["status"], "pending", "{st}");

    // The wait: its polls must carry fresh tokens while nobody approves.
    let log_file = tmp.path().join("wait.log");
    let mut wait = ksc_in_job(&server, &gh)
        .env("KSC_LOG", "debug")
        .env("KSC_OPERATION_ID", &op)
        .args(["operation", "wait", "--timeout", "5m"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_file).expect("log file"))
        .spawn()
        .expect("start the wait");
    // Approve only once the waiting ksc has renewed its token three times.
    let before = gh.hits();
    let renewed = gh.wait_for_hits(before + 3);
    let still_waiting = wait.try_wait().expect("wait status").is_none();
    assert!(
        renewed.is_ok() && still_waiting,
        "{} of 3 token renewals during the wait (the wait {}):\n{}",
        renewed.err().unwrap_or(before + 3) - before,
        if still_waiting {
            "still runs"
        } else {
            "ended before approval"
        },
        std::fs::read_to_string(&log_file).unwrap_or_default()
    );
    server.approve("approver-key4", &op);
    let status = wait.wait().expect("the wait");
    let wait_log = std::fs::read_to_string(&log_file).expect("wait log");
    assert!(status.success(), "the wait failed:\n{wait_log}");
    // Renewed before expiry, not after KeyServer refused an expired token.
    assert!(!wait_log.contains("token refused (HTTP 401)"), "{wait_log}");
    logs.push_str(&wait_log);
    assert_eq!(gh.refused(), 0);

    // Sign with ksc and with the provider, each with its own GitHub token.
    let fw = firmware(tmp.path());
    let sig = tmp.path().join("fw.key4.sig");
    let (_, err) = ok(ksc_in_job(&server, &gh)
        .env("KSC_LOG", "info")
        .env("KSC_OPERATION_ID", &op)
        .args(["sign", "--key", "key4", "--in"])
        .arg(&fw)
        .arg("--out")
        .arg(&sig));
    logs.push_str(&err);
    let cert = tmp.path().join("key4.crt");
    ok(ksc_in_job(&server, &gh)
        .args(["cert", "key4", "-o"])
        .arg(&cert));
    openssl_verify_with_cert(&cert, &sig, &fw);

    let modules = tmp.path().join("ossl-modules");
    std::fs::create_dir_all(&modules).expect("modules dir");
    std::os::unix::fs::symlink(artefact("libkeyserver.so"), modules.join("keyserver.so"))
        .expect("symlink keyserver.so");
    let psig = tmp.path().join("fw.provider.sig");
    let mut openssl = clean_command(tool("openssl", "openssl"));
    openssl
        .env("OPENSSL_MODULES", &modules)
        .env("KSC_API_SERVER", server.api_url())
        .env("KSC_CA_FILE", server.ca_file())
        .env("KSC_CACHE", "off")
        .env("KSC_LOG", "debug")
        .env("KSC_OPERATION_ID", &op)
        .env("ACTIONS_ID_TOKEN_REQUEST_URL", gh.request_url())
        .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
        .env("KSC_OIDC_AUDIENCE", AUDIENCE)
        .args([
            "dgst",
            "-provider",
            "keyserver",
            "-sign",
            "ks:key4",
            "-sha256",
            "-out",
        ])
        .arg(&psig)
        .arg(&fw);
    let (_, err) = ok(&mut openssl);
    assert!(err.contains("GitHub Actions' OIDC token"), "{err}");
    logs.push_str(&err);
    openssl_verify_with_cert(&cert, &psig, &fw);
    assert_eq!(uses(&server, &op, "key4"), 2);

    let mut secrets = gh.issued();
    assert!(secrets.len() >= 5, "{} tokens issued", secrets.len());
    secrets.push(REQUEST_TOKEN.to_string());
    assert_no_secret(&logs, &secrets);
}

#[test]
fn wrong_audience_and_refused_request_token_are_explained_and_spend_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting(&issuer, tmp.path());
    let gh = GithubTokenService::start(issuer, REQUEST_TOKEN, 300);
    let op = server.create_operation("orderer-client", &[("key1", 1)], 600_000);
    let fw = firmware(tmp.path());
    let sign = |cmd: &mut Command| -> String {
        let err = fails(
            cmd.env("KSC_OPERATION_ID", &op)
                .env("KSC_LOG", "debug")
                .args(["sign", "--key", "key1", "--in"])
                .arg(&fw)
                .arg("--out")
                .arg(tmp.path().join("x.sig")),
        );
        assert_eq!(uses(&server, &op, "key1"), 0, "a use was spent: {err}");
        err
    };

    // KeyServer refuses the audience: the message names the setting and the
    // audience that was asked for; one new token was tried, no loop.
    let err = sign(ksc_in_job(&server, &gh).env("KSC_OIDC_AUDIENCE", "https://wrong.example"));
    assert!(
        err.contains("KSC_OIDC_AUDIENCE") && err.contains("\"https://wrong.example\""),
        "{err}"
    );
    assert_eq!(gh.hits(), 2, "one token, then one fresh one after the 401");

    // GitHub refuses the request token.
    let wrong = "ghs_not-this-jobs-request-token-77d2";
    let err = sign(ksc_in_job(&server, &gh).env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", wrong));
    assert!(
        err.contains("refused ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            && err.contains("id-token: write")
            && !err.contains(wrong),
        "{err}"
    );
    assert_eq!(gh.refused(), 1);
    let mut secrets = gh.issued();
    secrets.push(REQUEST_TOKEN.into());
    assert_no_secret(&err, &secrets);
}

#[test]
fn bad_values_of_every_new_setting_are_errors_that_spend_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let expired = {
        let mut c = job_claims();
        c["aud"] = json!(AUDIENCE);
        c["exp"] = json!(now() - 120);
        issuer.token(&c)
    };
    let server = server_trusting(&issuer, tmp.path());
    let gh = GithubTokenService::start(issuer, REQUEST_TOKEN, 300);
    let op = server.create_operation("orderer-client", &[("key1", 1)], 600_000);
    let fw = firmware(tmp.path());
    let file = |name: &str, content: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, content).expect("write");
        p.display().to_string()
    };
    let missing = tmp.path().join("absent").display().to_string();
    let empty = file("empty", "\n");
    let opaque = file("opaque", "s.hvs-opaque-vault-token\n");
    let old = file("expired", &expired);
    type Case<'a> = (Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("KSC_ID_TOKEN_SOURCE", "gitlab".into())],
            vec!["KSC_ID_TOKEN_SOURCE", "auto, token, file, client or github"],
        ),
        (
            vec![("KSC_ID_TOKEN_SOURCE", "file".into())],
            vec![
                "KSC_ID_TOKEN_SOURCE",
                "file is chosen but KSC_ID_TOKEN_FILE is not set",
            ],
        ),
        (
            vec![("KSC_ID_TOKEN_SOURCE", "client".into())],
            vec!["client is chosen but KSC_AUTH_SERVER, KSC_CLIENT_ID and KSC_CLIENT_SECRET"],
        ),
        (
            vec![("KSC_ID_TOKEN_SOURCE", "token".into())],
            vec!["token is chosen but KSC_ID_TOKEN is not set"],
        ),
        (
            vec![("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ghs_two words".into())],
            vec!["ACTIONS_ID_TOKEN_REQUEST_TOKEN", "whitespace"],
        ),
        (
            vec![("KSC_OIDC_AUDIENCE", "two words".into())],
            vec!["KSC_OIDC_AUDIENCE"],
        ),
        (
            vec![("ACTIONS_ID_TOKEN_REQUEST_URL", "http://gh.example/t".into())],
            vec!["ACTIONS_ID_TOKEN_REQUEST_URL", "https://"],
        ),
        (
            vec![("KSC_ID_TOKEN_FILE", missing.clone())],
            vec!["KSC_ID_TOKEN_FILE", &missing, "no such file"],
        ),
        (
            vec![("KSC_ID_TOKEN_FILE", empty.clone())],
            vec!["KSC_ID_TOKEN_FILE", &empty, "is empty"],
        ),
        (
            vec![("KSC_ID_TOKEN_FILE", opaque.clone())],
            vec!["KSC_ID_TOKEN_FILE", &opaque, "does not hold a JWT"],
        ),
        (
            vec![("KSC_ID_TOKEN_FILE", old.clone())],
            vec![&old, "expired at", "the CI system should rotate it"],
        ),
    ];
    for (settings, words) in cases {
        let mut cmd = ksc_in_job(&server, &gh);
        cmd.envs(settings.iter().map(|(k, v)| (k, v)));
        let err = fails(
            cmd.env("KSC_OPERATION_ID", &op)
                .args(["sign", "--key", "key1", "--in"])
                .arg(&fw)
                .arg("--out")
                .arg(tmp.path().join("x.sig")),
        );
        for w in words {
            assert!(err.contains(w), "{settings:?}: no {w:?} in:\n{err}");
        }
        assert!(!err.contains("s.hvs-opaque") && !err.contains(&expired) && !err.contains("ghs_"));
        assert_eq!(uses(&server, &op, "key1"), 0, "{settings:?} spent a use");
    }
    // `github` chosen outside a job that may request tokens.
    let err = fails(
        ksc(&server)
            .env("KSC_ID_TOKEN_SOURCE", "github")
            .env("KSC_OPERATION_ID", &op)
            .args(["keys"]),
    );
    assert!(
        err.contains("ACTIONS_ID_TOKEN_REQUEST_URL") && err.contains("id-token: write"),
        "{err}"
    );
    assert_eq!(gh.hits(), 0, "no token was needed to refuse these");
}

#[test]
fn token_file_identity_and_its_precedence_are_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let issuer = TestIssuer::new();
    let server = server_trusting(&issuer, tmp.path());
    let gh = GithubTokenService::start(TestIssuer::new(), REQUEST_TOKEN, 300);
    let mut claims = job_claims();
    claims["aud"] = json!(AUDIENCE);
    claims["exp"] = json!(now() + 600);
    let token = issuer.token(&claims);
    let path = tmp.path().join("id_token");
    std::fs::write(&path, format!("{token}\n")).expect("write");
    // The file wins over the job's ambient GitHub token, and ksc says so.
    let (out, err) = ok(ksc_in_job(&server, &gh)
        .env("KSC_ID_TOKEN_FILE", &path)
        .env("KSC_LOG", "trace")
        .args(["operation", "create", "--key", "key1=1"]));
    assert!(
        err.contains(&format!(
            "ksc: using KSC_ID_TOKEN_FILE ({}) (a given token always wins over logging in); also set but not used: GitHub",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(gh.hits(), 0);
    assert_no_secret(&err, std::slice::from_ref(&token));
    let st = server.operation(&out);
    let creator = st.to_string();
    assert!(creator.contains(REPOSITORY), "{st}");

    // A token KeyServer refuses (another audience): the file is read once
    // more, still holds it, and the server's reason is reported with the file.
    claims["aud"] = json!("https://elsewhere.example");
    let foreign = issuer.token(&claims);
    std::fs::write(&path, &foreign).expect("write");
    let err = fails(
        ksc(&server)
            .env("KSC_ID_TOKEN_FILE", &path)
            .env("KSC_LOG", "debug")
            .arg("keys"),
    );
    assert!(
        err.contains(&format!(
            "the token in {} (audience \"https://elsewhere.example\") is not one KeyServer accepts",
            path.display()
        )) && err.contains("audience does not include"),
        "{err}"
    );
    assert_eq!(err.matches("token refused (HTTP 401)").count(), 1, "{err}");
    assert_no_secret(&err, &[foreign]);
}

#[test]
fn a_silent_token_service_is_bounded_by_the_deadline() {
    // Accepts connections and never answers, like a hung token service.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    let server = DevServer::start();
    let op = server.create_operation("orderer-client", &[("key1", 1)], 600_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let fw = firmware(tmp.path());
    let err = fails(
        ksc(&server)
            .env(
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("http://127.0.0.1:{port}/idtoken?api-version=2.0"),
            )
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
            .env("KSC_DEADLINE", "2s")
            .env("KSC_HTTP_CLIENT_TIMEOUT", "1s")
            .env("KSC_LOG", "trace")
            .env("KSC_OPERATION_ID", &op)
            .args(["sign", "--key", "key1", "--in"])
            .arg(&fw)
            .arg("--out")
            .arg(tmp.path().join("x.sig")),
    );
    assert!(
        err.contains("GET /idtoken: no answer within the call's KSC_DEADLINE (2s)")
            && err.contains("GitHub Actions' token service (ACTIONS_ID_TOKEN_REQUEST_URL")
            && !err.contains("check KSC_API_SERVER"),
        "{err}"
    );
    assert_no_secret(&err, &[REQUEST_TOKEN.to_string()]);
    assert_eq!(uses(&server, &op, "key1"), 0);
}
