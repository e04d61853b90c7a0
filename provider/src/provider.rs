//! The provider entry point and its base functions.

use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::Arc;

use crate::core::{guard, ProvCtx, REASON_STRINGS};
use crate::dispatch::{algorithm, Algorithms, ALGORITHM_END, DISPATCH_END};
use crate::entry;
use crate::ffi::*;
use crate::params::{self, describe, ParamTable, END};
use crate::{keymgmt, signature, store};

const PROPS: &[u8] = b"provider=keyserver\0";

static KEYMGMTS: Algorithms<4> = Algorithms([
    algorithm(
        b"RSA:rsaEncryption:1.2.840.113549.1.1.1\0",
        PROPS,
        &keymgmt::RSA_KEYMGMT,
        b"KeyServer RSA key (private half on KeyServer)\0",
    ),
    algorithm(
        b"RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10\0",
        PROPS,
        &keymgmt::RSA_PSS_KEYMGMT,
        b"KeyServer RSA-PSS key (private half on KeyServer)\0",
    ),
    algorithm(
        b"EC:id-ecPublicKey:1.2.840.10045.2.1\0",
        PROPS,
        &keymgmt::EC_KEYMGMT,
        b"KeyServer EC key (private half on KeyServer)\0",
    ),
    ALGORITHM_END,
]);

static SIGNATURES: Algorithms<3> = Algorithms([
    algorithm(
        b"RSA:rsaEncryption:1.2.840.113549.1.1.1\0",
        PROPS,
        &signature::RSA_SIGNATURE,
        b"RSA PKCS#1 v1.5 and PSS signatures made by KeyServer\0",
    ),
    algorithm(
        b"ECDSA\0",
        PROPS,
        &signature::ECDSA_SIGNATURE,
        b"ECDSA signatures made by KeyServer\0",
    ),
    ALGORITHM_END,
]);

static STORES: Algorithms<2> = Algorithms([
    algorithm(
        b"ks\0",
        PROPS,
        &store::KS_STORE,
        b"KeyServer keys and certificates (ks: URIs)\0",
    ),
    ALGORITHM_END,
]);

unsafe extern "C" fn query_operation(
    _provctx: *mut c_void,
    operation_id: c_int,
    no_cache: *mut c_int,
) -> *const OSSL_ALGORITHM {
    if !no_cache.is_null() {
        // SAFETY: OpenSSL passes a writable int.
        unsafe { *no_cache = 0 };
    }
    match operation_id as u32 {
        OSSL_OP_KEYMGMT => KEYMGMTS.0.as_ptr(),
        OSSL_OP_SIGNATURE => SIGNATURES.0.as_ptr(),
        OSSL_OP_STORE => STORES.0.as_ptr(),
        _ => ptr::null(),
    }
}

static GETTABLE: ParamTable<5> = ParamTable([
    describe(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR),
    describe(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR),
    describe(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR),
    describe(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER),
    END,
]);

unsafe extern "C" fn gettable_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    GETTABLE.as_ptr()
}

/// Sets a UTF8_PTR or UTF8_STRING parameter to a static string.
fn set_static_str(p: &params::Param, s: &'static std::ffi::CStr) -> bool {
    if p.data_type() == OSSL_PARAM_UTF8_PTR {
        p.set_utf8_ptr(s)
    } else {
        p.set_str(s.to_str().unwrap_or(""))
    }
}

unsafe extern "C" fn get_params(_provctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    guard(None, "provider_get_params", 0, || {
        // SAFETY: OpenSSL's terminated array.
        for p in unsafe { params::iter(params) } {
            let ok = match p.key() {
                "name" => set_static_str(&p, c"KeyServer remote-signing provider"),
                "version" => set_static_str(&p, VERSION),
                "buildinfo" => set_static_str(&p, VERSION),
                "status" => p.set_i64(1),
                _ => true,
            };
            if !ok {
                return 0;
            }
        }
        1
    })
}

const VERSION: &std::ffi::CStr = {
    match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => c"0",
    }
};

#[repr(transparent)]
struct Items<const N: usize>([OSSL_ITEM; N]);
// SAFETY: pointers to static, immutable strings only.
unsafe impl<const N: usize> Sync for Items<N> {}

static REASONS: Items<{ REASON_STRINGS.len() + 1 }> = {
    let mut items = [OSSL_ITEM {
        id: 0,
        ptr: ptr::null_mut(),
    }; REASON_STRINGS.len() + 1];
    let mut i = 0;
    while i < REASON_STRINGS.len() {
        items[i] = OSSL_ITEM {
            id: REASON_STRINGS[i].0.code(),
            ptr: REASON_STRINGS[i].1.as_ptr() as *mut c_void,
        };
        i += 1;
    }
    Items(items)
};

unsafe extern "C" fn get_reason_strings(_provctx: *mut c_void) -> *const OSSL_ITEM {
    REASONS.0.as_ptr()
}

unsafe extern "C" fn teardown(provctx: *mut c_void) {
    guard(None, "provider_teardown", (), || {
        if !provctx.is_null() {
            // SAFETY: the pointer came from Arc::into_raw in OSSL_provider_init
            // and the core tears each instance down once.
            drop(unsafe { Arc::from_raw(provctx as *const ProvCtx) });
        }
    })
}

static PROVIDER_FUNCTIONS: [OSSL_DISPATCH; 6] = [
    entry!(
        OSSL_FUNC_PROVIDER_TEARDOWN,
        OSSL_FUNC_provider_teardown_fn,
        teardown
    ),
    entry!(
        OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
        OSSL_FUNC_provider_gettable_params_fn,
        gettable_params
    ),
    entry!(
        OSSL_FUNC_PROVIDER_GET_PARAMS,
        OSSL_FUNC_provider_get_params_fn,
        get_params
    ),
    entry!(
        OSSL_FUNC_PROVIDER_QUERY_OPERATION,
        OSSL_FUNC_provider_query_operation_fn,
        query_operation
    ),
    entry!(
        OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
        OSSL_FUNC_provider_get_reason_strings_fn,
        get_reason_strings
    ),
    DISPATCH_END,
];

/// The entry point OpenSSL calls when it loads `keyserver.so`. It only reads
/// the configuration; KeyServer is contacted on first use.
///
/// # Safety
/// Called by OpenSSL's core with valid arguments per provider-base(7).
#[no_mangle]
pub unsafe extern "C" fn OSSL_provider_init(
    handle: *const OSSL_CORE_HANDLE,
    in_: *const OSSL_DISPATCH,
    out: *mut *const OSSL_DISPATCH,
    provctx: *mut *mut c_void,
) -> c_int {
    guard(None, "OSSL_provider_init", 0, || {
        if out.is_null() || provctx.is_null() {
            return 0;
        }
        // SAFETY: the core's handle and dispatch table, as documented.
        let ctx = unsafe { ProvCtx::from_core(handle, in_) };
        // SAFETY: out and provctx are writable pointers from the core.
        unsafe {
            *provctx = Arc::into_raw(Arc::new(ctx)) as *mut c_void;
            *out = PROVIDER_FUNCTIONS.as_ptr();
        }
        1
    })
}
