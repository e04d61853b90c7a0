//! Figure 6: RSS over many signatures in one process (issue 14, item 6),
//! through the PKCS#11 module and through the provider.

use std::path::Path;

use serde_json::{json, Value};

use super::process::child_json;
use super::setup::{base_command, progress, Paths, Server};

/// The key the memory runs sign with: P-256, the faster of the two on the
/// dev KeyServer, so 100 000 signatures fit in the run.
pub(super) const MEMORY_KEY: (&str, bool, &str) = ("key2", false, "EC P-256");

/// Signatures before the first RSS sample.
pub(super) fn warmup(count: usize) -> usize {
    (count / 20).clamp(1, 1000)
}

pub(super) fn memory(
    paths: &Paths,
    server: &Server,
    exe: &Path,
    count: usize,
) -> Result<Vec<Value>, String> {
    let (keyid, rsa, name) = MEMORY_KEY;
    let mut rows = Vec::new();
    for via in ["pkcs11", "provider"] {
        progress(&format!("memory: {count} signatures through {via}"));
        let (out, child) = child_json(
            base_command(exe, server, paths)
                .args(["memory", "--via", via, "--key", keyid, "--rsa"])
                .arg(if rsa { "1" } else { "0" })
                .args(["--count", &count.to_string()])
                .args(["--warmup", &warmup(count).to_string()]),
        )?;
        let kib = |k: &str| out[k].as_i64().unwrap_or(-1);
        rows.push(json!({
            "via": via,
            "key": keyid,
            "key_type": name,
            "signatures": count,
            "warmup_signatures": out["warmup_signatures"],
            "first_rss_mib": kib("first_rss_kib") as f64 / 1024.0,
            "last_rss_mib": kib("last_rss_kib") as f64 / 1024.0,
            "max_rss_mib": kib("max_rss_kib") as f64 / 1024.0,
            "growth_kib": kib("growth_kib"),
            "last_over_first": crate::measure::ratio(kib("last_rss_kib") as f64, kib("first_rss_kib") as f64),
            "peak_rss_mib_wait4": child.max_rss_kib as f64 / 1024.0,
            "per_second": out["per_second"],
            "samples": out["samples"],
        }));
    }
    Ok(rows)
}
