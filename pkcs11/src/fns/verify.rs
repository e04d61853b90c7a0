//! Verification, locally with the public key: `C_VerifyInit`, `C_Verify`,
//! `C_VerifyUpdate`, `C_VerifyFinal`.

use cryptoki_sys::*;

use super::token;
use crate::error::Result;
use crate::ffi::{guard, input};

/// `C_VerifyInit` (a NULL mechanism cancels an active verification).
#[no_mangle]
pub extern "C" fn C_VerifyInit(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_VerifyInit", || verify_init(session, mech, key))
}

fn verify_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let t = token()?;
    t.session(session)?;
    // SAFETY: the caller's mechanism pointer is passed through unchanged.
    let parsed = unsafe { super::sign::sign_mechanism(mech) }?;
    t.verify_init(session, parsed, key)
}

/// `C_Verify`.
#[no_mangle]
pub extern "C" fn C_Verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    guard("C_Verify", || {
        verify(session, data, data_len, signature, signature_len)
    })
}

fn verify(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: non-null buffers have the given readable lengths (PKCS#11).
        let data = unsafe { input(data.cast_const(), data_len) }?;
        // SAFETY: as above.
        let signature = unsafe { input(signature.cast_const(), signature_len) }?;
        t.verify(session, data, signature)
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || {
        let _ = t.verify_init(session, None, 0);
    })
}

/// `C_VerifyUpdate`.
#[no_mangle]
pub extern "C" fn C_VerifyUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyUpdate", || verify_update(session, part, part_len))
}

fn verify_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null `part` has `part_len` readable bytes (PKCS#11).
    let part = unsafe { input(part.cast_const(), part_len) };
    // PKCS#11: an Update that fails ends the operation, a bad argument included.
    let part = part.inspect_err(|_| {
        let _ = t.verify_init(session, None, 0);
    })?;
    t.verify_update(session, part)
}

/// `C_VerifyFinal`.
#[no_mangle]
pub extern "C" fn C_VerifyFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyFinal", || {
        verify_final(session, signature, signature_len)
    })
}

fn verify_final(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: a non-null signature has `signature_len` readable bytes.
        let signature = unsafe { input(signature.cast_const(), signature_len) }?;
        t.verify_final(session, signature)
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || {
        let _ = t.verify_init(session, None, 0);
    })
}
