//! Pointer handling shared by the `C_*` wrappers: the one `Result` → `CK_RV`
//! mapping (with `catch_unwind`), null checks, and the PKCS#11 output-buffer
//! convention.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::*;

use crate::error::Result;
use crate::token::Output;

/// Runs the body of a `C_*` function: `Ok` → `CKR_OK`, `Err(rv)` → `rv`, and a
/// panic (a bug) → `CKR_GENERAL_ERROR` instead of unwinding into C.
pub(crate) fn guard(name: &str, body: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) if crate::spec::is_listed(name, rv) => {
            log::debug!("libpkcs11ks: {name} -> {rv:#x}");
            rv
        }
        Ok(Err(rv)) => {
            // PKCS#11 does not list this code for this function: answer the universal
            // failure code instead, keeping the precise one in the log.
            log::warn!("libpkcs11ks: {name}: {rv:#x} is not a code PKCS#11 lists for {name}; answering CKR_FUNCTION_FAILED");
            CKR_FUNCTION_FAILED
        }
        Err(_) => {
            log::error!("libpkcs11ks: internal error (panic) in {name}");
            CKR_GENERAL_ERROR
        }
    }
}

/// Converts a `CK_ULONG` count to `usize`.
pub(crate) fn count(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| CKR_ARGUMENTS_BAD)
}

/// A borrowed input array: NULL with a non-zero length is `CKR_ARGUMENTS_BAD`,
/// NULL with length 0 is empty.
///
/// # Safety
/// A non-null `ptr` must point to `len` initialised `T`s that stay valid and
/// unmodified for `'a` (the PKCS#11 caller's contract).
pub(crate) unsafe fn input<'a, T>(ptr: *const T, len: CK_ULONG) -> Result<&'a [T]> {
    let len = count(len)?;
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(CKR_ARGUMENTS_BAD)
        };
    }
    // SAFETY: non-null, and the caller guarantees `len` valid elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A mutable output location; NULL is `CKR_ARGUMENTS_BAD`.
///
/// # Safety
/// A non-null `ptr` must be valid for writes of a `T` for `'a`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees validity when non-null.
    unsafe { ptr.as_mut() }.ok_or(CKR_ARGUMENTS_BAD)
}

/// The capacity of an output buffer: `None` when the buffer is NULL (a size
/// query). `len` must not be NULL.
///
/// # Safety
/// `len` must be NULL or valid for reads.
pub(crate) unsafe fn capacity(buf: *const u8, len: *const CK_ULONG) -> Result<Option<usize>> {
    // SAFETY: the caller guarantees validity when non-null.
    let len = unsafe { len.as_ref() }.ok_or(CKR_ARGUMENTS_BAD)?;
    if buf.is_null() {
        Ok(None)
    } else {
        Ok(Some(usize::try_from(*len).unwrap_or(usize::MAX)))
    }
}

/// Writes an [`Output`] with the PKCS#11 convention: a size answer sets `*len`
/// and is `CKR_OK` for a NULL buffer, `CKR_BUFFER_TOO_SMALL` otherwise.
///
/// # Safety
/// `len` must be valid for writes; a non-null `buf` must be valid for writes
/// of as many bytes as `*len` said before the call (checked by the core).
pub(crate) unsafe fn write_output(output: Output, buf: *mut u8, len: *mut CK_ULONG) -> Result<()> {
    // SAFETY: per this function's contract.
    let len = unsafe { out(len) }?;
    match output {
        Output::Size(n) => {
            *len = n as CK_ULONG;
            if buf.is_null() {
                Ok(())
            } else {
                Err(CKR_BUFFER_TOO_SMALL)
            }
        }
        Output::Done(bytes) => {
            if buf.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            // SAFETY: the core only answers `Done` when the capacity the caller
            // declared in `*len` is at least `bytes.len()`; regions are distinct.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len()) };
            *len = bytes.len() as CK_ULONG;
            Ok(())
        }
    }
}

/// The type and parameter bytes of a `CK_MECHANISM`; `None` for NULL.
///
/// # Safety
/// A non-null `mechanism` must point to a valid `CK_MECHANISM` whose parameter
/// stays valid for `'a`.
pub(crate) unsafe fn mechanism<'a>(
    mechanism: *const CK_MECHANISM,
) -> Result<Option<(CK_MECHANISM_TYPE, &'a [u8])>> {
    // SAFETY: per this function's contract.
    let Some(m) = (unsafe { mechanism.as_ref() }) else {
        return Ok(None);
    };
    // SAFETY: the mechanism's parameter is `ulParameterLen` bytes at `pParameter`.
    let param = unsafe { input(m.pParameter.cast::<u8>().cast_const(), m.ulParameterLen) }
        .map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    Ok(Some((m.mechanism, param)))
}

/// A blank-padded fixed-size PKCS#11 text field.
pub(crate) fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [b' '; N];
    let bytes = text.as_bytes();
    let n = bytes.len().min(N);
    field[..n].copy_from_slice(&bytes[..n]);
    field
}

/// The library version as a `CK_VERSION`.
pub(crate) fn crate_version() -> CK_VERSION {
    let major = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    CK_VERSION { major, minor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_convention() {
        let mut len: CK_ULONG = 0;
        // SAFETY: `len` is a valid local.
        let r = unsafe { write_output(Output::Size(64), std::ptr::null_mut(), &mut len) };
        assert_eq!((r, len), (Ok(()), 64));
        let mut buf = [0u8; 4];
        len = 4;
        // SAFETY: `buf` and `len` are valid locals.
        let r = unsafe { write_output(Output::Size(64), buf.as_mut_ptr(), &mut len) };
        assert_eq!((r, len), (Err(CKR_BUFFER_TOO_SMALL), 64));
        len = 4;
        // SAFETY: `buf` holds 4 bytes.
        let r = unsafe { write_output(Output::Done(vec![1, 2, 3]), buf.as_mut_ptr(), &mut len) };
        assert_eq!((r, len, buf), (Ok(()), 3, [1, 2, 3, 0]));
    }

    #[test]
    fn null_inputs() {
        // SAFETY: NULL pointers are allowed by `input`.
        assert_eq!(unsafe { input::<u8>(std::ptr::null(), 0) }, Ok(&[][..]));
        // SAFETY: as above.
        let bad = unsafe { input::<u8>(std::ptr::null(), 3) };
        assert_eq!(bad, Err(CKR_ARGUMENTS_BAD));
        assert_eq!(guard("x", || panic!("boom")), CKR_GENERAL_ERROR);
        assert_eq!(padded::<4>("ab"), *b"ab  ");
        assert_eq!(padded::<2>("abc"), *b"ab");
    }
}
