//! The seam between the adapters and KeyServer: a [`Signer`] is the key catalog and one
//! signature at a time. The PKCS#11 token and the OpenSSL provider hold an `Arc<dyn Signer>`
//! built by [`connect`] (the one place that loads the configuration and starts logging); their
//! tests plug in `fake::FakeSigner` (built only with feature `fake`, so not linked here)
//! instead of a server.

use std::sync::Arc;

use crate::client::Client;
use crate::config::Settings;
use crate::error::Result;
use crate::keys::KeyEntry;
use crate::sign::SignRequest;

/// What an adapter needs from KeyServer.
pub trait Signer: Send + Sync {
    /// The key catalog (fetched once, then cached by the implementation).
    fn keys(&self) -> Result<Arc<Vec<KeyEntry>>>;

    /// One signature: exactly one sign order, verified before it is returned.
    fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>>;

    /// One key of the catalog, or a NotFound error listing the keys there are.
    fn key(&self, keyid: &str) -> Result<KeyEntry> {
        crate::catalog::find_key(&self.keys()?, keyid)
    }
}

impl Signer for Client {
    fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
        Client::keys(self)
    }

    fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>> {
        Client::sign(self, keyid, request)
    }

    fn key(&self, keyid: &str) -> Result<KeyEntry> {
        Client::key(self, keyid)
    }
}

/// The production signer: [`Client::connect`] (configuration from `overrides`, such as
/// openssl.cnf parameters, with the environment winning; logging started once; no I/O yet).
pub fn connect(overrides: &Settings) -> Result<Arc<dyn Signer>> {
    let client = Client::connect(overrides)?;
    crate::digest_policy::set_allow_sha1(crate::digest_policy::allow_sha1_from_env()?);
    Ok(Arc::new(client))
}

/// A signer without a server, for the adapters' unit tests.
#[cfg(any(test, feature = "fake"))]
pub mod fake {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::Signer;
    use crate::error::Result;
    use crate::keys::KeyEntry;
    use crate::sign::{EcdsaFormat, SignRequest};

    /// Answers the catalog it was given and, for every sign order, a fixed signature
    /// (`0x5a` bytes) of the key's length; counts the calls and keeps the last request.
    pub struct FakeSigner {
        keys: Arc<Vec<KeyEntry>>,
        key_calls: AtomicUsize,
        sign_calls: AtomicUsize,
        last: Mutex<Option<SignRequest>>,
    }

    impl FakeSigner {
        /// A fake with this catalog.
        pub fn new(keys: Vec<KeyEntry>) -> FakeSigner {
            FakeSigner {
                keys: Arc::new(keys),
                key_calls: AtomicUsize::new(0),
                sign_calls: AtomicUsize::new(0),
                last: Mutex::new(None),
            }
        }

        /// How often the catalog was asked for.
        pub fn key_calls(&self) -> usize {
            self.key_calls.load(Ordering::SeqCst)
        }

        /// How many sign orders were made.
        pub fn sign_calls(&self) -> usize {
            self.sign_calls.load(Ordering::SeqCst)
        }

        /// The last sign request.
        pub fn last(&self) -> Option<SignRequest> {
            self.last.lock().map(|g| g.clone()).unwrap_or(None)
        }
    }

    impl Signer for FakeSigner {
        fn keys(&self) -> Result<Arc<Vec<KeyEntry>>> {
            self.key_calls.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::clone(&self.keys))
        }

        fn sign(&self, keyid: &str, request: &SignRequest) -> Result<Vec<u8>> {
            self.sign_calls.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut g) = self.last.lock() {
                *g = Some(request.clone());
            }
            let len = self
                .keys
                .iter()
                .find(|k| k.keyid == keyid)
                .map_or(0, |k| k.public_key.max_signature_len(EcdsaFormat::P1363));
            Ok(vec![0x5a; len])
        }
    }
}
