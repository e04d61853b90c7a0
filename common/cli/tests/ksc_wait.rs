//! A wait that talks, and which setting wins, through the real `ksc` against the dev KeyServer:
//! heartbeat lines and the approvers' link without a terminal, `--quiet`, bad heartbeat values;
//! command-line flags over the environment over the config file, and the notice when both a
//! token and client credentials are set.

mod support;

use ks_devserver::harness::DevServer;
use support::*;

#[test]
fn wait_without_a_terminal_sends_heartbeats_and_the_link() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key2", 1)], 300_000);
    let env = user_settings(&srv, "orderer-client");

    let err = ksc_code(
        &env,
        &[
            "operation",
            "wait",
            &op,
            "--timeout",
            "5s",
            "--heartbeat",
            "1s",
        ],
        10,
    );
    let link = format!(
        "approvers can approve operation {op} at {}/ui/",
        srv.api_url()
    );
    assert!(err.contains(&link), "{err}");
    let beats: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "operation {op} still pending: key2 0 of 1 approvals"
            ))
        })
        .collect();
    assert!(!beats.is_empty(), "no heartbeat line: {err}");
    assert!(
        beats[0].contains("; expires in ") && beats[0].contains("; giving up in "),
        "{err}"
    );

    // The real keyclient's page when configured; nothing at all with --quiet.
    let with_url = with(
        env.clone(),
        "KSC_APPROVAL_URL",
        "https://keyclient.example/",
    );
    let err = ksc_code(
        &with_url,
        &["operation", "wait", &op, "--timeout", "1s"],
        10,
    );
    assert!(err.contains("at https://keyclient.example\n"), "{err}");
    let err = ksc_code(
        &env,
        &["operation", "wait", &op, "--timeout", "1s", "--quiet"],
        10,
    );
    assert_eq!(err.lines().count(), 1, "only the final error: {err}");

    // Bad values are usage errors and spend nothing.
    for bad in ["0s", "soon"] {
        let err = ksc_code(&env, &["operation", "wait", &op, "--heartbeat", bad], 2);
        assert!(err.contains("--heartbeat"), "{err}");
    }
    let err = ksc_code(
        &with(env.clone(), "KSC_APPROVAL_URL", "keyclient"),
        &["operation", "wait", &op],
        3,
    );
    assert!(err.contains("KSC_APPROVAL_URL"), "{err}");

    srv.approve("approver-key2", &op);
    let out = ksc_ok(&env, &["operation", "wait", &op, "--heartbeat", "1s"]);
    assert!(out.contains("approved"), "{out}");
}

#[test]
fn flags_beat_environment_beat_config_file() {
    let srv = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let dead = format!("https://127.0.0.1:{port}");
    let env = user_settings(&srv, "orderer-client");

    // Config file says a dead server, the environment the real one: the environment wins.
    let file = tmp.path().join("ksc.conf");
    std::fs::write(
        &file,
        format!("KSC_API_SERVER={dead}\nKSC_HTTP_CLIENT_TIMEOUT=2s\n"),
    )
    .expect("write config");
    let file_s = file.display().to_string();
    let from_file = with(env.clone(), "KSC_CONFIG", &file_s);
    assert!(ksc_ok(&from_file, &["keys"]).starts_with("KEYID"));
    // Only the file: its value is used (the dead server: network error, exit 5).
    let mut file_only = from_file.clone();
    file_only.retain(|(k, _)| k != "KSC_API_SERVER");
    ksc_code(&file_only, &["keys"], 5);
    // The environment says the dead server, the flag the real one: the flag wins.
    let dead_env = with(
        with(env.clone(), "KSC_API_SERVER", &dead),
        "KSC_HTTP_CLIENT_TIMEOUT",
        "2s",
    );
    ksc_code(&dead_env, &["keys"], 5);
    let keys = ksc_ok(&dead_env, &["--api-server", srv.api_url(), "keys"]);
    assert!(keys.starts_with("KEYID"), "{keys}");
    // --config beats KSC_CONFIG.
    let bad_file = tmp.path().join("bad.conf");
    std::fs::write(&bad_file, "KSC_HTTP_CLIENT_TIMEOUT=forever\n").expect("write");
    let bad_env = with(
        file_only.clone(),
        "KSC_CONFIG",
        &bad_file.display().to_string(),
    );
    let err = ksc_code(&bad_env, &["keys"], 3);
    assert!(err.contains("KSC_HTTP_CLIENT_TIMEOUT"), "{err}");
    let good = with(
        with(file_only, "KSC_API_SERVER", srv.api_url()),
        "KSC_CONFIG",
        &bad_file.display().to_string(),
    );
    assert!(ksc_ok(&good, &["--config", &file_s, "keys"]).starts_with("KEYID"));
    // A bad flag value is a clear error.
    let err = ksc_code(&env, &["--api-server", "keyserver:8200", "keys"], 3);
    assert!(err.contains("KSC_API_SERVER"), "{err}");

    // A token and client credentials both set: said on stderr, and the token is what is used
    // (an approver's token with the orderer's credentials acts as the approver).
    let approver_token = srv.token("approver-key2");
    let both = with(env, "KSC_ID_TOKEN", &approver_token);
    let out = ksc(&both, &["token"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "ksc: using KSC_ID_TOKEN (a given token always wins over logging in); also set but not used: KSC_CLIENT_ID/KSC_CLIENT_SECRET"
        ),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), approver_token);
}
