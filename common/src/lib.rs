//! Remote-signing core shared by the OpenSSL provider, the PKCS#11 module and `ksc`.
//!
//! All knowledge of KeyServer and of the signing rules lives here; the adapters translate their
//! callers' words into this crate's types and map its errors back.
//!
//! ## Where to start reading
//!
//! - [`signer`]: the seam the adapters hold, [`Signer`] (key catalog + one signature), built once
//!   by [`signer::connect`] (configuration and logging set up there and nowhere else).
//! - [`intent`]: the one signing decision. A [`intent::SignIntent`] (hash or digest, padding,
//!   PSS parameters, output format) becomes checked [`SignRequest`]s ([`sign`]); the server's
//!   answer is decoded and verified ([`verify`]) in [`intent::decode_signature`].
//! - [`hash`]: the table of hash facts ([`hash::HASHES`]: name, length, OID, DigestInfo prefix,
//!   PKCS#11 and OpenSSL names), one row per hash, used by every crate.
//! - [`client::Client`]: the HTTPS client that implements [`Signer`]; under it [`http`] (retry
//!   rules), [`token`], [`catalog`]/[`keys`], [`operation`]; [`flight`] (single-flight, so
//!   no lock is held across a network call) and [`cache`] (the per-user cache of the catalog
//!   and tokens). [`config`], [`logging`],
//!   [`duration`] and [`date`] are the small supports; [`error`] is the one error vocabulary
//!   ([`ErrorKind`]) with a remedy for each kind.
//!
//! Nothing here writes to stdout, links OpenSSL, or logs a secret.
//!
//! Typical use by an adapter:
//!
//! ```no_run
//! use ks_common::{Client, Settings, SignRequest, HashAlg, ErrorKind};
//!
//! // Provider parameters from openssl.cnf go into `overrides`; the environment still wins.
//! let mut overrides = Settings::new();
//! overrides.insert("KSC_API_SERVER".into(), "https://keyserver.example:8200".into());
//! let client = std::sync::Arc::new(Client::connect(&overrides)?); // config + logging; no I/O yet
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

pub mod cache;
pub mod catalog;
pub mod client;
pub mod config;
pub mod date;
pub mod digest_policy;
pub mod duration;
pub mod error;
pub mod flight;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod http;
pub mod intent;
pub mod keys;
pub mod log_spec;
pub mod logging;
pub mod operation;
pub mod redact;
pub mod sign;
pub mod signer;
pub mod token;
pub mod trust;
pub mod verify;

pub use client::Client;
pub use config::{Config, Settings};
pub use error::{Error, ErrorKind, Result};
pub use hash::HashAlg;
pub use keys::{EcCurve, KeyEntry, PublicKey};
pub use operation::{OperationSpec, OperationState, OperationStatus};
pub use sign::{EcdsaFormat, SignRequest};
pub use signer::Signer;
