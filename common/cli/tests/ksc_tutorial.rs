//! The tutorial's pipeline through the real `ksc` binary against the dev KeyServer: token,
//! keys, operation create (--export), pending wait, approvals by the approver identities, wait,
//! signatures with every key type and padding, and verification with the real `openssl`.

mod support;

use std::process::Command;

use ks_devserver::harness::DevServer;
use support::*;

/// (key, hash, pss) for every key type and padding the dev server has.
const CASES: &[(&str, &str, bool)] = &[
    ("key1", "sha256", false), // RSA-2048 PKCS#1 v1.5
    ("key1", "sha256", true),  // RSA-2048 PSS
    ("key2", "sha256", false), // EC P-256
    ("key2", "sha512", false), // EC P-256, digest longer than the field
    ("key3", "sha384", false), // RSA-3072
    ("key3", "sha512", true),  // RSA-3072 PSS
    ("key4", "sha384", false), // EC P-384
    ("key5", "sha512", false), // EC P-521
    ("key5", "sha256", false), // EC P-521, digest shorter than half the field
    ("key6", "sha512", false), // RSA-4096
    ("key6", "sha384", true),  // RSA-4096 PSS
];

fn openssl_verify(pubkey: &str, hash: &str, pss: bool, sig: &str, data: &str) {
    let mut cmd = Command::new("openssl");
    cmd.args(["dgst", &format!("-{hash}"), "-verify", pubkey]);
    if pss {
        cmd.args([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:auto",
        ]);
    }
    cmd.args(["-signature", sig, data]);
    let out = cmd.output().expect("run openssl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Verified OK"),
        "openssl rejected {sig} ({hash}, pss={pss}): {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tutorial_flow_through_ksc() {
    require_tool("openssl", "openssl");
    let srv = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // Token by client credentials, then used the tutorial's way: KSC_ID_TOKEN only.
    let orderer = user_settings(&srv, "orderer-client");
    let token = ksc_ok(&orderer, &["token"]).trim().to_string();
    assert!(
        ks_common::token::jwt_expiry(&token).is_some(),
        "token is a JWT"
    );
    let base = vec![
        ("KSC_API_SERVER".to_string(), srv.api_url().to_string()),
        (
            "KSC_CA_FILE".to_string(),
            srv.ca_file().display().to_string(),
        ),
        ("KSC_ID_TOKEN".to_string(), token.clone()),
    ];

    // The key table and its JSON form.
    let table = ksc_ok(&base, &["keys"]);
    assert!(table.starts_with("KEYID"), "{table}");
    for k in ["key1", "key2", "key3", "key4", "key5", "key6"] {
        assert!(table.contains(k), "{k} missing from {table}");
    }
    let keys: serde_json::Value =
        serde_json::from_str(&ksc_ok(&base, &["keys", "--json"])).expect("keys --json");
    assert_eq!(keys.as_array().map(|a| a.len()), Some(6));
    assert_eq!(keys[2]["keyid"], "key3");
    assert_eq!(keys[2]["bits"], 3072);
    assert_eq!(keys[2]["approvers"], 2);
    assert_eq!(keys[4]["curve"], "P-521");

    // Certificates: PEM chain-verifies against the signing CA; DER is the same certificate.
    let pem = dir.join("key1.pem").display().to_string();
    ksc_ok(&base, &["cert", "key1", "-o", &pem]);
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(srv.signing_ca_file())
        .arg(&pem)
        .output()
        .expect("openssl verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let der = ksc(&base, &["cert", "key1", "--der"]).stdout;
    assert_eq!(der[0], 0x30, "DER certificate on stdout");

    // Create the operation the tutorial's way, with eval-able output.
    let export = ksc_ok(
        &base,
        &[
            "operation",
            "create",
            "--key",
            "key1=2",
            "--key",
            "key2=2",
            "--key",
            "key3=2",
            "--key",
            "key4=1",
            "--key",
            "key5=2",
            "--key",
            "key6=2",
            "--valid",
            "300s",
            "--description",
            "Building of firmware for XYZ development board",
            "--export",
        ],
    );
    let op = export
        .trim()
        .strip_prefix("export KSC_OPERATION_ID=")
        .unwrap_or_else(|| panic!("not an export line: {export}"))
        .to_string();
    let env = with(base.clone(), "KSC_OPERATION_ID", &op);

    // Pending: status says so, a short wait times out with the pending exit code, and a
    // signature is refused with the pending exit code.
    let status = ksc_ok(&env, &["operation", "status"]);
    assert!(status.contains("pending"), "{status}");
    let err = ksc_code(&env, &["operation", "wait", "--timeout", "1s"], 10);
    assert!(err.contains("key3 has 0 of 2 approvals"), "{err}");
    let data = write(dir, "firmware.bin", &vec![0x5a; 100_000]);
    let sig0 = dir.join("early.sig").display().to_string();
    let err = ksc_code(
        &env,
        &["sign", "--key", "key1", "--in", &data, "--out", &sig0],
        10,
    );
    assert!(err.contains("not approved"), "{err}");

    // Approvals by the approver identities (key3 needs two: approver-key3 and adminclient).
    for approver in [
        "approver-key2",
        "approver-key3",
        "approver-key4",
        "adminclient",
    ] {
        let approver_env = with(user_settings(&srv, approver), "KSC_OPERATION_ID", &op);
        ksc_ok(&approver_env, &["operation", "approve"]);
    }
    let waited = ksc_ok(&env, &["operation", "wait", &op, "--timeout", "30s"]);
    assert!(waited.contains("approved"), "{waited}");
    let st: serde_json::Value =
        serde_json::from_str(&ksc_ok(&env, &["operation", "status", "--json"])).expect("json");
    assert_eq!(st["approved"], true, "a boolean in --json");

    // Sign with every key type and padding; verify with openssl and with ksc.
    for (i, (key, hash, pss)) in CASES.iter().enumerate() {
        let sig = dir.join(format!("fw-{i}.sig")).display().to_string();
        let mut args = vec![
            "sign", "--key", key, "--in", &data, "--out", &sig, "--hash", hash,
        ];
        if *pss {
            args.push("--pss");
        }
        ksc_ok(&env, &args);
        let pubkey = dir.join(format!("{key}.pub")).display().to_string();
        ksc_ok(&env, &["cert", key, "--pubkey", "-o", &pubkey]);
        openssl_verify(&pubkey, hash, *pss, &sig, &data);
        let mut vargs = vec![
            "verify", "--key", key, "--in", &data, "--sig", &sig, "--hash", hash,
        ];
        if *pss {
            vargs.push("--pss");
        }
        assert!(ksc_ok(&env, &vargs).contains("Verified OK"));
    }

    // Every use is spent now: one more (over new data: the same data again is the same
    // requestid, answered from the server's record without a use) is the exhausted exit code,
    // and a signature over other data does not verify (exit code 20).
    let extra = dir.join("extra.sig").display().to_string();
    let more = write(dir, "more.bin", b"more firmware");
    ksc_code(
        &env,
        &["sign", "--key", "key5", "--in", &more, "--out", &extra],
        13,
    );
    let other = write(dir, "other.bin", b"other data");
    let sig1 = dir.join("fw-0.sig").display().to_string();
    ksc_code(
        &env,
        &["verify", "--key", "key1", "--in", &other, "--sig", &sig1],
        20,
    );
    let used = srv.operation(&op);
    let usages = used["keyusagerestrictions"]
        .as_array()
        .expect("restrictions");
    for u in usages {
        assert_eq!(u["usagecount"], u["maxusagecount"], "{u}");
    }
}

#[test]
fn usage_and_config_errors_have_their_exit_codes() {
    // Usage error (clap): 2. Missing configuration: 3. Unreachable server: 5.
    ksc_code(&[], &["sign", "--key"], 2);
    ksc_code(&[], &["operation", "create", "--key", "key1=x"], 2);
    let err = ksc_code(&[], &["keys"], 3);
    assert!(err.contains("KSC_API_SERVER"), "{err}");
    let bad = vec![(
        "KSC_HTTP_CLIENT_TIMEOUT".to_string(),
        "ten seconds".to_string(),
    )];
    let err = ksc_code(&bad, &["keys"], 3);
    assert!(err.contains("KSC_HTTP_CLIENT_TIMEOUT"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let env = vec![
        (
            "KSC_API_SERVER".to_string(),
            format!("https://127.0.0.1:{port}"),
        ),
        ("KSC_ID_TOKEN".to_string(), "x.y.z".to_string()),
        ("KSC_HTTP_CLIENT_TIMEOUT".to_string(), "2s".to_string()),
        // Refused connections are retried until the call's deadline.
        ("KSC_DEADLINE".to_string(), "3s".to_string()),
    ];
    let err = ksc_code(&env, &["keys", "--json"], 5);
    assert!(err.contains("cannot connect"), "{err}");
    let help = ksc_ok(&[], &["--help"]);
    assert!(
        help.contains("Exit codes") && help.contains("eval"),
        "{help}"
    );
    let help = ksc_ok(&[], &["operation", "create", "--help"]);
    assert!(help.contains("--export"), "{help}");
}
