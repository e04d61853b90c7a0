//! `ks-bench`: what a signature costs, per process and per batch, against
//! baselines measured in the same run (see README.md and `scripts/bench.sh`).
//!
//! `ks-bench run` is the driver: it starts the dev KeyServer (release build,
//! data under `<target>/bench`), runs every figure, prints a table and writes
//! `<target>/bench/results.json`. The other subcommands are the children it
//! measures in fresh processes (`batch`, `cold`).

mod floor;
mod measure;
mod pkcs11;
mod provider;
mod rss;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use sha2::Digest;

/// DER prefix of a SHA-256 DigestInfo.
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The DigestInfo of a SHA-256 digest (what CKM_RSA_PKCS and the RSA sign order take).
pub fn digest_info_sha256(digest: &[u8]) -> Vec<u8> {
    let mut v = SHA256_DIGEST_INFO_PREFIX.to_vec();
    v.extend_from_slice(digest);
    v
}

/// The message the batches sign (the provider hashes it itself).
pub fn bench_message() -> Vec<u8> {
    b"ks-bench: one firmware image's worth of signing, many times over\n".to_vec()
}

/// SHA-256 of [`bench_message`]: what the PKCS#11 batches and the floor sign.
pub fn bench_digest() -> Vec<u8> {
    sha2::Sha256::digest(bench_message()).to_vec()
}

const USAGE: &str = "\
usage: ks-bench run [--quick] [--batch N] [--runs N] [--fanout N] [--memory N] [--out FILE]
       ks-bench batch --via floor|pkcs11|provider --key KEYID --rsa 0|1 --count N --threads N
       ks-bench memory --via pkcs11|provider --key KEYID --rsa 0|1 --count N --warmup N
       ks-bench cold --key KEYID --rsa 0|1

`run` (what scripts/bench.sh calls) starts the dev KeyServer and measures everything;
--fanout N processes at once (default 200), --memory N signatures per RSS run (default 100000).
`batch`, `memory` and `cold` are the child processes it measures; they read KSC_API_SERVER,
KSC_CA_FILE, KSC_ID_TOKEN, KSC_OPERATION_ID and KS_BENCH_MODULE / KS_BENCH_MODULES_DIR.";

/// `--name value` pairs after the subcommand.
struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
    fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name)
            .ok_or_else(|| format!("{name} is required\n{USAGE}"))
    }
    fn number(&self, name: &str) -> Result<Option<usize>, String> {
        self.value(name)
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} wants a positive number, not {v:?}"))
            })
            .transpose()
    }
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{name} is not set (ks-bench run sets it for its children)"))
}

fn env_str(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("{name} is not set (ks-bench run sets it for its children)"))
}

fn child_batch(args: &Args) -> Result<serde_json::Value, String> {
    let key = args.required("--key")?;
    let rsa = args.required("--rsa")? == "1";
    let count = args.number("--count")?.unwrap_or(2000);
    let threads = args.number("--threads")?.unwrap_or(1);
    match args.required("--via")? {
        "pkcs11" => pkcs11::batch(&env_path("KS_BENCH_MODULE")?, key, rsa, count, threads),
        "provider" => provider::batch(&env_path("KS_BENCH_MODULES_DIR")?, key, count, threads),
        "floor" => floor_batch(key, rsa, count, threads),
        other => Err(format!("unknown --via {other:?}\n{USAGE}")),
    }
}

fn child_memory(args: &Args) -> Result<serde_json::Value, String> {
    let key = args.required("--key")?;
    let rsa = args.required("--rsa")? == "1";
    let count = args.number("--count")?.unwrap_or(100_000);
    let warmup = args.number("--warmup")?.unwrap_or(1000);
    match args.required("--via")? {
        "pkcs11" => pkcs11::memory(&env_path("KS_BENCH_MODULE")?, key, rsa, count, warmup),
        "provider" => provider::memory(&env_path("KS_BENCH_MODULES_DIR")?, key, count, warmup),
        other => Err(format!("unknown --via {other:?}\n{USAGE}")),
    }
}

fn floor_batch(
    key: &str,
    rsa: bool,
    count: usize,
    threads: usize,
) -> Result<serde_json::Value, String> {
    use std::sync::{Arc, Barrier};
    let config = floor::tls_config(&env_path("KSC_CA_FILE")?)?;
    let api = env_str("KSC_API_SERVER")?;
    let token = env_str("KSC_ID_TOKEN")?;
    let op = env_str("KSC_OPERATION_ID")?;
    let digest = bench_digest();
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let share = count / threads + usize::from(t < count % threads);
        let (config, api, token, op, digest, key) = (
            config.clone(),
            api.clone(),
            token.clone(),
            op.clone(),
            digest.clone(),
            key.to_string(),
        );
        let barrier = barrier.clone();
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            // Connect and warm up (one sign order) before the clock starts.
            let warm = floor::Connection::open(&config, &api).and_then(|mut c| {
                floor::sign_loop(&mut c, &token, &op, &key, rsa, &digest, 1).map(|_| c)
            });
            barrier.wait();
            let mut conn = warm?;
            floor::sign_loop(&mut conn, &token, &op, &key, rsa, &digest, share)
        }));
    }
    barrier.wait();
    let started = std::time::Instant::now();
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a floor thread panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(serde_json::json!({
        "signatures": count,
        "threads": threads,
        "seconds": elapsed.as_secs_f64(),
        "per_second": count as f64 / elapsed.as_secs_f64(),
    }))
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let sub = argv.next().unwrap_or_default();
    let args = Args(argv.collect());
    let result = match sub.as_str() {
        "run" => args.number("--batch").and_then(|batch| {
            run::run(run::Options {
                quick: args.flag("--quick"),
                batch,
                runs: args.number("--runs")?,
                fanout: args.number("--fanout")?,
                memory: args.number("--memory")?,
                out: args.value("--out").map(PathBuf::from),
            })
        }),
        "memory" => child_memory(&args).map(|v| println!("{v}")),
        "batch" => child_batch(&args).map(|v| println!("{v}")),
        "cold" => args.required("--key").and_then(|key| {
            let rsa = args.value("--rsa") == Some("1");
            pkcs11::cold(&env_path("KS_BENCH_MODULE")?, key, rsa).map(|v| println!("{v}"))
        }),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ks-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_is_the_sha256_der_prefix_and_the_hash() {
        let di = digest_info_sha256(&bench_digest());
        assert_eq!(di.len(), 51);
        assert_eq!(&di[..2], &[0x30, 0x31]);
        assert_eq!(&di[19..], bench_digest().as_slice());
    }

    #[test]
    fn arguments_parse_and_refuse_nonsense() {
        let a = Args(vec!["--count".into(), "12".into(), "--quick".into()]);
        assert_eq!(a.number("--count"), Ok(Some(12)));
        assert!(a.flag("--quick"));
        assert_eq!(a.number("--threads"), Ok(None));
        let bad = Args(vec!["--count".into(), "0".into()]);
        assert!(bad.number("--count").is_err());
        assert!(a.required("--key").is_err());
    }

    #[test]
    fn memory_child_refuses_an_unknown_path_and_a_zero_count() {
        let args = |v: &[&str]| Args(v.iter().map(|s| s.to_string()).collect());
        let e = child_memory(&args(&["--via", "floor", "--key", "key2", "--rsa", "0"]))
            .expect_err("the floor has no memory run");
        assert!(e.contains("unknown --via"), "{e}");
        let e = child_memory(&args(&[
            "--via", "pkcs11", "--key", "key2", "--rsa", "0", "--count", "0",
        ]))
        .expect_err("zero signatures");
        assert!(e.contains("positive number"), "{e}");
        let e = child_memory(&args(&["--via", "pkcs11", "--rsa", "0"])).expect_err("no key");
        assert!(e.contains("--key is required"), "{e}");
    }
}
