//! Resident set size over a long run in one process (issue 14, item 6): does
//! memory stay flat once warmed up?

use std::time::Instant;

use serde_json::{json, Value};

/// This process's resident set size now, in KiB (`VmRSS` of /proc/self/status).
pub fn current_rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("read /proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_string())
}

/// Calls `sign` `warmup` times, samples RSS ("first"), then `count` more
/// times sampling every tenth of the way; "last" is the final sample.
pub fn track(
    count: usize,
    warmup: usize,
    mut sign: impl FnMut() -> Result<(), String>,
) -> Result<Value, String> {
    for _ in 0..warmup {
        sign()?;
    }
    let first = current_rss_kib()?;
    let step = (count / 10).max(1);
    let mut samples = vec![json!({ "signatures": 0, "rss_kib": first })];
    let started = Instant::now();
    for i in 1..=count {
        sign()?;
        if i % step == 0 || i == count {
            samples.push(json!({ "signatures": i, "rss_kib": current_rss_kib()? }));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let last = current_rss_kib()?;
    let max = samples
        .iter()
        .filter_map(|s| s["rss_kib"].as_u64())
        .max()
        .unwrap_or(last);
    Ok(json!({
        "signatures": count,
        "warmup_signatures": warmup,
        "first_rss_kib": first,
        "last_rss_kib": last,
        "max_rss_kib": max,
        "growth_kib": last as i64 - first as i64,
        "seconds": elapsed,
        "per_second": count as f64 / elapsed,
        "samples": samples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_and_a_run_is_sampled_every_tenth() {
        assert!(current_rss_kib().expect("VmRSS") > 0);
        let mut calls = 0;
        let v = track(20, 3, || {
            calls += 1;
            Ok(())
        })
        .expect("tracked");
        assert_eq!(calls, 23);
        assert_eq!(v["samples"].as_array().map(Vec::len), Some(11));
        assert_eq!(v["signatures"], 20);
    }

    #[test]
    fn a_failing_signature_stops_the_run() {
        let mut calls = 0;
        let r = track(10, 1, || {
            calls += 1;
            if calls == 5 {
                Err("refused".into())
            } else {
                Ok(())
            }
        });
        assert_eq!(r.err().as_deref(), Some("refused"));
        assert_eq!(calls, 5);
    }
}
