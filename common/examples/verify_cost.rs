//! The cost of one local verification, AWS-LC path against the pure-Rust path, for every key
//! type and scheme: `cargo run --release -p ks-common --example verify_cost` prints µs per
//! verification (median of 5 timed rounds). `verify_cost CASE fast|pure N` verifies one case N
//! times and nothing else, for an instruction count under valgrind:
//! `valgrind --tool=callgrind target/release/examples/verify_cost 'P-256 SHA-256' fast 100`
//! (run it with N and 2N; the difference over N is the per-verification count).
//!
//! The signatures are made with the dev KeyServer's keys (its key cache under target/).

use std::time::Instant;

use ks_common::keys::PublicKey;
use ks_common::sign::{EcdsaFormat, SignRequest};
use ks_common::verify::{verify, verify_pure_rust};
use ks_common::{hash, HashAlg};
use ks_devserver::keys::{Algorithm, HashAlg as DevHash, KeyCache};

struct Case {
    name: String,
    key: PublicKey,
    request: SignRequest,
    signature: Vec<u8>,
}

/// Every case, or with `only` the ones of that key (no signing for the others).
fn cases(only: Option<&str>) -> Result<Vec<Case>, String> {
    let wanted = |prefix: &str| only.is_none_or(|name| name.starts_with(prefix));
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ks-devserver-keycache");
    let cache = KeyCache::new(Some(dir));
    let msg = b"verify_cost";
    let public = |k: &ks_devserver::keys::PrivateKey| -> Result<PublicKey, String> {
        PublicKey::from_spki_der(&k.spki_der()?).map_err(|e| e.to_string())
    };
    let mut out = Vec::new();
    for bits in [2048u32, 3072, 4096] {
        if !wanted(&format!("RSA-{bits} ")) {
            continue;
        }
        let sk = cache.get(Algorithm::Rsa(bits), 0)?;
        let key = public(&sk)?;
        let digest = hash::digest(HashAlg::Sha256, msg);
        let di = hash::digest_info(HashAlg::Sha256, &digest).map_err(|e| e.to_string())?;
        out.push(Case {
            name: format!("RSA-{bits} PKCS#1 SHA-256"),
            key: key.clone(),
            request: SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: digest.clone(),
            },
            signature: sk.sign_pkcs1_digest_info(&di)?,
        });
        let max = sk.max_pss_salt(DevHash::Sha256).ok_or("no PSS salt")?;
        for (label, salt) in [("0", 0), ("32 (digest)", 32), ("max", max)] {
            out.push(Case {
                name: format!("RSA-{bits} PSS SHA-256 salt {label}"),
                key: key.clone(),
                request: SignRequest::RsaPss {
                    hash: HashAlg::Sha256,
                    salt_len: salt,
                    digest: digest.clone(),
                },
                signature: sk.sign_pss(DevHash::Sha256, salt, &digest)?,
            });
        }
    }
    for (alg, name, h) in [
        (Algorithm::EcP256, "P-256 SHA-256", HashAlg::Sha256),
        (Algorithm::EcP384, "P-384 SHA-384", HashAlg::Sha384),
        (Algorithm::EcP521, "P-521 SHA-512", HashAlg::Sha512),
    ] {
        if !wanted(name) {
            continue;
        }
        let sk = cache.get(alg, 0)?;
        let digest = hash::digest(h, msg);
        let (rs, _der) = sk.sign_ecdsa(&digest)?;
        out.push(Case {
            name: name.to_string(),
            key: public(&sk)?,
            request: SignRequest::Ecdsa {
                digest,
                format: EcdsaFormat::P1363,
            },
            signature: rs,
        });
    }
    Ok(out)
}

fn run(case: &Case, fast: bool, n: usize) -> Result<(), String> {
    for _ in 0..n {
        let r = if fast {
            verify(&case.key, &case.request, &case.signature)
        } else {
            verify_pure_rust(&case.key, &case.request, &case.signature)
        };
        r.map_err(|e| format!("{}: {e}", case.name))?;
    }
    Ok(())
}

/// Median µs per verification over 5 rounds of `n`.
fn time(case: &Case, fast: bool, n: usize) -> Result<f64, String> {
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        run(case, fast, n)?;
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[2])
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [name, path, n] = args.as_slice() {
        let cases = cases(Some(name))?;
        let case = cases
            .iter()
            .find(|c| c.name == *name)
            .ok_or_else(|| format!("no case {name:?}"))?;
        let n: usize = n.parse().map_err(|e| format!("N: {e}"))?;
        return run(case, path == "fast", n);
    }
    let cases = cases(None)?;
    println!("| verification | AWS-LC µs | pure Rust µs | × faster |");
    println!("|---|---|---|---|");
    for case in &cases {
        // Warm-up: the first call parses and caches the key.
        run(case, true, 1)?;
        let fast = time(case, true, 200)?;
        let pure = time(case, false, 20)?;
        println!(
            "| {} | {fast:.1} | {pure:.1} | {:.1} |",
            case.name,
            pure / fast
        );
    }
    // What streaming the 1 MiB of the per-process benchmark through our hasher costs, against
    // AWS-LC's SHA-256 on the same bytes (both pick the CPU's SHA extensions when present).
    let data = vec![0x5au8; 1 << 20];
    let ours = median_ms(|| {
        std::hint::black_box(hash::digest(HashAlg::Sha256, &data));
    });
    let lc = median_ms(|| {
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data));
    });
    println!("\nSHA-256 of 1 MiB: ks_common::hash (sha2) {ours:.2} ms, AWS-LC {lc:.2} ms");
    Ok(())
}

/// Median ms of 9 calls.
fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[4]
}
