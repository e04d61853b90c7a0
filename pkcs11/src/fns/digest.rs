//! Message digests (SHA-256/384/512, computed locally): `C_DigestInit`,
//! `C_Digest`, `C_DigestUpdate`, `C_DigestFinal`.

use cryptoki_sys::*;

use crate::error::Result;

use super::token;
use crate::ffi::{capacity, guard, input, mechanism, write_output};

/// `C_DigestInit`.
#[no_mangle]
pub extern "C" fn C_DigestInit(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> CK_RV {
    guard("C_DigestInit", || digest_init(session, mech))
}

fn digest_init(session: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM) -> Result<()> {
    let t = token()?;
    t.session(session)?;
    // SAFETY: a non-null mechanism is a valid CK_MECHANISM (PKCS#11).
    let (ty, param) = unsafe { mechanism(mech) }?.ok_or(CKR_ARGUMENTS_BAD)?;
    t.digest_init(session, ty, param)
}

/// `C_Digest`.
#[no_mangle]
pub extern "C" fn C_Digest(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_Digest", || {
        digest_once(session, data, data_len, digest, digest_len)
    })
}

fn digest_once(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: a non-null `data` has `data_len` readable bytes (PKCS#11).
        let data = unsafe { input(data.cast_const(), data_len) }?;
        // SAFETY: `digest_len` is NULL or readable.
        let cap = unsafe { capacity(digest, digest_len) }?;
        let output = t.digest(session, data, cap)?;
        // SAFETY: `digest_len` is writable, `digest` holds `cap` bytes.
        unsafe { write_output(output, digest, digest_len) }
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || t.digest_cancel(session))
}

/// `C_DigestUpdate`.
#[no_mangle]
pub extern "C" fn C_DigestUpdate(
    session: CK_SESSION_HANDLE,
    part: *mut CK_BYTE,
    part_len: CK_ULONG,
) -> CK_RV {
    guard("C_DigestUpdate", || digest_update(session, part, part_len))
}

fn digest_update(session: CK_SESSION_HANDLE, part: *mut CK_BYTE, part_len: CK_ULONG) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null `part` has `part_len` readable bytes (PKCS#11).
    let part = unsafe { input(part.cast_const(), part_len) };
    // PKCS#11: an Update that fails ends the operation, a bad argument included.
    let part = part.inspect_err(|_| t.digest_cancel(session))?;
    t.digest_update(session, part)
}

/// `C_DigestFinal`.
#[no_mangle]
pub extern "C" fn C_DigestFinal(
    session: CK_SESSION_HANDLE,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> CK_RV {
    guard("C_DigestFinal", || {
        digest_final(session, digest, digest_len)
    })
}

fn digest_final(
    session: CK_SESSION_HANDLE,
    digest: *mut CK_BYTE,
    digest_len: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let result = (|| {
        // SAFETY: `digest_len` is NULL or readable.
        let cap = unsafe { capacity(digest, digest_len) }?;
        let output = t.digest_final(session, cap)?;
        // SAFETY: `digest_len` is writable, `digest` holds `cap` bytes.
        unsafe { write_output(output, digest, digest_len) }
    })();
    // PKCS#11: a failure other than a short buffer ends the operation, a bad argument
    // included.
    super::ending_on_error(result, || t.digest_cancel(session))
}
