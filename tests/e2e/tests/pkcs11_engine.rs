//! The tutorial's path: libp11's OpenSSL engine loading libpkcs11ks.so through
//! an openssl config like the tutorial's, `openssl dgst -engine pkcs11 -keyform
//! engine -sign "pkcs11:object=<keyid>" -sha256`, verified with the
//! certificate read by pkcs11-tool.

use ks_e2e::pkcs11_support::{libp11_engine, openssl, run_ok, Pkcs11Env};

fn tutorial_sign_and_verify(keyid: &str) {
    let env = Pkcs11Env::start(2);
    let engine = libp11_engine();
    // The tutorial's openssl-ks.cnf, with MODULE_PATH pointing at our module.
    let config = format!(
        "openssl_conf = openssl_init\n\
         [openssl_init]\n\
         engines = engine_section\n\
         providers = provider_sect\n\
         [provider_sect]\n\
         default = default_sect\n\
         base = base_sect\n\
         [default_sect]\n\
         activate = 1\n\
         [base_sect]\n\
         activate = 1\n\
         [engine_section]\n\
         pkcs11 = pkcs11_section\n\
         [pkcs11_section]\n\
         engine_id = pkcs11\n\
         dynamic_path = {}\n\
         MODULE_PATH = {}\n\
         init = 0\n",
        engine.display(),
        env.module.display()
    );
    let cnf = env.path("openssl-ks.cnf");
    std::fs::write(&cnf, config).expect("write openssl-ks.cnf");
    let data = env.path("firmware.bin");
    std::fs::write(
        &data,
        b"firmware for the XYZ development board\n".repeat(100),
    )
    .expect("write data");
    let sig = env.path("firmware.sig");

    let before = env.server.stats()["signorders"].as_u64();
    let uri = format!("pkcs11:object={keyid}");
    let mut sign = env.command(openssl());
    sign.env("OPENSSL_CONF", &cnf)
        .args([
            "dgst", "-engine", "pkcs11", "-keyform", "engine", "-sign", &uri, "-sha256", "-out",
        ])
        .arg(&sig)
        .arg(&data);
    let out = run_ok(&mut sign);
    let after = env.server.stats()["signorders"].as_u64();
    assert_eq!(
        after.zip(before).map(|(a, b)| a - b),
        Some(1),
        "one signature, one sign order; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The tutorial's verification: the certificate read through pkcs11-tool.
    let pubkey = env.public_key_pem(keyid);
    let mut verify = env.command(openssl());
    verify
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pubkey)
        .arg("-signature")
        .arg(&sig)
        .arg(&data);
    let out = run_ok(&mut verify);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn tutorial_engine_command_rsa_key1() {
    tutorial_sign_and_verify("key1");
}

#[test]
fn tutorial_engine_command_ec_key2() {
    tutorial_sign_and_verify("key2");
}

#[test]
fn tutorial_engine_command_ec_p521_key5() {
    tutorial_sign_and_verify("key5");
}
