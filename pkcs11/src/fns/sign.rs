//! Signing: `C_SignInit`, `C_Sign`, `C_SignUpdate`, `C_SignFinal`. A NULL or
//! short output buffer answers the size without contacting KeyServer and keeps
//! the operation active; a real signature costs exactly one sign order.

use cryptoki_sys::*;

use super::token;
use crate::error::Result;
use crate::ffi::{capacity, guard, input, mechanism, write_output};
use crate::mechanism::SignMechanism;

/// `C_SignInit` (a NULL mechanism cancels an active signature).
#[no_mangle]
pub extern "C" fn C_SignInit(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || sign_init(session, mech, key))
}

fn sign_init(
    session: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    let t = token()?;
    t.session(session)?;
    // SAFETY: the caller's mechanism pointer is passed through unchanged.
    let parsed = unsafe { sign_mechanism(mech) }?;
    t.sign_init(session, parsed, key)
}

/// The mechanism of `C_SignInit`/`C_VerifyInit`: `None` for a NULL pointer
/// (which cancels the active operation), else the parsed signing mechanism.
///
/// # Safety
/// `mech` is NULL or points to a valid `CK_MECHANISM` whose parameter has
/// `ulParameterLen` readable bytes (PKCS#11).
pub(super) unsafe fn sign_mechanism(mech: *mut CK_MECHANISM) -> Result<Option<SignMechanism>> {
    // SAFETY: guaranteed by this function's contract.
    match unsafe { mechanism(mech) }? {
        Some((ty, param)) => Ok(Some(SignMechanism::parse(ty, param)?)),
        None => Ok(None),
    }
}

/// `C_Sign`.
#[no_mangle]
pub extern "C" fn C_Sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Sign", || {
        sign(session, data, data_len, signature, signature_len)
    })
}

fn sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: a non-null `data` has `data_len` readable bytes (PKCS#11).
        let data = unsafe { input(data.cast_const(), data_len) }?;
        // SAFETY: `signature_len` is NULL or readable.
        let cap = unsafe { capacity(signature, signature_len) }?;
        let output = t.sign(session, data, cap)?;
        // SAFETY: `signature_len` is writable, `signature` holds `cap` bytes.
        unsafe { write_output(output, signature, signature_len) }
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || {
        let _ = t.sign_init(session, None, 0);
    })
}

/// `C_SignUpdate`: hash-and-sign mechanisms hash locally; the raw (single-part)
/// mechanisms refuse it.
#[no_mangle]
pub extern "C" fn C_SignUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard("C_SignUpdate", || sign_update(session, part, part_len))
}

fn sign_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null `part` has `part_len` readable bytes (PKCS#11).
    let part = unsafe { input(part.cast_const(), part_len) };
    // PKCS#11: an Update that fails ends the operation, a bad argument included.
    let part = part.inspect_err(|_| {
        let _ = t.sign_init(session, None, 0);
    })?;
    t.sign_update(session, part)
}

/// `C_SignFinal`.
#[no_mangle]
pub extern "C" fn C_SignFinal(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_SignFinal", || {
        sign_final(session, signature, signature_len)
    })
}

fn sign_final(
    session: CK_SESSION_HANDLE,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: `signature_len` is NULL or readable.
        let cap = unsafe { capacity(signature, signature_len) }?;
        let output = t.sign_final(session, cap)?;
        // SAFETY: `signature_len` is writable, `signature` holds `cap` bytes.
        unsafe { write_output(output, signature, signature_len) }
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || {
        let _ = t.sign_init(session, None, 0);
    })
}
