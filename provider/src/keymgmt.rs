//! KEYMGMT for RSA, RSA-PSS and EC: keys by reference (private half on
//! KeyServer) with their public parts local, importable and exportable so a
//! `ks:` key and a certificate's key compare equal in either direction.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use ks_common::{EcCurve, PublicKey};

use crate::core::guard;
use crate::dispatch::DISPATCH_END;
use crate::entry;
use crate::ffi::*;
use crate::key::{KeyData, KeyKind, KeyRef};
use crate::params::{self, describe, ParamBuilder, ParamTable, END};

/// The key type a keymgmt table is for, as a type: each table's functions are instantiated
/// with one of [`RsaKeys`], [`RsaPssKeys`], [`EcKeys`], so no value can stand for a wrong type.
trait Kind {
    /// The key kind of this table.
    const KIND: KeyKind;
}

/// rsaEncryption keys.
struct RsaKeys;
/// RSASSA-PSS keys.
struct RsaPssKeys;
/// EC keys.
struct EcKeys;

impl Kind for RsaKeys {
    const KIND: KeyKind = KeyKind::Rsa;
}
impl Kind for RsaPssKeys {
    const KIND: KeyKind = KeyKind::RsaPss;
}
impl Kind for EcKeys {
    const KIND: KeyKind = KeyKind::Ec;
}

fn kind_of<K: Kind>() -> KeyKind {
    K::KIND
}

const SEL_PRIVATE: c_int = OSSL_KEYMGMT_SELECT_PRIVATE_KEY as c_int;
const SEL_PUBLIC: c_int = OSSL_KEYMGMT_SELECT_PUBLIC_KEY as c_int;
const SEL_DOMAIN: c_int = OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS as c_int;

/// Borrows OpenSSL's keydata pointer.
///
/// # Safety
/// `p` must be null or a pointer returned by this module's new/load/dup.
unsafe fn keydata<'a>(p: *const c_void) -> Option<&'a KeyData> {
    // SAFETY: forwarded contract.
    unsafe { (p as *const KeyData).as_ref() }
}

fn into_raw(k: KeyData) -> *mut c_void {
    Box::into_raw(Box::new(k)) as *mut c_void
}

unsafe extern "C" fn km_new<K: Kind>(_provctx: *mut c_void) -> *mut c_void {
    guard(None, "keymgmt_new", ptr::null_mut(), || {
        into_raw(KeyData {
            kind: kind_of::<K>(),
            public: None,
            remote: None,
        })
    })
}

unsafe extern "C" fn km_free(keydata: *mut c_void) {
    guard(None, "keymgmt_free", (), || {
        if !keydata.is_null() {
            // SAFETY: keydata came from Box::into_raw in this module and
            // OpenSSL frees it exactly once.
            drop(unsafe { Box::from_raw(keydata as *mut KeyData) });
        }
    })
}

unsafe extern "C" fn km_load<K: Kind>(reference: *const c_void, size: usize) -> *mut c_void {
    guard(None, "keymgmt_load", ptr::null_mut(), || {
        // SAFETY: OpenSSL passes the reference bytes our store produced,
        // during the store's object callback.
        match unsafe { KeyRef::load(reference, size) } {
            Some(k)
                if k.kind == kind_of::<K>()
                    || (K::KIND == KeyKind::RsaPss && k.kind == KeyKind::Rsa) =>
            {
                into_raw(KeyData {
                    kind: kind_of::<K>(),
                    ..k
                })
            }
            _ => ptr::null_mut(),
        }
    })
}

unsafe extern "C" fn km_has(keydata_p: *const c_void, selection: c_int) -> c_int {
    guard(None, "keymgmt_has", 0, || {
        // SAFETY: OpenSSL passes our keydata.
        let Some(k) = (unsafe { keydata(keydata_p) }) else {
            return 0;
        };
        let mut ok = true;
        if selection & SEL_PUBLIC != 0 {
            ok &= k.public.is_some();
        }
        if selection & SEL_PRIVATE != 0 {
            ok &= k.remote.is_some();
        }
        if selection & SEL_DOMAIN != 0 && k.kind == KeyKind::Ec {
            ok &= k.public.is_some();
        }
        c_int::from(ok)
    })
}

unsafe extern "C" fn km_match(a: *const c_void, b: *const c_void, selection: c_int) -> c_int {
    guard(None, "keymgmt_match", 0, || {
        // SAFETY: OpenSSL passes two keydata of this keymgmt.
        let (Some(a), Some(b)) = (unsafe { keydata(a) }, unsafe { keydata(b) }) else {
            return 0;
        };
        let (Some(pa), Some(pb)) = (&a.public, &b.public) else {
            return 0;
        };
        let mut ok = true;
        if selection & SEL_DOMAIN != 0 {
            ok &= match (pa, pb) {
                (PublicKey::Ec { curve: ca, .. }, PublicKey::Ec { curve: cb, .. }) => ca == cb,
                (PublicKey::Rsa { .. }, PublicKey::Rsa { .. }) => true,
                _ => false,
            };
        }
        // The private half is never here: a key pair matches when the public halves do.
        if selection & (SEL_PUBLIC | SEL_PRIVATE) != 0 {
            ok &= pa == pb;
        }
        c_int::from(ok)
    })
}

/// Reads the public half of a key from import parameters.
///
/// # Safety
/// `params` must be a terminated OSSL_PARAM array.
unsafe fn public_from_params(kind: KeyKind, params: *const OSSL_PARAM) -> Option<PublicKey> {
    // SAFETY: forwarded contract.
    unsafe {
        match kind {
            KeyKind::Rsa | KeyKind::RsaPss => {
                let n = params::locate(params, OSSL_PKEY_PARAM_RSA_N)?.get_bn_be()?;
                let e = params::locate(params, OSSL_PKEY_PARAM_RSA_E)?.get_bn_be()?;
                if n.is_empty() || e.is_empty() {
                    return None;
                }
                Some(PublicKey::Rsa { n, e })
            }
            KeyKind::Ec => {
                let group = params::locate(params, OSSL_PKEY_PARAM_GROUP_NAME)?.get_str()?;
                let curve = EcCurve::from_name(&group)?;
                let point = params::locate(params, OSSL_PKEY_PARAM_PUB_KEY)
                    .or_else(|| params::locate(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY))?
                    .get_octets()?;
                // Only uncompressed points (what OpenSSL exports by default).
                if point.len() != 1 + 2 * curve.field_len() || point[0] != 4 {
                    return None;
                }
                Some(PublicKey::Ec { curve, point })
            }
        }
    }
}

unsafe extern "C" fn km_import<K: Kind>(
    keydata_p: *mut c_void,
    selection: c_int,
    params: *const OSSL_PARAM,
) -> c_int {
    guard(None, "keymgmt_import", 0, || {
        // SAFETY: OpenSSL passes our keydata, made by km_new.
        let Some(k) = (unsafe { (keydata_p as *mut KeyData).as_mut() }) else {
            return 0;
        };
        // This provider never holds private key material: refuse it so that
        // OpenSSL keeps such keys in the provider that can use them.
        if selection & SEL_PRIVATE != 0 {
            // SAFETY: params is a terminated array from OpenSSL.
            let has_private = unsafe {
                params::locate(params, OSSL_PKEY_PARAM_RSA_D).is_some()
                    || params::locate(params, OSSL_PKEY_PARAM_PRIV_KEY).is_some()
            };
            if has_private {
                return 0;
            }
        }
        if selection & (SEL_PUBLIC | SEL_PRIVATE) == 0 {
            return 1;
        }
        // SAFETY: as above.
        match unsafe { public_from_params(kind_of::<K>(), params) } {
            Some(p) => {
                k.public = Some(p);
                1
            }
            None => 0,
        }
    })
}

static RSA_KEY_TYPES: ParamTable<3> = ParamTable([
    describe(OSSL_PKEY_PARAM_RSA_N, OSSL_PARAM_UNSIGNED_INTEGER),
    describe(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    END,
]);
static EC_KEY_TYPES: ParamTable<3> = ParamTable([
    describe(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_PKEY_PARAM_PUB_KEY, OSSL_PARAM_OCTET_STRING),
    END,
]);
static EC_DOMAIN_TYPES: ParamTable<2> = ParamTable([
    describe(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    END,
]);
static NO_TYPES: ParamTable<1> = ParamTable([END]);

fn key_types<K: Kind>(selection: c_int) -> *const OSSL_PARAM {
    if selection & (SEL_PUBLIC | SEL_PRIVATE) != 0 {
        if K::KIND == KeyKind::Ec {
            EC_KEY_TYPES.as_ptr()
        } else {
            RSA_KEY_TYPES.as_ptr()
        }
    } else if selection & SEL_DOMAIN != 0 && K::KIND == KeyKind::Ec {
        EC_DOMAIN_TYPES.as_ptr()
    } else {
        NO_TYPES.as_ptr()
    }
}

unsafe extern "C" fn km_import_types<K: Kind>(selection: c_int) -> *const OSSL_PARAM {
    key_types::<K>(selection)
}

unsafe extern "C" fn km_export_types<K: Kind>(selection: c_int) -> *const OSSL_PARAM {
    key_types::<K>(selection)
}

unsafe extern "C" fn km_export(
    keydata_p: *mut c_void,
    selection: c_int,
    cb: OSSL_CALLBACK,
    cbarg: *mut c_void,
) -> c_int {
    guard(None, "keymgmt_export", 0, || {
        // SAFETY: OpenSSL passes our keydata.
        let Some(k) = (unsafe { keydata(keydata_p) }) else {
            return 0;
        };
        let (Some(cb), Some(public)) = (cb, &k.public) else {
            return 0;
        };
        // The private half cannot leave KeyServer. Refusing an export that
        // asks for it keeps OpenSSL from moving a key reference into another
        // provider (which would then try, and fail, to sign with it); public
        // parts and domain parameters can go anywhere.
        if selection & SEL_PRIVATE != 0 && k.remote.is_some() {
            return 0;
        }
        if selection & (SEL_PUBLIC | SEL_DOMAIN) == 0 {
            return 0;
        }
        let mut b = ParamBuilder::new();
        match public {
            PublicKey::Rsa { n, e } => {
                if selection & SEL_PUBLIC != 0 {
                    b = b
                        .bn_be(OSSL_PKEY_PARAM_RSA_N, n)
                        .bn_be(OSSL_PKEY_PARAM_RSA_E, e);
                }
            }
            PublicKey::Ec { curve, point } => {
                b = b.utf8(OSSL_PKEY_PARAM_GROUP_NAME, curve.openssl_group());
                if selection & SEL_PUBLIC != 0 {
                    b = b.octets(OSSL_PKEY_PARAM_PUB_KEY, point);
                }
            }
        }
        let arr = b.build();
        // SAFETY: `arr` is terminated and outlives the callback.
        unsafe { cb(arr.as_ptr(), cbarg) }
    })
}

unsafe extern "C" fn km_get_params(keydata_p: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    guard(None, "keymgmt_get_params", 0, || {
        // SAFETY: OpenSSL passes our keydata.
        let Some(k) = (unsafe { keydata(keydata_p) }) else {
            return 0;
        };
        // SAFETY: params is a terminated array from OpenSSL.
        for p in unsafe { params::iter(params) } {
            let ok = match (p.key(), &k.public) {
                ("bits", _) => p.set_i64(i64::from(k.bits())),
                ("security-bits", _) => p.set_i64(i64::from(k.security_bits())),
                ("max-size", _) => p.set_i64(k.max_size() as i64),
                ("default-digest", _) => p.set_str("SHA256"),
                ("n", Some(PublicKey::Rsa { n, .. })) => p.set_bn_be(n),
                ("e", Some(PublicKey::Rsa { e, .. })) => p.set_bn_be(e),
                ("group", Some(PublicKey::Ec { curve, .. })) => p.set_str(curve.openssl_group()),
                ("pub" | "encoded-pub-key", Some(PublicKey::Ec { point, .. })) => {
                    p.set_octets(point)
                }
                ("point-format", Some(PublicKey::Ec { .. })) => p.set_str("uncompressed"),
                ("encoding", Some(PublicKey::Ec { .. })) => p.set_str("named_curve"),
                ("field-type", Some(PublicKey::Ec { .. })) => p.set_str("prime-field"),
                _ => true,
            };
            if !ok {
                return 0;
            }
        }
        1
    })
}

static RSA_GETTABLE: ParamTable<7> = ParamTable([
    describe(OSSL_PKEY_PARAM_BITS, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_MAX_SIZE, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_DEFAULT_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_PKEY_PARAM_RSA_N, OSSL_PARAM_UNSIGNED_INTEGER),
    describe(OSSL_PKEY_PARAM_RSA_E, OSSL_PARAM_UNSIGNED_INTEGER),
    END,
]);
static EC_GETTABLE: ParamTable<11> = ParamTable([
    describe(OSSL_PKEY_PARAM_BITS, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_MAX_SIZE, OSSL_PARAM_INTEGER),
    describe(OSSL_PKEY_PARAM_DEFAULT_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_PKEY_PARAM_GROUP_NAME, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_PKEY_PARAM_PUB_KEY, OSSL_PARAM_OCTET_STRING),
    describe(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, OSSL_PARAM_OCTET_STRING),
    describe(
        OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
        OSSL_PARAM_UTF8_STRING,
    ),
    describe(OSSL_PKEY_PARAM_EC_ENCODING, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_PKEY_PARAM_EC_FIELD_TYPE, OSSL_PARAM_UTF8_STRING),
    END,
]);

unsafe extern "C" fn km_gettable_params<K: Kind>(_provctx: *mut c_void) -> *const OSSL_PARAM {
    if K::KIND == KeyKind::Ec {
        EC_GETTABLE.as_ptr()
    } else {
        RSA_GETTABLE.as_ptr()
    }
}

unsafe extern "C" fn km_query_operation_name<K: Kind>(operation_id: c_int) -> *const c_char {
    if operation_id as u32 == OSSL_OP_SIGNATURE {
        if K::KIND == KeyKind::Ec {
            return c"ECDSA".as_ptr();
        }
        return c"RSA".as_ptr();
    }
    ptr::null()
}

unsafe extern "C" fn km_dup(from: *const c_void, selection: c_int) -> *mut c_void {
    guard(None, "keymgmt_dup", ptr::null_mut(), || {
        // SAFETY: OpenSSL passes our keydata.
        let Some(k) = (unsafe { keydata(from) }) else {
            return ptr::null_mut();
        };
        let mut copy = k.clone();
        if selection & SEL_PRIVATE == 0 {
            copy.remote = None;
        }
        if selection & (SEL_PUBLIC | SEL_PRIVATE) == 0 && k.kind != KeyKind::Ec {
            copy.public = None;
        }
        into_raw(copy)
    })
}

macro_rules! keymgmt_table {
    ($name:ident, $k:ty) => {
        /// The dispatch table of one key type.
        pub static $name: [OSSL_DISPATCH; 14] = [
            entry!(
                OSSL_FUNC_KEYMGMT_NEW,
                OSSL_FUNC_keymgmt_new_fn,
                km_new::<$k>
            ),
            entry!(OSSL_FUNC_KEYMGMT_FREE, OSSL_FUNC_keymgmt_free_fn, km_free),
            entry!(
                OSSL_FUNC_KEYMGMT_LOAD,
                OSSL_FUNC_keymgmt_load_fn,
                km_load::<$k>
            ),
            entry!(OSSL_FUNC_KEYMGMT_HAS, OSSL_FUNC_keymgmt_has_fn, km_has),
            entry!(
                OSSL_FUNC_KEYMGMT_MATCH,
                OSSL_FUNC_keymgmt_match_fn,
                km_match
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_IMPORT,
                OSSL_FUNC_keymgmt_import_fn,
                km_import::<$k>
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_IMPORT_TYPES,
                OSSL_FUNC_keymgmt_import_types_fn,
                km_import_types::<$k>
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_EXPORT,
                OSSL_FUNC_keymgmt_export_fn,
                km_export
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
                OSSL_FUNC_keymgmt_export_types_fn,
                km_export_types::<$k>
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_GET_PARAMS,
                OSSL_FUNC_keymgmt_get_params_fn,
                km_get_params
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,
                OSSL_FUNC_keymgmt_gettable_params_fn,
                km_gettable_params::<$k>
            ),
            entry!(
                OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
                OSSL_FUNC_keymgmt_query_operation_name_fn,
                km_query_operation_name::<$k>
            ),
            entry!(OSSL_FUNC_KEYMGMT_DUP, OSSL_FUNC_keymgmt_dup_fn, km_dup),
            DISPATCH_END,
        ];
    };
}

keymgmt_table!(RSA_KEYMGMT, RsaKeys);
keymgmt_table!(RSA_PSS_KEYMGMT, RsaPssKeys);
keymgmt_table!(EC_KEYMGMT, EcKeys);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::core::ProvCtx;
    use crate::key::Remote;

    fn ec_public() -> PublicKey {
        let mut point = vec![4u8];
        point.extend((0..64).map(|i| i as u8));
        PublicKey::Ec {
            curve: EcCurve::P256,
            point,
        }
    }

    fn reference(public: PublicKey) -> KeyData {
        let entry = crate::key::test_entry("key2", public.clone());
        let remote = Arc::new(Remote {
            prov: Arc::new(ProvCtx::detached(Default::default())),
            entry: Arc::new(entry),
        });
        let r = KeyRef::new(&remote, true);
        // SAFETY: the reference points at `remote`, alive for the call.
        unsafe { KeyRef::load(r.as_bytes().as_ptr() as *const c_void, r.as_bytes().len()) }
            .expect("our own reference loads")
    }

    unsafe extern "C" fn import_into(params: *const OSSL_PARAM, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the keydata pointer the test passes.
        unsafe { km_import::<EcKeys>(arg, SEL_PUBLIC | SEL_DOMAIN, params) }
    }

    #[test]
    fn references_have_a_private_half_and_never_export_it() {
        let key = into_raw(reference(ec_public()));
        // SAFETY: `key` and `copy` are keydata made by this module; each is freed once.
        unsafe {
            assert_eq!(km_has(key, SEL_PRIVATE | SEL_PUBLIC), 1);
            let copy = km_new::<EcKeys>(ptr::null_mut());
            assert_eq!(km_has(copy, SEL_PUBLIC), 0);
            // Asking for the private half fails; the public half exports.
            assert_eq!(
                km_export(key, SEL_PRIVATE | SEL_PUBLIC, Some(import_into), copy),
                0
            );
            assert_eq!(
                km_export(key, SEL_PUBLIC | SEL_DOMAIN, Some(import_into), copy),
                1
            );
            assert_eq!(km_has(copy, SEL_PUBLIC), 1);
            assert_eq!(
                km_has(copy, SEL_PRIVATE),
                0,
                "an imported public key is not a private key"
            );
            assert_eq!(km_match(key, copy, SEL_PUBLIC | SEL_DOMAIN), 1);
            // Importing private material is refused.
            let mut b = ParamBuilder::new()
                .utf8(OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1")
                .octets(OSSL_PKEY_PARAM_PRIV_KEY, &[1; 32]);
            let arr = b.build();
            assert_eq!(
                km_import::<EcKeys>(copy, SEL_PRIVATE | SEL_PUBLIC, arr.as_ptr()),
                0
            );
            km_free(copy);
            km_free(key);
        }
    }

    #[test]
    fn params_report_sizes_and_public_parts() {
        let key = into_raw(reference(ec_public()));
        let mut bits = 0i32;
        let mut max = 0i32;
        let mut group = [0u8; 32];
        let mut params = [
            OSSL_PARAM {
                key: OSSL_PKEY_PARAM_BITS.as_ptr() as *const c_char,
                data_type: OSSL_PARAM_INTEGER,
                data: &mut bits as *mut i32 as *mut c_void,
                data_size: 4,
                return_size: 0,
            },
            OSSL_PARAM {
                key: OSSL_PKEY_PARAM_MAX_SIZE.as_ptr() as *const c_char,
                data_type: OSSL_PARAM_INTEGER,
                data: &mut max as *mut i32 as *mut c_void,
                data_size: 4,
                return_size: 0,
            },
            OSSL_PARAM {
                key: OSSL_PKEY_PARAM_GROUP_NAME.as_ptr() as *const c_char,
                data_type: OSSL_PARAM_UTF8_STRING,
                data: group.as_mut_ptr() as *mut c_void,
                data_size: group.len(),
                return_size: 0,
            },
            END,
        ];
        // SAFETY: `params` is terminated and its buffers outlive the call; `key` is ours.
        unsafe {
            assert_eq!(km_get_params(key, params.as_mut_ptr()), 1);
            km_free(key);
        }
        assert_eq!(bits, 256);
        assert_eq!(max, 72, "DER ECDSA-Sig-Value for P-256");
        assert_eq!(&group[..11], b"prime256v1\0");
        let _ = &mut params;
    }
}
