//! The library client against the dev KeyServer: token refresh, approval waits, final
//! operation states, retries under injected faults, and the `ksc` exit codes for each.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use ks_common::hash::{self, HashAlg};
use ks_common::{EcdsaFormat, ErrorKind, SignRequest};
use ks_devserver::harness::DevServer;
use support::*;

fn pkcs1(data: &[u8]) -> SignRequest {
    SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, data),
    }
}

fn ecdsa(data: &[u8]) -> SignRequest {
    SignRequest::Ecdsa {
        digest: hash::digest(HashAlg::Sha256, data),
        format: EcdsaFormat::Der,
    }
}

fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has no {name}: {v}"))
}

/// Waits (bounded) until `cond` holds, polling the server's state.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn token_is_refreshed_before_expiry_and_after_401() {
    let srv = DevServer::builder()
        .token_lifetime(Duration::from_secs(2))
        .start();
    let op = srv.create_operation("orderer-client", &[("key1", 10)], 120_000);
    let settings = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let client = client(&settings);
    let first = client.token().expect("token");
    let exp = ks_common::token::jwt_expiry(&first).expect("JWT exp");
    client
        .sign("key1", &pkcs1(b"one"))
        .expect("first signature");
    let before = srv.stats();

    // Let the first token run out; the client must have fetched a new one before using it.
    wait_until("the first token to expire", Duration::from_secs(10), || {
        SystemTime::now() > exp
    });
    client
        .sign("key1", &pkcs1(b"two"))
        .expect("signature after expiry");
    let second = client.token().expect("token");
    assert_ne!(first, second, "a new token was fetched");
    let after = srv.stats();
    assert!(counter(&after, "tokens") > counter(&before, "tokens"));
    assert_eq!(
        counter(&after, "client_errors"),
        counter(&before, "client_errors"),
        "refreshed before expiry: no 401 was needed"
    );

    // An expired KSC_ID_TOKEN with client credentials: one 401, then a fresh token works.
    let with_stale = with(settings.clone(), "KSC_ID_TOKEN", &first);
    client_sign_ok(&with_stale, "three");

    // An expired KSC_ID_TOKEN alone: an auth error saying it expired; ksc exit code 4.
    let stale_only = vec![
        ("KSC_API_SERVER".to_string(), srv.api_url().to_string()),
        (
            "KSC_CA_FILE".to_string(),
            srv.ca_file().display().to_string(),
        ),
        ("KSC_ID_TOKEN".to_string(), first.clone()),
        ("KSC_OPERATION_ID".to_string(), op.clone()),
    ];
    let e = support::client(&stale_only)
        .keys()
        .expect_err("expired token");
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.to_string().contains("expired"), "{e}");
    let err = ksc_code(&stale_only, &["keys"], 4);
    assert!(err.contains("expired"), "{err}");

    // Wrong client secret: auth error, exit code 4.
    let wrong = with(settings, "KSC_CLIENT_SECRET", "not-the-secret");
    let err = ksc_code(&wrong, &["token"], 4);
    assert!(err.contains("orderer-client"), "{err}");
}

fn client_sign_ok(settings: &[(String, String)], data: &str) {
    support::client(settings)
        .sign("key1", &pkcs1(data.as_bytes()))
        .expect("sign after 401 refresh");
}

#[test]
fn pending_operation_without_and_with_approval_timeout() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key2", 2)], 300_000);
    let settings = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );

    // Default: do not wait.
    let e = client(&settings)
        .sign("key2", &ecdsa(b"x"))
        .expect_err("pending");
    assert_eq!(e.kind(), ErrorKind::Pending);
    assert_eq!(e.keyid(), Some("key2"));
    assert_eq!(e.operation(), Some(op.as_str()));
    assert!(e.to_string().contains("KSC_APPROVAL_TIMEOUT"), "{e}");
    ksc_code(
        &settings,
        &[
            "sign",
            "--key",
            "key2",
            "--in",
            "/dev/null",
            "--out",
            "/dev/null",
        ],
        10,
    );

    // A short wait that nobody ends: pending after the timeout.
    let short = with(settings.clone(), "KSC_APPROVAL_TIMEOUT", "1s");
    let start = Instant::now();
    let e = client(&short)
        .sign("key2", &ecdsa(b"x"))
        .expect_err("still pending");
    assert_eq!(e.kind(), ErrorKind::Pending);
    assert!(start.elapsed() >= Duration::from_secs(1));

    // A long wait: ksc says once on stderr what it waits for; the approval ends the wait.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = write(tmp.path(), "data", b"firmware");
    let sig = tmp.path().join("sig").display().to_string();
    let long = with(settings.clone(), "KSC_APPROVAL_TIMEOUT", "2m");
    let mut child = ksc_cmd(
        &long,
        &["sign", "--key", "key2", "--in", &data, "--out", &sig],
    )
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn ksc");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("read stderr");
    assert!(
        line.contains(&format!(
            "operation {op}: key2 has 0 of 1 approvals, expires in"
        )) && line.contains("waiting up to"),
        "{line}"
    );
    srv.approve("approver-key2", &op);
    let status = child.wait().expect("ksc exit");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).ok();
    assert!(status.success(), "ksc sign after approval: {rest}");
    assert!(!rest.contains("waiting up to"), "told only once: {rest}");
    let entry = client(&settings).key("key2").expect("key2");
    let sig = std::fs::read(&sig).expect("signature file");
    ks_common::verify::verify(&entry.public_key, &ecdsa(b"firmware"), &sig).expect("valid");
}

#[test]
fn rejected_expired_and_exhausted_operations() {
    let srv = DevServer::start();
    let orderer = user_settings(&srv, "orderer-client");
    let nothing = ["--in", "/dev/null", "--out", "/dev/null"];

    // Rejected.
    let op = srv.create_operation("orderer-client", &[("key2", 1)], 300_000);
    srv.reject("approver-key2", &op);
    let s = with(orderer.clone(), "KSC_OPERATION_ID", &op);
    let e = client(&s).sign("key2", &ecdsa(b"x")).expect_err("rejected");
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    let mut args = vec!["sign", "--key", "key2"];
    args.extend_from_slice(&nothing);
    ksc_code(&s, &args, 11);
    ksc_code(&s, &["operation", "wait", "--timeout", "5s"], 11);
    let e = client(&s)
        .wait_for_approval(&op, Duration::from_secs(5), &mut |_| {})
        .expect_err("rejected");
    assert_eq!(e.kind(), ErrorKind::Rejected);

    // Expired (validity 1s; wait until the server says so).
    let op = srv.create_operation("orderer-client", &[("key1", 1)], 1000);
    wait_until("the operation to expire", Duration::from_secs(10), || {
        srv.operation(&op)["status"] == "expired"
    });
    let s = with(orderer.clone(), "KSC_OPERATION_ID", &op);
    let e = client(&s).sign("key1", &pkcs1(b"x")).expect_err("expired");
    assert_eq!(e.kind(), ErrorKind::Expired, "{e}");
    let mut args = vec!["sign", "--key", "key1"];
    args.extend_from_slice(&nothing);
    ksc_code(&s, &args, 12);

    // Exhausted.
    let op = srv.create_operation("orderer-client", &[("key1", 1)], 300_000);
    let s = with(orderer.clone(), "KSC_OPERATION_ID", &op);
    client(&s).sign("key1", &pkcs1(b"x")).expect("first use");
    let e = client(&s)
        .sign("key1", &pkcs1(b"y"))
        .expect_err("exhausted");
    assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    ksc_code(&s, &args, 13);

    // A key outside the operation, an unknown key, an unknown operation.
    let e = client(&s)
        .sign("key5", &ecdsa(b"x"))
        .expect_err("not in op");
    assert_eq!(e.kind(), ErrorKind::Forbidden, "{e}");
    let e = client(&s).sign("key99", &ecdsa(b"x")).expect_err("no key");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("key1, key2"), "{e}");
    let e = client(&orderer).operation("999999").expect_err("no op");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    ksc_code(&orderer, &["operation", "status", "999999"], 6);
    // Wrong request for the key type never reaches the server.
    let e = client(&s)
        .sign("key1", &ecdsa(b"x"))
        .expect_err("EC on RSA");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn retries_under_faults_never_spend_an_extra_use() {
    // One request in five fails; retries go on until KSC_DEADLINE (60 s), so a request fails
    // for good only after dozens of consecutive faults: deterministic in practice.
    let srv = DevServer::builder()
        .fault_5xx(0.1)
        .fault_429(0.05)
        .fault_drop(0.05)
        .start();
    // ~30 requests: some fault is all but certain (0.8^30 < 0.2% to see none).
    const USES: u32 = 12;
    let op = srv.create_operation("orderer-client", &[("key1", USES), ("key5", USES)], 300_000);
    let settings = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let client = client(&settings);
    for i in 0..USES {
        let data = format!("data {i}");
        client
            .sign("key1", &pkcs1(data.as_bytes()))
            .unwrap_or_else(|e| panic!("RSA signature {i} under faults: {e}"));
        client
            .sign("key5", &ecdsa(data.as_bytes()))
            .unwrap_or_else(|e| panic!("EC signature {i} under faults: {e}"));
    }
    // Had any retry spent a use, the budget would be gone before this point; and it is
    // exactly spent now.
    let st = srv.operation(&op);
    for u in st["keyusagerestrictions"].as_array().expect("restrictions") {
        assert_eq!(u["usagecount"], USES, "{u}");
    }
    let e = client
        .sign("key1", &pkcs1(b"one more"))
        .expect_err("exhausted");
    assert_eq!(e.kind(), ErrorKind::Exhausted, "{e}");
    let stats = srv.stats();
    assert!(
        counter(&stats, "faults") > 0,
        "faults were injected: {stats}"
    );
    assert_eq!(
        counter(&stats, "signorders"),
        u64::from(2 * USES),
        "{stats}"
    );
}

#[test]
fn ksc_binary_does_not_link_openssl() {
    require_tool("ldd", "libc-bin");
    let out = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_ksc"))
        .output()
        .expect("run ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ldd failed: {text}");
    assert!(text.contains("libc.so"), "ldd output looks wrong: {text}");
    assert!(
        !text.contains("libssl") && !text.contains("libcrypto"),
        "ksc links OpenSSL:\n{text}"
    );
}

#[test]
fn one_client_signs_from_many_threads_over_reused_connections() {
    let srv = DevServer::start();
    const THREADS: u32 = 6;
    const EACH: u32 = 3;
    let op = srv.create_operation(
        "orderer-client",
        &[("key1", THREADS * EACH), ("key2", THREADS * EACH)],
        300_000,
    );
    srv.approve("approver-key2", &op);
    let settings = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let client = std::sync::Arc::new(client(&settings));
    client.keys().expect("catalog");
    let before = srv.stats();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let c = client.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let data = format!("thread {t} item {i}");
                    c.sign("key1", &pkcs1(data.as_bytes()))?;
                    c.sign("key2", &ecdsa(data.as_bytes()))?;
                }
                Ok::<(), ks_common::Error>(())
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked").expect("worker signs");
    }
    let after = srv.stats();
    assert_eq!(
        counter(&after, "signorders") - counter(&before, "signorders"),
        u64::from(2 * THREADS * EACH)
    );
    // Connections are kept alive and reused: far fewer TLS handshakes than requests. The bound
    // allows two connections per thread (a connection whose end-of-response has not been
    // processed yet is busy, so a concurrent request may open another) plus the harness's own.
    let handshakes = counter(&after, "tls_handshakes") - counter(&before, "tls_handshakes");
    assert!(
        handshakes <= u64::from(2 * THREADS) + 2,
        "{handshakes} TLS handshakes for {} sign orders",
        2 * THREADS * EACH
    );
}

#[test]
fn trace_logging_never_shows_secrets_or_tokens() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 1)], 300_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let log_file = tmp.path().join("ks.log");
    let settings = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let out = ksc(&with(settings.clone(), "KSC_LOG", "trace"), &["token"]);
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let token_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // From here on the token is known to be the one in use: it is given as KSC_ID_TOKEN.
    let settings = with(settings, "KSC_ID_TOKEN", &token);
    let data = write(tmp.path(), "data", b"data");
    let sig = tmp.path().join("sig").display().to_string();
    let out = ksc(
        &with(settings.clone(), "KSC_LOG", "trace"),
        &["sign", "--key", "key1", "--in", &data, "--out", &sig],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("DEBUG"), "trace logging is on: {stderr}");
    assert!(out.stdout.is_empty(), "the log never goes to stdout");
    // Without the per-user cache, so the key list is fetched (and its request logged).
    let to_file = with(
        with(settings, "KSC_CACHE", "off"),
        "KSC_LOG",
        &format!("trace:{}", log_file.display()),
    );
    ksc_code(&to_file, &["keys"], 0);
    let file_log = std::fs::read_to_string(&log_file).expect("log file written");
    assert!(file_log.contains("api/keys"), "{file_log}");
    for text in [&token_stderr, &stderr, &file_log] {
        assert!(
            !text.contains("orderer-client-secret"),
            "secret in log: {text}"
        );
        // The token's signature part is unique to it; none of the token may appear.
        let sig_part = token.rsplit('.').next().unwrap_or(&token);
        assert!(!text.contains(sig_part), "token in log: {text}");
        assert!(!text.contains("Bearer ey"), "authorization header in log");
    }
}
