//! The configured key set, loaded from (or created in) `<data>/keys/`, each
//! key with its certificate from the signing CA.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::certs::{cert_der, cert_pem, cert_spki, SigningCa};
use crate::config::FileConfig;
use crate::keys::{write_atomic, Algorithm, KeyCache, PrivateKey};

/// What the configuration says about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Key id.
    pub id: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Required approvals.
    pub approvers: u32,
    /// `keyinfo` text.
    pub info: String,
}

/// The default keys of the contract.
pub fn default_specs() -> Vec<KeySpec> {
    [
        ("key1", Algorithm::Rsa(2048), 0),
        ("key2", Algorithm::EcP256, 1),
        ("key3", Algorithm::Rsa(3072), 2),
        ("key4", Algorithm::EcP384, 1),
        ("key5", Algorithm::EcP521, 0),
        ("key6", Algorithm::Rsa(4096), 0),
    ]
    .into_iter()
    .map(|(id, algorithm, approvers)| KeySpec {
        id: id.into(),
        algorithm,
        approvers,
        info: default_info(id, algorithm, approvers),
    })
    .collect()
}

fn default_info(id: &str, alg: Algorithm, approvers: u32) -> String {
    format!("{id}: {alg}, {approvers} approver(s) (ks-devserver)")
}

fn valid_keyid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.')
}

/// The key specs from the file (or the defaults), plus any extra keys.
pub fn specs_from_config(cfg: &FileConfig) -> Result<Vec<KeySpec>, String> {
    let mut specs = match &cfg.keys {
        None => default_specs(),
        Some(keys) => keys
            .iter()
            .map(|k| {
                let algorithm = Algorithm::parse(&k.algorithm)?;
                Ok(KeySpec {
                    id: k.id.clone(),
                    algorithm,
                    approvers: k.approvers,
                    info: k
                        .info
                        .clone()
                        .unwrap_or_else(|| default_info(&k.id, algorithm, k.approvers)),
                })
            })
            .collect::<Result<Vec<_>, String>>()?,
    };
    if let Some(extra) = &cfg.extra_keys {
        let prefix = extra.prefix.clone().unwrap_or_else(|| "key".into());
        let start = extra.start.unwrap_or(specs.len() as u32 + 1);
        let algorithm = Algorithm::parse(extra.algorithm.as_deref().unwrap_or("EC-P256"))?;
        let approvers = extra.approvers.unwrap_or(0);
        for n in start..start.saturating_add(extra.count) {
            let id = format!("{prefix}{n}");
            specs.push(KeySpec {
                info: default_info(&id, algorithm, approvers),
                id,
                algorithm,
                approvers,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &specs {
        if !valid_keyid(&s.id) {
            return Err(format!(
                "key id {:?} is invalid (letters, digits, '-', '_', '.'; at most 64)",
                s.id
            ));
        }
        if !seen.insert(s.id.clone()) {
            return Err(format!("key id {} is configured twice", s.id));
        }
    }
    if specs.is_empty() {
        return Err("no keys configured".into());
    }
    Ok(specs)
}

/// A loaded key.
#[derive(Debug)]
pub struct KeyEntry {
    /// Configuration.
    pub spec: KeySpec,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key.
    pub key: PrivateKey,
}

/// All keys, in configuration order and by id.
#[derive(Debug, Default)]
pub struct KeyRing {
    /// In configuration order.
    pub ordered: Vec<Arc<KeyEntry>>,
    by_id: HashMap<String, Arc<KeyEntry>>,
}

impl KeyRing {
    /// Loads every key from `<dir>/keys`, creating missing ones (from the
    /// cache) and missing certificates (from the signing CA).
    pub fn load(
        dir: &Path,
        specs: &[KeySpec],
        cache: &KeyCache,
        ca: &SigningCa,
    ) -> Result<KeyRing, String> {
        let keys_dir = dir.join("keys");
        std::fs::create_dir_all(&keys_dir)
            .map_err(|e| format!("cannot create {}: {e}", keys_dir.display()))?;
        // The n-th key of each algorithm takes cache slot n.
        let mut counters: BTreeMap<Algorithm, usize> = BTreeMap::new();
        let slots: Vec<usize> = specs
            .iter()
            .map(|s| {
                let c = counters.entry(s.algorithm).or_default();
                *c += 1;
                *c - 1
            })
            .collect();
        // Generate/load in parallel: first start may need several RSA keys.
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let chunk = specs.len().div_ceil(threads).max(1);
        let loaded: Vec<Result<KeyEntry, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = specs
                .chunks(chunk)
                .zip(slots.chunks(chunk))
                .map(|(ss, sl)| {
                    let keys_dir = &keys_dir;
                    scope.spawn(move || {
                        ss.iter()
                            .zip(sl)
                            .map(|(s, slot)| load_one(keys_dir, s, *slot, cache, ca))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![Err("key loading thread panicked".to_string())])
                })
                .collect()
        });
        let mut ring = KeyRing::default();
        for entry in loaded {
            let entry = Arc::new(entry?);
            ring.by_id.insert(entry.spec.id.clone(), entry.clone());
            ring.ordered.push(entry);
        }
        Ok(ring)
    }

    /// A key by id.
    pub fn get(&self, id: &str) -> Option<&Arc<KeyEntry>> {
        self.by_id.get(id)
    }

    /// The key ids in order.
    pub fn ids(&self) -> Vec<String> {
        self.ordered.iter().map(|k| k.spec.id.clone()).collect()
    }
}

fn load_one(
    keys_dir: &Path,
    spec: &KeySpec,
    slot: usize,
    cache: &KeyCache,
    ca: &SigningCa,
) -> Result<KeyEntry, String> {
    let key_path = keys_dir.join(format!("{}.key.pem", spec.id));
    let cert_path = keys_dir.join(format!("{}.cert.pem", spec.id));
    let key = if key_path.exists() {
        let pem = std::fs::read_to_string(&key_path)
            .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
        PrivateKey::from_pem(&pem, spec.algorithm)
            .map_err(|e| format!("{} ({}): {e}", spec.id, key_path.display()))?
    } else {
        let key = cache.get(spec.algorithm, slot)?;
        write_atomic(&key_path, key.to_pem()?.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
        key
    };
    let spki = key.spki_der()?;
    let existing = std::fs::read_to_string(&cert_path).ok().filter(|pem| {
        // Reissue if the stored certificate does not belong to the key.
        cert_der(pem)
            .and_then(|d| cert_spki(&d))
            .is_ok_and(|s| s == spki)
    });
    let cert_pem = match existing {
        Some(p) => p,
        None => {
            let pem = cert_pem(&ca.issue(&spec.id, &spki)?)?;
            write_atomic(&cert_path, pem.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
            pem
        }
    };
    Ok(KeyEntry {
        spec: spec.clone(),
        cert_pem,
        key,
    })
}
