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
            "3s",
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
