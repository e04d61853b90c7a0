//! The exported PKCS#11 entry points, one file per function group.
//!
//! Every `extern "C" fn C_X` is a thin wrapper: it runs `fn x(...) ->
//! Result<()>` through `crate::ffi::guard` (`catch_unwind` and the one
//! `Result` → `CK_RV` mapping); `x` checks pointers and calls the
//! [`Token`].

#![allow(non_snake_case)]

pub mod digest;
pub mod general;
pub mod interface;
pub mod object;
pub mod session;
pub mod sign;
pub mod slot;

#[cfg(test)]
mod conformance;
pub mod unsupported;
pub mod verify;

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;

use crate::error::Result;
use crate::token::Token;

/// The library state: `Some` between `C_Initialize` and `C_Finalize`.
pub(crate) static STATE: RwLock<Option<Arc<Token>>> = RwLock::new(None);

/// The initialised token of this process. A forked child that has not called
/// `C_Initialize` itself sees `CKR_CRYPTOKI_NOT_INITIALIZED`.
pub(crate) fn token() -> Result<Arc<Token>> {
    let state = STATE.read().unwrap_or_else(|e| e.into_inner());
    match state.as_ref() {
        Some(t) if t.pid() == std::process::id() => Ok(Arc::clone(t)),
        _ => Err(CKR_CRYPTOKI_NOT_INITIALIZED),
    }
}

/// Checks the slot ID of the one slot.
pub(crate) fn check_slot(slot: CK_SLOT_ID) -> Result<()> {
    if slot == crate::token::SLOT_ID {
        Ok(())
    } else {
        Err(CKR_SLOT_ID_INVALID)
    }
}

/// Ends the operation (`end`) when `result` is a failure other than
/// `CKR_BUFFER_TOO_SMALL`, as PKCS#11 requires of `C_Sign`, `C_SignFinal`, `C_Verify`,
/// `C_VerifyFinal` and `C_DigestFinal`, whichever layer found the failure.
pub(crate) fn ending_on_error(result: Result<()>, end: impl FnOnce()) -> Result<()> {
    if result.is_err_and(|rv| rv != CKR_BUFFER_TOO_SMALL) {
        end();
    }
    result
}
