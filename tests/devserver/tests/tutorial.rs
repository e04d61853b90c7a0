//! The tutorial's curl commands (token, create an operation for key1 and
//! key4, poll) work as written against the dev server, with `--cacert`.

mod support;

use std::process::Command;

use ks_devserver::harness::DevServer;
use support::*;

/// The tutorial's commands, with the demo host names replaced by the dev
/// server's URLs and `--cacert` added; otherwise verbatim.
const TUTORIAL: &str = r#"
set -euo pipefail
export KSC_ID_TOKEN=$(curl -sS --tlsv1.3 --cacert "$CA" -X POST -H "Authorization: Basic $(printf %s "$CREDS" | base64 -w0)" -d "grant_type=client_credentials" $AUTH/oauth2/token | jq -r .access_token)
export KSC_OPERATION_ID=$(curl -sS --tlsv1.3 --cacert "$CA" -X 'POST' \
"$API/api/operations" \
-H "Authorization: Bearer $KSC_ID_TOKEN" \
-H 'accept: application/json' \
-H 'Content-Type: application/json' \
-d '{
"validms": 60000,
"description": "Building of firmware for XYZ development board",
"new-keyusagerestrictions": [
{
"keyid": "key1",
"maxusagecount": 1
},
{
"keyid": "key4",
"maxusagecount": 1
}
]
}' | jq -r .id)
echo "$KSC_ID_TOKEN"
echo "$KSC_OPERATION_ID"
"#;

const POLL: &str = r#"
set -euo pipefail
curl -sS --tlsv1.3 --cacert "$CA" -H "Authorization: Bearer $KSC_ID_TOKEN" -H 'accept: application/json' \
  "$API/api/operations/$KSC_OPERATION_ID" | jq -r .approved
"#;

fn bash(s: &DevServer, script: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .env("CA", s.ca_file())
        .env("AUTH", s.auth_url())
        .env("API", s.api_url());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn tutorial_curl_commands_work_as_written() {
    require_tool("curl", "curl");
    require_tool("jq", "jq");
    require_tool("base64", "coreutils");
    let s = DevServer::start();
    let out = bash(
        &s,
        TUTORIAL,
        &[("CREDS", "orderer-client:orderer-client-secret")],
    );
    let mut lines = out.lines();
    let token = lines.next().expect("token line").to_string();
    let op = lines.next().expect("operation line").to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert!(!op.is_empty() && op != "null", "operation id: {op}");

    let st = s.operation(&op);
    assert_eq!(
        st["description"],
        "Building of firmware for XYZ development board"
    );
    assert_eq!(st["validms"], 60000);
    assert_eq!(st["keyusagerestrictions"][0]["keyid"], "key1");
    assert_eq!(st["keyusagerestrictions"][1]["keyid"], "key4");

    // Poll: "false" until an approver of key4 approves, then "true".
    let env = [
        ("KSC_ID_TOKEN", token.as_str()),
        ("KSC_OPERATION_ID", op.as_str()),
    ];
    assert_eq!(bash(&s, POLL, &env).trim(), "false");
    s.approve("approver-key4", &op);
    assert_eq!(bash(&s, POLL, &env).trim(), "true");

    // TLS 1.2 is offered too.
    let out = run(Command::new("curl")
        .args(["-sS", "--tlsv1.2", "--tls-max", "1.2", "--cacert"])
        .arg(s.ca_file())
        .arg(format!("{}/api/dev/stats", s.api_url())));
    assert!(out.contains("\"requests\""));

    // Wrong credentials: the tutorial's pipeline gets "null" as a token.
    let bad = run(Command::new("bash").arg("-c").arg(
        r#"curl -sS --tlsv1.3 --cacert "$CA" -X POST -u adminclient:wrong -d grant_type=client_credentials -w ' %{http_code}' $AUTH/oauth2/token"#,
    ).env("CA", s.ca_file()).env("AUTH", s.auth_url()));
    assert!(
        bad.contains("invalid_client") && bad.ends_with(" 401"),
        "{bad}"
    );
}

#[test]
fn connections_are_kept_alive() {
    require_tool("curl", "curl");
    let s = DevServer::start();
    let before = s.stats();
    // One curl invocation, three requests: one TLS handshake.
    let url = format!("{}/api/dev/stats", s.api_url());
    let out = run(Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(s.ca_file())
        .args([&url, &url, &url]));
    assert_eq!(out.matches("\"requests\"").count(), 3);
    let after = s.stats();
    let diff = |k: &str| after[k].as_u64().unwrap() - before[k].as_u64().unwrap();
    // +1 for curl's connection, +1 for the harness's own stats request.
    assert_eq!(diff("tls_handshakes"), 2);
    assert_eq!(diff("requests"), 4);
}
