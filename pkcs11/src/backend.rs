//! The seam between the PKCS#11 layer and KeyServer.
//!
//! The token core only needs the key catalog and one signature at a time; the
//! production implementation is [`ks_common::Client`], tests plug in fakes.

use std::sync::Arc;

use ks_common::keys::KeyEntry;
use ks_common::sign::SignRequest;

/// What the token needs from KeyServer.
pub trait Backend: Send + Sync {
    /// The key catalog (fetched once, then cached by the implementation).
    fn keys(&self) -> ks_common::Result<Arc<Vec<KeyEntry>>>;
    /// One signature: exactly one sign order, verified before it is returned.
    fn sign(&self, keyid: &str, request: &SignRequest) -> ks_common::Result<Vec<u8>>;
}

impl Backend for ks_common::client::Client {
    fn keys(&self) -> ks_common::Result<Arc<Vec<KeyEntry>>> {
        ks_common::client::Client::keys(self)
    }

    fn sign(&self, keyid: &str, request: &SignRequest) -> ks_common::Result<Vec<u8>> {
        ks_common::client::Client::sign(self, keyid, request)
    }
}

/// Creates the backend on first need (never in `C_Initialize`).
pub type BackendFactory = Arc<dyn Fn() -> ks_common::Result<Arc<dyn Backend>> + Send + Sync>;

/// The production factory: configuration from the environment (and `KSC_CONFIG`),
/// logging initialised from it, a [`ks_common::Client`] that does no I/O until used.
pub fn client_factory() -> BackendFactory {
    Arc::new(|| {
        let config = ks_common::config::Config::from_env()?;
        ks_common::logging::init(&config);
        let client = ks_common::client::Client::new(config);
        Ok(Arc::new(client) as Arc<dyn Backend>)
    })
}
