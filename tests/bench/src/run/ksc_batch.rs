//! Figure 2b: `ksc sign` over many files in one process, against the floor.

use serde_json::{json, Value};

use crate::measure::{median, ratio, run_child};

use super::setup::{base_command, counters, delta, Paths, Server};

/// Files per `ksc sign` batch run (the pipeline case).
pub(super) const KSC_FILES: usize = 1000;
/// Workers of the `ksc sign` batch (the floor row it is compared with has as many threads).
const KSC_JOBS: usize = 4;

/// Figure 2b: `ksc sign --in DIR --out-dir DIR --jobs 4` over `files` distinct small files
/// (fresh contents per run, so the server's requestid replay never answers for it): files
/// per second and the ratio to the floor's 4-thread rate for key1.
pub(super) fn ksc_batch(
    paths: &Paths,
    server: &Server,
    files: usize,
    runs: usize,
    batch_rows: &[Value],
) -> Result<Value, String> {
    let ksc = paths.profile_dir.join("ksc");
    let mut walls = Vec::new();
    let (mut handshakes, mut sign_orders) = (0, 0);
    for run in 0..=runs {
        let dir = paths.bench_dir.join(format!("ksc-batch-{run}"));
        let (input, out) = (dir.join("in"), dir.join("out"));
        for d in [&input, &out] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        for i in 0..files {
            let f = input.join(format!("file-{i:05}.bin"));
            std::fs::write(
                &f,
                format!("ks-bench ksc batch {} {run} {i}", std::process::id()),
            )
            .map_err(|e| format!("write {}: {e}", f.display()))?;
        }
        let before = counters(&server.server);
        let r = run_child(
            base_command(&ksc, server, paths)
                .args(["sign", "--key", "key1", "--in"])
                .arg(&input)
                .arg("--out-dir")
                .arg(&out)
                .args(["--jobs", &KSC_JOBS.to_string()]),
        )?;
        let d = delta(counters(&server.server), before, [0; 3]);
        let _ = std::fs::remove_dir_all(&dir);
        // Run 0 is the warm-up.
        if run > 0 {
            walls.push(r.wall.as_secs_f64());
            handshakes = handshakes.max(d[1]);
            sign_orders = sign_orders.max(d[2]);
        }
    }
    let wall = median(&walls);
    let per_second = ratio(files as f64, wall);
    let floor = batch_rows
        .iter()
        .find(|b| b["via"] == "floor" && b["key"] == "key1" && b["threads"] == KSC_JOBS)
        .and_then(|b| b["per_second"].as_f64())
        .unwrap_or(0.0);
    Ok(json!({
        "key": "key1",
        "files": files,
        "jobs": KSC_JOBS,
        "wall_s": wall,
        "wall_s_runs": walls,
        "files_per_second": per_second,
        "ratio_to_floor": ratio(per_second, floor),
        "sign_orders": sign_orders,
        "tls_handshakes": handshakes,
    }))
}
