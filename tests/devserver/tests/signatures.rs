//! Every key type and signature format, verified by the real `openssl`
//! binary against the key's certificate from `GET /api/keys`.

mod support;

use std::process::Command;

use ks_devserver::harness::DevServer;
use serde_json::json;
use support::*;

fn verify_dgst(
    dir: &std::path::Path,
    pubkey: &std::path::Path,
    alg: &str,
    data: &[u8],
    sig: &[u8],
    extra: &[&str],
) {
    let data_file = dir.join("data.bin");
    let sig_file = dir.join("sig.bin");
    std::fs::write(&data_file, data).unwrap();
    std::fs::write(&sig_file, sig).unwrap();
    let out = run(Command::new("openssl")
        .arg("dgst")
        .arg(format!("-{alg}"))
        .args(extra)
        .arg("-verify")
        .arg(pubkey)
        .arg("-signature")
        .arg(&sig_file)
        .arg(&data_file));
    assert!(out.contains("Verified OK"), "openssl said: {out}");
}

#[test]
fn every_key_and_format_verifies_with_openssl() {
    require_tool("openssl", "openssl");
    let s = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hashes = ["sha256", "sha384", "sha512"];
    // Uses per key: RSA keys sign PKCS#1 and PSS per hash; EC keys p1363 and asn1 per hash.
    let keys = ["key1", "key2", "key3", "key4", "key5", "key6"];
    // Created by the identity that signs: only the creator (or an admin)
    // may sign under an operation.
    let op = s.create_operation(
        "orderer-client",
        &keys.iter().map(|k| (*k, 6u32)).collect::<Vec<_>>(),
        600_000,
    );
    // key2 and key4 need one approval, key3 two distinct ones.
    s.approve("approver-key2", &op);
    s.approve("approver-key4", &op);
    s.approve("approver-key3", &op);
    s.approve("adminuser", &op);
    assert_eq!(s.operation(&op)["status"], "approved");

    for key in keys {
        let cert = key_cert(&s, key);
        // The certificate is issued by the signing CA with CN=<keyid>.
        let cert_file = dir.path().join(format!("{key}.pem"));
        std::fs::write(&cert_file, &cert).unwrap();
        run(Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(s.signing_ca_file())
            .arg(&cert_file));
        let subject = run(Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(&cert_file));
        assert!(subject.contains(&format!("CN = {key}")), "{subject}");
        let pubkey = public_key_file(dir.path(), key, &cert);
        let is_rsa = matches!(key, "key1" | "key3" | "key6");
        for alg in hashes {
            let data = format!("firmware image for {key} hashed with {alg}").into_bytes();
            let digest = hash(alg, &data);
            if is_rsa {
                let r = sign(
                    &s,
                    "orderer-client",
                    &sign_body(&op, key, &digest_info(alg, &digest), "digestinfo", "asn1"),
                );
                assert_eq!(
                    r.status,
                    201,
                    "{key} {alg}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                assert_eq!(r.json()["keyid"], key);
                assert_eq!(r.json()["signatureformat"], "asn1");
                let sig = hex::decode(r.json()["result"].as_str().unwrap()).unwrap();
                verify_dgst(dir.path(), &pubkey, alg, &data, &sig, &[]);

                let salt = support::hash(alg, b"").len();
                let mut body = sign_body(&op, key, &digest, "pss", "asn1");
                body["hashalgorithm"] = json!(alg);
                body["saltlength"] = json!(salt);
                let r = sign(&s, "orderer-client", &body);
                assert_eq!(
                    r.status,
                    201,
                    "{key} PSS {alg}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                let sig = hex::decode(r.json()["result"].as_str().unwrap()).unwrap();
                let saltopt = format!("rsa_pss_saltlen:{salt}");
                verify_dgst(
                    dir.path(),
                    &pubkey,
                    alg,
                    &data,
                    &sig,
                    &[
                        "-sigopt",
                        "rsa_padding_mode:pss",
                        "-sigopt",
                        &saltopt,
                        "-sigopt",
                        &format!("rsa_mgf1_md:{alg}"),
                    ],
                );
            } else {
                let r = sign(
                    &s,
                    "orderer-client",
                    &sign_body(&op, key, &digest, "none", "p1363"),
                );
                assert_eq!(
                    r.status,
                    201,
                    "{key} {alg}: {}",
                    String::from_utf8_lossy(&r.body)
                );
                let raw = hex::decode(r.json()["result"].as_str().unwrap()).unwrap();
                let field = match key {
                    "key2" => 32,
                    "key4" => 48,
                    _ => 66,
                };
                assert_eq!(raw.len(), 2 * field, "r||s padded to the field size");
                verify_dgst(dir.path(), &pubkey, alg, &data, &p1363_to_der(&raw), &[]);

                let r = sign(
                    &s,
                    "orderer-client",
                    &sign_body(&op, key, &digest, "none", "asn1"),
                );
                assert_eq!(
                    r.status,
                    201,
                    "{key} {alg} asn1: {}",
                    String::from_utf8_lossy(&r.body)
                );
                let der = hex::decode(r.json()["result"].as_str().unwrap()).unwrap();
                assert_eq!(der[0], 0x30, "DER SEQUENCE");
                verify_dgst(dir.path(), &pubkey, alg, &data, &der, &[]);
            }
        }
    }
    assert_eq!(s.stats()["signorders"], 36);
}

#[test]
fn wrong_inputs_for_the_key_type_are_refused() {
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key1", 5), ("key5", 5)], 60_000);
    let d = hash("sha256", b"x");
    let cases = [
        // RSA with a bare hash (no DigestInfo).
        sign_body(&op, "key1", &d, "digestinfo", "asn1"),
        // RSA with p1363.
        sign_body(
            &op,
            "key1",
            &digest_info("sha256", &d),
            "digestinfo",
            "p1363",
        ),
        // RSA with padding none (raw RSA is not offered).
        sign_body(&op, "key1", &d, "none", "asn1"),
        // EC with a DigestInfo (wrong length).
        sign_body(&op, "key5", &digest_info("sha256", &d), "none", "p1363"),
        // EC with digestinfo padding.
        sign_body(&op, "key5", &d, "digestinfo", "asn1"),
        // EC with a 20-byte SHA-1 sized input.
        sign_body(&op, "key5", &[1u8; 20], "none", "p1363"),
        // Truncated DigestInfo.
        sign_body(
            &op,
            "key1",
            &digest_info("sha256", &d)[..40],
            "digestinfo",
            "asn1",
        ),
        // SHA-1 DigestInfo.
        sign_body(
            &op,
            "key1",
            &[
                &[
                    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
                    0x04, 0x14,
                ][..],
                &[0u8; 20],
            ]
            .concat(),
            "digestinfo",
            "asn1",
        ),
    ];
    for body in cases {
        let r = sign(&s, "orderer-client", &body);
        assert_error(&r, 400, "invalid_request");
    }
    // PSS: missing hash, digest length mismatch, oversized salt.
    let mut pss = sign_body(&op, "key1", &d, "pss", "asn1");
    assert_error(&sign(&s, "orderer-client", &pss), 400, "invalid_request");
    pss["hashalgorithm"] = json!("sha384");
    pss["saltlength"] = json!(32);
    assert_error(&sign(&s, "orderer-client", &pss), 400, "invalid_request");
    pss["hashalgorithm"] = json!("sha256");
    pss["saltlength"] = json!(4096);
    assert_error(&sign(&s, "orderer-client", &pss), 400, "invalid_request");
    // Nothing was consumed by the refusals.
    let st = s.operation(&op);
    assert_eq!(st["keyusagerestrictions"][0]["usagecount"], 0);
    assert_eq!(st["keyusagerestrictions"][1]["usagecount"], 0);
}

#[test]
fn sha1_digest_info_only_when_the_config_allows_it() {
    let sha1_di = [
        &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ][..],
        &[7u8; 20],
    ]
    .concat();
    // Default: refused, with the reason, nothing spent.
    let s = DevServer::start();
    let op = s.create_operation("orderer-client", &[("key1", 1)], 60_000);
    let r = sign(
        &s,
        "orderer-client",
        &sign_body(&op, "key1", &sha1_di, "digestinfo", "asn1"),
    );
    assert_error(&r, 400, "invalid_request");
    assert!(
        String::from_utf8_lossy(&r.body).contains("allow_sha1"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(s.operation(&op)["keyusagerestrictions"][0]["usagecount"], 0);
    // Opted in by its configuration: signed.
    let s = DevServer::builder()
        .config_toml("allow_sha1 = true\n")
        .start();
    let op = s.create_operation("orderer-client", &[("key1", 1)], 60_000);
    let r = sign(
        &s,
        "orderer-client",
        &sign_body(&op, "key1", &sha1_di, "digestinfo", "asn1"),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // Still only a DigestInfo: a bare 20-byte input stays refused.
    let op = s.create_operation("orderer-client", &[("key1", 1)], 60_000);
    let r = sign(
        &s,
        "orderer-client",
        &sign_body(&op, "key1", &[7u8; 20], "digestinfo", "asn1"),
    );
    assert_error(&r, 400, "invalid_request");
    // ECDSA over a SHA-1 hash (20 bytes): signed only when opted in, on every curve.
    for (key, approver) in [
        ("key2", Some("approver-key2")),
        ("key4", Some("approver-key4")),
        ("key5", None),
    ] {
        let op = s.create_operation("orderer-client", &[(key, 1)], 60_000);
        if let Some(a) = approver {
            s.approve(a, &op);
        }
        let r = sign(
            &s,
            "orderer-client",
            &sign_body(&op, key, &[9u8; 20], "none", "p1363"),
        );
        assert_eq!(r.status, 201, "{key}: {}", String::from_utf8_lossy(&r.body));
    }
    let strict = DevServer::start();
    let op = strict.create_operation("orderer-client", &[("key5", 1)], 60_000);
    let r = sign(
        &strict,
        "orderer-client",
        &sign_body(&op, "key5", &[9u8; 20], "none", "p1363"),
    );
    assert_error(&r, 400, "invalid_request");
    assert!(
        String::from_utf8_lossy(&r.body).contains("allow_sha1"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}
