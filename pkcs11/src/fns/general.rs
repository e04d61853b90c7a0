//! General-purpose functions: `C_Initialize`, `C_Finalize`, `C_GetInfo`.

use std::ffi::c_void;
use std::sync::Arc;

use cryptoki_sys::*;

use super::{token, STATE};
use crate::error::Result;
use crate::ffi::{crate_version, guard, out, padded};
use crate::token::client_factory;
use crate::token::Token;

/// `C_Initialize`: validates `CK_C_INITIALIZE_ARGS` and creates the token
/// state. No network I/O happens here; the KeyServer client is created on the
/// first call that needs a key.
#[no_mangle]
pub extern "C" fn C_Initialize(init_args: *mut c_void) -> CK_RV {
    guard("C_Initialize", || initialize(init_args))
}

fn initialize(init_args: *mut c_void) -> Result<()> {
    // SAFETY: a non-null argument points to a CK_C_INITIALIZE_ARGS (PKCS#11).
    if let Some(args) = unsafe { init_args.cast::<CK_C_INITIALIZE_ARGS>().as_ref() } {
        if !args.pReserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let provided = [
            args.CreateMutex.is_some(),
            args.DestroyMutex.is_some(),
            args.LockMutex.is_some(),
            args.UnlockMutex.is_some(),
        ];
        let all = provided.iter().all(|p| *p);
        if !all && provided.iter().any(|p| *p) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // With application mutexes but without CKF_OS_LOCKING_OK the library
        // would have to lock with the application's functions; it only knows
        // the OS primitives.
        if all && args.flags & CKF_OS_LOCKING_OK == 0 {
            return Err(CKR_CANT_LOCK);
        }
    }
    let mut state = STATE.write().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = state.take() {
        if old.pid() == std::process::id() {
            *state = Some(old);
            return Err(CKR_CRYPTOKI_ALREADY_INITIALIZED);
        }
        // A forked child initialising again: the parent's state (client,
        // connections, sessions) must not be used, nor dropped (dropping could
        // wait for threads that do not exist in this process).
        std::mem::forget(old);
    }
    *state = Some(Arc::new(Token::new(client_factory())));
    Ok(())
}

/// `C_Finalize`: drops the token state (sessions, client).
#[no_mangle]
pub extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard("C_Finalize", || finalize(reserved))
}

fn finalize(reserved: *mut c_void) -> Result<()> {
    if !reserved.is_null() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    token()?;
    let old = STATE.write().unwrap_or_else(|e| e.into_inner()).take();
    // Dropped outside the lock; another thread still signing keeps its Arc.
    drop(old);
    Ok(())
}

/// `C_GetInfo`.
#[no_mangle]
pub extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard("C_GetInfo", || get_info(info))
}

fn get_info(info: *mut CK_INFO) -> Result<()> {
    token()?;
    // SAFETY: a non-null pointer is writable for a CK_INFO (PKCS#11).
    let info = unsafe { out(info) }?;
    *info = CK_INFO {
        cryptokiVersion: CK_VERSION { major: 3, minor: 0 },
        manufacturerID: padded("KeyServer"),
        flags: 0,
        libraryDescription: padded("KeyServer remote signing"),
        libraryVersion: crate_version(),
    };
    Ok(())
}
