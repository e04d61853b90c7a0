//! Remote-signing core shared by the OpenSSL provider and the PKCS#11 module.
//!
//! All knowledge of KeyServer lives here: configuration ([`config`]), the HTTPS client and its
//! retry rules ([`http`]), tokens ([`token`]), the key catalog ([`catalog`], [`keys`]),
//! operations and approval ([`operation`]), sign orders ([`sign`]) and local verification of
//! every returned signature ([`verify`]). [`client::Client`] ties them together; the adapters
//! and the `ksc` CLI only use that and the types it returns.
//!
//! Nothing here writes to stdout, links OpenSSL, or logs a secret.

pub mod catalog;
pub mod client;
pub mod config;
pub mod duration;
pub mod error;
pub mod hash;
pub mod http;
pub mod keys;
pub mod logging;
pub mod operation;
pub mod sign;
pub mod token;
pub mod verify;

pub use client::Client;
pub use config::{Config, Settings};
pub use error::{Error, ErrorKind, Result};
pub use hash::HashAlg;
pub use keys::{EcCurve, KeyEntry, PublicKey};
pub use operation::{OperationSpec, OperationState, OperationStatus};
pub use sign::{EcdsaFormat, SignRequest};
