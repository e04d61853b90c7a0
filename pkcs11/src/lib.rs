//! libpkcs11ks.so: a PKCS#11 module over the remote-signing core.
//!
//! It translates PKCS#11 calls into `ks_common` requests: mechanisms become
//! sign requests ([`mechanism`]), keys become objects ([`object`]), and all
//! signing rules, the hash table and the KeyServer seam
//! ([`ks_common::signer::Signer`]) come from `ks_common`.
//!
//! Where to start reading: `ffi.rs` and [`fns`] (the C entry points and their
//! one guard), then [`token::Token`] (what each call does), then [`mechanism`].
//!
//! Layout (one concern per module):
//! - [`fns`]: the exported `C_*` entry points, one file per function group. Each
//!   `extern "C" fn C_X` is a thin wrapper (null checks, `catch_unwind`, one
//!   `Result` → `CK_RV` mapping) around a Rust `fn x(...) -> Result<()>`.
//! - [`token`]: the typed core — sessions, objects, operations — independent of
//!   the C ABI and of the network (it holds a [`ks_common::signer::Signer`],
//!   created on first use; tests plug in `ks_common`'s fake).
//! - [`object`]: the three PKCS#11 objects of every key and their attributes.
//! - [`mechanism`]: supported mechanisms, parameter validation, sign requests.
//! - [`error`]: `CK_RV` results and the mapping of `ks_common` errors.
//!
//! The module never writes to stdout; reasons for failures go to the
//! `ks_common` log (stderr by default).

pub mod error;
pub mod fns;
#[doc(hidden)]
pub mod fuzzing;
pub mod mechanism;
pub mod object;
pub mod token;

mod ffi;
mod spec;
