//! A password in the server URL (`https://user:PW@127.0.0.1:PORT`) never reaches stderr, at
//! `KSC_LOG=debug`, from the provider, the module or `ksc`, on success and on failure; and the
//! signature is still made (the userinfo is not sent as credentials).

use ks_e2e::pkcs11_support::{pkcs11_tool, Pkcs11Env};
use ks_e2e::provider_support::{openssl, run_fail, run_ok};
use ks_e2e::tutorial_support::artefact;

const PW: &str = "Pw-Never-In-Logs-91c2";

#[test]
fn url_password_stays_out_of_stderr_at_debug() {
    let env = Pkcs11Env::start(1);
    let api = env
        .server
        .api_url()
        .replacen("://", &format!("://ci:{PW}@"), 1);
    let modules = env.path("modules");
    std::fs::create_dir_all(&modules).expect("modules dir");
    std::os::unix::fs::symlink(
        ks_e2e::provider_support::provider_library(),
        modules.join("keyserver.so"),
    )
    .expect("link keyserver.so");
    let data = env.path("data");
    std::fs::write(&data, b"firmware\n").expect("data");
    let d = data.display().to_string();
    let debug = |program: std::path::PathBuf| {
        let mut c = env.command(program);
        c.env("KSC_API_SERVER", &api)
            .env("KSC_LOG", "debug")
            .env("OPENSSL_MODULES", &modules);
        c
    };
    let mut stderrs = Vec::new();

    let mut c = debug(openssl());
    c.args([
        "dgst",
        "-provider",
        "keyserver",
        "-sign",
        "ks:key1",
        "-sha256",
        "-out",
        "sig",
        &d,
    ]);
    stderrs.push(String::from_utf8_lossy(&run_ok(&mut c).stderr).into_owned());

    let mut c = debug(pkcs11_tool());
    c.arg("--module").arg(&env.module).arg("--list-objects");
    stderrs.push(String::from_utf8_lossy(&run_ok(&mut c).stderr).into_owned());

    let mut c = debug(artefact("ksc"));
    c.args(["sign", "--key", "key2", "--in", &d, "--out", "sig2"]);
    stderrs.push(String::from_utf8_lossy(&run_ok(&mut c).stderr).into_owned());

    // Failure paths: an unknown operation, and nobody listening on the port.
    let mut c = debug(artefact("ksc"));
    c.args(["operation", "status", "999999"]);
    stderrs.push(run_fail(&mut c));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut c = debug(artefact("ksc"));
    c.env(
        "KSC_API_SERVER",
        format!("https://ci:{PW}@127.0.0.1:{port}"),
    )
    .env("KSC_DEADLINE", "2s")
    .args(["keys"]);
    stderrs.push(run_fail(&mut c));

    for (i, err) in stderrs.iter().enumerate() {
        assert!(
            !err.contains(PW),
            "run {i}: the password is on stderr:\n{err}"
        );
    }
    assert!(
        stderrs[0].contains("https://***@127.0.0.1"),
        "the debug log names the URL, redacted:\n{}",
        stderrs[0]
    );
}
