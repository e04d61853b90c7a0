//! OSSL_PARAM arrays as OpenSSL hands them to the provider, through its real dispatch
//! tables (no libcrypto needed): KEYMGMT import/get_params/has, and the SIGNATURE context's
//! verify_init/set_ctx_params/get_ctx_params/digest_verify_init with the dev server's key1
//! and key2 public keys.
//!
//! Input: mode u8 (bits 0-1: RSA, RSA-PSS, EC, EC; bit 2: selection includes the private
//! key), then entries: name index u8 (see NAMES; past the end: the name "x<index>"), type
//! index u8 (see TYPES), data length u8 (0: the rest of the input), data.
#![no_main]

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, OnceLock};

use keyserver::core::ProvCtx;
use keyserver::ffi::*;
use keyserver::params::ParamBuilder;
use ks_common::{KeyEntry, PublicKey};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 20] = [
    "digest",
    "pad-mode",
    "saltlen",
    "mgf1-digest",
    "n",
    "e",
    "group",
    "pub",
    "encoded-pub-key",
    "d",
    "priv",
    "properties",
    "digest-size",
    "algorithm-id",
    "bits",
    "security-bits",
    "max-size",
    "default-digest",
    "mandatory-digest",
    "mgf1-properties",
];
const TYPES: [u32; 7] = [
    OSSL_PARAM_INTEGER,
    OSSL_PARAM_UNSIGNED_INTEGER,
    OSSL_PARAM_UTF8_STRING,
    OSSL_PARAM_OCTET_STRING,
    OSSL_PARAM_UTF8_PTR,
    OSSL_PARAM_OCTET_PTR,
    OSSL_PARAM_REAL,
];

type Generic = Option<unsafe extern "C" fn()>;

/// The function with `id` in a dispatch table, as type `F`.
fn lookup<F: Copy>(table: &[OSSL_DISPATCH], id: u32) -> F {
    let entry = table
        .iter()
        .find(|d| d.function_id as u32 == id)
        .unwrap_or_else(|| panic!("function {id} missing from the table"));
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<Generic>());
    // SAFETY: the table's entry for `id` has the type OpenSSL documents for it, which is `F`
    // (checked by the provider's own entry! macro); both are one function pointer.
    unsafe { std::mem::transmute_copy::<Generic, F>(&entry.function) }
}

struct Setup {
    provctx: usize,
    /// Imported public keys: RSA (key1), RSA-PSS (key1), EC (key2).
    keys: [usize; 3],
}

fn keymgmt(kind: usize) -> &'static [OSSL_DISPATCH] {
    match kind {
        0 => &keyserver::keymgmt::RSA_KEYMGMT,
        1 => &keyserver::keymgmt::RSA_PSS_KEYMGMT,
        _ => &keyserver::keymgmt::EC_KEYMGMT,
    }
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        // SAFETY: a null handle and table give a context with no core (errors are dropped).
        let prov = Arc::new(unsafe { ProvCtx::from_core(std::ptr::null(), std::ptr::null()) });
        let provctx = Arc::into_raw(prov) as *mut c_void;
        let rsa =
            KeyEntry::from_pem("key1", "", include_str!("../fixtures/key1.pem")).expect("key1");
        let ec =
            KeyEntry::from_pem("key2", "", include_str!("../fixtures/key2.pem")).expect("key2");
        let mut keys = [0usize; 3];
        for (kind, slot) in keys.iter_mut().enumerate() {
            // The array points into the builder: both live until the import is done.
            let mut builder = match (kind, &rsa.public_key, &ec.public_key) {
                (0 | 1, PublicKey::Rsa { n, e }, _) => ParamBuilder::new()
                    .bn_be(OSSL_PKEY_PARAM_RSA_N, n)
                    .bn_be(OSSL_PKEY_PARAM_RSA_E, e),
                (_, _, PublicKey::Ec { curve, point }) => ParamBuilder::new()
                    .utf8(OSSL_PKEY_PARAM_GROUP_NAME, curve.openssl_group())
                    .octets(OSSL_PKEY_PARAM_PUB_KEY, point),
                _ => panic!("fixture key types"),
            };
            let mut params = builder.build();
            let table = keymgmt(kind);
            let new: OSSL_FUNC_keymgmt_new_fn = lookup(table, OSSL_FUNC_KEYMGMT_NEW);
            let import: OSSL_FUNC_keymgmt_import_fn = lookup(table, OSSL_FUNC_KEYMGMT_IMPORT);
            // SAFETY: the provider's own functions with a context and terminated params.
            unsafe {
                let kd = new.expect("new")(provctx);
                assert!(!kd.is_null());
                let sel = OSSL_KEYMGMT_SELECT_PUBLIC_KEY as c_int;
                assert_eq!(import.expect("import")(kd, sel, params.as_mut_ptr()), 1);
                *slot = kd as usize;
            }
        }
        Setup {
            provctx: provctx as usize,
            keys,
        }
    })
}

/// The fuzzed array and the buffers it points into (kept alive together).
struct Params {
    array: Vec<OSSL_PARAM>,
    _names: Vec<CString>,
    _buffers: Vec<Vec<u8>>,
    _pointers: Vec<Box<*const c_void>>,
}

fn build(mut data: &[u8]) -> Params {
    let mut names = Vec::new();
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut pointers: Vec<Box<*const c_void>> = Vec::new();
    let mut array = Vec::new();
    while let [name, ty, len, rest @ ..] = data {
        let n = if *len == 0 {
            rest.len()
        } else {
            usize::from(*len).min(rest.len())
        };
        let (value, tail) = rest.split_at(n);
        data = tail;
        let name = match NAMES.get(usize::from(*name)) {
            Some(s) => CString::new(*s).expect("no NUL"),
            None => CString::new(format!("x{name}")).expect("no NUL"),
        };
        let data_type = TYPES[usize::from(*ty) % TYPES.len()];
        let mut buf = value.to_vec();
        let (ptr, size) = match data_type {
            OSSL_PARAM_UTF8_PTR | OSSL_PARAM_OCTET_PTR => {
                // The parameter holds a pointer to the bytes (NUL-terminated for UTF-8).
                let size = buf.len();
                buf.push(0);
                let target = Box::new(buf.as_ptr() as *const c_void);
                let p = &*target as *const *const c_void as *mut c_void;
                pointers.push(target);
                (p, size)
            }
            _ => (buf.as_mut_ptr() as *mut c_void, buf.len()),
        };
        array.push(OSSL_PARAM {
            key: name.as_ptr(),
            data_type,
            data: ptr,
            data_size: size,
            return_size: usize::MAX,
        });
        names.push(name);
        buffers.push(buf);
    }
    array.push(keyserver::params::END);
    Params {
        array,
        _names: names,
        _buffers: buffers,
        _pointers: pointers,
    }
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let provctx = s.provctx as *mut c_void;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let kind = usize::from(mode & 3).min(2);
    let selection = if mode & 4 != 0 {
        OSSL_KEYMGMT_SELECT_ALL
    } else {
        OSSL_KEYMGMT_SELECT_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS
    } as c_int;
    let mut p = build(rest);
    let params = p.array.as_mut_ptr();

    let km = keymgmt(kind);
    let new: OSSL_FUNC_keymgmt_new_fn = lookup(km, OSSL_FUNC_KEYMGMT_NEW);
    let import: OSSL_FUNC_keymgmt_import_fn = lookup(km, OSSL_FUNC_KEYMGMT_IMPORT);
    let get: OSSL_FUNC_keymgmt_get_params_fn = lookup(km, OSSL_FUNC_KEYMGMT_GET_PARAMS);
    let has: OSSL_FUNC_keymgmt_has_fn = lookup(km, OSSL_FUNC_KEYMGMT_HAS);
    let free: OSSL_FUNC_keymgmt_free_fn = lookup(km, OSSL_FUNC_KEYMGMT_FREE);
    // SAFETY: the provider's functions, called as OpenSSL calls them: its own key data, a
    // terminated parameter array whose entries point at data_size bytes.
    unsafe {
        let kd = new.expect("new")(provctx);
        if import.expect("import")(kd, selection, params) == 1 {
            let _ = has.expect("has")(kd, selection);
            let _ = get.expect("get_params")(kd, params);
        }
        free.expect("free")(kd);
        // The real key's parameters answered into the fuzzed array.
        let _ = get.expect("get_params")(s.keys[kind] as *mut c_void, params);
    }

    let sig: &[OSSL_DISPATCH] = if kind == 2 {
        &keyserver::signature::ECDSA_SIGNATURE
    } else {
        &keyserver::signature::RSA_SIGNATURE
    };
    let newctx: OSSL_FUNC_signature_newctx_fn = lookup(sig, OSSL_FUNC_SIGNATURE_NEWCTX);
    let freectx: OSSL_FUNC_signature_freectx_fn = lookup(sig, OSSL_FUNC_SIGNATURE_FREECTX);
    let dupctx: OSSL_FUNC_signature_dupctx_fn = lookup(sig, OSSL_FUNC_SIGNATURE_DUPCTX);
    let sign_init: OSSL_FUNC_signature_sign_init_fn = lookup(sig, OSSL_FUNC_SIGNATURE_SIGN_INIT);
    let verify_init: OSSL_FUNC_signature_verify_init_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_VERIFY_INIT);
    let set: OSSL_FUNC_signature_set_ctx_params_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS);
    let get_ctx: OSSL_FUNC_signature_get_ctx_params_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS);
    let dv_init: OSSL_FUNC_signature_digest_verify_init_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT);
    let dv_update: OSSL_FUNC_signature_digest_verify_update_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE);
    let dv_final: OSSL_FUNC_signature_digest_verify_final_fn =
        lookup(sig, OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL);
    let key = s.keys[kind] as *mut c_void;
    // SAFETY: as above; every context made here is freed here.
    unsafe {
        let ctx = newctx.expect("newctx")(provctx, std::ptr::null());
        // A public key cannot sign: refused whatever the parameters say.
        assert_eq!(sign_init.expect("sign_init")(ctx, key, params), 0);
        if verify_init.expect("verify_init")(ctx, key, params) == 1 {
            let _ = set.expect("set_ctx_params")(ctx, params);
            let _ = get_ctx.expect("get_ctx_params")(ctx, params);
            let dup = dupctx.expect("dupctx")(ctx);
            freectx.expect("freectx")(dup);
        }
        freectx.expect("freectx")(ctx);

        let ctx = newctx.expect("newctx")(provctx, std::ptr::null());
        for md in [c"SHA2-256".as_ptr(), std::ptr::null::<c_char>()] {
            if dv_init.expect("digest_verify_init")(ctx, md, key, params) == 1 {
                let _ = get_ctx.expect("get_ctx_params")(ctx, params);
                let _ = dv_update.expect("update")(ctx, rest.as_ptr(), rest.len());
                let fake = [0x30u8, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];
                let _ = dv_final.expect("final")(ctx, fake.as_ptr(), fake.len());
            }
        }
        freectx.expect("freectx")(ctx);
    }
});
