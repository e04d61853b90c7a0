//! libpkcs11ks.so: a PKCS#11 module over the remote-signing core.
//!
//! Layout (one concern per module):
//! - [`fns`]: the exported `C_*` entry points, one file per function group. Each
//!   `extern "C" fn C_X` is a thin wrapper (null checks, `catch_unwind`, one
//!   `Result` → `CK_RV` mapping) around a Rust `fn x(...) -> Result<()>`.
//! - [`token`]: the typed core — sessions, objects, operations — independent of
//!   the C ABI and of the network (it talks to a [`backend::Backend`]).
//! - [`backend`]: the seam to KeyServer; implemented for [`ks_common::Client`].
//! - [`object`]: the three PKCS#11 objects of every key and their attributes.
//! - [`mechanism`]: supported mechanisms, parameter validation, sign requests.
//! - [`error`]: `CK_RV` results and the mapping of `ks_common` errors.
//!
//! The module never writes to stdout; reasons for failures go to the
//! `ks_common` log (stderr by default).

pub mod error;
pub mod fns;
pub mod mechanism;
pub mod object;
pub mod token;

mod ffi;
