//! The C ABI of SIGNATURE: OpenSSL's `extern "C"` entry points (each one guard, one
//! translation into a [`SigCtx`] call) and the two dispatch tables.

use std::ffi::{c_char, c_int, c_uchar, c_void};
use std::ptr;
use std::sync::Arc;

use super::ctx_params::{ec_gettable, ec_settable, rsa_gettable, rsa_settable};
use super::{Op, Pad, SigCtx};
use ks_common::intent::Salt;
use ks_common::ErrorKind;

use crate::core::{guard, report, PResult, ProvCtx, ProvError};
use crate::dispatch::DISPATCH_END;
use crate::entry;
use crate::ffi::*;

/// Borrows OpenSSL's ctx pointer.
///
/// # Safety
/// `ctx` must be null or a pointer made by `sig_newctx`/`sig_dupctx`.
unsafe fn sigctx<'a>(ctx: *mut c_void) -> Option<&'a mut SigCtx> {
    // SAFETY: forwarded contract.
    unsafe { (ctx as *mut SigCtx).as_mut() }
}

/// Runs `f` on the context, raising any error; 1 on success, 0 otherwise.
fn with_ctx(ctx: *mut c_void, func: &str, f: impl FnOnce(&mut SigCtx) -> PResult<c_int>) -> c_int {
    // SAFETY: OpenSSL passes our ctx.
    let Some(c) = (unsafe { sigctx(ctx) }) else {
        return 0;
    };
    let prov = Arc::clone(&c.prov);
    guard(Some(&prov), func, 0, || {
        let r = f(c);
        report(&prov, func, r).unwrap_or(0)
    })
}

unsafe extern "C" fn sig_newctx(provctx: *mut c_void, _propq: *const c_char) -> *mut c_void {
    guard(None, "signature_newctx", ptr::null_mut(), || {
        if provctx.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: provctx is the Arc<ProvCtx> pointer we returned from init;
        // take a new strong count for this ctx.
        let prov = unsafe {
            Arc::increment_strong_count(provctx as *const ProvCtx);
            Arc::from_raw(provctx as *const ProvCtx)
        };
        Box::into_raw(Box::new(SigCtx {
            prov,
            key: None,
            op: Op::None,
            hash: None,
            hasher: None,
            pad: Pad::Pkcs1,
            salt: Salt::AutoDigestMax,
            mgf1: None,
        })) as *mut c_void
    })
}

unsafe extern "C" fn sig_freectx(ctx: *mut c_void) {
    guard(None, "signature_freectx", (), || {
        if !ctx.is_null() {
            // SAFETY: made by Box::into_raw here; OpenSSL frees it once.
            drop(unsafe { Box::from_raw(ctx as *mut SigCtx) });
        }
    })
}

unsafe extern "C" fn sig_dupctx(ctx: *mut c_void) -> *mut c_void {
    guard(None, "signature_dupctx", ptr::null_mut(), || {
        // SAFETY: OpenSSL passes our ctx.
        match unsafe { sigctx(ctx) } {
            Some(c) => Box::into_raw(Box::new(c.clone())) as *mut c_void,
            None => ptr::null_mut(),
        }
    })
}

unsafe extern "C" fn sig_sign_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_sign_init", |c| {
        c.init(Op::Sign, provkey, params).map(|_| 1)
    })
}

unsafe extern "C" fn sig_verify_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_verify_init", |c| {
        c.init(Op::Verify, provkey, params).map(|_| 1)
    })
}

/// # Safety
/// `p` null (then `len` is 0) or readable for `len` bytes.
unsafe fn bytes<'a>(p: *const c_uchar, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: forwarded contract.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

unsafe extern "C" fn sig_sign(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    with_ctx(ctx, "signature_sign", |c| {
        // SAFETY: OpenSSL's buffers, as documented for OSSL_FUNC_signature_sign.
        unsafe { c.sign_digest(sig, siglen, sigsize, bytes(tbs, tbslen)) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_verify(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    with_ctx(ctx, "signature_verify", |c| {
        // SAFETY: OpenSSL's buffers, as documented.
        let (s, t) = unsafe { (bytes(sig, siglen), bytes(tbs, tbslen)) };
        Ok(c_int::from(c.verify_digest(s, t)?))
    })
}

unsafe extern "C" fn sig_digest_sign_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_digest_sign_init", |c| {
        c.digest_init(Op::DigestSign, mdname, provkey, params)
            .map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_verify_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_digest_verify_init", |c| {
        c.digest_init(Op::DigestVerify, mdname, provkey, params)
            .map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_update(
    ctx: *mut c_void,
    data: *const c_uchar,
    len: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_update", |c| {
        let h = c.hasher.as_mut().ok_or_else(|| {
            ProvError::new(ErrorKind::Internal, "digest update before digest init")
        })?;
        // SAFETY: OpenSSL's buffer of len bytes.
        h.update(unsafe { bytes(data, len) });
        Ok(1)
    })
}

unsafe extern "C" fn sig_digest_sign_final(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_sign_final", |c| {
        let digest = c
            .hasher
            .clone()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "digest final before digest init"))?
            .finalize();
        // SAFETY: OpenSSL's buffers, as documented.
        unsafe { c.sign_digest(sig, siglen, sigsize, &digest) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_verify_final(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_verify_final", |c| {
        let digest = c
            .hasher
            .clone()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "digest final before digest init"))?
            .finalize();
        // SAFETY: OpenSSL's buffer.
        Ok(c_int::from(
            c.verify_digest(unsafe { bytes(sig, siglen) }, &digest)?,
        ))
    })
}

unsafe extern "C" fn sig_get_ctx_params(ctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    with_ctx(ctx, "signature_get_ctx_params", |c| {
        // SAFETY: OpenSSL's terminated array.
        unsafe { c.get_params(params) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    with_ctx(ctx, "signature_set_ctx_params", |c| {
        if c.key.is_none() {
            return Ok(1);
        }
        // SAFETY: OpenSSL's terminated array.
        unsafe { c.set_params(params) }.map(|_| 1)
    })
}

macro_rules! signature_table {
    ($name:ident, $gettable:ident, $settable:ident) => {
        /// The dispatch table of one signature algorithm.
        pub static $name: [OSSL_DISPATCH; 18] = [
            entry!(
                OSSL_FUNC_SIGNATURE_NEWCTX,
                OSSL_FUNC_signature_newctx_fn,
                sig_newctx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_FREECTX,
                OSSL_FUNC_signature_freectx_fn,
                sig_freectx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DUPCTX,
                OSSL_FUNC_signature_dupctx_fn,
                sig_dupctx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SIGN_INIT,
                OSSL_FUNC_signature_sign_init_fn,
                sig_sign_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SIGN,
                OSSL_FUNC_signature_sign_fn,
                sig_sign
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_VERIFY_INIT,
                OSSL_FUNC_signature_verify_init_fn,
                sig_verify_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_VERIFY,
                OSSL_FUNC_signature_verify_fn,
                sig_verify
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
                OSSL_FUNC_signature_digest_sign_init_fn,
                sig_digest_sign_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
                OSSL_FUNC_signature_digest_sign_update_fn,
                sig_digest_update
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
                OSSL_FUNC_signature_digest_sign_final_fn,
                sig_digest_sign_final
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
                OSSL_FUNC_signature_digest_verify_init_fn,
                sig_digest_verify_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
                OSSL_FUNC_signature_digest_verify_update_fn,
                sig_digest_update
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
                OSSL_FUNC_signature_digest_verify_final_fn,
                sig_digest_verify_final
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
                OSSL_FUNC_signature_get_ctx_params_fn,
                sig_get_ctx_params
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_gettable_ctx_params_fn,
                $gettable
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
                OSSL_FUNC_signature_set_ctx_params_fn,
                sig_set_ctx_params
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_settable_ctx_params_fn,
                $settable
            ),
            DISPATCH_END,
        ];
    };
}

signature_table!(RSA_SIGNATURE, rsa_gettable, rsa_settable);
signature_table!(ECDSA_SIGNATURE, ec_gettable, ec_settable);
