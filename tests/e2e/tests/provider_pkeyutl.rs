//! `openssl pkeyutl` with `ks:` keys: raw signing of a precomputed digest
//! (RSA PKCS#1, RSA-PSS with salt lengths, ECDSA), `-rawin` hashing, and local
//! verification with `ks:` keys.

use ks_e2e::provider_support::ProviderEnv;

const BOTH: [&str; 4] = ["-provider", "keyserver", "-provider", "default"];

fn pkeyutl(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["pkeyutl".into()];
    v.extend(BOTH.iter().map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(env: &ProviderEnv, args: Vec<String>) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    env.openssl_ok(&refs)
}

fn verified(out: &std::process::Output) -> bool {
    String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully")
}

#[test]
fn rsa_pkcs1_of_a_precomputed_digest() {
    let env = ProviderEnv::start(4);
    env.write("data", b"digest me\n");
    env.openssl_ok(&["dgst", "-sha256", "-binary", "-out", "data.sha256", "data"]);
    let public = env.public_key("key1");
    let public = public.to_string_lossy();
    // With the digest named, and with the digest inferred from its length.
    for (sig, opts) in [
        ("a.sig", vec!["-pkeyopt", "digest:sha256"]),
        ("b.sig", vec![]),
    ] {
        let mut args = vec![
            "-sign",
            "-inkey",
            "ks:key1",
            "-in",
            "data.sha256",
            "-out",
            sig,
        ];
        args.extend(opts);
        run(&env, pkeyutl(&args));
        let out = env.openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &public,
            "-in",
            "data.sha256",
            "-sigfile",
            sig,
            "-pkeyopt",
            "digest:sha256",
        ]);
        assert!(verified(&out), "{sig}");
    }
    // Local verification with the ks: key; a tampered signature fails.
    let out = run(
        &env,
        pkeyutl(&[
            "-verify",
            "-inkey",
            "ks:key1",
            "-in",
            "data.sha256",
            "-sigfile",
            "a.sig",
            "-pkeyopt",
            "digest:sha256",
        ]),
    );
    assert!(verified(&out));
    let mut bad = std::fs::read(env.path("a.sig")).expect("a.sig");
    bad[10] ^= 1;
    env.write("bad.sig", bad);
    let args = pkeyutl(&[
        "-verify",
        "-inkey",
        "ks:key1",
        "-in",
        "data.sha256",
        "-sigfile",
        "bad.sig",
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.openssl(&refs).output().expect("run openssl");
    assert!(
        !out.status.success() || !verified(&out),
        "a tampered signature must not verify"
    );
}

#[test]
fn rsa_pss_with_salt_lengths() {
    let env = ProviderEnv::start(8);
    env.write("data", b"pss me\n");
    env.openssl_ok(&["dgst", "-sha256", "-binary", "-out", "data.sha256", "data"]);
    let public = env.public_key("key6");
    let public = public.to_string_lossy();
    for salt in ["digest", "max", "20", "auto"] {
        let sig = format!("pss-{salt}.sig");
        let saltopt = format!("rsa_pss_saltlen:{salt}");
        run(
            &env,
            pkeyutl(&[
                "-sign",
                "-inkey",
                "ks:key6",
                "-in",
                "data.sha256",
                "-out",
                &sig,
                "-pkeyopt",
                "digest:sha256",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                &saltopt,
            ]),
        );
        // Verified by the default provider with the same salt rule
        // ("auto" verification recovers the salt length).
        let out = env.openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &public,
            "-in",
            "data.sha256",
            "-sigfile",
            &sig,
            "-pkeyopt",
            "digest:sha256",
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            if salt == "auto" {
                "rsa_pss_saltlen:auto"
            } else {
                &saltopt
            },
        ]);
        assert!(verified(&out), "salt {salt}");
    }
    // -rawin: the provider hashes, PSS with a 32-byte salt, SHA-384.
    run(
        &env,
        pkeyutl(&[
            "-sign",
            "-rawin",
            "-digest",
            "sha384",
            "-inkey",
            "ks:key1",
            "-in",
            "data",
            "-out",
            "raw-pss.sig",
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:32",
        ]),
    );
    let public1 = env.public_key("key1");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha384",
        "-verify",
        &public1.to_string_lossy(),
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:32",
        "-signature",
        "raw-pss.sig",
        "data",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
}

#[test]
fn ecdsa_of_a_precomputed_digest_and_rawin() {
    let env = ProviderEnv::start(4);
    env.write("data", b"ecdsa me\n");
    for (keyid, md) in [("key2", "sha256"), ("key4", "sha384")] {
        let dg = format!("data.{md}");
        env.openssl_ok(&["dgst", &format!("-{md}"), "-binary", "-out", &dg, "data"]);
        let sig = format!("{keyid}.sig");
        run(
            &env,
            pkeyutl(&[
                "-sign",
                "-inkey",
                &format!("ks:{keyid}"),
                "-in",
                &dg,
                "-out",
                &sig,
            ]),
        );
        let der = std::fs::read(env.path(&sig)).expect("signature");
        assert_eq!(der[0], 0x30, "ECDSA signatures are DER");
        let public = env.public_key(keyid);
        let out = env.openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &public.to_string_lossy(),
            "-in",
            &dg,
            "-sigfile",
            &sig,
        ]);
        assert!(verified(&out), "{keyid}");
        let out = run(
            &env,
            pkeyutl(&[
                "-verify",
                "-inkey",
                &format!("ks:{keyid}"),
                "-in",
                &dg,
                "-sigfile",
                &sig,
            ]),
        );
        assert!(verified(&out), "{keyid} local");
    }
    run(
        &env,
        pkeyutl(&[
            "-sign", "-rawin", "-digest", "sha256", "-inkey", "ks:key2", "-in", "data", "-out",
            "raw.sig",
        ]),
    );
    let public = env.public_key("key2");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        &public.to_string_lossy(),
        "-signature",
        "raw.sig",
        "data",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
}
