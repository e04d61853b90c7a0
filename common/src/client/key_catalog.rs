//! The key catalog of a [`Client`]: loaded once per process (single flight), from the
//! per-user cache while it is younger than [`CATALOG_TTL`], else from `GET /api/keys`; every
//! loaded catalog passes the trust settings before a key is handed out.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::Method;

use crate::cache::{entry_name, now_secs};
use crate::catalog;
use crate::error::{from_server_reply, Error, ErrorKind, Result};
use crate::http::{CallDeadline, RetryPolicy};
use crate::keys::KeyEntry;
use crate::token::jwt_expiry;
use crate::trust::{TrustPolicy, UntrustedKey};

use super::{Client, Loaded, CATALOG_TTL};

/// A key catalog in the per-user cache: the server's reply as received.
#[derive(serde::Serialize, serde::Deserialize)]
struct DiskCatalog {
    url: String,
    identity: String,
    /// Unix seconds.
    fetched: f64,
    body: String,
}

impl Client {
    /// The key catalog: from memory, else from the per-user cache if younger than
    /// [`CATALOG_TTL`], else `GET /api/keys`. Concurrent first callers cause one load (single
    /// flight, no lock held on the network). A failed fetch is not cached.
    pub fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
        let _deadline = CallDeadline::start(self.config.deadline);
        Ok(self.loaded_keys()?.keys)
    }

    fn loaded_keys(&self) -> Result<Loaded> {
        self.keys.get(
            |_| true,
            |_| true,
            || match self.catalog_from_disk() {
                Some(l) => Ok(l),
                None => self.fetch_keys(),
            },
        )
    }

    /// Replaces a catalog read from the per-user cache by the server's (once per process: a
    /// catalog already confirmed by the server is returned as is).
    pub(super) fn refresh_keys(&self) -> Result<Loaded> {
        self.keys
            .get(|l| !l.from_cache, |_| false, || self.fetch_keys())
    }

    /// The name of the catalog entry in the per-user cache: server, identity and trust anchors
    /// (a test server reusing a port has another CA file and another catalog).
    fn catalog_entry(&self) -> Option<(String, String)> {
        let url = self.config.api_server.as_deref()?;
        // Keyed by the identity the requests really use (KSC_ID_TOKEN_SOURCE decides); a token
        // file or GitHub's token changes with every rotation, so their catalogs are not cached.
        let identity = match crate::token::Identity::of(&self.config) {
            crate::token::Identity::Client => {
                format!("client:{}", self.config.client_id.as_deref()?)
            }
            crate::token::Identity::Token => {
                let token = self.config.id_token.as_deref()?;
                let digest = crate::hash::digest(crate::HashAlg::Sha256, token.as_bytes());
                format!("token:{}", hex::encode(&digest[..16]))
            }
            _ => return None,
        };
        let ca = self
            .config
            .ca_file
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Some((entry_name("catalog", &[url, &identity, &ca]), identity))
    }

    fn catalog_from_disk(&self) -> Option<Loaded> {
        let disk = self.disk.as_ref()?;
        // An expired KSC_ID_TOKEN must meet the server's refusal, not a cached answer.
        if let Some(exp) = self.config.id_token.as_deref().and_then(jwt_expiry) {
            if exp <= std::time::SystemTime::now() {
                return None;
            }
        }
        let (name, identity) = self.catalog_entry()?;
        let entry: DiskCatalog = serde_json::from_slice(&disk.read(&name)?).ok()?;
        let age = now_secs() - entry.fetched;
        if Some(entry.url.as_str()) != self.config.api_server.as_deref()
            || entry.identity != identity
            || !(0.0..CATALOG_TTL.as_secs_f64()).contains(&age)
        {
            return None;
        }
        let cat = catalog::parse_keys(entry.body.as_bytes()).ok()?;
        if cat.has_extensions {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        log::debug!("{} keys from the cache ({age:.0}s old)", cat.keys.len());
        self.trusted(cat.keys, true).ok()
    }

    fn fetch_keys(&self) -> Result<Loaded> {
        let resp = self.api(Method::GET, &["api", "keys"], None, RetryPolicy::Idempotent)?;
        if !(200..300).contains(&resp.status) {
            return Err(from_server_reply(resp.status, &resp.body, resp.retry_after));
        }
        let cat = catalog::parse_keys(&resp.body)?;
        if cat.has_extensions {
            self.requestid_supported.store(true, Ordering::Relaxed);
        }
        log::debug!("{} keys in the catalog", cat.keys.len());
        if let (Some(disk), Some((name, identity)), Ok(body)) = (
            self.disk.as_ref(),
            self.catalog_entry(),
            std::str::from_utf8(&resp.body),
        ) {
            let entry = DiskCatalog {
                url: self.config.api_server.clone().unwrap_or_default(),
                identity,
                fetched: now_secs(),
                body: body.to_string(),
            };
            if let Ok(bytes) = serde_json::to_vec(&entry) {
                disk.write(&name, &bytes);
            }
        }
        self.trusted(cat.keys, false)
    }

    /// The trust settings, parsed once per version of `KSC_SIGNING_CA_FILE` (its mtime and
    /// size): a changed file is read again, a file that cannot be read or parsed is an error each
    /// time, as before. The file is read and parsed with no lock held.
    fn trust_policy(&self) -> Result<Option<Arc<TrustPolicy>>> {
        let config = &self.config;
        if config.signing_ca_file.is_none() && config.key_pins.is_empty() {
            return Ok(None);
        }
        let stamp = config
            .signing_ca_file
            .as_deref()
            .map(|p| std::fs::metadata(p).map(|m| (m.modified().ok(), m.len())));
        let stamp = match stamp {
            // Unreadable: from_config names the file and the reason.
            Some(Err(_)) => return TrustPolicy::from_config(config).map(|p| p.map(Arc::new)),
            Some(Ok(s)) => Some(s),
            None => None,
        };
        let lock = || self.trust.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached_stamp, policy)) = lock().as_ref() {
            if *cached_stamp == stamp {
                return Ok(Some(Arc::clone(policy)));
            }
        }
        let Some(policy) = TrustPolicy::from_config(config)?.map(Arc::new) else {
            return Ok(None);
        };
        *lock() = Some((stamp, Arc::clone(&policy)));
        Ok(Some(policy))
    }

    /// Applies `KSC_SIGNING_CA_FILE`/`KSC_KEY_PINS` to a catalog, from the server or from the
    /// per-user cache alike: refused keys are left out (with one warning each) and kept aside
    /// with the reason.
    fn trusted(&self, keys: Vec<KeyEntry>, from_cache: bool) -> Result<Loaded> {
        let (keys, untrusted) = match self.trust_policy()? {
            Some(policy) => {
                let (trusted, untrusted) = policy.partition(keys, std::time::SystemTime::now());
                for u in &untrusted {
                    log::warn!("key {} is not offered: {}", u.entry.keyid, u.reason);
                }
                (trusted, untrusted)
            }
            None => (keys, Vec::new()),
        };
        Ok(Loaded {
            keys: Arc::new(keys),
            untrusted: Arc::new(untrusted),
            from_cache,
        })
    }

    /// The listed keys that `KSC_SIGNING_CA_FILE`/`KSC_KEY_PINS` refused, with the reasons
    /// (empty when neither is set). Loads the catalog if needed.
    pub fn untrusted_keys(&self) -> Result<Arc<Vec<UntrustedKey>>> {
        let _deadline = CallDeadline::start(self.config.deadline);
        Ok(self.loaded_keys()?.untrusted)
    }

    /// One trusted key of the catalog; `NotFound` names the known keys, an untrusted key is a
    /// `VerificationFailed` error with the reason. A key missing from a cached catalog
    /// refreshes it first.
    pub fn key(&self, keyid: &str) -> Result<KeyEntry> {
        Ok(self.key_entry(keyid)?.0)
    }

    /// The key and whether it came from the per-user cache.
    pub(super) fn key_entry(&self, keyid: &str) -> Result<(KeyEntry, bool)> {
        let loaded = self.loaded_keys()?;
        if let Some(u) = loaded.untrusted.iter().find(|u| u.entry.keyid == keyid) {
            return Err(Error::new(
                ErrorKind::VerificationFailed,
                format!("the key is not trusted: {}", u.reason),
            )
            .with_key(keyid)
            .with_remedy(format!(
                "nothing was signed; check {} and {} (ksc keys shows every key with the reason), and ask the KeyServer administrator which CA issues its signing certificates",
                crate::config::KSC_SIGNING_CA_FILE,
                crate::config::KSC_KEY_PINS
            )));
        }
        match catalog::find_key(&loaded.keys, keyid) {
            Err(e) if e.kind() == ErrorKind::NotFound && loaded.from_cache => {
                log::debug!("key {keyid} not in the cached catalog; asking the server");
                let fresh = self.refresh_keys()?;
                Ok((catalog::find_key(&fresh.keys, keyid)?, fresh.from_cache))
            }
            other => Ok((other?, loaded.from_cache)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CA_RSA: &str = include_str!("../../tests/data/trust/ca-rsa.pem");
    const CA_EC: &str = include_str!("../../tests/data/trust/ca-ec.pem");

    #[test]
    fn trust_policy_is_parsed_once_per_version_of_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, CA_RSA).unwrap();
        let client = Client::new(Config {
            signing_ca_file: Some(path.clone()),
            cache: false,
            ..Config::default()
        });
        let first = client.trust_policy().unwrap().unwrap();
        let again = client.trust_policy().unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "parsed again");
        // Another version of the file (another size) is read again.
        std::fs::write(&path, format!("{CA_RSA}{CA_EC}")).unwrap();
        let changed = client.trust_policy().unwrap().unwrap();
        assert!(
            !Arc::ptr_eq(&first, &changed),
            "a changed file was not read"
        );
        // A broken or missing file is an error on every load, as before.
        std::fs::write(&path, "not a certificate").unwrap();
        assert!(client.trust_policy().is_err());
        assert!(client.trust_policy().is_err());
        std::fs::remove_file(&path).unwrap();
        let e = client.trust_policy().unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        // Neither setting: no policy, nothing read.
        let open = Client::new(Config {
            cache: false,
            ..Config::default()
        });
        assert!(open.trust_policy().unwrap().is_none());
    }

    #[test]
    fn catalog_cache_entry_follows_the_identity_in_use() {
        let base = Config {
            api_server: Some("https://ks.example".into()),
            auth_server: Some("https://auth.example".into()),
            client_id: Some("ci-client".into()),
            client_secret: Some("s3cret".into()),
            cache: false,
            ..Config::default()
        };
        let entry = |c: Config| Client::new(c).catalog_entry().map(|(_, id)| id);
        assert_eq!(entry(base.clone()).as_deref(), Some("client:ci-client"));
        // A token file wins over client credentials: its tokens rotate, so nothing is cached
        // (before, the catalog was filed under the client it was not fetched with).
        let with_file = Config {
            id_token_file: Some("/run/ks/token".into()),
            ..base.clone()
        };
        assert_eq!(entry(with_file), None);
        let with_token = Config {
            id_token: Some("a.b.c".into()),
            ..base
        };
        let id = entry(with_token).unwrap_or_default();
        assert!(id.starts_with("token:") && !id.contains("a.b.c"), "{id}");
    }
}
