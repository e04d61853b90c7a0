//! `KSC_SIGNING_CA_FILE` through the real programs against the dev KeyServer: with its
//! signing-ca.pem every key works; with another CA (its TLS CA) no key is offered, the provider
//! and the module say why once per key on stderr, `ksc keys` lists them with the reason, and no
//! sign order reaches the server.

use ks_e2e::pkcs11_support::{pkcs11_tool, Pkcs11Env};
use ks_e2e::provider_support::{keyserver_error_line, run_fail, run_ok, ProviderEnv};
use ks_e2e::tutorial_support::artefact;

const DEV_KEYS: [&str; 6] = ["key1", "key2", "key3", "key4", "key5", "key6"];

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

/// Each key's "is not offered" warning appears exactly once.
fn assert_warned_once_per_key(stderr: &str) {
    for k in DEV_KEYS {
        let n = stderr
            .lines()
            .filter(|l| l.contains(&format!("key {k} is not offered")))
            .count();
        assert_eq!(n, 1, "{k} warned {n} times:\n{stderr}");
    }
    assert!(
        stderr.contains(
            "not issued by a CA in KSC_SIGNING_CA_FILE (issuer: CN=ks-devserver signing CA"
        ),
        "{stderr}"
    );
}

#[test]
fn provider_and_ksc_use_only_keys_the_signing_ca_issued() {
    let env = ProviderEnv::start(1);
    env.write("data", b"firmware\n");
    let signing_ca = env.server.signing_ca_file().display().to_string();
    let tls_ca = env.server.ca_file().display().to_string();

    let mut cmd = env.openssl(&sign_args("ks:key1"));
    cmd.env("KSC_SIGNING_CA_FILE", &signing_ca);
    run_ok(&mut cmd);
    assert_eq!(env.signorders(), 1);

    // The wrong CA: refused before anything is sent, with the reason.
    let mut cmd = env.openssl(&sign_args("ks:key2"));
    cmd.env("KSC_SIGNING_CA_FILE", &tls_ca);
    let err = run_fail(&mut cmd);
    let line = keyserver_error_line(&err);
    assert!(
        line.contains("key2") && line.contains("not trusted"),
        "{line}"
    );
    assert!(
        line.contains("issuer: CN=ks-devserver signing CA"),
        "{line}"
    );
    assert_eq!(env.signorders(), 1, "no sign order for an untrusted key");

    // Listing every key offers none, and says why once per key.
    let mut cmd = env.openssl(&[
        "storeutl",
        "-provider",
        "keyserver",
        "-provider",
        "default",
        "ks:",
    ]);
    cmd.env("KSC_SIGNING_CA_FILE", &tls_ca);
    let out = cmd.output().expect("run openssl storeutl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("key1"), "{stdout}");
    assert_warned_once_per_key(&stderr);

    // ksc keys: trusted keys in the table, refused ones apart with the reason.
    let mut cmd = env.command(artefact("ksc"));
    cmd.args(["keys"]).env("KSC_SIGNING_CA_FILE", &tls_ca);
    let out = run_ok(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (table, refused) = stdout
        .split_once("NOT TRUSTED (listed by the server, never used):")
        .unwrap_or_else(|| panic!("no NOT TRUSTED section:\n{stdout}"));
    assert!(!table.contains("key1"), "{stdout}");
    for k in DEV_KEYS {
        assert!(
            refused
                .lines()
                .any(|l| l.starts_with(&format!("{k}  its certificate was not issued"))),
            "{k}: {stdout}"
        );
    }
    let mut cmd = env.command(artefact("ksc"));
    cmd.args(["keys", "--json"])
        .env("KSC_SIGNING_CA_FILE", &signing_ca);
    let out = run_ok(&mut cmd);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), DEV_KEYS.len());
    assert!(list
        .iter()
        .all(|k| k["trusted"] == true && k["untrusted_reason"].is_null()));
}

#[test]
fn pkcs11_module_leaves_untrusted_keys_out() {
    let env = Pkcs11Env::start(1);
    let signing_ca = env.server.signing_ca_file().display().to_string();
    let tls_ca = env.server.ca_file().display().to_string();
    let list = |ca: &str| {
        let mut cmd = env.command(pkcs11_tool());
        cmd.arg("--module")
            .arg(&env.module)
            .arg("--list-objects")
            .env("KSC_SIGNING_CA_FILE", ca);
        run_ok(&mut cmd)
    };
    let out = list(&signing_ca);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for k in DEV_KEYS {
        assert!(
            stdout.contains(&format!("label:      {k}")),
            "{k}:\n{stdout}"
        );
    }
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not offered"));

    let out = list(&tls_ca);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("key1"), "{stdout}");
    assert_warned_once_per_key(&String::from_utf8_lossy(&out.stderr));
}
