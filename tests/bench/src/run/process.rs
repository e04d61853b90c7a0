//! Figures measured in fresh processes: one `openssl dgst` per signature
//! (figure 1) and the PKCS#11 cold start (figure 3).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use ks_devserver::harness::DevServer;

use crate::measure::{median, ms, process_cpu, ratio, run_child, ChildRun};

use super::setup::{base_command, counters, delta, Paths, Server, Setup};
use super::KEYS;

/// With `KS_BENCH_CALLGRIND_DIR` set: each variant once more under `valgrind --tool=callgrind`
/// (not timed), its profile in `<dir>/<keyid>-<variant>.callgrind`, for `callgrind_annotate`.
fn profile(
    dir: &Path,
    keyid: &str,
    variants: &[(&str, Vec<String>)],
    command: &dyn Fn(&[String]) -> Command,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (v, args) in variants {
        let plain = command(args);
        let mut cmd = Command::new("valgrind");
        cmd.arg("--tool=callgrind")
            .arg(format!(
                "--callgrind-out-file={}",
                dir.join(format!("{keyid}-{v}.callgrind")).display()
            ))
            .arg(plain.get_program())
            .args(plain.get_args());
        if let Some(d) = plain.get_current_dir() {
            cmd.current_dir(d);
        }
        for (k, val) in plain.get_envs() {
            match val {
                Some(val) => cmd.env(k, val),
                None => cmd.env_remove(k),
            };
        }
        run_child(&mut cmd).map_err(|e| format!("callgrind of {keyid} {v}: {e}"))?;
    }
    Ok(())
}

/// Figure 1: one `openssl dgst` per signature.
pub(super) fn per_process(
    paths: &Paths,
    server: &Server,
    setup: &Setup,
    openssl: &Path,
    runs: usize,
) -> Result<Vec<Value>, String> {
    let s = &server.server;
    let c1 = counters(s);
    let c2 = counters(s);
    let overhead = delta(c2, c1, [0; 3]);
    let mut rows = Vec::new();
    for (i, (keyid, _rsa, name)) in KEYS.iter().enumerate() {
        let sig = paths.bench_dir.join(format!("{keyid}.sig"));
        let variants: [(&str, Vec<String>); 3] = [
            (
                "local",
                vec![
                    "dgst".into(),
                    "-sha256".into(),
                    "-sign".into(),
                    setup.local_keys[i].display().to_string(),
                ],
            ),
            (
                "provider",
                vec![
                    "dgst".into(),
                    "-provider".into(),
                    "keyserver".into(),
                    "-provider".into(),
                    "default".into(),
                    "-sign".into(),
                    format!("ks:{keyid}"),
                    "-sha256".into(),
                ],
            ),
            (
                "engine",
                vec![
                    "dgst".into(),
                    "-engine".into(),
                    "pkcs11".into(),
                    "-keyform".into(),
                    "engine".into(),
                    "-sign".into(),
                    format!("pkcs11:object={keyid}"),
                    "-sha256".into(),
                ],
            ),
        ];
        let command = |args: &[String]| {
            let mut cmd = base_command(openssl, server, paths);
            if args.iter().any(|a| a == "engine") {
                cmd.env("OPENSSL_CONF", &setup.engine_cnf);
            }
            cmd.args(args).arg("-out").arg(&sig).arg(&setup.data);
            cmd
        };
        // Warm-up (page cache, key cache of the server) and a check that each
        // variant's signature verifies.
        for (v, args) in &variants {
            run_child(&mut command(args))?;
            let key = if *v == "local" {
                let out = paths.bench_dir.join(format!("{keyid}.local.pub.pem"));
                let mut c = Command::new(openssl);
                c.args(["pkey", "-pubout", "-in"])
                    .arg(&setup.local_keys[i])
                    .arg("-out")
                    .arg(&out);
                run_child(&mut c)?;
                out
            } else {
                setup.pubkeys[i].clone()
            };
            let mut verify = Command::new(openssl);
            verify
                .args(["dgst", "-sha256", "-verify"])
                .arg(&key)
                .arg("-signature")
                .arg(&sig)
                .arg(&setup.data);
            run_child(&mut verify)
                .map_err(|e| format!("{v} signature of {keyid} does not verify: {e}"))?;
        }
        if let Some(dir) = std::env::var_os("KS_BENCH_CALLGRIND_DIR") {
            profile(Path::new(&dir), keyid, &variants, &command)?;
        }
        let mut walls: [Vec<f64>; 3] = Default::default();
        let mut rss: [Vec<f64>; 3] = Default::default();
        let mut net: [Vec<[i64; 3]>; 3] = Default::default();
        let mut cpu: [Vec<f64>; 3] = Default::default();
        for _ in 0..runs {
            for (j, (_, args)) in variants.iter().enumerate() {
                let before = counters(s);
                let r = run_child(&mut command(args))?;
                let after = counters(s);
                cpu[j].push(ms(r.cpu));
                walls[j].push(ms(r.wall));
                rss[j].push(r.max_rss_kib as f64 / 1024.0);
                net[j].push(delta(after, before, overhead));
            }
        }
        for (j, (v, args)) in variants.iter().enumerate() {
            let max_of = |k: usize| net[j].iter().map(|d| d[k]).max().unwrap_or(0);
            rows.push(json!({
                "key": keyid,
                "key_type": name,
                "variant": v,
                "command": format!("openssl {}", args.join(" ")),
                "wall_ms": median(&walls[j]),
                "wall_ms_runs": walls[j],
                "max_rss_mib": median(&rss[j]),
                "cpu_ms": median(&cpu[j]),
                "http_requests": max_of(0),
                "tls_handshakes": max_of(1),
                "sign_orders": max_of(2),
                "wall_ratio_to_local": ratio(median(&walls[j]), median(&walls[0])),
                "rss_over_local_mib": median(&rss[j]) - median(&rss[0]),
            }));
        }
    }
    Ok(rows)
}

pub(super) fn child_json(cmd: &mut Command) -> Result<(Value, ChildRun), String> {
    let r = run_child(cmd)?;
    let v = serde_json::from_slice(&r.stdout).map_err(|e| {
        format!(
            "{cmd:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&r.stdout)
        )
    })?;
    Ok((v, r))
}

/// CPU milliseconds the server has used so far.
pub(super) fn server_cpu_ms(s: &DevServer) -> f64 {
    process_cpu(s.pid()).map_or(f64::NAN, ms)
}

/// Figure 3: dlopen → first signature, and C_Initialize alone, in fresh processes.
pub(super) fn cold_start(
    paths: &Paths,
    server: &Server,
    exe: &Path,
    keys_on_server: usize,
    runs: usize,
) -> Result<Value, String> {
    let mut cols: [Vec<f64>; 4] = Default::default();
    let names = [
        "dlopen_ms",
        "c_initialize_ms",
        "key_found_ms",
        "first_signature_ms",
    ];
    for i in 0..=runs {
        let (out, _) = child_json(
            base_command(exe, server, paths).args(["cold", "--key", "key1", "--rsa", "1"]),
        )?;
        if i == 0 {
            continue; // warm-up
        }
        for (c, n) in cols.iter_mut().zip(names) {
            c.push(out[n].as_f64().unwrap_or(f64::NAN));
        }
    }
    let mut v = json!({ "keys_on_server": keys_on_server, "key": "key1" });
    for (c, n) in cols.iter().zip(names) {
        v[n] = json!(median(c));
        v[format!("{n}_runs")] = json!(c);
    }
    Ok(v)
}
