//! `ksc sign` for many files through the real binary against the dev KeyServer: outputs checked
//! before anything is signed (every bad option spends nothing), a directory and a list on stdin,
//! parallel workers, JSON and CSV manifests, and reruns that spend no use twice.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use ks_devserver::harness::DevServer;
use support::*;

fn used(srv: &DevServer, op: &str, key: &str) -> u64 {
    let st = srv.operation(op);
    st["keyusagerestrictions"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["keyid"] == key))
        .and_then(|k| k["usagecount"].as_u64())
        .unwrap_or_else(|| panic!("no usage count for {key}: {st}"))
}

fn openssl_verify(pubkey: &str, sig: &str, data: &str) {
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            pubkey,
            "-signature",
            sig,
            data,
        ])
        .output()
        .expect("openssl dgst");
    assert!(
        out.status.success(),
        "openssl rejected {sig}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_outputs_and_options_spend_nothing() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 1)], 300_000);
    let env = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let a = write(dir, "a.bin", b"first");
    let b = write(dir, "sub-b.bin", b"second");
    let missing_dir = dir.join("nonexistent/x.sig").display().to_string();
    let sig = dir.join("a.sig").display().to_string();

    // The typo: a signature path in a directory that does not exist.
    let err = ksc_code(
        &env,
        &["sign", "--key", "key1", "--in", &a, "--out", &missing_dir],
        7,
    );
    assert!(
        err.contains("does not exist") && err.contains("nothing was signed"),
        "{err}"
    );
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--in".into(), a.clone()], 7, "--out FILE"),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--in".into(),
                b.clone(),
                "--out".into(),
                sig.clone(),
            ],
            7,
            "--out-dir",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out-dir".into(),
                dir.join("nope").display().to_string(),
            ],
            7,
            "no such directory",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out".into(),
                sig.clone(),
                "--manifest".into(),
                missing_dir.clone(),
            ],
            7,
            "--manifest",
        ),
        (
            vec![
                "--in-list".into(),
                dir.join("no-list").display().to_string(),
                "--out-dir".into(),
                dir.display().to_string(),
            ],
            7,
            "--in-list",
        ),
        (
            vec!["--in".into(), a.clone(), "--out".into(), a.clone()],
            7,
            "overwrite an input",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out".into(),
                dir.display().to_string(),
            ],
            7,
            "is a directory",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out-dir".into(),
                dir.display().to_string(),
                "--jobs".into(),
                "0".into(),
            ],
            2,
            "--jobs",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out-dir".into(),
                dir.display().to_string(),
                "--suffix".into(),
                "".into(),
            ],
            2,
            "suffix",
        ),
        (
            vec![
                "--in".into(),
                a.clone(),
                "--out-dir".into(),
                dir.display().to_string(),
                "--suffix".into(),
                "x/y".into(),
            ],
            2,
            "suffix",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut args: Vec<&str> = vec!["sign", "--key", "key1"];
        args.extend(extra.iter().map(|s| s.as_str()));
        let err = ksc_code(&env, &args, code);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // Two inputs with the same file name would write the same signature.
    let other = dir.join("other");
    std::fs::create_dir(&other).expect("mkdir");
    let a2 = write(&other, "a.bin", b"other first");
    let out_dir = dir.join("sigs");
    std::fs::create_dir(&out_dir).expect("mkdir");
    let od = out_dir.display().to_string();
    let err = ksc_code(
        &env,
        &[
            "sign",
            "--key",
            "key1",
            "--in",
            &a,
            "--in",
            &a2,
            "--out-dir",
            &od,
        ],
        7,
    );
    assert!(err.contains("would both write"), "{err}");
    assert_eq!(used(&srv, &op, "key1"), 0, "a bad command spent a use");
    assert_eq!(
        std::fs::read_dir(&out_dir).expect("ls").count(),
        0,
        "the checks left files behind"
    );

    // The one good command still has its use.
    ksc_ok(&env, &["sign", "--key", "key1", "--in", &a, "--out", &sig]);
    assert_eq!(used(&srv, &op, "key1"), 1);
}

#[test]
fn many_files_in_parallel_with_manifest_and_safe_rerun() {
    require_tool("openssl", "openssl");
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 6)], 300_000);
    let env = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let input = dir.join("in");
    let sigs = dir.join("sigs");
    std::fs::create_dir(&input).expect("mkdir");
    std::fs::create_dir(&sigs).expect("mkdir");
    for i in 0..5 {
        write(
            &input,
            &format!("fw-{i}.bin"),
            format!("firmware {i}").as_bytes(),
        );
    }
    let (ind, sd) = (input.display().to_string(), sigs.display().to_string());
    let manifest = dir.join("manifest.json").display().to_string();

    // A directory, three workers, a JSON manifest.
    let out = ksc(
        &env,
        &[
            "sign",
            "--key",
            "key1",
            "--in",
            &ind,
            "--out-dir",
            &sd,
            "--jobs",
            "3",
            "--manifest",
            &manifest,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("5 signed, 0 already signed, 0 failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("5 of 5 files done"),
        "plain progress line: {stderr}"
    );
    assert_eq!(used(&srv, &op, "key1"), 5);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest")).expect("json");
    let rows = m.as_array().expect("array");
    assert_eq!(rows.len(), 5);
    for r in rows {
        assert_eq!(r["status"], "signed", "{r}");
        assert_eq!(r["key"], "key1");
        let file = r["file"].as_str().expect("file");
        let data = std::fs::read(file).expect("input");
        let sha = ks_common::hash::digest(ks_common::HashAlg::Sha256, &data);
        assert_eq!(r["sha256"], hex::encode(sha));
    }
    let pubkey = dir.join("key1.pub").display().to_string();
    ksc_ok(&env, &["cert", "key1", "--pubkey", "-o", &pubkey]);
    openssl_verify(
        &pubkey,
        &sigs.join("fw-3.bin.sig").display().to_string(),
        &input.join("fw-3.bin").display().to_string(),
    );

    // An interrupted run: two signatures lost. The rerun keeps the three that verify and
    // re-sends the two orders with the same requestids: the server replays, nothing is spent.
    std::fs::remove_file(sigs.join("fw-1.bin.sig")).expect("rm");
    std::fs::remove_file(sigs.join("fw-4.bin.sig")).expect("rm");
    let csv = dir.join("manifest.csv").display().to_string();
    ksc_ok(
        &env,
        &[
            "sign",
            "--key",
            "key1",
            "--in",
            &ind,
            "--out-dir",
            &sd,
            "--manifest",
            &csv,
        ],
    );
    assert_eq!(used(&srv, &op, "key1"), 5, "the rerun spent a use");
    let text = std::fs::read_to_string(&csv).expect("csv");
    assert!(
        text.starts_with("file,sha256,key,signature,status,error\n"),
        "{text}"
    );
    assert_eq!(text.matches(",already-signed,").count(), 3, "{text}");
    assert_eq!(text.matches(",signed,").count(), 2, "{text}");
    openssl_verify(
        &pubkey,
        &sigs.join("fw-4.bin.sig").display().to_string(),
        &input.join("fw-4.bin").display().to_string(),
    );
    // --force signs everything again: the same requestids, so still nothing spent.
    ksc_ok(
        &env,
        &[
            "sign",
            "--key",
            "key1",
            "--in",
            &ind,
            "--out-dir",
            &sd,
            "--force",
        ],
    );
    assert_eq!(used(&srv, &op, "key1"), 5, "--force spent a use");

    // A list on stdin with two new files: one use is left, so one signs, the other fails as
    // exhausted (exit 13), and the JSON report says which.
    let n1 = write(dir, "new-1.bin", b"new one");
    let n2 = write(dir, "new-2.bin", b"new two");
    let mut child = ksc_cmd(
        &env,
        &[
            "--json",
            "sign",
            "--key",
            "key1",
            "--in-list",
            "-",
            "--out-dir",
            &sd,
            "--jobs",
            "1",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn ksc");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("# new files\n{n1}\n\n{n2}\n").as_bytes())
        .expect("write list");
    let out = child.wait_with_output().expect("ksc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(13), "{stderr}");
    assert!(stderr.contains("1 of 2 files not signed"), "{stderr}");
    let first_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let report: serde_json::Value = serde_json::from_str(&first_line).expect("json report");
    assert_eq!(report["signed"], 1, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["files"][1]["status"], "failed", "{report}");
    assert_eq!(used(&srv, &op, "key1"), 6);
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    require_tool("script", "bsdutils");
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 3)], 300_000);
    let env = with(
        user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).expect("mkdir");
    for i in 0..3 {
        write(&input, &format!("f{i}.bin"), format!("file {i}").as_bytes());
    }
    let sigs = tmp.path().join("sigs");
    std::fs::create_dir(&sigs).expect("mkdir");
    // ksc runs on the pseudo-terminal `script` gives it; its stderr is that terminal.
    let command = format!(
        "'{}' sign --key key1 --in '{}' --out-dir '{}'",
        env!("CARGO_BIN_EXE_ksc"),
        input.display(),
        sigs.display()
    );
    let mut cmd = Command::new("script");
    for v in ks_common::config::ALL_VARIABLES {
        cmd.env_remove(v);
    }
    let out = cmd
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TERM", "xterm")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("3/3 files"), "no progress bar: {screen}");
    assert!(
        !screen.contains("files done"),
        "plain lines on a terminal: {screen}"
    );
    assert_eq!(used(&srv, &op, "key1"), 3);
}
