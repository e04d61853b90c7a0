//! Set-up: the built binaries and tools, the dev KeyServer with an approved
//! operation, the files every figure signs, and the machine description.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ks_devserver::harness::DevServer;
use serde_json::{json, Value};

use crate::measure::run_child;

pub(super) struct Paths {
    pub(super) profile_dir: PathBuf,
    pub(super) bench_dir: PathBuf,
    pub(super) module: PathBuf,
    pub(super) modules_dir: PathBuf,
}

pub(super) fn paths() -> Result<Paths, String> {
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

pub(super) fn find_tool(name: &str, apt: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{name}` is not installed: apt-get install {apt}"))
}

pub(super) fn libp11_engine() -> Result<PathBuf, String> {
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
pub(super) struct Server {
    pub(super) server: DevServer,
    pub(super) env: Vec<(String, String)>,
}

pub(super) fn start_server(
    config_toml: Option<String>,
    keys: &[&str],
    uses: u32,
) -> Result<Server, String> {
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
pub(super) fn counters(s: &DevServer) -> [i64; 3] {
    let v = s.stats();
    let g = |k: &str| v[k].as_i64().unwrap_or(0);
    [g("requests"), g("tls_handshakes"), g("signorders")]
}

pub(super) fn delta(after: [i64; 3], before: [i64; 3], overhead: [i64; 3]) -> [i64; 3] {
    [0, 1, 2].map(|i| after[i] - before[i] - overhead[i])
}

pub(super) fn base_command(program: &Path, server: &Server, paths: &Paths) -> Command {
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

pub(super) fn progress(msg: &str) {
    eprintln!("[ks-bench] {msg}");
}

pub(super) fn machine() -> Value {
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

pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(super) struct Setup {
    pub(super) data: PathBuf,
    pub(super) local_keys: [PathBuf; 2],
    pub(super) pubkeys: [PathBuf; 2],
    pub(super) engine_cnf: PathBuf,
}

pub(super) fn setup_files(
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
