//! Figure 2: batches of signatures in one process, against the floor.

use std::path::Path;

use serde_json::{json, Value};

use crate::measure::{median, ms, ratio};

use super::process::{child_json, server_cpu_ms};
use super::setup::{base_command, counters, delta, progress, Paths, Server};
use super::KEYS;

/// Figure 2: batches of `count` signatures in one process.
pub(super) fn batches(
    paths: &Paths,
    server: &Server,
    exe: &Path,
    count: usize,
    runs: usize,
) -> Result<Vec<Value>, String> {
    let vias = ["floor", "pkcs11", "provider"];
    let threads = [1usize, 4];
    type Samples = (Vec<f64>, Vec<[i64; 3]>, Vec<f64>, Vec<f64>);
    let mut rates: Vec<((usize, &str, usize), Samples)> = Vec::new();
    for k in 0..KEYS.len() {
        for via in vias {
            for t in threads {
                rates.push(((k, via, t), Default::default()));
            }
        }
    }
    let overhead = {
        let a = counters(&server.server);
        delta(counters(&server.server), a, [0; 3])
    };
    for run in 0..runs {
        progress(&format!("batches: run {}/{runs}", run + 1));
        for ((k, via, t), (v, nets, client_cpu, server_cpu)) in rates.iter_mut() {
            let (keyid, rsa, _) = KEYS[*k];
            let before = counters(&server.server);
            let cpu_before = server_cpu_ms(&server.server);
            let (out, child) = child_json(
                base_command(exe, server, paths)
                    .args(["batch", "--via", via, "--key", keyid, "--rsa"])
                    .arg(if rsa { "1" } else { "0" })
                    .args(["--count", &count.to_string(), "--threads", &t.to_string()]),
            )?;
            let after = counters(&server.server);
            let cpu_after = server_cpu_ms(&server.server);
            v.push(out["per_second"].as_f64().unwrap_or(0.0));
            let d = delta(after, before, overhead);
            nets.push(d);
            // Per signature, warm-up signatures included (they are in the CPU time too).
            let signed = d[2].max(1) as f64;
            client_cpu.push(ms(child.cpu) / signed);
            server_cpu.push((cpu_after - cpu_before) / signed);
        }
    }
    let floor_of = |k: usize, t: usize| {
        rates
            .iter()
            .find(|((kk, via, tt), _)| *kk == k && *via == "floor" && *tt == t)
            .map_or(0.0, |(_, s)| median(&s.0))
    };
    let one_thread = |k: usize, via: &str| {
        rates
            .iter()
            .find(|((kk, vv, tt), _)| *kk == k && *vv == via && *tt == 1)
            .map_or(0.0, |(_, s)| median(&s.0))
    };
    Ok(rates
        .iter()
        .map(|((k, via, t), (v, nets, client_cpu, server_cpu))| {
            let (keyid, _, name) = KEYS[*k];
            let per_second = median(v);
            json!({
                "key": keyid,
                "key_type": name,
                "via": via,
                "threads": t,
                "signatures": count,
                "per_second": per_second,
                "per_second_runs": v,
                "ratio_to_floor": ratio(per_second, floor_of(*k, *t)),
                "scaling_vs_1_thread": ratio(per_second, one_thread(*k, via)),
                "tls_handshakes": nets.iter().map(|d| d[1]).max().unwrap_or(0),
                "http_requests": nets.iter().map(|d| d[0]).max().unwrap_or(0),
                "client_cpu_ms_per_signature": median(client_cpu),
                "server_cpu_ms_per_signature": median(server_cpu),
            })
        })
        .collect())
}
