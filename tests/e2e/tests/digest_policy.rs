//! The one digest policy, through every front-end against the dev KeyServer: SHA-1 is refused
//! by default with the reason, and signed (and verifies) only when the process opts in with
//! `KSC_ALLOW_SHA1=1` and the server's configuration allows it.

use std::process::Command;

use ks_devserver::harness::DevServer;
use ks_e2e::pkcs11_support::{self, Pkcs11Env};
use ks_e2e::provider_support::{keyserver_error_line, run_fail, run_ok, ProviderEnv};
use ks_e2e::web_support::ksc_binary;

const SHA1_SERVER: &str = "allow_sha1 = true\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn provider_sign_sha1(env: &ProviderEnv) -> Command {
    env.openssl(&[
        "dgst",
        "-provider",
        "keyserver",
        "-sign",
        "ks:key1",
        "-sha1",
        "-out",
        "sig",
        "data",
    ])
}

#[test]
fn provider_refuses_sha1_unless_the_process_opts_in() {
    let env = ProviderEnv::start_with(DevServer::builder().config_toml(SHA1_SERVER), 1);
    env.write("data", b"legacy firmware\n");
    let line = keyserver_error_line(&run_fail(&mut provider_sign_sha1(&env)));
    assert!(
        line.contains("SHA-1") && line.contains("KSC_ALLOW_SHA1=1"),
        "{line}"
    );
    assert_eq!(env.signorders(), 0, "nothing reached the server");

    let mut cmd = provider_sign_sha1(&env);
    cmd.env("KSC_ALLOW_SHA1", "1");
    let out = run_ok(&mut cmd);
    assert!(
        text(&out.stderr).contains("SHA-1"),
        "the opt-in is logged: {}",
        text(&out.stderr)
    );
    let public = env.public_key("key1");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha1",
        "-verify",
        &public.to_string_lossy(),
        "-signature",
        "sig",
        "data",
    ]);
    assert!(text(&out.stdout).contains("Verified OK"));
}

#[test]
fn module_refuses_sha1_and_short_ecdsa_inputs_unless_opted_in() {
    let env = Pkcs11Env::start_with(DevServer::builder().config_toml(SHA1_SERVER), 2);
    let ids = env.key_ids();
    let data = env.path("data.txt");
    std::fs::write(&data, b"legacy firmware\n").expect("write data");
    let hash = env.path("data.sha1");
    pkcs11_support::run_ok(
        env.command(pkcs11_support::openssl())
            .args(["dgst", "-sha1", "-binary", "-out"])
            .arg(&hash)
            .arg(&data),
    );
    let mut di = vec![
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    di.extend_from_slice(&std::fs::read(&hash).expect("hash"));
    let di_file = env.path("data.sha1.digestinfo");
    std::fs::write(&di_file, di).expect("write DigestInfo");
    let sig = env.path("data.sig");
    let sign = |mechanism: &str, id: &str, input: &std::path::Path, opt_in: bool| {
        let mut cmd = env.command(pkcs11_support::pkcs11_tool());
        cmd.arg("--module")
            .arg(pkcs11_support::module_path())
            .args([
                "--sign",
                "--mechanism",
                mechanism,
                "--id",
                id,
                "--input-file",
            ])
            .arg(input)
            .arg("--output-file")
            .arg(&sig);
        if opt_in {
            cmd.env("KSC_ALLOW_SHA1", "1");
        }
        cmd.output().expect("run pkcs11-tool")
    };
    // Default: refused, with the code and the reason; nothing spent.
    // pkcs11-tool retries a refused C_Sign as C_SignUpdate (which the single-part
    // mechanisms refuse too), so the codes are checked by the unit tests; here the user sees
    // the reason.
    let out = sign("RSA-PKCS", &ids["key1"], &di_file, false);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("CKM_RSA_PKCS") && stderr.contains("KSC_ALLOW_SHA1=1"),
        "{stderr}"
    );
    let out = sign("ECDSA", &ids["key4"], &hash, false);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("CKM_ECDSA input refused") && stderr.contains("KSC_ALLOW_SHA1=1"),
        "{stderr}"
    );
    // A 31-byte input is no digest at all: refused even when opted in (no zero-padding).
    let short = env.path("short.bin");
    std::fs::write(&short, [1u8; 31]).expect("write");
    let out = sign("ECDSA", &ids["key4"], &short, true);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("31 bytes is not the length"),
        "{}",
        text(&out.stderr)
    );
    let status = env.server.operation(&env.operation);
    assert!(
        status["keyusagerestrictions"]
            .as_array()
            .expect("restrictions")
            .iter()
            .all(|k| k["usagecount"] == 0),
        "{status}"
    );
    // Opted in: signed, and openssl verifies it as sha1WithRSAEncryption.
    let out = sign("RSA-PKCS", &ids["key1"], &di_file, true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pubkey = env.public_key_pem("key1");
    let out = pkcs11_support::run_ok(
        env.command(pkcs11_support::openssl())
            .args(["dgst", "-sha1", "-verify"])
            .arg(&pubkey)
            .arg("-signature")
            .arg(&sig)
            .arg(&data),
    );
    assert!(text(&out.stdout).contains("Verified OK"));
}

#[test]
fn ksc_refuses_sha1_unless_opted_in() {
    let env = Pkcs11Env::start_with(DevServer::builder().config_toml(SHA1_SERVER), 1);
    let data = env.path("fw.bin");
    std::fs::write(&data, b"legacy firmware\n").expect("write data");
    let ksc = |opt_in: bool| {
        let mut cmd = env.command(ksc_binary());
        cmd.args(["sign", "--key", "key1", "--hash", "sha1", "--in"])
            .arg(&data)
            .arg("--out")
            .arg(env.path("fw.sig"));
        if opt_in {
            cmd.env("KSC_ALLOW_SHA1", "1");
        }
        cmd.output().expect("run ksc")
    };
    let out = ksc(false);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("KSC_ALLOW_SHA1=1"),
        "{}",
        text(&out.stderr)
    );
    let out = ksc(true);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = pkcs11_support::run_ok(
        env.command(pkcs11_support::openssl())
            .args(["dgst", "-sha1", "-verify"])
            .arg(env.public_key_pem("key1"))
            .arg("-signature")
            .arg(env.path("fw.sig"))
            .arg(&data),
    );
    assert!(text(&out.stdout).contains("Verified OK"));
}

/// The legacy pipeline the opt-in exists for: pkcs11-tool's self-test signs with RSA keys
/// over a SHA-1 DigestInfo (`CKM_RSA_PKCS`) and probes `C_SignUpdate` on it, expecting
/// `CKR_FUNCTION_NOT_SUPPORTED` and a live operation for `C_Sign` after it.
#[test]
fn pkcs11_tool_self_test_on_an_rsa_key_with_the_opt_in() {
    let server = DevServer::builder()
        .config_toml(
            "allow_sha1 = true\n\n[[keys]]\nid = \"rsa2048\"\nalgorithm = \"RSA-2048\"\napprovers = 0\n",
        )
        .start();
    let operation = server.create_operation("orderer-client", &[("rsa2048", 100)], 600_000);
    let env = Pkcs11Env::with_operation(server, operation);
    let self_test = |opt_in: bool| {
        let mut cmd = env.command(pkcs11_support::pkcs11_tool());
        cmd.arg("--module")
            .arg(pkcs11_support::module_path())
            .args(["--test", "--login", "--pin", "1234"]);
        if opt_in {
            cmd.env("KSC_ALLOW_SHA1", "1");
        }
        let out = cmd.output().expect("run pkcs11-tool");
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    // Without the opt-in it stops at the SHA-1 DigestInfo, saying why.
    let (ok, stdout, stderr) = self_test(false);
    assert!(!ok && !stdout.contains("No errors"), "{stdout}\n{stderr}");
    assert!(stderr.contains("KSC_ALLOW_SHA1=1"), "{stderr}");
    // With it: no errors; the single-part refusal of C_SignUpdate is the code it expects.
    let (ok, stdout, stderr) = self_test(true);
    assert!(ok && stdout.contains("No errors"), "{stdout}\n{stderr}");
    assert!(stdout.contains("RSA-PKCS: OK"), "{stdout}");
    assert!(
        stderr.contains("C_SignUpdate failed: rv = CKR_FUNCTION_NOT_SUPPORTED"),
        "{stderr}"
    );
}
