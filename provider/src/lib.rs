//! keyserver.so: an OpenSSL 3 provider over the remote-signing core.
//!
//! OpenSSL loads it as `keyserver` (`-provider keyserver`, or from a config
//! file such as `conf/openssl-ks.cnf`). It offers:
//! - STORE `ks`: `ks:` lists every KeyServer key, `ks:<keyid>` one key as a
//!   private-key reference, its public key and its certificate ([`store`]);
//! - KEYMGMT for RSA, RSA-PSS and EC keys whose private half stays on
//!   KeyServer ([`keymgmt`]);
//! - SIGNATURE for RSA PKCS#1 v1.5, RSA-PSS and ECDSA: hashing here, signing
//!   on KeyServer, verification locally ([`signature`]).
//!
//! All KeyServer work goes through `ks_common`. The ABI comes from bindgen
//! over the installed OpenSSL headers ([`ffi`]); no libcrypto is linked.

pub mod algid;
pub mod core;
pub mod dispatch;
pub mod ffi;
pub mod key;
pub mod keymgmt;
pub mod params;
pub mod provider;
pub mod signature;
pub mod store;
