//! `scripts/signandvalidate.sh`, the README's first command: the tutorial's
//! whole flow on the dev KeyServer (run twice in a row, signatures checked with
//! openssl), against an already running KeyServer with a person approving,
//! its `--help`, a missing prerequisite, and an interrupted run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ks_devserver::harness::DevServer;
use ks_e2e::tutorial_support::{
    clean_command, libp11_engine, openssl_verify_with_cert, processes_mentioning, repo_file,
    require_all_artefacts, run_ok, target_and_profile, tool,
};

fn require_tools() {
    tool("openssl", "openssl");
    tool("pkcs11-tool", "opensc");
    libp11_engine();
    require_all_artefacts();
}

/// The script with this test's build (no cargo, no apt) and a private TMPDIR.
fn script(cwd: &Path, tmpdir: &Path) -> Command {
    let (target, profile) = target_and_profile();
    let mut cmd = clean_command("bash");
    cmd.arg(repo_file("scripts/signandvalidate.sh"))
        .arg("--target-dir")
        .arg(target)
        .args(["--profile", &profile, "--no-build", "--no-install"])
        .env("TMPDIR", tmpdir)
        .current_dir(cwd);
    cmd
}

/// The six signatures a full run leaves, each checked with openssl against
/// the certificate the same path read.
fn check_output(out: &Path, image: &Path) {
    for key in ["key1", "key4"] {
        let provider_cert = out.join(format!("{key}.provider.cert.pem"));
        let pkcs11_cert = out.join(format!("{key}.pkcs11.cert.der"));
        openssl_verify_with_cert(
            &provider_cert,
            &out.join(format!("firmware.provider.{key}.sig")),
            image,
        );
        openssl_verify_with_cert(
            &pkcs11_cert,
            &out.join(format!("firmware.pkcs11-tool.{key}.sig")),
            image,
        );
        openssl_verify_with_cert(
            &pkcs11_cert,
            &out.join(format!("firmware.engine.{key}.sig")),
            image,
        );
        // Both paths read the same certificate.
        let pem = run_ok(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(&provider_cert),
        )
        .stdout;
        let der = std::fs::read(&pkcs11_cert).expect("read the PKCS#11 certificate");
        assert_eq!(pem, der, "{key}: provider and PKCS#11 certificates differ");
        let text = run_ok(
            Command::new("openssl")
                .args(["x509", "-noout", "-text", "-in"])
                .arg(&provider_cert),
        )
        .stdout;
        let text = String::from_utf8_lossy(&text);
        let expected = if key == "key1" {
            "rsaEncryption"
        } else {
            "id-ecPublicKey"
        };
        assert!(text.contains(expected), "{key} is not {expected}: {text}");
    }
    let summary = std::fs::read_to_string(out.join("summary.txt")).expect("summary.txt");
    assert_eq!(summary.matches("Verified OK").count(), 6, "{summary}");
}

fn api_line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.trim_start().starts_with("API server:"))
        .unwrap_or_else(|| panic!("no API server line in:\n{stdout}"))
        .to_string()
}

#[test]
fn signandvalidate_on_the_dev_keyserver_twice_in_a_row() {
    require_tools();
    let tmp = tempfile::tempdir().expect("tempdir");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).expect("scratch dir");
    let mut api = Vec::new();
    let unrelated = tmp.path().join("output/release-notes.sig");
    for run in 1..=2 {
        if run == 2 {
            // A file of the user's in the output directory is left alone.
            std::fs::write(&unrelated, b"not ours").expect("write an unrelated file");
        }
        let out = run_ok(&mut script(tmp.path(), &scratch));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        for expected in [
            "Start the bundled dev KeyServer",
            "Token: log in as the demo user orderer-client",
            "Operation for provider: key1 and key4, 1 use(s) each, valid 60s",
            "No approver is at hand in this demo",
            "KSC_CLIENT_ID=approver-key4 ksc operation approve",
            ": approved",
            "openssl dgst -provider-path",
            "-provider keyserver -sign ks:key1 -sha256",
            "openssl storeutl",
            "refused as expected",
            "pkcs11-tool --module",
            "--read-object --type cert --label key4",
            "openssl dgst -engine pkcs11 -keyform engine -sign pkcs11:object=key4 -sha256",
            "6 signatures, all verified with openssl",
            "(dev KeyServer stopped)",
        ] {
            assert!(
                stdout.contains(expected),
                "run {run}: `{expected}` missing from:\n{stdout}"
            );
        }
        assert_eq!(
            stdout.matches("Verified OK").count(),
            12,
            "run {run}: each signature verified by the script and listed in the summary:\n{stdout}"
        );
        let output = tmp.path().join("output");
        check_output(&output, &output.join("firmware.bin"));
        api.push(api_line(&stdout));
        // The server is stopped and the work area removed.
        let left = processes_mentioning(&scratch.display().to_string());
        assert!(left.is_empty(), "run {run} left processes: {left:?}");
        let entries: Vec<_> = std::fs::read_dir(&scratch).expect("scratch").collect();
        assert!(entries.is_empty(), "run {run} left {entries:?}");
    }
    assert_ne!(api[0], api[1], "each run gets its own ephemeral ports");
    assert_eq!(
        std::fs::read(&unrelated).expect("the unrelated file survives"),
        b"not ours"
    );
}

#[test]
fn against_a_running_keyserver_it_waits_for_a_person_to_approve() {
    require_tools();
    let server = DevServer::start();
    let token = server.token("orderer-client");
    let tmp = tempfile::tempdir().expect("tempdir");
    let image = tmp.path().join("my-firmware.img");
    std::fs::write(
        &image,
        b"firmware for the XYZ development board\n".repeat(5000),
    )
    .expect("image");
    let out_dir = tmp.path().join("signed");

    let mut cmd = script(tmp.path(), tmp.path());
    cmd.env("KSC_API_SERVER", server.api_url())
        .env("KSC_CA_FILE", server.ca_file())
        .env("KSC_ID_TOKEN", &token)
        .args(["--one-operation", "--valid", "5m", "--out"])
        .arg(&out_dir)
        .arg("--image")
        .arg(&image)
        .args(["--description", "Release 1.2.3 of the XYZ firmware"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (seen, operation) = run_approving(cmd, &server, |id| {
        // Nothing is signed before a person approves.
        assert!(
            !out_dir.join("firmware.provider.key1.sig").exists(),
            "signed before approval"
        );
        let status = server.operation(id);
        assert_eq!(
            status["description"], "Release 1.2.3 of the XYZ firmware",
            "{status}"
        );
    });
    assert!(
        seen.contains("Ask the approvers of key1 and key4 to approve operation"),
        "{seen}"
    );
    assert!(
        !seen.contains("dev KeyServer"),
        "no dev server in this mode:\n{seen}"
    );
    check_output(&out_dir, &image);
    // One operation, one use of each key per signing path.
    let st = server.operation(&operation);
    let uses = st["keyusagerestrictions"]
        .as_array()
        .unwrap_or_else(|| panic!("no keyusagerestrictions in {st}"));
    for u in uses {
        assert_eq!(u["usagecount"], 3, "{st}");
        assert_eq!(u["maxusagecount"], 3, "{st}");
    }
}

/// Runs the script in its real-KeyServer mode: each time it says it waits for
/// people to approve an operation, `check` looks at it and approver-key4
/// approves. Returns its stdout and the (last) operation id.
fn run_approving(mut cmd: Command, server: &DevServer, check: impl Fn(&str)) -> (String, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start signandvalidate.sh");
    let stderr = child.stderr.take().expect("stderr");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s).ok();
        s
    });
    let mut seen = String::new();
    let mut operation = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("read stdout");
        seen.push_str(&line);
        seen.push('\n');
        if let Some(id) = line
            .trim()
            .strip_prefix("== ")
            .and_then(|l| l.split_once("Waiting for people to approve operation "))
            .map(|(_, id)| id.trim().to_string())
        {
            let status = server.operation(&id);
            assert_eq!(status["status"], "pending", "{status}");
            check(&id);
            server.approve("approver-key4", &id);
            operation = Some(id);
        }
    }
    let status = child.wait().expect("wait for the script");
    let stderr = err_thread.join().expect("stderr thread");
    assert!(
        status.success(),
        "signandvalidate.sh failed ({status}):\n{seen}\n{stderr}"
    );
    let operation = operation.unwrap_or_else(|| panic!("no approval wait shown:\n{seen}"));
    assert!(
        seen.contains("Ask the approvers of key1 and key4 to approve operation"),
        "{seen}"
    );
    assert!(
        !seen.contains("dev KeyServer"),
        "no dev server in this mode:\n{seen}"
    );
    (seen, operation)
}

#[test]
fn a_ksc_config_file_alone_selects_the_running_keyserver() {
    require_tools();
    let server = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let conf = tmp.path().join("ksc.conf");
    std::fs::write(
        &conf,
        format!(
            "KSC_API_SERVER={}\nKSC_CA_FILE={}\nKSC_AUTH_SERVER={}\nKSC_CLIENT_ID=orderer-client\nKSC_CLIENT_SECRET=orderer-client-secret\n",
            server.api_url(),
            server.ca_file().display(),
            server.auth_url()
        ),
    )
    .expect("write ksc.conf");
    let mut cmd = script(tmp.path(), tmp.path());
    cmd.env("KSC_CONFIG", &conf)
        .args(["--paths", "provider", "--one-operation"]);
    let (seen, operation) = run_approving(cmd, &server, |_| {});
    assert!(seen.contains("the KeyServer of"), "{seen}");
    let out = tmp.path().join("output");
    for key in ["key1", "key4"] {
        openssl_verify_with_cert(
            &out.join(format!("{key}.provider.cert.pem")),
            &out.join(format!("firmware.provider.{key}.sig")),
            &out.join("firmware.bin"),
        );
    }
    let st = server.operation(&operation);
    assert_eq!(st["createdby"], "orderer-client", "{st}");
}

/// The options a script's argument loop accepts (`--name)` case labels).
fn options_of(script: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(script).expect("read script");
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let label = l.split(')').next()?;
            if l.contains(')') && label.starts_with("--") && !label.contains(' ') {
                Some(label.to_string())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn help_documents_every_option_and_bad_options_are_refused() {
    for name in ["scripts/signandvalidate.sh", "scripts/install.sh"] {
        let path = repo_file(name);
        let options = options_of(&path);
        assert!(options.len() >= 8, "{name}: options found: {options:?}");
        let out = run_ok(clean_command("bash").arg(&path).arg("--help"));
        let help = String::from_utf8_lossy(&out.stdout);
        for o in &options {
            let o = o.split('|').next_back().unwrap_or(o);
            assert!(
                help.contains(o),
                "{name} --help does not document {o}:\n{help}"
            );
        }
        let out = clean_command("bash")
            .arg(&path)
            .arg("--no-such-option")
            .output()
            .expect("run script");
        assert_eq!(out.status.code(), Some(2), "{name}: a bad option is exit 2");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("unknown option --no-such-option"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in [
        vec!["--paths", "provider,hsm"],
        vec!["--valid", "sixty"],
        vec!["--profile", "fast"],
        vec!["--out"],
    ] {
        let out = script(tmp.path(), tmp.path())
            .args(&bad)
            .output()
            .expect("run script");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn a_missing_prerequisite_fails_fast_with_one_clear_line() {
    // Missing build artefacts.
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = clean_command("bash")
        .arg(repo_file("scripts/signandvalidate.sh"))
        .arg("--target-dir")
        .arg(tmp.path().join("no-target"))
        .args(["--no-build", "--no-install", "--paths", "provider"])
        .current_dir(tmp.path())
        .output()
        .expect("run script");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-target/release/ksc is missing"),
        "{stderr}"
    );
    assert!(
        !tmp.path().join("output").exists(),
        "nothing done before the check"
    );

    // Missing openssl (a PATH with nothing but what the script's first lines need).
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(tool("dirname", "coreutils"), bin.join("dirname")).expect("symlink");
    let bash: PathBuf = tool("bash", "bash");
    let out = clean_command(bash)
        .arg(repo_file("scripts/signandvalidate.sh"))
        .arg("--no-install")
        .env("PATH", &bin)
        .current_dir(tmp.path())
        .output()
        .expect("run script");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("missing the openssl command: install it with: sudo apt-get install openssl"),
        "{stderr}"
    );
    assert!(stderr.contains("sudo apt-get install opensc"), "{stderr}");
}

#[test]
fn an_interrupted_run_stops_its_dev_keyserver_and_cleans_up() {
    require_tools();
    let tmp = tempfile::tempdir().expect("tempdir");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).expect("scratch dir");
    let mut child = script(tmp.path(), &scratch)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start signandvalidate.sh");
    let mut seen = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("Available keys") {
            break;
        }
    }
    assert!(seen.contains("API server:"), "the server was up:\n{seen}");
    let running = processes_mentioning(&scratch.display().to_string());
    assert!(
        running.iter().any(|p| p.contains("ks-devserver")),
        "the dev KeyServer runs: {running:?}"
    );
    run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    for line in lines {
        seen.push_str(&line.unwrap_or_default());
        seen.push('\n');
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "interrupted run must fail:\n{seen}");
    assert!(seen.contains("(dev KeyServer stopped)"), "{seen}");
    let left = processes_mentioning(&scratch.display().to_string());
    assert!(left.is_empty(), "left running: {left:?}");
    let entries: Vec<_> = std::fs::read_dir(&scratch).expect("scratch").collect();
    assert!(entries.is_empty(), "left {entries:?}");
}
