//! Remote-signing core shared by the OpenSSL provider and the PKCS#11 module.
//!
//! All knowledge of KeyServer lives here: configuration ([`config`]), the HTTPS client and its
//! retry rules ([`http`]), tokens ([`token`]), the key catalog ([`catalog`], [`keys`]),
//! operations and approval ([`operation`]), sign orders ([`sign`]) and local verification of
//! every returned signature ([`verify`]). [`client::Client`] ties them together; the adapters
//! and the `ksc` CLI only use that and the types it returns.
//!
//! Nothing here writes to stdout, links OpenSSL, or logs a secret.
//!
//! Typical use by an adapter:
//!
//! ```no_run
//! use ks_common::{Client, Config, Settings, SignRequest, HashAlg, ErrorKind};
//!
//! // Provider parameters from openssl.cnf go into `overrides`; the environment still wins.
//! let mut overrides = Settings::new();
//! overrides.insert("KSC_API_SERVER".into(), "https://keyserver.example:8200".into());
//! let config = Config::load(&overrides)?;
//! ks_common::logging::init(&config);
//! let client = std::sync::Arc::new(Client::new(config)); // no I/O yet
//! let key = client.key("key1")?;                         // first use fetches the catalog
//! let digest = ks_common::hash::digest(HashAlg::Sha256, b"firmware");
//! let request = SignRequest::RsaPkcs1 { hash: HashAlg::Sha256, digest };
//! let size = request.signature_len(&key.public_key);     // two-call convention, no I/O
//! match client.sign("key1", &request) {                   // verified locally before return
//!     Ok(signature) => assert_eq!(signature.len(), size),
//!     Err(e) if e.kind() == ErrorKind::Pending => log::warn!("{e}"),
//!     Err(e) => return Err(e),
//! }
//! # Ok::<(), ks_common::Error>(())
//! ```

pub mod catalog;
pub mod client;
pub mod config;
pub mod date;
pub mod duration;
pub mod error;
pub mod hash;
pub mod http;
pub mod keys;
pub mod logging;
pub mod operation;
pub mod sign;
pub mod signer;
pub mod token;
pub mod verify;

pub use client::Client;
pub use config::{Config, Settings};
pub use error::{Error, ErrorKind, Result};
pub use hash::HashAlg;
pub use keys::{EcCurve, KeyEntry, PublicKey};
pub use operation::{OperationSpec, OperationState, OperationStatus};
pub use sign::{EcdsaFormat, SignRequest};
pub use signer::Signer;
