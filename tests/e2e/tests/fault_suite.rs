//! The fault suite (issue 13's acceptance for bounded retries): with the dev KeyServer
//! answering 20 % of requests 503, 10 % 429 and dropping 10 % of connections (half of those
//! after processing), 300 single-signature processes — `openssl dgst` through the provider,
//! `pkcs11-tool` through the module and `ksc sign`, 100 each — all succeed, spend exactly one use
//! each, and every signature verifies. Retries are bounded by `KSC_DEADLINE` (default 60 s),
//! not by an attempt count.
//!
//! The processes run 8 at a time (2-core CI machines). The figures are printed for the record;
//! nothing here asserts a duration.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use ks_devserver::harness::DevServer;
use ks_e2e::pkcs11_support::{pkcs11_tool, Pkcs11Env};
use ks_e2e::provider_support::{openssl, provider_library, run_ok};
use ks_e2e::tutorial_support::artefact;

const PER_FRONT_END: usize = 100;
const PARALLEL: usize = 8;

/// A finished signing process: which front end, what it signed, where it wrote the signature.
struct Done {
    front_end: &'static str,
    data: std::path::PathBuf,
    sig: std::path::PathBuf,
}

#[test]
fn three_hundred_processes_under_faults_all_sign_once() {
    let builder = DevServer::builder()
        .fault_5xx(0.2)
        .fault_429(0.1)
        .fault_drop(0.1);
    let total = 3 * PER_FRONT_END;
    let env = Pkcs11Env::start_with(builder, total as u32);
    // keyserver.so for `-provider keyserver`.
    let modules = env.path("modules");
    std::fs::create_dir_all(&modules).expect("modules dir");
    std::os::unix::fs::symlink(provider_library(), modules.join("keyserver.so"))
        .expect("link keyserver.so");
    let key1_id = env.key_ids().get("key1").cloned().expect("key1's CKA_ID");
    let pubkey = env.public_key_pem("key1");
    let ksc = artefact("ksc");
    let module = env.module.clone();
    let signorders_before = env.server.stats()["signorders"].as_u64().unwrap_or(0);

    let command = |i: usize| -> (
        &'static str,
        std::path::PathBuf,
        std::path::PathBuf,
        Command,
    ) {
        let data = env.path(&format!("data-{i}"));
        std::fs::write(&data, format!("firmware image {i}\n")).expect("data");
        let sig = env.path(&format!("sig-{i}"));
        let (d, s) = (data.display().to_string(), sig.display().to_string());
        let (front_end, mut cmd) = match i % 3 {
            0 => {
                let mut c = env.command(openssl());
                c.env("OPENSSL_MODULES", &modules).args([
                    "dgst",
                    "-provider",
                    "keyserver",
                    "-sign",
                    "ks:key1",
                    "-sha256",
                    "-out",
                    &s,
                    &d,
                ]);
                ("provider", c)
            }
            1 => {
                let mut c = env.command(pkcs11_tool());
                c.arg("--module").arg(&module).args([
                    "--sign",
                    "--id",
                    &key1_id,
                    "-m",
                    "SHA256-RSA-PKCS",
                    "--input-file",
                    &d,
                    "--output-file",
                    &s,
                ]);
                ("pkcs11-tool", c)
            }
            _ => {
                let mut c = env.command(&ksc);
                c.args(["sign", "--key", "key1", "--in", &d, "--out", &s]);
                ("ksc", c)
            }
        };
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        (front_end, data, sig, cmd)
    };

    let started = Instant::now();
    let mut running: Vec<(Done, Child)> = Vec::new();
    let mut finished: Vec<(Done, std::process::Output)> = Vec::new();
    let mut next = 0;
    while next < total || !running.is_empty() {
        while next < total && running.len() < PARALLEL {
            let (front_end, data, sig, mut cmd) = command(next);
            let child = cmd.spawn().expect("start a signing process");
            running.push((
                Done {
                    front_end,
                    data,
                    sig,
                },
                child,
            ));
            next += 1;
        }
        // Wait for the oldest; the others keep running meanwhile.
        let (job, child) = running.remove(0);
        let out = child
            .wait_with_output()
            .expect("wait for a signing process");
        finished.push((job, out));
    }
    let wall = started.elapsed();

    let mut failures = Vec::new();
    let mut signatures = 0;
    for (job, out) in &finished {
        if !out.status.success() {
            failures.push(format!(
                "{} ({}): {}",
                job.front_end,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        signatures += 1;
        let mut verify = Command::new(openssl());
        verify.args(["dgst", "-sha256", "-verify"]).arg(&pubkey);
        verify.arg("-signature").arg(&job.sig).arg(&job.data);
        run_ok(&mut verify);
    }
    let status = env.server.operation(&env.operation);
    let uses = status["keyusagerestrictions"]
        .as_array()
        .expect("restrictions")
        .iter()
        .find(|r| r["keyid"] == "key1")
        .and_then(|r| r["usagecount"].as_u64())
        .expect("key1's usage count");
    let stats = env.server.stats();
    println!(
        "fault suite: {total} processes (provider, pkcs11-tool, ksc), {} failures, {signatures} verified signatures, \
         {uses} uses consumed, {} sign orders, {} faults injected, wall time {:.1} s",
        failures.len(),
        stats["signorders"].as_u64().unwrap_or(0) - signorders_before,
        stats["faults"].as_u64().unwrap_or(0),
        wall.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(signatures, total);
    assert_eq!(uses, total as u64, "uses consumed = signatures: {status}");
    assert!(
        stats["faults"].as_u64().unwrap_or(0) > 0,
        "faults were injected: {stats}"
    );
}
