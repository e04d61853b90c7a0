//! `openssl dgst` with `ks:` keys, exactly as the user's request writes it:
//! only the keyserver provider loaded, then via conf/openssl-ks.cnf, then with
//! the server settings taken from the config file's provider section.

use ks_e2e::provider_support::{repo_openssl_cnf, run_ok, ProviderEnv, DEV_KEYS};

#[test]
fn dgst_sign_with_only_keyserver_loaded_for_every_dev_key() {
    let env = ProviderEnv::start(5);
    env.write("data", b"firmware image for the XYZ development board\n");
    for (keyid, alg) in DEV_KEYS {
        let uri = format!("ks:{keyid}");
        let sig = format!("{keyid}.sig");
        let before = env.signorders();
        // The tutorial's command, with no default provider: the provider
        // hashes the data itself.
        env.openssl_ok(&[
            "dgst",
            "-provider",
            "keyserver",
            "-sign",
            &uri,
            "-sha256",
            "-out",
            &sig,
            "data",
        ]);
        assert_eq!(
            env.signorders(),
            before + 1,
            "{keyid} ({alg}): one signature must cost exactly one sign order (size queries stay local)"
        );
        // Verified with the public key from `pkey -pubout` ...
        let public = env.public_key(keyid);
        let out = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            &public.to_string_lossy(),
            "-signature",
            &sig,
            "data",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{keyid}"
        );
        // ... and with the certificate's public key from `storeutl -certs`.
        let cert = env.certificate(keyid);
        let cert_pub = env.public_key_of_cert(&cert, keyid);
        let out = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            &cert_pub.to_string_lossy(),
            "-signature",
            &sig,
            "data",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{keyid}"
        );
        // Verification with only the keyserver provider loaded (local).
        let out = env.openssl_ok(&[
            "dgst",
            "-provider",
            "keyserver",
            "-sha256",
            "-verify",
            &uri,
            "-signature",
            &sig,
            "data",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{keyid}"
        );
    }
    // A wrong signature is rejected by the local verification.
    env.write("other", b"another image\n");
    let out = env
        .openssl(&[
            "dgst",
            "-provider",
            "keyserver",
            "-sha256",
            "-verify",
            "ks:key1",
            "-signature",
            "key1.sig",
            "other",
        ])
        .output()
        .expect("run openssl");
    assert!(
        !out.status.success(),
        "a signature over other data must not verify"
    );
}

#[test]
fn streaming_sha384_and_sha512_over_a_large_file() {
    let env = ProviderEnv::start(2);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    env.write("big", &data);
    for (keyid, md) in [("key6", "-sha512"), ("key4", "-sha384")] {
        let uri = format!("ks:{keyid}");
        let sig = format!("{keyid}{md}.sig");
        env.openssl_ok(&[
            "dgst",
            "-provider",
            "keyserver",
            "-sign",
            &uri,
            md,
            "-out",
            &sig,
            "big",
        ]);
        let public = env.public_key(keyid);
        let out = env.openssl_ok(&[
            "dgst",
            md,
            "-verify",
            &public.to_string_lossy(),
            "-signature",
            &sig,
            "big",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{keyid} {md}"
        );
    }
}

#[test]
fn openssl_conf_makes_ks_keys_visible_without_provider_flags() {
    let env = ProviderEnv::start(1);
    env.write("data", b"signed through conf/openssl-ks.cnf\n");
    let cnf = repo_openssl_cnf();
    let mut sign = env.openssl(&[
        "dgst", "-sign", "ks:key4", "-sha256", "-out", "conf.sig", "data",
    ]);
    sign.env("OPENSSL_CONF", &cnf);
    run_ok(&mut sign);
    let mut certs = env.openssl(&["storeutl", "-certs", "-out", "key4-conf.crt", "ks:key4"]);
    certs.env("OPENSSL_CONF", &cnf);
    run_ok(&mut certs);
    let cert_pub = env.public_key_of_cert(&env.path("key4-conf.crt"), "key4-conf");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        &cert_pub.to_string_lossy(),
        "-signature",
        "conf.sig",
        "data",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
    // storeutl names every key through the config as well.
    let mut list = env.openssl(&["storeutl", "ks:"]);
    list.env("OPENSSL_CONF", &cnf);
    let out = run_ok(&mut list);
    let text = String::from_utf8_lossy(&out.stdout);
    for (keyid, _) in DEV_KEYS {
        assert!(text.contains(&format!(": Name: ks:{keyid}\n")), "{text}");
    }
}

#[test]
fn provider_parameters_from_the_config_file_feed_the_client_and_the_environment_wins() {
    let env = ProviderEnv::start(2);
    env.write("data", b"settings from openssl.cnf\n");
    let get = |name: &str| {
        env.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} in the client environment"))
    };
    let base = std::fs::read_to_string(repo_openssl_cnf()).expect("read conf/openssl-ks.cnf");
    let cnf = base.replace(
        "activate = 1\n# Optional settings",
        &format!(
            "activate = 1\napi_server = {}\nca_file = {}\noperation_id = {}\nhttp_client_timeout = 20s\n# Optional settings",
            get("KSC_API_SERVER"),
            get("KSC_CA_FILE"),
            get("KSC_OPERATION_ID")
        ),
    );
    assert_ne!(
        cnf, base,
        "the provider section of conf/openssl-ks.cnf changed shape"
    );
    let cnf = env.write("params.cnf", cnf);
    // Only the token comes from the environment.
    let mut sign = env.openssl(&[
        "dgst",
        "-sign",
        "ks:key1",
        "-sha256",
        "-out",
        "params.sig",
        "data",
    ]);
    sign.env("OPENSSL_CONF", &cnf)
        .env_remove("KSC_API_SERVER")
        .env_remove("KSC_CA_FILE")
        .env_remove("KSC_OPERATION_ID");
    run_ok(&mut sign);
    // The environment wins over the file: a bogus file value is overridden.
    let bogus = std::fs::read_to_string(&cnf)
        .expect("read params.cnf")
        .replace(
            &format!("operation_id = {}", get("KSC_OPERATION_ID")),
            "operation_id = 999999",
        );
    let bogus = env.write("bogus.cnf", bogus);
    let mut sign = env.openssl(&[
        "dgst", "-sign", "ks:key1", "-sha256", "-out", "env.sig", "data",
    ]);
    sign.env("OPENSSL_CONF", &bogus);
    run_ok(&mut sign);
    let public = env.public_key("key1");
    for sig in ["params.sig", "env.sig"] {
        let out = env.openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            &public.to_string_lossy(),
            "-signature",
            sig,
            "data",
        ]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{sig}"
        );
    }
}

#[test]
fn provider_path_finds_keyserver_so_without_openssl_modules() {
    let env = ProviderEnv::start(1);
    env.write("data", b"found through -provider-path\n");
    let modules = env.modules.to_string_lossy().into_owned();
    let mut cmd = env.openssl(&[
        "dgst",
        "-provider-path",
        &modules,
        "-provider",
        "keyserver",
        "-sign",
        "ks:key1",
        "-sha256",
        "-out",
        "pp.sig",
        "data",
    ]);
    cmd.env_remove("OPENSSL_MODULES");
    run_ok(&mut cmd);
    let public = env.public_key("key1");
    let out = env.openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        &public.to_string_lossy(),
        "-signature",
        "pp.sig",
        "data",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verified OK"));
}

#[test]
fn nothing_on_stdout_and_no_token_in_debug_logs() {
    let env = ProviderEnv::start(1);
    env.write("data", b"quiet please\n");
    let token = env
        .env
        .iter()
        .find(|(k, _)| k == "KSC_ID_TOKEN")
        .map(|(_, v)| v.clone())
        .expect("token");
    let mut cmd = env.openssl(&[
        "dgst",
        "-provider",
        "keyserver",
        "-sign",
        "ks:key5",
        "-sha512",
        "-out",
        "quiet.sig",
        "data",
    ]);
    cmd.env("KSC_LOG", "debug");
    let out = run_ok(&mut cmd);
    assert!(
        out.stdout.is_empty(),
        "stdout belongs to openssl: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DEBUG"),
        "KSC_LOG=debug logs to stderr: {stderr}"
    );
    assert!(
        !stderr.contains(&token),
        "the token leaked into the debug log"
    );
    let signature_part = token.rsplit('.').next().unwrap_or_default();
    assert!(
        signature_part.len() < 8 || !stderr.contains(signature_part),
        "part of the token leaked into the debug log"
    );
}
