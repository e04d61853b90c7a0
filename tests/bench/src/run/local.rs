//! Figure 4 and beside it: signing and verification inside this process,
//! without HTTP (the dev KeyServer's signing code, the client's check).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ks_devserver::keys::{Algorithm, PrivateKey};
use serde_json::{json, Value};

use crate::measure::median;

use super::KEYS;

/// Beside figure 4: what the client's local verification of one signature
/// costs (ks-common checks every signature the server returns).
pub(super) fn client_verify(
    data_dir: &Path,
    seconds: f64,
    runs: usize,
) -> Result<Vec<Value>, String> {
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
pub(super) fn server_side(
    data_dir: &Path,
    seconds: f64,
    runs: usize,
) -> Result<Vec<Value>, String> {
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
