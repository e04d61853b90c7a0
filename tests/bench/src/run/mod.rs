//! The driver: starts the dev KeyServer, runs every figure, then reports.
//!
//! [`setup`] finds the binaries and starts the server, [`process`], [`batch`],
//! [`local`], [`fanout`] and [`memory`] measure, [`report`] judges the targets, prints the table and
//! writes results.json.

mod batch;
mod fanout;
mod ksc_batch;
mod local;
mod memory;
mod process;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use setup::{
    find_tool, libp11_engine, loadavg, machine, paths, progress, setup_files, start_server,
};

/// Signatures per batch run by default: 2 000 (issue 8). Three runs of each of
/// the twelve batch configurations stay well inside the ten-minute budget on
/// two cores (see README.md for the measured total).
const DEFAULT_BATCH: usize = 2000;
const DEFAULT_RUNS: usize = 5;
const QUICK_BATCH: usize = 200;
const QUICK_RUNS: usize = 2;
/// Cold-start servers: the six default keys, and 200 keys.
const MANY_KEYS: usize = 200;

/// The two key types of the issue: (keyid, RSA?, name, openssl genpkey args).
const KEYS: [(&str, bool, &str); 2] = [("key1", true, "RSA-2048"), ("key2", false, "EC P-256")];
/// Processes released at once in the fan-out row (issue 14: 200).
const DEFAULT_FANOUT: usize = 200;
const QUICK_FANOUT: usize = 60;
/// Signatures per memory run (issue 14: 100 000).
const DEFAULT_MEMORY: usize = 100_000;
const QUICK_MEMORY: usize = 5_000;

/// What `ks-bench run` was asked for; `None` takes the default (or the quick one).
pub struct Options {
    /// Fewer signatures and runs: a smoke run.
    pub quick: bool,
    /// Signatures per batch run.
    pub batch: Option<usize>,
    /// Runs per per-process / cold-start figure.
    pub runs: Option<usize>,
    /// Processes released at once in the fan-out row.
    pub fanout: Option<usize>,
    /// Signatures per memory run.
    pub memory: Option<usize>,
    /// Where results.json goes.
    pub out: Option<PathBuf>,
}

/// `ks-bench run`.
pub fn run(options: Options) -> Result<(), String> {
    let Options {
        quick,
        batch,
        runs,
        fanout: fanout_n,
        memory: memory_n,
        out,
    } = options;
    let fanout_n = fanout_n.unwrap_or(if quick { QUICK_FANOUT } else { DEFAULT_FANOUT });
    let memory_n = memory_n.unwrap_or(if quick { QUICK_MEMORY } else { DEFAULT_MEMORY });
    let started = Instant::now();
    let paths = paths()?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let openssl = find_tool("openssl", "openssl")?;
    let engine = libp11_engine()?;
    let count = batch.unwrap_or(if quick { QUICK_BATCH } else { DEFAULT_BATCH });
    let runs = runs.unwrap_or(if quick { QUICK_RUNS } else { DEFAULT_RUNS });
    let batch_runs = if quick { 1 } else { 3.min(runs) };
    // The servers' data directories live under <target>/bench, not /tmp.
    let tmp = paths.bench_dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let _ = tempfile::env::override_temp_dir(&tmp);
    std::env::set_var("KS_DEVSERVER_BIN", paths.profile_dir.join("ks-devserver"));
    let machine = machine();

    progress("starting the dev KeyServer (6 keys)");
    let memory_uses = 2 * (memory_n + memory::warmup(memory_n));
    let ksc_uses = ksc_batch::KSC_FILES * (batch_runs + 1);
    let uses = u32::try_from(count * 20 * batch_runs + memory_uses + ksc_uses + 10_000)
        .unwrap_or(u32::MAX);
    let server = start_server(None, &["key1", "key2"], uses)?;
    let setup = setup_files(&paths, &server, &openssl, &engine)?;

    progress("figure 4: server-side signing");
    let server_rows = local::server_side(
        server.server.data_dir(),
        if quick { 0.3 } else { 1.0 },
        if quick { 1 } else { 3 },
    )?;
    let verify_rows = local::client_verify(
        server.server.data_dir(),
        if quick { 0.3 } else { 1.0 },
        if quick { 1 } else { 3 },
    )?;
    progress("figure 1: per process");
    let per_proc = process::per_process(&paths, &server, &setup, &openssl, runs)?;
    progress(&format!("figure 2: batches of {count} signatures"));
    let batch_rows = batch::batches(&paths, &server, &exe, count, batch_runs)?;
    let ksc_files = if quick {
        ksc_batch::KSC_FILES / 5
    } else {
        ksc_batch::KSC_FILES
    };
    progress(&format!("figure 2b: ksc sign over {ksc_files} files"));
    let ksc_row = ksc_batch::ksc_batch(&paths, &server, ksc_files, batch_runs, &batch_rows)?;
    progress(&format!("figure 6: RSS over {memory_n} signatures"));
    let memory_rows = memory::memory(&paths, &server, &exe, memory_n)?;
    progress("figure 3: cold start, 6 keys");
    let mut cold = vec![process::cold_start(&paths, &server, &exe, 6, runs)?];
    drop(server);
    progress(&format!("figure 3: cold start, {MANY_KEYS} keys"));
    let many = start_server(
        Some(format!(
            "[extra_keys]\ncount = {}\nalgorithm = \"EC-P256\"\n",
            MANY_KEYS - 6
        )),
        &["key1"],
        1000,
    )?;
    cold.push(process::cold_start(&paths, &many, &exe, MANY_KEYS, runs)?);
    drop(many);
    progress(&format!("figure 5: fan-out of {fanout_n} processes"));
    let fanout_row = fanout::fanout(&paths, &setup, &openssl, &engine, fanout_n)?;

    let targets = report::targets(&per_proc, &batch_rows, &cold, &fanout_row, &memory_rows);
    let out = out.unwrap_or_else(|| paths.bench_dir.join("results.json"));
    let mut machine = machine;
    machine["loadavg_end"] = json!(loadavg());
    let results = json!({
        "machine": machine,
        "config": {
            "batch_signatures": count,
            "runs": runs,
            "batch_runs": batch_runs,
            "fanout_processes": fanout_n,
            "memory_signatures": memory_n,
            "quick": quick,
            "data_file_bytes": 1 << 20,
            "statistic": "median after one warm-up",
        },
        "per_process": per_proc,
        "batch": batch_rows,
        "ksc_batch": ksc_row,
        "cold_start": cold,
        "fanout": fanout_row,
        "memory": memory_rows,
        "server": server_rows,
        "client_verify": verify_rows,
        "targets": targets,
        "total_seconds": started.elapsed().as_secs_f64(),
        "output": out.display().to_string(),
    });
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&out, text + "\n").map_err(|e| format!("write {}: {e}", out.display()))?;
    report::print_table(&results);
    Ok(())
}
