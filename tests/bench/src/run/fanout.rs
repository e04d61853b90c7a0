//! Figure 5: N single-signature processes released at once (issue 14, item 5),
//! the same processes as tests/e2e/tests/fanout.rs, against a fresh dev
//! KeyServer and one operation with exactly N uses of key1; beside it, N
//! `openssl dgst` processes with a local key released the same way.

use std::path::Path;
use std::process::Command;

use ks_e2e::fanout_support::{gate, prepare, FanoutSetup};
use serde_json::{json, Value};

use crate::measure::ratio;

use super::setup::{find_tool, start_server, Paths, Setup};

fn counter(v: &Value, name: &str) -> i64 {
    v[name].as_i64().unwrap_or(0)
}

/// Wall time of `n` local-key signatures (RSA-2048, 1 MiB) released together.
fn local_baseline(openssl: &Path, setup: &Setup, dir: &Path, n: usize) -> Result<f64, String> {
    let commands = (0..n)
        .map(|i| {
            let mut cmd = Command::new(openssl);
            cmd.env_remove("OPENSSL_CONF")
                .current_dir(dir)
                .args(["dgst", "-sha256", "-sign"])
                .arg(&setup.local_keys[0])
                .arg("-out")
                .arg(format!("local-{i}.sig"))
                .arg(&setup.data);
            cmd
        })
        .collect();
    let (wall, outputs) = gate(commands)?.release()?;
    if let Some(bad) = outputs.iter().find(|o| !o.status.success()) {
        return Err(format!(
            "a local-key process failed: {}",
            String::from_utf8_lossy(&bad.stderr)
        ));
    }
    Ok(wall.as_secs_f64())
}

/// Runs the fan-out of `n` processes; failures and bad signatures are
/// reported in the row (a benchmark reports, it does not stop).
pub(super) fn fanout(
    paths: &Paths,
    setup: &Setup,
    openssl: &Path,
    engine: &Path,
    n: usize,
) -> Result<Value, String> {
    let dir = paths.bench_dir.join("fanout");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let local_wall = local_baseline(openssl, setup, &dir, n)?;

    let uses = u32::try_from(n).map_err(|_| format!("--fanout {n} is too many"))?;
    let server = start_server(None, &["key1"], uses)?;
    let s = &server.server;
    let fs = FanoutSetup {
        dir: dir.clone(),
        env: server.env.clone(),
        openssl: openssl.to_path_buf(),
        pkcs11_tool: find_tool("pkcs11-tool", "opensc")?,
        module: paths.module.clone(),
        provider: paths.profile_dir.join("libkeyserver.so"),
        engine: engine.to_path_buf(),
        keyid: "key1".into(),
        rsa: true,
        certificate: s.data_dir().join("keys/key1.cert.pem"),
    };
    let held = prepare(&fs, n)?;
    let probe = s.stats();
    let before = s.stats();
    let run = held.release()?;
    let after = s.stats();
    let d = |k: &str| {
        counter(&after, k) - counter(&before, k) - (counter(&before, k) - counter(&probe, k))
    };
    let failures = run.failures();
    let unverified = run.unverified(&fs)?;
    let op = server
        .env
        .iter()
        .find(|(k, _)| k == "KSC_OPERATION_ID")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let status = s.operation(&op);
    let uses_after = status["keyusagerestrictions"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["keyid"] == "key1"))
        .and_then(|r| r["usagecount"].as_i64())
        .unwrap_or(-1);
    let wall = run.wall.as_secs_f64();
    let per_sig = |k: &str| d(k) as f64 / n as f64;
    Ok(json!({
        "processes": n,
        "key": "key1",
        "key_type": "RSA-2048",
        "tools": "openssl -provider keyserver, pkcs11-tool --sign, libp11 engine (in turn)",
        "wall_s": wall,
        "signatures_per_second": n as f64 / wall,
        "local_wall_s": local_wall,
        "wall_ratio_to_local": ratio(wall, local_wall),
        "failures": failures.len(),
        "failure_messages": failures.iter().take(5).collect::<Vec<_>>(),
        "unverified": unverified.len(),
        "uses_after": uses_after,
        "requests_per_signature": per_sig("requests"),
        "tls_handshakes_per_signature": per_sig("tls_handshakes"),
        "sign_orders": d("signorders"),
        "tokens_issued": d("tokens"),
        "max_sign_orders_in_flight": counter(&after, "signorders_max_in_flight"),
    }))
}
