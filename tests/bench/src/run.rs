//! The driver: dev KeyServer, every figure, the table and results.json.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ks_devserver::harness::DevServer;
use ks_devserver::keys::{Algorithm, PrivateKey};
use serde_json::{json, Value};

use crate::measure::{median, ms, process_cpu, ratio, run_child, ChildRun};

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

struct Paths {
    profile_dir: PathBuf,
    bench_dir: PathBuf,
    module: PathBuf,
    modules_dir: PathBuf,
}

fn paths() -> Result<Paths, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .ok_or("ks-bench has no parent directory")?
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .ok_or("ks-bench is not in <target>/<profile>/")?;
    let bench_dir = target_dir.join("bench");
    let module = profile_dir.join("libpkcs11ks.so");
    let provider = profile_dir.join("libkeyserver.so");
    let devserver = profile_dir.join("ks-devserver");
    let ksc = profile_dir.join("ksc");
    for (f, pkg) in [
        (&module, "ks-pkcs11"),
        (&provider, "ks-provider"),
        (&devserver, "ks-devserver"),
        (&ksc, "ks-cli"),
    ] {
        if !f.is_file() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p {pkg}` (scripts/bench.sh does)",
                f.display()
            ));
        }
    }
    let modules_dir = bench_dir.join("modules");
    std::fs::create_dir_all(&modules_dir)
        .map_err(|e| format!("create {}: {e}", modules_dir.display()))?;
    // OpenSSL loads `-provider keyserver` as keyserver.so (no lib prefix).
    let link = modules_dir.join("keyserver.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&provider, &link)
        .map_err(|e| format!("link {}: {e}", link.display()))?;
    Ok(Paths {
        profile_dir,
        bench_dir,
        module,
        modules_dir,
    })
}

fn find_tool(name: &str, apt: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{name}` is not installed: apt-get install {apt}"))
}

fn libp11_engine() -> Result<PathBuf, String> {
    [
        "/usr/lib/x86_64-linux-gnu/engines-3/libpkcs11.so",
        "/usr/lib/aarch64-linux-gnu/engines-3/libpkcs11.so",
        "/usr/lib64/engines-3/libpkcs11.so",
        "/usr/lib/engines-3/libpkcs11.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .ok_or_else(|| {
        "libp11's engine libpkcs11.so is not installed: apt-get install libengine-pkcs11-openssl"
            .to_string()
    })
}

/// A dev KeyServer with an approved operation of many uses for `keys`.
struct Server {
    server: DevServer,
    env: Vec<(String, String)>,
}

fn start_server(config_toml: Option<String>, keys: &[&str], uses: u32) -> Result<Server, String> {
    let mut b = DevServer::builder().token_lifetime(Duration::from_secs(4 * 3600));
    if let Some(t) = config_toml {
        b = b.config_toml(t);
    }
    // The harness panics with a clear message when the server cannot start.
    let server = std::panic::catch_unwind(move || b.start())
        .map_err(|_| "the dev KeyServer did not start (message above)".to_string())?;
    let restrictions: Vec<(&str, u32)> = keys.iter().map(|k| (*k, uses)).collect();
    let op = server.create_operation("orderer-client", &restrictions, 3 * 3600 * 1000);
    if server.operation(&op)["status"] != "approved" {
        server.approve("adminclient", &op);
    }
    let status = server.operation(&op);
    if status["status"] != "approved" {
        return Err(format!("operation {op} is not approved: {status}"));
    }
    let token = server.token("orderer-client");
    let mut env = server.client_env(&token, &op);
    env.push((
        "KSC_OPERATION_DESCRIPTION".into(),
        "ks-bench signature".into(),
    ));
    Ok(Server { server, env })
}

/// (requests, tls_handshakes, signorders) now.
fn counters(s: &DevServer) -> [i64; 3] {
    let v = s.stats();
    let g = |k: &str| v[k].as_i64().unwrap_or(0);
    [g("requests"), g("tls_handshakes"), g("signorders")]
}

fn delta(after: [i64; 3], before: [i64; 3], overhead: [i64; 3]) -> [i64; 3] {
    [0, 1, 2].map(|i| after[i] - before[i] - overhead[i])
}

fn base_command(program: &Path, server: &Server, paths: &Paths) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(&paths.bench_dir)
        .env_remove("OPENSSL_CONF")
        .env_remove("KSC_CONFIG")
        .env_remove("KSC_LOG")
        .env("OPENSSL_MODULES", &paths.modules_dir)
        .env("KS_BENCH_MODULE", &paths.module)
        .env("KS_BENCH_MODULES_DIR", &paths.modules_dir);
    for (k, v) in &server.env {
        cmd.env(k, v);
    }
    cmd
}

fn progress(msg: &str) {
    eprintln!("[ks-bench] {msg}");
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let openssl = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({
        "cpu": model,
        "cpus": cpus,
        "memory_mib": mem_kib / 1024,
        "kernel": kernel.trim(),
        "openssl": openssl,
        "loadavg_start": loadavg(),
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Setup {
    data: PathBuf,
    local_keys: [PathBuf; 2],
    pubkeys: [PathBuf; 2],
    engine_cnf: PathBuf,
}

fn setup_files(
    paths: &Paths,
    server: &Server,
    openssl: &Path,
    engine: &Path,
) -> Result<Setup, String> {
    let dir = &paths.bench_dir;
    // 1 MiB of deterministic, incompressible-looking data.
    let data = dir.join("data-1MiB.bin");
    let mut bytes = Vec::with_capacity(1 << 20);
    let mut x: u32 = 0x1234_5678;
    while bytes.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(&data, &bytes).map_err(|e| format!("write {}: {e}", data.display()))?;
    let gen = |name: &str, args: &[&str]| -> Result<PathBuf, String> {
        let out = dir.join(name);
        let mut cmd = Command::new(openssl);
        cmd.arg("genpkey").args(args).arg("-out").arg(&out);
        run_child(&mut cmd)?;
        Ok(out)
    };
    let rsa = gen(
        "local-rsa2048.pem",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )?;
    let ec = gen(
        "local-p256.pem",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )?;
    let pubkey = |keyid: &str| -> Result<PathBuf, String> {
        let cert = server
            .server
            .data_dir()
            .join(format!("keys/{keyid}.cert.pem"));
        let out = dir.join(format!("{keyid}.pub.pem"));
        let mut cmd = Command::new(openssl);
        cmd.args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&out);
        run_child(&mut cmd)?;
        Ok(out)
    };
    let pubkeys = [pubkey("key1")?, pubkey("key2")?];
    let engine_cnf = dir.join("openssl-engine.cnf");
    let cnf = format!(
        "openssl_conf = openssl_init\n\
         [openssl_init]\n\
         engines = engine_section\n\
         providers = provider_sect\n\
         [provider_sect]\n\
         default = default_sect\n\
         [default_sect]\n\
         activate = 1\n\
         [engine_section]\n\
         pkcs11 = pkcs11_section\n\
         [pkcs11_section]\n\
         engine_id = pkcs11\n\
         dynamic_path = {}\n\
         MODULE_PATH = {}\n\
         init = 0\n",
        engine.display(),
        paths.module.display()
    );
    std::fs::write(&engine_cnf, cnf).map_err(|e| format!("write {}: {e}", engine_cnf.display()))?;
    Ok(Setup {
        data,
        local_keys: [rsa, ec],
        pubkeys,
        engine_cnf,
    })
}

/// Figure 1: one `openssl dgst` per signature.
fn per_process(
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

fn child_json(cmd: &mut Command) -> Result<(Value, ChildRun), String> {
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
fn server_cpu_ms(s: &DevServer) -> f64 {
    process_cpu(s.pid()).map_or(f64::NAN, ms)
}

/// Figure 2: batches of `count` signatures in one process.
fn batches(
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

/// Files per `ksc sign` batch run (the pipeline case).
const KSC_FILES: usize = 1000;
/// Workers of the `ksc sign` batch (the floor row it is compared with has as many threads).
const KSC_JOBS: usize = 4;

/// Figure 2b: `ksc sign --in DIR --out-dir DIR --jobs 4` over `files` distinct small files
/// (fresh contents per run, so the server's requestid replay never answers for it): files
/// per second and the ratio to the floor's 4-thread rate for key1.
fn ksc_batch(
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

/// Figure 3: dlopen → first signature, and C_Initialize alone, in fresh processes.
fn cold_start(
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

/// Beside figure 4: what the client's local verification of one signature
/// costs (ks-common checks every signature the server returns).
fn client_verify(data_dir: &Path, seconds: f64, runs: usize) -> Result<Vec<Value>, String> {
    use ks_common::{EcdsaFormat, KeyEntry, SignRequest};
    let digest = crate::bench_digest();
    let di = crate::digest_info_sha256(&digest);
    let mut rows = Vec::new();
    for (keyid, rsa, name) in KEYS {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).map_err(|e| format!("read {}: {e}", p.display()))
        };
        let cert = read(data_dir.join(format!("keys/{keyid}.cert.pem")))?;
        let entry = KeyEntry::from_pem(keyid, "", &cert).map_err(|e| e.to_string())?;
        let alg = Algorithm::parse(if rsa { "RSA-2048" } else { "EC-P256" })?;
        let key =
            PrivateKey::from_pem(&read(data_dir.join(format!("keys/{keyid}.key.pem")))?, alg)?;
        let (request, sig) = if rsa {
            (
                SignRequest::RsaPkcs1DigestInfo {
                    digest_info: di.clone(),
                },
                key.sign_pkcs1_digest_info(&di)?,
            )
        } else {
            (
                SignRequest::Ecdsa {
                    digest: digest.clone(),
                    format: EcdsaFormat::P1363,
                },
                key.sign_ecdsa(&digest)?.0,
            )
        };
        let mut rates = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed().as_secs_f64() < seconds {
                ks_common::verify::verify(&entry.public_key, &request, &sig)
                    .map_err(|e| e.to_string())?;
                n += 1;
            }
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
        let per_second = median(&rates);
        rows.push(json!({
            "key": keyid,
            "key_type": name,
            "verifications_per_second": per_second,
            "ms_per_verification": 1000.0 / per_second,
        }));
    }
    Ok(rows)
}

/// Figure 4: the dev KeyServer's own signing code, without HTTP.
fn server_side(data_dir: &Path, seconds: f64, runs: usize) -> Result<Vec<Value>, String> {
    let digest = crate::bench_digest();
    let di = crate::digest_info_sha256(&digest);
    let mut rows = Vec::new();
    for (keyid, rsa, name) in KEYS {
        let alg = Algorithm::parse(if rsa { "RSA-2048" } else { "EC-P256" })?;
        let pem_path = data_dir.join(format!("keys/{keyid}.key.pem"));
        let pem = std::fs::read_to_string(&pem_path)
            .map_err(|e| format!("read {}: {e}", pem_path.display()))?;
        let key = std::sync::Arc::new(PrivateKey::from_pem(&pem, alg)?);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        for threads in [1, cpus] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let key = key.clone();
                        let (di, digest) = (di.clone(), digest.clone());
                        std::thread::spawn(move || -> Result<u64, String> {
                            let start = Instant::now();
                            let mut n = 0u64;
                            while start.elapsed().as_secs_f64() < seconds {
                                if rsa {
                                    key.sign_pkcs1_digest_info(&di)?;
                                } else {
                                    key.sign_ecdsa(&digest)?;
                                }
                                n += 1;
                            }
                            Ok(n)
                        })
                    })
                    .collect();
                let start = Instant::now();
                let mut total = 0u64;
                for h in handles {
                    total += h
                        .join()
                        .map_err(|_| "a signing thread panicked".to_string())??;
                }
                rates.push(total as f64 / start.elapsed().as_secs_f64());
            }
            rows.push(json!({
                "key": keyid,
                "key_type": name,
                "threads": threads,
                "per_second": median(&rates),
                "per_second_runs": rates,
            }));
            if cpus == 1 {
                break;
            }
        }
    }
    Ok(rows)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn target(name: &str, goal: &str, value: String, met: bool) -> Value {
    json!({ "target": name, "goal": goal, "value": value, "met": met })
}

fn targets(per_proc: &[Value], batch: &[Value], cold: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for b in batch
        .iter()
        .filter(|b| b["via"] != "floor" && b["threads"] == 1)
    {
        let r = f(&b["ratio_to_floor"]);
        out.push(target(
            &format!(
                "batch {} {} 1 thread",
                b["via"].as_str().unwrap_or(""),
                b["key_type"].as_str().unwrap_or("")
            ),
            ">= 0.90 of floor",
            format!("{r:.3}"),
            r >= 0.9,
        ));
    }
    for b in batch.iter().filter(|b| b["threads"] == 4) {
        let s = f(&b["scaling_vs_1_thread"]);
        let floor_scaling = batch
            .iter()
            .find(|x| x["via"] == "floor" && x["threads"] == 4 && x["key"] == b["key"])
            .map_or(f64::NAN, |x| f(&x["scaling_vs_1_thread"]));
        if b["via"] == "floor" {
            continue;
        }
        out.push(target(
            &format!(
                "scaling {} {}",
                b["via"].as_str().unwrap_or(""),
                b["key_type"].as_str().unwrap_or("")
            ),
            "4/1 threads >= 0.9 x the floor's",
            format!("{s:.2}x (floor {floor_scaling:.2}x)"),
            s >= 0.9 * floor_scaling,
        ));
    }
    for p in per_proc.iter().filter(|p| p["variant"] != "local") {
        let label = format!(
            "per process {} {}",
            p["variant"].as_str().unwrap_or(""),
            p["key_type"].as_str().unwrap_or("")
        );
        let (h, r) = (
            p["tls_handshakes"].as_i64().unwrap_or(-1),
            p["http_requests"].as_i64().unwrap_or(-1),
        );
        out.push(target(
            &format!("{label}: network"),
            "<= 1 TLS handshake, <= 2 requests",
            format!("{h} handshake(s), {r} request(s)"),
            (0..=1).contains(&h) && (0..=2).contains(&r),
        ));
        let w = f(&p["wall_ratio_to_local"]);
        out.push(target(
            &format!("{label}: wall"),
            "<= 2.0x local",
            format!("{w:.2}x"),
            w <= 2.0,
        ));
        if p["variant"] == "provider" {
            let m = f(&p["rss_over_local_mib"]);
            out.push(target(
                &format!("{label}: RSS overhead"),
                "< 10 MiB over local",
                format!("{m:.1} MiB"),
                m < 10.0,
            ));
        }
    }
    for c in cold {
        let i = f(&c["c_initialize_ms"]);
        out.push(target(
            &format!("C_Initialize, {} keys", c["keys_on_server"]),
            "< 1 ms",
            format!("{i:.3} ms"),
            i < 1.0,
        ));
    }
    out
}

fn print_table(results: &Value) {
    let m = &results["machine"];
    println!();
    println!(
        "ks-bench on {} ({} CPUs, {} MiB), {}, load {} -> {}; {} signatures per batch, median of {} runs",
        m["cpu"].as_str().unwrap_or("?"),
        m["cpus"],
        m["memory_mib"],
        m["openssl"].as_str().unwrap_or("?"),
        m["loadavg_start"].as_str().unwrap_or("?"),
        m["loadavg_end"].as_str().unwrap_or("?"),
        results["config"]["batch_signatures"],
        results["config"]["runs"],
    );
    println!();
    println!("1. Per process: openssl dgst -sha256 of 1 MiB, one signature");
    println!(
        "   {:<9} {:<9} {:>8} {:>8} {:>7} {:>8} {:>10} {:>9} {:>10}",
        "key",
        "path",
        "wall ms",
        "x local",
        "CPU ms",
        "RSS MiB",
        "RSS+local",
        "requests",
        "handshakes"
    );
    for p in results["per_process"].as_array().into_iter().flatten() {
        println!(
            "   {:<9} {:<9} {:>8.1} {:>8.2} {:>7.1} {:>8.1} {:>10.1} {:>9} {:>10}",
            p["key_type"].as_str().unwrap_or(""),
            p["variant"].as_str().unwrap_or(""),
            f(&p["wall_ms"]),
            f(&p["wall_ratio_to_local"]),
            f(&p["cpu_ms"]),
            f(&p["max_rss_mib"]),
            f(&p["rss_over_local_mib"]),
            p["http_requests"].as_i64().unwrap_or(-1),
            p["tls_handshakes"].as_i64().unwrap_or(-1),
        );
    }
    println!();
    println!("2. Batch: signatures per second in one process (floor = keep-alive HTTPS client)");
    println!(
        "   {:<9} {:<9} {:>7} {:>9} {:>8} {:>10} {:>14} {:>14} {:>10}",
        "key",
        "path",
        "threads",
        "sig/s",
        "x floor",
        "x 1 thread",
        "client CPU/sig",
        "server CPU/sig",
        "handshakes"
    );
    for b in results["batch"].as_array().into_iter().flatten() {
        println!(
            "   {:<9} {:<9} {:>7} {:>9.1} {:>8.2} {:>10.2} {:>11.2} ms {:>11.2} ms {:>10}",
            b["key_type"].as_str().unwrap_or(""),
            b["via"].as_str().unwrap_or(""),
            b["threads"].as_i64().unwrap_or(0),
            f(&b["per_second"]),
            f(&b["ratio_to_floor"]),
            f(&b["scaling_vs_1_thread"]),
            f(&b["client_cpu_ms_per_signature"]),
            f(&b["server_cpu_ms_per_signature"]),
            b["tls_handshakes"].as_i64().unwrap_or(-1),
        );
    }
    let k = &results["ksc_batch"];
    println!(
        "   ksc sign --jobs {} over {} files (key1): {:.1} files/s, {:.2} x floor (4 threads), {} sign orders, {} handshakes",
        k["jobs"].as_i64().unwrap_or(0),
        k["files"].as_i64().unwrap_or(0),
        f(&k["files_per_second"]),
        f(&k["ratio_to_floor"]),
        k["sign_orders"].as_i64().unwrap_or(-1),
        k["tls_handshakes"].as_i64().unwrap_or(-1),
    );
    println!();
    println!("3. Cold start through libpkcs11ks.so (key1), fresh process each");
    println!(
        "   {:>5} {:>10} {:>15} {:>14} {:>20}",
        "keys", "dlopen ms", "C_Initialize ms", "key found ms", "first signature ms"
    );
    for c in results["cold_start"].as_array().into_iter().flatten() {
        println!(
            "   {:>5} {:>10.2} {:>15.3} {:>14.1} {:>20.1}",
            c["keys_on_server"].as_i64().unwrap_or(0),
            f(&c["dlopen_ms"]),
            f(&c["c_initialize_ms"]),
            f(&c["key_found_ms"]),
            f(&c["first_signature_ms"]),
        );
    }
    println!();
    println!("4. Server side: the dev KeyServer's signing code alone (no HTTP)");
    println!("   {:<9} {:>7} {:>10}", "key", "threads", "sig/s");
    for s in results["server"].as_array().into_iter().flatten() {
        println!(
            "   {:<9} {:>7} {:>10.1}",
            s["key_type"].as_str().unwrap_or(""),
            s["threads"].as_i64().unwrap_or(0),
            f(&s["per_second"]),
        );
    }
    println!("   client's local verification of one signature (ks-common, in every adapter):");
    for v in results["client_verify"].as_array().into_iter().flatten() {
        println!(
            "   {:<9} {:>10.1}/s = {:.3} ms each",
            v["key_type"].as_str().unwrap_or(""),
            f(&v["verifications_per_second"]),
            f(&v["ms_per_verification"]),
        );
    }
    println!();
    println!("Targets (reported, not asserted)");
    for t in results["targets"].as_array().into_iter().flatten() {
        println!(
            "   [{}] {:<46} {:<36} {}",
            if t["met"] == true { " ok " } else { "MISS" },
            t["target"].as_str().unwrap_or(""),
            t["goal"].as_str().unwrap_or(""),
            t["value"].as_str().unwrap_or(""),
        );
    }
    println!();
    println!(
        "total {:.0} s; written to {}",
        f(&results["total_seconds"]),
        results["output"].as_str().unwrap_or("")
    );
}

/// `ks-bench run`.
pub fn run(
    quick: bool,
    batch: Option<usize>,
    runs: Option<usize>,
    out: Option<PathBuf>,
) -> Result<(), String> {
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
    let uses = u32::try_from(count * 20 * batch_runs + KSC_FILES * (batch_runs + 1) + 10_000)
        .unwrap_or(u32::MAX);
    let server = start_server(None, &["key1", "key2"], uses)?;
    let setup = setup_files(&paths, &server, &openssl, &engine)?;

    progress("figure 4: server-side signing");
    let server_rows = server_side(
        server.server.data_dir(),
        if quick { 0.3 } else { 1.0 },
        if quick { 1 } else { 3 },
    )?;
    let verify_rows = client_verify(
        server.server.data_dir(),
        if quick { 0.3 } else { 1.0 },
        if quick { 1 } else { 3 },
    )?;
    progress("figure 1: per process");
    let per_proc = per_process(&paths, &server, &setup, &openssl, runs)?;
    progress(&format!("figure 2: batches of {count} signatures"));
    let batch_rows = batches(&paths, &server, &exe, count, batch_runs)?;
    let ksc_files = if quick { KSC_FILES / 5 } else { KSC_FILES };
    progress(&format!("figure 2b: ksc sign over {ksc_files} files"));
    let ksc_row = ksc_batch(&paths, &server, ksc_files, batch_runs, &batch_rows)?;
    progress("figure 3: cold start, 6 keys");
    let mut cold = vec![cold_start(&paths, &server, &exe, 6, runs)?];
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
    cold.push(cold_start(&paths, &many, &exe, MANY_KEYS, runs)?);
    drop(many);

    let targets = targets(&per_proc, &batch_rows, &cold);
    let out = out.unwrap_or_else(|| paths.bench_dir.join("results.json"));
    let mut machine = machine;
    machine["loadavg_end"] = json!(loadavg());
    let results = json!({
        "machine": machine,
        "config": {
            "batch_signatures": count,
            "runs": runs,
            "batch_runs": batch_runs,
            "quick": quick,
            "data_file_bytes": 1 << 20,
            "statistic": "median after one warm-up",
        },
        "per_process": per_proc,
        "batch": batch_rows,
        "ksc_batch": ksc_row,
        "cold_start": cold,
        "server": server_rows,
        "client_verify": verify_rows,
        "targets": targets,
        "total_seconds": started.elapsed().as_secs_f64(),
        "output": out.display().to_string(),
    });
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(&out, text + "\n").map_err(|e| format!("write {}: {e}", out.display()))?;
    print_table(&results);
    Ok(())
}
