//! Failures a user meets, each a non-zero exit with one line from the
//! keyserver provider on OpenSSL's error output saying what to do.

use std::time::{Duration, Instant};

use ks_devserver::harness::DevServer;
use ks_e2e::provider_support::{keyserver_error_line, run_fail, ProviderEnv};

fn sign_args(uri: &str) -> Vec<&str> {
    vec![
        "dgst",
        "-provider",
        "keyserver",
        "-sign",
        uri,
        "-sha256",
        "-out",
        "sig",
        "data",
    ]
}

#[test]
fn unknown_key_and_malformed_uri() {
    let env = ProviderEnv::start(1);
    env.write("data", b"x");
    let err = run_fail(&mut env.openssl(&sign_args("ks:key99")));
    let line = keyserver_error_line(&err);
    assert!(
        line.contains("key99") && line.contains("key1"),
        "names the key and the known ones: {line}"
    );
    for garbage in ["ks:%%bad key", "ks://key1", "ks:../../etc/passwd"] {
        let err = run_fail(&mut env.openssl(&sign_args(garbage)));
        let line = keyserver_error_line(&err);
        assert!(line.contains("malformed"), "{garbage}: {line}");
    }
    let err = run_fail(&mut env.openssl(&["storeutl", "-provider", "keyserver", "ks:no such key"]));
    assert!(keyserver_error_line(&err).contains("malformed"));
}

#[test]
fn server_down() {
    let env = ProviderEnv::start(1);
    env.write("data", b"x");
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port();
    let mut cmd = env.openssl(&sign_args("ks:key1"));
    cmd.env("KSC_API_SERVER", format!("https://127.0.0.1:{port}"))
        .env("KSC_HTTP_CLIENT_TIMEOUT", "5s")
        // Refused connections are retried until the call's deadline.
        .env("KSC_DEADLINE", "3s");
    let started = Instant::now();
    let err = run_fail(&mut cmd);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "gave up in bounded time"
    );
    let line = keyserver_error_line(&err);
    assert!(
        line.contains("unreachable") || line.contains("connect"),
        "{line}"
    );
    assert!(
        line.contains("KSC_API_SERVER"),
        "says what to check: {line}"
    );
}

#[test]
fn bad_and_expired_tokens() {
    let env = ProviderEnv::start_with(
        DevServer::builder().token_lifetime(Duration::from_secs(3)),
        1,
    );
    env.write("data", b"x");
    let mut cmd = env.openssl(&sign_args("ks:key1"));
    cmd.env("KSC_ID_TOKEN", "not.a.token");
    let line = keyserver_error_line(&run_fail(&mut cmd));
    assert!(line.contains("token"), "{line}");

    // Wait (bounded, polling the server) until the environment's token has expired.
    let token = env
        .env
        .iter()
        .find(|(k, _)| k == "KSC_ID_TOKEN")
        .map(|(_, v)| v.clone())
        .expect("token");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = env
            .server
            .api_request("GET", "/api/keys", Some(&token), None);
        if r.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the token never expired");
        std::thread::sleep(Duration::from_millis(250));
    }
    let line = keyserver_error_line(&run_fail(&mut env.openssl(&sign_args("ks:key1"))));
    assert!(line.contains("token"), "{line}");
    assert!(
        line.contains("expired") || line.contains("KSC_ID_TOKEN") || line.contains("new token"),
        "{line}"
    );
}

#[test]
fn pending_operation_names_the_key_and_what_to_do() {
    let env = ProviderEnv::start(1);
    env.write("data", b"x");
    let pending = env
        .server
        .create_operation("orderer-client", &[("key2", 1)], 600_000);
    let mut cmd = env.openssl(&sign_args("ks:key2"));
    cmd.env("KSC_OPERATION_ID", &pending)
        .env_remove("KSC_APPROVAL_TIMEOUT");
    let line = keyserver_error_line(&run_fail(&mut cmd));
    assert!(line.contains("key2") && line.contains(&pending), "{line}");
    assert!(line.contains("approv"), "{line}");
    // A key outside the operation is refused as well, naming it.
    let mut cmd = env.openssl(&sign_args("ks:key1"));
    cmd.env("KSC_OPERATION_ID", &pending);
    let line = keyserver_error_line(&run_fail(&mut cmd));
    assert!(line.contains("key1"), "{line}");
}

#[test]
fn loading_the_provider_contacts_nobody() {
    let env = ProviderEnv::start(1);
    let before = env.server.stats();
    // A server that does not exist, and a real one whose counters must not move.
    let mut cmd = env.openssl(&[
        "list",
        "-provider",
        "keyserver",
        "-providers",
        "-store-loaders",
    ]);
    cmd.env("KSC_API_SERVER", "https://192.0.2.1:9")
        .env("KSC_HTTP_CLIENT_TIMEOUT", "30s");
    let started = Instant::now();
    let out = ks_e2e::provider_support::run_ok(&mut cmd);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "provider init must not wait on the network"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("keyserver") && text.contains("ks @ keyserver"),
        "{text}"
    );
    let _ = env.openssl_ok(&["list", "-provider", "keyserver", "-signature-algorithms"]);
    let after = env.server.stats();
    // The only request between the two snapshots is the second stats call.
    let (b, a) = (
        before["requests"].as_u64().unwrap_or(0),
        after["requests"].as_u64().unwrap_or(0),
    );
    assert_eq!(a, b + 1, "no request at provider load: {before} -> {after}");
}

#[test]
fn approval_timeout_from_the_config_file_waits_for_the_approver() {
    let env = ProviderEnv::start(1);
    env.write("data", b"signed once approved\n");
    let pending = env
        .server
        .create_operation("orderer-client", &[("key2", 1)], 600_000);
    let base = std::fs::read_to_string(ks_e2e::provider_support::repo_openssl_cnf())
        .expect("read conf/openssl-ks.cnf");
    let cnf = base.replace(
        "activate = 1\n# Optional settings",
        "activate = 1\napproval_timeout = 90s\n# Optional settings",
    );
    assert_ne!(
        cnf, base,
        "the provider section of conf/openssl-ks.cnf changed shape"
    );
    let cnf = env.write("wait.cnf", cnf);
    let errors_before = env.server.stats()["client_errors"].as_u64().unwrap_or(0);
    let mut cmd = env.openssl(&[
        "dgst", "-sign", "ks:key2", "-sha256", "-out", "wait.sig", "data",
    ]);
    cmd.env("OPENSSL_CONF", &cnf)
        .env("KSC_OPERATION_ID", &pending)
        .env_remove("KSC_APPROVAL_TIMEOUT")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start openssl");
    // The signer has met the pending operation once the server answered it a
    // 409; only then approve (bounded polling of the server's counters).
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.server.stats()["client_errors"].as_u64().unwrap_or(0) == errors_before {
        assert!(
            Instant::now() < deadline,
            "openssl never asked for the pending operation"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    env.server.approve("approver-key2", &pending);
    let out = child.wait_with_output().expect("openssl finishes");
    assert!(
        out.status.success(),
        "signing after approval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = env.public_key("key2");
    let v = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        &public.to_string_lossy(),
        "-signature",
        "wait.sig",
        "data",
    ]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("Verified OK"));
}
