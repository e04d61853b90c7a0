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
//! All KeyServer work goes through `ks_common`: the provider holds a
//! [`ks_common::signer::Signer`] ([`core::ProvCtx::signer`]) and translates
//! OSSL_PARAMs into a [`ks_common::intent::SignIntent`], where every signing
//! rule lives. The ABI comes from bindgen over the installed OpenSSL headers
//! ([`ffi`]); no libcrypto is linked.
//!
//! Where to start reading: [`provider`] (`OSSL_provider_init` and the algorithm
//! tables), [`dispatch`] (the `entry!` tables checked against OpenSSL's
//! types), then [`store`] → [`keymgmt`] → [`signature`], the path of
//! `openssl dgst -sign ks:key1`. [`core`] holds the context and the one way
//! errors reach OpenSSL.

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
