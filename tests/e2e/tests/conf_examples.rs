//! Each example file in conf/ (except openssl-ks.cnf, which the provider
//! suites exercise) used as its comments say, against the dev KeyServer:
//! ksc.conf and ksc-legacy.json through KSC_CONFIG, the tutorial's engine
//! config through libp11, and the p11-kit module file through p11-kit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ks_devserver::harness::DevServer;
use ks_e2e::tutorial_support::{
    artefact, clean_command, libp11_engine, openssl_verify_with_cert, repo_file, run_ok, tool,
};

/// Replaces the one line starting with `prefix` (exactly one must exist).
fn set_line(text: &str, prefix: &str, new_line: &str) -> String {
    let hits = text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(hits, 1, "expected one line starting with {prefix:?}");
    text.lines()
        .map(|l| {
            if l.starts_with(prefix) {
                new_line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn ksc(env: &[(&str, &str)], args: &[&str]) -> String {
    let mut cmd = clean_command(artefact("ksc"));
    cmd.envs(env.iter().copied()).args(args);
    String::from_utf8_lossy(&run_ok(&mut cmd).stdout).into_owned()
}

/// A directory holding `keyserver.so` for `-provider-path`/`OPENSSL_MODULES`.
fn modules_dir(dir: &Path) -> PathBuf {
    let m = dir.join("ossl-modules");
    std::fs::create_dir_all(&m).expect("modules dir");
    std::os::unix::fs::symlink(artefact("libkeyserver.so"), m.join("keyserver.so"))
        .expect("symlink keyserver.so");
    m
}

#[test]
fn ksc_conf_example_documents_every_setting_and_feeds_ksc_and_the_provider() {
    let server = DevServer::start();
    let token = server.token("orderer-client");
    let tmp = tempfile::tempdir().expect("tempdir");
    let example = repo_file("conf/ksc.conf");
    let text = std::fs::read_to_string(&example).expect("read conf/ksc.conf");
    for var in [
        "KSC_API_SERVER",
        "KSC_CA_FILE",
        "KSC_ID_TOKEN",
        "KSC_AUTH_SERVER",
        "KSC_CLIENT_ID",
        "KSC_CLIENT_SECRET",
        "KSC_OPERATION_ID",
        "KSC_OPERATION_DESCRIPTION",
        "KSC_HTTP_CLIENT_TIMEOUT",
        "KSC_APPROVAL_TIMEOUT",
        "KSC_LOG",
        "KSC_DEADLINE",
        "KSC_SIGNING_CA_FILE",
        "KSC_KEY_PINS",
        "KSC_ID_TOKEN_FILE",
        "KSC_ID_TOKEN_SOURCE",
        "KSC_OIDC_AUDIENCE",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches('#').starts_with(&format!("{var}="))),
            "conf/ksc.conf has no {var}= line"
        );
    }
    let ca = server.ca_file().display().to_string();
    let signing_ca = server.signing_ca_file().display().to_string();
    let example_s = example.display().to_string();

    // The file as shipped parses; the environment wins over its API server.
    let keys = ksc(
        &[
            ("KSC_CONFIG", &example_s),
            ("KSC_API_SERVER", server.api_url()),
            ("KSC_CA_FILE", &ca),
            ("KSC_SIGNING_CA_FILE", &signing_ca),
            ("KSC_ID_TOKEN", &token),
        ],
        &["keys"],
    );
    assert!(keys.contains("key4"), "{keys}");

    // A copy pointed at the dev KeyServer is the whole configuration.
    let text = set_line(
        &text,
        "KSC_API_SERVER=",
        &format!("KSC_API_SERVER={}", server.api_url()),
    );
    let text = set_line(&text, "#KSC_CA_FILE=", &format!("KSC_CA_FILE={ca}"));
    let text = set_line(
        &text,
        "KSC_SIGNING_CA_FILE=",
        &format!("KSC_SIGNING_CA_FILE={signing_ca}"),
    );
    let conf = tmp.path().join("ksc.conf");
    std::fs::write(&conf, text).expect("write ksc.conf");
    let conf_s = conf.display().to_string();
    let env = [("KSC_CONFIG", conf_s.as_str()), ("KSC_ID_TOKEN", &token)];
    let op = ksc(
        &env,
        &["operation", "create", "--key", "key1=1", "--valid", "60s"],
    )
    .trim()
    .to_string();
    let status = server.operation(&op);
    assert_eq!(
        status["description"], "Building of firmware for XYZ development board",
        "the description comes from the file: {status}"
    );
    assert_eq!(status["status"], "approved", "key1 needs no approval");

    let data = tmp.path().join("firmware.bin");
    std::fs::write(&data, b"signed with settings from conf/ksc.conf\n").expect("data");
    let sig = tmp.path().join("firmware.sig");
    let cert = tmp.path().join("key1.pem");
    let modules = modules_dir(tmp.path());
    run_ok(
        clean_command(tool("openssl", "openssl"))
            .envs(env)
            .env("KSC_OPERATION_ID", &op)
            .arg("dgst")
            .arg("-provider-path")
            .arg(&modules)
            .args([
                "-provider",
                "keyserver",
                "-sign",
                "ks:key1",
                "-sha256",
                "-out",
            ])
            .arg(&sig)
            .arg(&data),
    );
    ksc(&env, &["cert", "key1", "-o", &cert.display().to_string()]);
    openssl_verify_with_cert(&cert, &sig, &data);
}

#[test]
fn legacy_json_example_in_the_go_module_format_logs_in_with_client_credentials() {
    let server = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut text =
        std::fs::read_to_string(repo_file("conf/ksc-legacy.json")).expect("read ksc-legacy.json");
    for (from, to) in [
        ("https://authserver.example.com:8300", server.auth_url()),
        ("https://keyserver.example.com:8200", server.api_url()),
        ("\"orderer-clientkey1\"", "\"orderer-clientkey1\""),
        ("\"change-me\"", "\"orderer-clientkey1-secret\""),
    ] {
        assert!(text.contains(from), "ksc-legacy.json has no {from}");
        text = text.replace(from, to);
    }
    let conf = tmp.path().join("ksc.json");
    std::fs::write(&conf, text).expect("write ksc.json");
    let conf_s = conf.display().to_string();
    let ca = server.ca_file().display().to_string();
    let env = [("KSC_CONFIG", conf_s.as_str()), ("KSC_CA_FILE", &ca)];
    let token = ksc(&env, &["token"]);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");
    // orderer-clientkey1 may create operations with key1 only.
    let op = ksc(
        &env,
        &["operation", "create", "--key", "key1=1", "--valid", "60s"],
    )
    .trim()
    .to_string();
    let status = server.operation(&op);
    assert_eq!(status["createdby"], "orderer-clientkey1", "{status}");
    assert_eq!(
        status["description"],
        "Building of firmware for XYZ development board"
    );
}

#[test]
fn engine_config_example_signs_through_libp11_the_tutorial_way() {
    let server = DevServer::start();
    let token = server.token("orderer-client");
    let op = server.create_operation("orderer-client", &[("key2", 1)], 60_000);
    server.approve("approver-key2", &op);
    let tmp = tempfile::tempdir().expect("tempdir");
    let module = artefact("libpkcs11ks.so");
    let text = std::fs::read_to_string(repo_file("conf/openssl-pkcs11-engine.cnf"))
        .expect("read engine config");
    assert!(text.contains("\ninit = 0\n"), "the engine loads lazily");
    let text = set_line(
        &text,
        "dynamic_path =",
        &format!("dynamic_path = {}", libp11_engine().display()),
    );
    let text = set_line(
        &text,
        "MODULE_PATH =",
        &format!("MODULE_PATH = {}", module.display()),
    );
    let cnf = tmp.path().join("openssl-pkcs11-engine.cnf");
    std::fs::write(&cnf, text).expect("write config");
    let data = tmp.path().join("firmware.bin");
    std::fs::write(&data, b"firmware signed through the engine\n".repeat(100)).expect("data");
    let sig = tmp.path().join("firmware.sig");
    let cert = tmp.path().join("key2.der");
    let env = server.client_env(&token, &op);
    run_ok(
        clean_command(tool("openssl", "openssl"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("OPENSSL_CONF", &cnf)
            .args([
                "dgst",
                "-engine",
                "pkcs11",
                "-keyform",
                "engine",
                "-sign",
                "pkcs11:object=key2",
                "-sha256",
                "-out",
            ])
            .arg(&sig)
            .arg(&data),
    );
    run_ok(
        clean_command(tool("pkcs11-tool", "opensc"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--module")
            .arg(&module)
            .args([
                "--read-object",
                "--type",
                "cert",
                "--label",
                "key2",
                "--output-file",
            ])
            .arg(&cert),
    );
    openssl_verify_with_cert(&cert, &sig, &data);
    let status = server.operation(&op);
    assert_eq!(
        status["keyusagerestrictions"][0]["usagecount"], 1,
        "{status}"
    );
}

/// Runs `cmd` as the unprivileged user `nobody` when the test runs as root
/// (p11-kit ignores user configuration for root).
fn unprivileged(program: &Path) -> Command {
    let uid = run_ok(Command::new("id").arg("-u")).stdout;
    if String::from_utf8_lossy(&uid).trim() == "0" {
        let mut cmd = clean_command(tool("setpriv", "util-linux"));
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program);
        cmd
    } else {
        clean_command(program)
    }
}

#[test]
fn p11_kit_module_file_registers_the_keyserver_token() {
    let p11_kit = tool("p11-kit", "p11-kit");
    let proxy = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("p11-kit-proxy.so"))
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!(
            "p11-kit-proxy.so is not installed: install it with `apt-get install p11-kit-modules`"
        )
    });
    let server = DevServer::start();
    let token = server.token("orderer-client");
    let op = server.create_operation("orderer-client", &[("key1", 1)], 60_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    let modules = home.join(".config/pkcs11/modules");
    std::fs::create_dir_all(&modules).expect("p11-kit user config dir");
    let text = std::fs::read_to_string(repo_file("conf/p11-kit/keyserver.module"))
        .expect("read keyserver.module");
    assert!(text.contains("\ntrust-policy: no\n") && text.contains("\ncritical: no\n"));
    // A copy of the module: the build directory may not be readable by the
    // unprivileged user (e.g. a checkout under /root).
    let module = tmp.path().join("libpkcs11ks.so");
    std::fs::copy(artefact("libpkcs11ks.so"), &module).expect("copy the module");
    let text = set_line(&text, "module:", &format!("module: {}", module.display()));
    std::fs::write(modules.join("keyserver.module"), text).expect("write keyserver.module");
    // The unprivileged user must read everything it needs.
    let ca = tmp.path().join("ca.pem");
    std::fs::copy(server.ca_file(), &ca).expect("copy the CA");
    let data = tmp.path().join("firmware.bin");
    std::fs::write(&data, b"firmware signed through p11-kit\n").expect("data");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    for d in [tmp.path(), &home, &out] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    for d in [
        home.join(".config"),
        home.join(".config/pkcs11"),
        modules.clone(),
    ] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let env = [
        ("HOME", home.display().to_string()),
        ("KSC_API_SERVER", server.api_url().to_string()),
        ("KSC_CA_FILE", ca.display().to_string()),
        ("KSC_ID_TOKEN", token.clone()),
        ("KSC_OPERATION_ID", op.clone()),
    ];

    let listed = run_ok(
        unprivileged(&p11_kit)
            .envs(env.clone())
            .current_dir(tmp.path())
            .arg("list-modules"),
    )
    .stdout;
    let listed = String::from_utf8_lossy(&listed);
    assert!(
        listed.contains("keyserver: ") && listed.contains("token: KEYSERVER"),
        "p11-kit does not list the module:\n{listed}"
    );

    // Any program using p11-kit-proxy.so sees the token and signs with it.
    let pkcs11_tool = tool("pkcs11-tool", "opensc");
    let objects = run_ok(
        unprivileged(&pkcs11_tool)
            .envs(env.clone())
            .current_dir(tmp.path())
            .arg("--module")
            .arg(&proxy)
            .args([
                "--token-label",
                "KEYSERVER",
                "--list-objects",
                "--type",
                "privkey",
            ]),
    )
    .stdout;
    let objects = String::from_utf8_lossy(&objects);
    let id = objects
        .lines()
        .skip_while(|l| l.split_whitespace().collect::<Vec<_>>() != ["label:", "key1"])
        .find_map(|l| l.trim().strip_prefix("ID:").map(|s| s.trim().to_string()))
        .unwrap_or_else(|| panic!("no key1 through p11-kit-proxy:\n{objects}"));
    let sig = out.join("firmware.sig");
    let cert = out.join("key1.der");
    run_ok(
        unprivileged(&pkcs11_tool)
            .envs(env.clone())
            .current_dir(tmp.path())
            .arg("--module")
            .arg(&proxy)
            .args([
                "--token-label",
                "KEYSERVER",
                "--sign",
                "--mechanism",
                "SHA256-RSA-PKCS",
                "--id",
                &id,
            ])
            .arg("--input-file")
            .arg(&data)
            .arg("--output-file")
            .arg(&sig),
    );
    run_ok(
        unprivileged(&pkcs11_tool)
            .envs(env)
            .current_dir(tmp.path())
            .arg("--module")
            .arg(&proxy)
            .args([
                "--token-label",
                "KEYSERVER",
                "--read-object",
                "--type",
                "cert",
                "--label",
                "key1",
            ])
            .arg("--output-file")
            .arg(&cert),
    );
    openssl_verify_with_cert(&cert, &sig, &data);
}
