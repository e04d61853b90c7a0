//! A Rust PKCS#11 application (the `cryptoki` crate, plus raw `cryptoki-sys`
//! calls where the edge semantics matter) against libpkcs11ks.so and the dev
//! KeyServer.
//!
//! The module has one global state per process, so everything that
//! initialises it runs inside one test function, step by step; the interface
//! test never initialises.

use std::ffi::c_void;
use std::ptr;
use std::thread;
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys as sys;
use ks_devserver::harness::DevServer;
use ks_e2e::pkcs11_support::{module_path, Pkcs11Env};

fn raw() -> sys::Pkcs11 {
    // SAFETY: loading our own module runs no initialisers with side effects.
    unsafe { sys::Pkcs11::new(module_path()) }.expect("load libpkcs11ks.so")
}

fn signorders(server: &DevServer) -> u64 {
    server.stats()["signorders"]
        .as_u64()
        .expect("signorders counter")
}

#[test]
fn interface_negotiation() {
    let lib = raw();
    let mut n: sys::CK_ULONG = 0;
    assert_eq!(
        // SAFETY: valid out-pointer, NULL list asks for the count.
        unsafe { lib.C_GetInterfaceList(ptr::null_mut(), &mut n) },
        sys::CKR_OK
    );
    assert_eq!(n, 2);
    let mut list = [sys::CK_INTERFACE {
        pInterfaceName: ptr::null_mut(),
        pFunctionList: ptr::null_mut(),
        flags: 0,
    }; 2];
    let mut short = 1;
    // SAFETY: one slot declared, one provided.
    let rv = unsafe { lib.C_GetInterfaceList(list.as_mut_ptr(), &mut short) };
    assert_eq!((rv, short), (sys::CKR_BUFFER_TOO_SMALL, 2));
    assert_eq!(
        // SAFETY: two slots.
        unsafe { lib.C_GetInterfaceList(list.as_mut_ptr(), &mut n) },
        sys::CKR_OK
    );
    let version = |i: &sys::CK_INTERFACE| {
        // SAFETY: every function list starts with its CK_VERSION.
        let v = unsafe { *(i.pFunctionList as *const sys::CK_VERSION) };
        (v.major, v.minor)
    };
    let name = |i: &sys::CK_INTERFACE| {
        // SAFETY: interface names are NUL-terminated strings.
        unsafe { std::ffi::CStr::from_ptr(i.pInterfaceName as *const _) }
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(name(&list[0]), "PKCS 11");
    assert_eq!(name(&list[1]), "PKCS 11");
    assert_eq!(version(&list[0]), (3, 0));
    assert_eq!(version(&list[1]), (2, 40));

    let get = |name: Option<&[u8]>, v: Option<(u8, u8)>, flags: sys::CK_FLAGS| {
        let mut iface: *mut sys::CK_INTERFACE = ptr::null_mut();
        let mut ver = v.map(|(major, minor)| sys::CK_VERSION { major, minor });
        let name_ptr = name.map_or(ptr::null_mut(), |n| n.as_ptr() as *mut u8);
        let ver_ptr = ver.as_mut().map_or(ptr::null_mut(), |v| v as *mut _);
        // SAFETY: NUL-terminated name or NULL, version or NULL, valid out-pointer.
        let rv = unsafe { lib.C_GetInterface(name_ptr, ver_ptr, &mut iface, flags) };
        // SAFETY: on success the pointer refers to a static CK_INTERFACE.
        (rv, (rv == sys::CKR_OK).then(|| version(unsafe { &*iface })))
    };
    // NULL name: the default interface, 3.0.
    assert_eq!(get(None, None, 0), (sys::CKR_OK, Some((3, 0))));
    // NULL name with a version: that version.
    assert_eq!(get(None, Some((2, 40)), 0), (sys::CKR_OK, Some((2, 40))));
    assert_eq!(
        get(Some(b"PKCS 11\0"), None, 0),
        (sys::CKR_OK, Some((3, 0)))
    );
    assert_eq!(
        get(Some(b"PKCS 11\0"), Some((2, 40)), 0),
        (sys::CKR_OK, Some((2, 40)))
    );
    assert_eq!(
        get(Some(b"PKCS 11\0"), Some((3, 1)), 0).0,
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        get(Some(b"Vendor XYZ\0"), None, 0).0,
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        get(None, None, sys::CKF_INTERFACE_FORK_SAFE).0,
        sys::CKR_ARGUMENTS_BAD
    );
    assert_eq!(
        // SAFETY: NULL out-pointer must be refused, not written.
        unsafe { lib.C_GetInterface(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0) },
        sys::CKR_ARGUMENTS_BAD
    );

    let mut fl: *mut sys::CK_FUNCTION_LIST = ptr::null_mut();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { lib.C_GetFunctionList(&mut fl) }, sys::CKR_OK);
    // SAFETY: the module returned a static function list.
    let fl = unsafe { &*fl };
    assert_eq!((fl.version.major, fl.version.minor), (2, 40));
    assert!(fl.C_Sign.is_some() && fl.C_WaitForSlotEvent.is_some());
}

extern "C" fn create_mutex(_m: *mut *mut c_void) -> sys::CK_RV {
    sys::CKR_OK
}
extern "C" fn mutex_op(_m: *mut c_void) -> sys::CK_RV {
    sys::CKR_OK
}

fn initialize_rules(lib: &sys::Pkcs11) {
    let mut args = sys::CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: 0,
        pReserved: ptr::dangling_mut::<c_void>(),
    };
    let init = |args: &mut sys::CK_C_INITIALIZE_ARGS| {
        // SAFETY: a valid CK_C_INITIALIZE_ARGS.
        unsafe { lib.C_Initialize(args as *mut _ as *mut c_void) }
    };
    assert_eq!(
        init(&mut args),
        sys::CKR_ARGUMENTS_BAD,
        "pReserved must be NULL"
    );
    args.pReserved = ptr::null_mut();
    args.CreateMutex = Some(create_mutex);
    assert_eq!(
        init(&mut args),
        sys::CKR_ARGUMENTS_BAD,
        "all or none of the mutex functions"
    );
    args.DestroyMutex = Some(mutex_op);
    args.LockMutex = Some(mutex_op);
    args.UnlockMutex = Some(mutex_op);
    assert_eq!(
        init(&mut args),
        sys::CKR_CANT_LOCK,
        "application locking only"
    );
    let mut n = 0;
    assert_eq!(
        // SAFETY: valid out-pointer.
        unsafe { lib.C_GetSlotList(0, ptr::null_mut(), &mut n) },
        sys::CKR_CRYPTOKI_NOT_INITIALIZED
    );
    assert_eq!(
        // SAFETY: NULL reserved pointer.
        unsafe { lib.C_Finalize(ptr::null_mut()) },
        sys::CKR_CRYPTOKI_NOT_INITIALIZED
    );
}

fn find_one(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .expect("find objects");
    assert_eq!(found.len(), 1, "{class:?} {label}");
    found[0]
}

fn attributes(session: &Session, slot: Slot) {
    let all = session.find_objects(&[]).expect("find all");
    assert_eq!(all.len(), 18, "three objects for each of the six dev keys");
    let keys = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Sign(true),
        ])
        .expect("find signing keys");
    assert_eq!(keys.len(), 6);
    let ec = session
        .find_objects(&[
            Attribute::KeyType(KeyType::EC),
            Attribute::Class(ObjectClass::PUBLIC_KEY),
        ])
        .expect("find EC public keys");
    assert_eq!(ec.len(), 3);

    let id_and_spki = |h| {
        let a = session
            .get_attributes(
                h,
                &[
                    AttributeType::Id,
                    AttributeType::PublicKeyInfo,
                    AttributeType::Label,
                ],
            )
            .expect("attributes");
        (a[0].clone(), a[1].clone(), a[2].clone())
    };
    for key in ["key1", "key2"] {
        let p = id_and_spki(find_one(session, ObjectClass::PRIVATE_KEY, key));
        let q = id_and_spki(find_one(session, ObjectClass::PUBLIC_KEY, key));
        let c = id_and_spki(find_one(session, ObjectClass::CERTIFICATE, key));
        assert_eq!(p, q, "{key}");
        assert_eq!(p, c, "{key}");
        assert_eq!(p.2, Attribute::Label(key.as_bytes().to_vec()));
    }

    let rsa_priv = find_one(session, ObjectClass::PRIVATE_KEY, "key1");
    let a = session
        .get_attributes(
            rsa_priv,
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Token,
                AttributeType::Private,
            ],
        )
        .expect("RSA private key attributes");
    assert_eq!(a[0], Attribute::KeyType(KeyType::RSA));
    assert!(matches!(&a[1], Attribute::Modulus(n) if n.len() == 256 && n[0] & 0x80 != 0));
    assert_eq!(a[2], Attribute::PublicExponent(vec![1, 0, 1]));
    assert_eq!(a[3], Attribute::Sensitive(true));
    assert_eq!(a[4], Attribute::Extractable(false));
    assert_eq!(a[5], Attribute::Token(true));
    assert_eq!(a[6], Attribute::Private(false));
    let info = session
        .get_attribute_info(
            rsa_priv,
            &[
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Label,
                AttributeType::Wrap,
            ],
        )
        .expect("attribute info");
    assert!(matches!(info[0], AttributeInfo::Sensitive), "{:?}", info[0]);
    assert!(matches!(info[1], AttributeInfo::Sensitive), "{:?}", info[1]);
    assert!(
        matches!(info[2], AttributeInfo::Available(4)),
        "{:?}",
        info[2]
    );
    assert!(
        matches!(info[3], AttributeInfo::TypeInvalid),
        "{:?}",
        info[3]
    );

    let ec_pub = find_one(session, ObjectClass::PUBLIC_KEY, "key2");
    let a = session
        .get_attributes(
            ec_pub,
            &[
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Verify,
            ],
        )
        .expect("EC public key attributes");
    // OBJECT IDENTIFIER prime256v1, and the point as a DER OCTET STRING.
    assert_eq!(
        a[0],
        Attribute::EcParams(vec![
            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07
        ])
    );
    assert!(
        matches!(&a[1], Attribute::EcPoint(p) if p.len() == 67 && p[..3] == [0x04, 0x41, 0x04])
    );
    assert_eq!(a[2], Attribute::Verify(true));

    let cert = find_one(session, ObjectClass::CERTIFICATE, "key1");
    let a = session
        .get_attributes(
            cert,
            &[
                AttributeType::Value,
                AttributeType::Subject,
                AttributeType::Issuer,
                AttributeType::SerialNumber,
            ],
        )
        .expect("certificate attributes");
    for attr in &a {
        let bytes = match attr {
            Attribute::Value(v)
            | Attribute::Subject(v)
            | Attribute::Issuer(v)
            | Attribute::SerialNumber(v) => v,
            other => panic!("unexpected {other:?}"),
        };
        assert!(
            bytes.len() > 2 && (bytes[0] == 0x30 || bytes[0] == 0x02),
            "{attr:?} is not DER"
        );
    }
    let _ = slot;
}

/// C_GetAttributeValue's per-attribute rules, through raw calls.
fn attribute_semantics(
    lib: &sys::Pkcs11,
    session: sys::CK_SESSION_HANDLE,
    key: sys::CK_OBJECT_HANDLE,
) {
    let mut label = [0u8; 16];
    let mut template = [
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_PRIVATE_EXPONENT,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_LABEL,
            pValue: label.as_mut_ptr() as *mut c_void,
            ulValueLen: 16,
        },
        sys::CK_ATTRIBUTE {
            type_: 0x8000_1234,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        },
        sys::CK_ATTRIBUTE {
            type_: sys::CKA_MODULUS,
            pValue: ptr::null_mut(),
            ulValueLen: 0,
        },
    ];
    // SAFETY: a valid template of 4 attributes.
    let rv = unsafe { lib.C_GetAttributeValue(session, key, template.as_mut_ptr(), 4) };
    assert!(
        rv == sys::CKR_ATTRIBUTE_SENSITIVE || rv == sys::CKR_ATTRIBUTE_TYPE_INVALID,
        "rv {rv:#x}"
    );
    assert_eq!(template[0].ulValueLen, sys::CK_UNAVAILABLE_INFORMATION);
    assert_eq!(template[1].ulValueLen, 4);
    assert_eq!(&label[..4], b"key1");
    assert_eq!(template[2].ulValueLen, sys::CK_UNAVAILABLE_INFORMATION);
    assert_eq!(template[3].ulValueLen, 256, "size query for the modulus");

    let mut small = [0u8; 2];
    let mut t = [sys::CK_ATTRIBUTE {
        type_: sys::CKA_LABEL,
        pValue: small.as_mut_ptr() as *mut c_void,
        ulValueLen: 2,
    }];
    // SAFETY: one attribute with a 2-byte buffer.
    let rv = unsafe { lib.C_GetAttributeValue(session, key, t.as_mut_ptr(), 1) };
    assert_eq!(
        (rv, t[0].ulValueLen),
        (sys::CKR_BUFFER_TOO_SMALL, sys::CK_UNAVAILABLE_INFORMATION)
    );
    // SAFETY: as above.
    let rv = unsafe { lib.C_GetAttributeValue(session, 99_999, t.as_mut_ptr(), 1) };
    assert_eq!(rv, sys::CKR_OBJECT_HANDLE_INVALID);
    // SAFETY: as above.
    let rv = unsafe { lib.C_GetAttributeValue(99_999, key, t.as_mut_ptr(), 1) };
    assert_eq!(rv, sys::CKR_SESSION_HANDLE_INVALID);
}

fn mech(
    m: sys::CK_MECHANISM_TYPE,
    param: Option<&mut sys::CK_RSA_PKCS_PSS_PARAMS>,
) -> sys::CK_MECHANISM {
    let (p, len) = match param {
        Some(p) => (
            p as *mut _ as *mut c_void,
            std::mem::size_of::<sys::CK_RSA_PKCS_PSS_PARAMS>() as sys::CK_ULONG,
        ),
        None => (ptr::null_mut(), 0),
    };
    sys::CK_MECHANISM {
        mechanism: m,
        pParameter: p,
        ulParameterLen: len,
    }
}

/// The two-call size convention and the cost of one signature, raw.
fn size_queries(
    lib: &sys::Pkcs11,
    server: &DevServer,
    session: sys::CK_SESSION_HANDLE,
    rsa: sys::CK_OBJECT_HANDLE,
    ec384: sys::CK_OBJECT_HANDLE,
) {
    let mut data = *b"size queries must not reach the server";
    let mut m = mech(sys::CKM_SHA256_RSA_PKCS, None);
    let before = signorders(server);
    // SAFETY: valid mechanism and handles.
    assert_eq!(unsafe { lib.C_SignInit(session, &mut m, rsa) }, sys::CKR_OK);
    let mut len: sys::CK_ULONG = 0;
    // SAFETY: NULL output asks for the size.
    let rv = unsafe {
        lib.C_Sign(
            session,
            data.as_mut_ptr(),
            data.len() as _,
            ptr::null_mut(),
            &mut len,
        )
    };
    assert_eq!((rv, len), (sys::CKR_OK, 256));
    let mut sig = [0u8; 512];
    len = 10;
    // SAFETY: a 10-byte buffer declared as such.
    let rv = unsafe {
        lib.C_Sign(
            session,
            data.as_mut_ptr(),
            data.len() as _,
            sig.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!((rv, len), (sys::CKR_BUFFER_TOO_SMALL, 256));
    assert_eq!(
        signorders(server),
        before,
        "size queries contacted the server"
    );
    len = sig.len() as _;
    // SAFETY: a 512-byte buffer.
    let rv = unsafe {
        lib.C_Sign(
            session,
            data.as_mut_ptr(),
            data.len() as _,
            sig.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!((rv, len), (sys::CKR_OK, 256));
    assert_eq!(
        signorders(server),
        before + 1,
        "one signature, one sign order"
    );
    // SAFETY: as above.
    let rv = unsafe {
        lib.C_Sign(
            session,
            data.as_mut_ptr(),
            data.len() as _,
            sig.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(
        rv,
        sys::CKR_OPERATION_NOT_INITIALIZED,
        "the operation ended with the signature"
    );

    // Multi-part ECDSA P-384: SignFinal size query keeps the operation.
    let mut m = mech(sys::CKM_ECDSA_SHA384, None);
    assert_eq!(
        // SAFETY: valid mechanism and handles.
        unsafe { lib.C_SignInit(session, &mut m, ec384) },
        sys::CKR_OK
    );
    for chunk in data.chunks_mut(7) {
        assert_eq!(
            // SAFETY: a valid chunk.
            unsafe { lib.C_SignUpdate(session, chunk.as_mut_ptr(), chunk.len() as _) },
            sys::CKR_OK
        );
    }
    let mut len: sys::CK_ULONG = 0;
    assert_eq!(
        // SAFETY: NULL output asks for the size.
        unsafe { lib.C_SignFinal(session, ptr::null_mut(), &mut len) },
        sys::CKR_OK
    );
    assert_eq!(len, 96);
    len = sig.len() as _;
    assert_eq!(
        // SAFETY: a 512-byte buffer.
        unsafe { lib.C_SignFinal(session, sig.as_mut_ptr(), &mut len) },
        sys::CKR_OK
    );
    assert_eq!(len, 96);
    assert_eq!(signorders(server), before + 2);
}

/// Bad handles and bad mechanism parameters, raw.
fn bad_inputs(
    lib: &sys::Pkcs11,
    session: sys::CK_SESSION_HANDLE,
    rsa: sys::CK_OBJECT_HANDLE,
    cert: sys::CK_OBJECT_HANDLE,
    ec: sys::CK_OBJECT_HANDLE,
) {
    let init = |m: &mut sys::CK_MECHANISM, key| {
        // SAFETY: a valid mechanism structure.
        let rv = unsafe { lib.C_SignInit(session, m, key) };
        if rv == sys::CKR_OK {
            // SAFETY: cancel with a NULL mechanism (PKCS#11 3.0).
            unsafe { lib.C_SignInit(session, ptr::null_mut(), key) };
        }
        rv
    };
    let pss = |hash, mgf, s_len| sys::CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: hash,
        mgf,
        sLen: s_len,
    };
    let mut ok = pss(sys::CKM_SHA256, sys::CKG_MGF1_SHA256, 32);
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS_PSS, Some(&mut ok)), rsa),
        sys::CKR_OK
    );
    assert_eq!(
        init(&mut mech(sys::CKM_RSA_PKCS_PSS, None), rsa),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    let mut p = pss(sys::CKM_SHA384, sys::CKG_MGF1_SHA384, 48);
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS_PSS, Some(&mut p)), rsa),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    let mut p = pss(sys::CKM_SHA256, sys::CKG_MGF1_SHA1, 32);
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS_PSS, Some(&mut p)), rsa),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    let mut p = pss(sys::CKM_SHA512, sys::CKG_MGF1_SHA512, 300);
    assert_eq!(
        init(&mut mech(sys::CKM_RSA_PKCS_PSS, Some(&mut p)), rsa),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    let mut p = pss(sys::CKM_SHA_1, sys::CKG_MGF1_SHA1, 20);
    assert_eq!(
        init(&mut mech(sys::CKM_RSA_PKCS_PSS, Some(&mut p)), rsa),
        sys::CKR_MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        init(&mut mech(sys::CKM_ECDSA, None), rsa),
        sys::CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS, None), ec),
        sys::CKR_KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        init(&mut mech(sys::CKM_MD5_RSA_PKCS, None), rsa),
        sys::CKR_MECHANISM_INVALID
    );
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS, None), cert),
        sys::CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        init(&mut mech(sys::CKM_SHA256_RSA_PKCS, None), 99_999),
        sys::CKR_KEY_HANDLE_INVALID
    );
    assert_eq!(
        // SAFETY: a valid mechanism, bad session.
        unsafe { lib.C_SignInit(99_999, &mut mech(sys::CKM_SHA256_RSA_PKCS, None), rsa) },
        sys::CKR_SESSION_HANDLE_INVALID
    );
    // CKM_RSA_PKCS takes a DigestInfo, nothing else.
    let mut m = mech(sys::CKM_RSA_PKCS, None);
    // SAFETY: valid mechanism and handles.
    assert_eq!(unsafe { lib.C_SignInit(session, &mut m, rsa) }, sys::CKR_OK);
    let mut data = *b"this is not a DigestInfo";
    let mut sig = [0u8; 512];
    let mut len = sig.len() as sys::CK_ULONG;
    // SAFETY: valid buffers.
    let rv = unsafe {
        lib.C_Sign(
            session,
            data.as_mut_ptr(),
            data.len() as _,
            sig.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(rv, sys::CKR_DATA_INVALID);
    // Operations that were never started.
    // SAFETY: valid buffers.
    let rv = unsafe { lib.C_SignFinal(session, sig.as_mut_ptr(), &mut len) };
    assert_eq!(rv, sys::CKR_OPERATION_NOT_INITIALIZED);
}

fn sign_and_verify_all(session: &Session) {
    let data = b"cryptoki end-to-end";
    let pss = |h, mgf, s| PkcsPssParams {
        hash_alg: h,
        mgf,
        s_len: (s as u64).into(),
    };
    let rsa_mechs = [
        Mechanism::Sha256RsaPkcs,
        Mechanism::Sha384RsaPkcs,
        Mechanism::Sha512RsaPkcs,
        Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32)),
        Mechanism::Sha384RsaPkcsPss(pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48)),
        Mechanism::Sha512RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 0)),
    ];
    let ec_mechs = [
        Mechanism::EcdsaSha256,
        Mechanism::EcdsaSha384,
        Mechanism::EcdsaSha512,
    ];
    for (key, mechs) in [
        ("key1", &rsa_mechs[..]),
        ("key6", &rsa_mechs[..2]),
        ("key2", &ec_mechs[..]),
        ("key5", &ec_mechs[..]),
    ] {
        let private = find_one(session, ObjectClass::PRIVATE_KEY, key);
        let public = find_one(session, ObjectClass::PUBLIC_KEY, key);
        for m in mechs {
            let sig = session
                .sign(m, private, data)
                .unwrap_or_else(|e| panic!("{key} {m:?}: {e}"));
            session
                .verify(m, public, data, &sig)
                .unwrap_or_else(|e| panic!("{key} {m:?} verify: {e}"));
            assert!(
                session.verify(m, public, b"other data", &sig).is_err(),
                "{key} {m:?} wrong data verified"
            );
        }
    }
    // Multi-part equals single-part (PKCS#1 v1.5 is deterministic).
    let key1 = find_one(session, ObjectClass::PRIVATE_KEY, "key1");
    let single = session
        .sign(&Mechanism::Sha256RsaPkcs, key1, data)
        .expect("single-part");
    session
        .sign_init(&Mechanism::Sha256RsaPkcs, key1)
        .expect("sign_init");
    session.sign_update(&data[..5]).expect("update");
    session.sign_update(&data[5..]).expect("update");
    let multi = session.sign_final().expect("sign_final");
    assert_eq!(single, multi);
    // Raw mechanisms: a DigestInfo for CKM_RSA_PKCS, a hash for CKM_ECDSA.
    let hash = session.digest(&Mechanism::Sha256, data).expect("digest");
    let mut di = vec![
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    di.extend_from_slice(&hash);
    let raw_sig = session
        .sign(&Mechanism::RsaPkcs, key1, &di)
        .expect("CKM_RSA_PKCS");
    assert_eq!(
        raw_sig, single,
        "CKM_RSA_PKCS over the DigestInfo equals CKM_SHA256_RSA_PKCS"
    );
    let key4 = find_one(session, ObjectClass::PRIVATE_KEY, "key4");
    let key4_pub = find_one(session, ObjectClass::PUBLIC_KEY, "key4");
    let sig = session
        .sign(&Mechanism::Ecdsa, key4, &hash)
        .expect("CKM_ECDSA");
    assert_eq!(sig.len(), 96, "r||s for P-384");
    session
        .verify(&Mechanism::EcdsaSha256, key4_pub, data, &sig)
        .expect("ECDSA over the same hash");
}

fn threads(pkcs11: &Pkcs11, slot: Slot, server: &DevServer) {
    let before = signorders(server);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let pkcs11 = pkcs11.clone();
            thread::spawn(move || {
                let session = pkcs11.open_ro_session(slot).expect("session per thread");
                let (key, mechanism) = if t % 2 == 0 {
                    ("key1", Mechanism::Sha256RsaPkcs)
                } else {
                    ("key2", Mechanism::EcdsaSha256)
                };
                let private = find_one(&session, ObjectClass::PRIVATE_KEY, key);
                let public = find_one(&session, ObjectClass::PUBLIC_KEY, key);
                for i in 0..50 {
                    let data = format!("thread {t} signature {i}");
                    let sig = session
                        .sign(&mechanism, private, data.as_bytes())
                        .unwrap_or_else(|e| panic!("thread {t} #{i}: {e}"));
                    session
                        .verify(&mechanism, public, data.as_bytes(), &sig)
                        .unwrap_or_else(|e| panic!("thread {t} #{i} verify: {e}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("signing thread");
    }
    assert_eq!(
        signorders(server),
        before + 400,
        "8 threads x 50 signatures"
    );
    // Every sign order waits 50 ms in the server. A module that held a lock
    // across the network call would never have two sign orders in flight at
    // once; one whose sessions sign in parallel overlaps them. The server
    // counts the overlap, so this holds however slow the machine is.
    let peak = server.stats()["signorders_max_in_flight"]
        .as_u64()
        .expect("signorders_max_in_flight in /api/dev/stats");
    assert!(
        peak >= 2,
        "at most {peak} sign order in flight at once: signing is serialised"
    );
}

fn error_codes(env: &Pkcs11Env) {
    let module = module_path();
    let with_env = |overrides: &[(&str, String)], check: &dyn Fn(&Session)| {
        for (k, v) in &env.env {
            std::env::set_var(k, v);
        }
        for (k, v) in overrides {
            std::env::set_var(k, v);
        }
        let pkcs11 = Pkcs11::new(&module).expect("load");
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("initialize");
        let slot = pkcs11.get_slots_with_token().expect("slots")[0];
        let session = pkcs11.open_ro_session(slot).expect("session");
        check(&session);
        drop(session);
        pkcs11.finalize().expect("finalize");
    };
    let code = |e: cryptoki::error::Error| match e {
        cryptoki::error::Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    };
    // A token the server refuses: PKCS#11 lists no CKR_USER_NOT_LOGGED_IN for
    // C_FindObjectsInit, so the listing fails with CKR_FUNCTION_FAILED (the reason is logged);
    // signing with it is CKR_USER_NOT_LOGGED_IN, which C_Sign lists.
    with_env(&[("KSC_ID_TOKEN", "not-a-jwt".to_string())], &|s| {
        let e = s.find_objects(&[]).expect_err("bad token must fail");
        assert_eq!(code(e), RvError::FunctionFailed);
    });
    // An unreachable server (refused connections are retried until the call's deadline; the
    // variable stays set for the checks below, which a healthy server answers well within it).
    with_env(
        &[
            ("KSC_API_SERVER", "https://127.0.0.1:9".to_string()),
            ("KSC_DEADLINE", "3s".to_string()),
        ],
        &|s| {
            let e = s
                .find_objects(&[])
                .expect_err("unreachable server must fail");
            assert_eq!(code(e), RvError::DeviceError);
        },
    );
    // An operation still waiting for key2's approval.
    let pending = env
        .server
        .create_operation("orderer-client", &[("key2", 1)], 600_000);
    with_env(&[("KSC_OPERATION_ID", pending)], &|s| {
        let key = find_one(s, ObjectClass::PRIVATE_KEY, "key2");
        let e = s
            .sign(&Mechanism::EcdsaSha256, key, b"data")
            .expect_err("pending must fail");
        assert_eq!(code(e), RvError::FunctionRejected);
    });
    // One use only: the second signature is refused.
    let once = env
        .server
        .create_operation("orderer-client", &[("key1", 1)], 600_000);
    with_env(&[("KSC_OPERATION_ID", once)], &|s| {
        let key = find_one(s, ObjectClass::PRIVATE_KEY, "key1");
        s.sign(&Mechanism::Sha256RsaPkcs, key, b"first")
            .expect("first use");
        let e = s
            .sign(&Mechanism::Sha256RsaPkcs, key, b"second")
            .expect_err("exhausted must fail");
        assert_eq!(code(e), RvError::FunctionRejected);
    });
}

#[test]
fn cryptoki_application() {
    let env = Pkcs11Env::start_with(
        DevServer::builder().fault_latency(Duration::from_millis(50)),
        1000,
    );
    // The module reads its configuration from the process environment.
    for (k, v) in &env.env {
        std::env::set_var(k, v);
    }
    let lib = raw();
    initialize_rules(&lib);

    let pkcs11 = Pkcs11::new(&env.module).expect("load the module");
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    let again = pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    assert!(
        matches!(again, Err(cryptoki::error::Error::Pkcs11(rv, _)) if rv == RvError::CryptokiAlreadyInitialized)
    );

    let info = pkcs11.get_library_info().expect("C_GetInfo");
    assert_eq!(
        (
            info.cryptoki_version().major(),
            info.cryptoki_version().minor()
        ),
        (3, 0)
    );
    let slots = pkcs11.get_slots_with_token().expect("slots");
    assert_eq!(slots.len(), 1);
    let slot = slots[0];
    let token = pkcs11.get_token_info(slot).expect("token info");
    assert_eq!(token.label(), "KEYSERVER");
    assert!(token.write_protected());
    assert!(!token.login_required());
    let m = pkcs11
        .get_mechanism_info(slot, MechanismType::RSA_PKCS)
        .expect("mechanism info");
    assert!(m.hardware() && m.sign());
    assert_eq!((m.min_key_size(), m.max_key_size()), (2048, 4096));
    let m = pkcs11
        .get_mechanism_info(slot, MechanismType::ECDSA)
        .expect("mechanism info");
    assert_eq!((m.min_key_size(), m.max_key_size()), (256, 521));

    // Sessions and login.
    let ro = pkcs11.open_ro_session(slot).expect("RO session");
    let rw = pkcs11.open_rw_session(slot).expect("RW session");
    assert_eq!(
        ro.get_session_info().expect("info").session_state(),
        SessionState::RoPublic
    );
    assert_eq!(
        rw.get_session_info().expect("info").session_state(),
        SessionState::RwPublic
    );
    ro.login(UserType::User, Some(&AuthPin::from("any PIN".to_string())))
        .expect("login with any PIN");
    assert_eq!(
        rw.get_session_info().expect("info").session_state(),
        SessionState::RwUser
    );
    ro.logout().expect("logout");
    assert_eq!(
        ro.get_session_info().expect("info").session_state(),
        SessionState::RoPublic
    );
    drop(rw);

    attributes(&ro, slot);
    let h = ro.handle();
    let rsa = find_one(&ro, ObjectClass::PRIVATE_KEY, "key1");
    let ec384 = find_one(&ro, ObjectClass::PRIVATE_KEY, "key4");
    let ec = find_one(&ro, ObjectClass::PRIVATE_KEY, "key2");
    let cert = find_one(&ro, ObjectClass::CERTIFICATE, "key1");
    attribute_semantics(&lib, h, rsa.handle());
    size_queries(&lib, &env.server, h, rsa.handle(), ec384.handle());
    bad_inputs(&lib, h, rsa.handle(), cert.handle(), ec.handle());
    sign_and_verify_all(&ro);
    threads(&pkcs11, slot, &env.server);

    drop(ro);
    pkcs11.finalize().expect("C_Finalize");
    let mut n = 0;
    assert_eq!(
        // SAFETY: valid out-pointer.
        unsafe { lib.C_GetSlotList(0, ptr::null_mut(), &mut n) },
        sys::CKR_CRYPTOKI_NOT_INITIALIZED
    );

    error_codes(&env);
}
