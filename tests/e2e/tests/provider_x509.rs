//! Certificates and CMS with `ks:` keys: `req -new`, `req -x509`,
//! `x509 -req -CAkey`, `cms -sign` (the key must compare equal to its
//! certificate) and the AlgorithmIdentifiers the provider supplies.

use ks_e2e::provider_support::{split_signed_der, ProviderEnv};

const BOTH: [&str; 4] = ["-provider", "keyserver", "-provider", "default"];

fn with_providers<'a>(cmd: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd];
    v.extend(BOTH);
    v.extend(rest);
    v
}

#[test]
fn req_new_and_req_x509_with_an_ec_key() {
    let env = ProviderEnv::start(3);
    env.openssl_ok(&with_providers(
        "req",
        &[
            "-new",
            "-key",
            "ks:key2",
            "-subj",
            "/CN=csr for key2",
            "-out",
            "key2.csr",
        ],
    ));
    let out = env.openssl_ok(&["req", "-in", "key2.csr", "-verify", "-noout"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("verify OK") || all.contains("self-signature ok"),
        "{all}"
    );
    // The CSR carries key2's public key.
    let csr_pub = env.openssl_ok(&["req", "-in", "key2.csr", "-pubkey", "-noout"]);
    let key_pub = std::fs::read(env.public_key("key2")).expect("key2.pub");
    assert_eq!(csr_pub.stdout, key_pub);

    env.openssl_ok(&with_providers(
        "req",
        &[
            "-new",
            "-x509",
            "-key",
            "ks:key2",
            "-subj",
            "/CN=self-signed key2",
            "-days",
            "2",
            "-out",
            "self.pem",
        ],
    ));
    let out = env.openssl_ok(&["verify", "-CAfile", "self.pem", "self.pem"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    let text = env.openssl_ok(&["x509", "-in", "self.pem", "-noout", "-text"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("ecdsa-with-SHA256"));
}

#[test]
fn req_with_rsa_pss_signature_parameters() {
    let env = ProviderEnv::start(2);
    env.openssl_ok(&with_providers(
        "req",
        &[
            "-new",
            "-key",
            "ks:key1",
            "-subj",
            "/CN=pss",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-sha384",
            "-out",
            "pss.csr",
        ],
    ));
    let out = env.openssl_ok(&["req", "-in", "pss.csr", "-verify", "-noout", "-text"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rsassaPss"), "{text}");
    assert!(text.contains("sha384"), "{text}");
}

#[test]
fn x509_req_signed_by_a_ks_ca_key() {
    let env = ProviderEnv::start(2);
    env.openssl_ok(&[
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-subj", "/CN=leaf",
        "-out", "leaf.csr",
    ]);
    let ca = env.certificate("key3");
    let ca_s = ca.to_string_lossy();
    // x509 checks that ks:key3 matches the -CA certificate before signing.
    env.openssl_ok(&with_providers(
        "x509",
        &[
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            &ca_s,
            "-CAkey",
            "ks:key3",
            "-set_serial",
            "7",
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ],
    ));
    let der = std::fs::read(env.path("leaf.der")).expect("leaf.der");
    let (tbs, sig) = split_signed_der(&der);
    env.write("leaf.tbs", tbs);
    env.write("leaf.sig", sig);
    let ca_pub = env.public_key_of_cert(&ca, "key3");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        &ca_pub.to_string_lossy(),
        "-signature",
        "leaf.sig",
        "leaf.tbs",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
    let text = env.openssl_ok(&[
        "x509", "-inform", "DER", "-in", "leaf.der", "-noout", "-issuer",
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("key3"));
}

#[test]
fn cms_sign_with_a_ks_key_verifies() {
    let env = ProviderEnv::start(2);
    env.write("payload", b"firmware payload for CMS\n");
    let cert = env.certificate("key4");
    env.openssl_ok(&with_providers(
        "cms",
        &[
            "-sign",
            "-nodetach",
            "-binary",
            "-in",
            "payload",
            "-signer",
            &cert.to_string_lossy(),
            "-inkey",
            "ks:key4",
            "-outform",
            "DER",
            "-out",
            "payload.p7s",
        ],
    ));
    let ca = env.server.signing_ca_file().to_string_lossy().into_owned();
    let out = env.openssl_ok(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "payload.p7s",
        "-CAfile",
        &ca,
        "-purpose",
        "any",
        "-out",
        "payload.out",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Verification successful"));
    assert_eq!(
        std::fs::read(env.path("payload.out")).expect("payload.out"),
        b"firmware payload for CMS\n"
    );
}
