//! Table-driven check that every `C_*` answers, on each error path, a code PKCS#11 lists for
//! that function ([`crate::spec`]), and the code the module means to give there.

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::{Arc, Mutex};

use cryptoki_sys::*;
use ks_common::error::{Error, ErrorKind};
use ks_common::keys::KeyEntry;
use ks_common::sign::SignRequest;
use ks_common::signer::Signer;

use super::digest::*;
use super::general::*;
use super::interface::*;
use super::object::*;
use super::session::*;
use super::sign::*;
use super::slot::*;
use super::verify::*;
use super::STATE;
use crate::object::tests::{ec_key, rsa_key};
use crate::spec::is_listed;
use crate::token::{SignerFactory, Token};

/// A signer whose catalog and sign orders fail with a chosen kind (or succeed with `None`).
struct Failing {
    keys: Arc<Vec<KeyEntry>>,
    list_error: Mutex<Option<ErrorKind>>,
    sign_error: Mutex<Option<ErrorKind>>,
}

impl Signer for Failing {
    fn keys(&self) -> ks_common::Result<Arc<Vec<KeyEntry>>> {
        match *self.list_error.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(kind) => Err(Error::new(kind, "injected")),
            None => Ok(Arc::clone(&self.keys)),
        }
    }

    fn sign(&self, _keyid: &str, _request: &SignRequest) -> ks_common::Result<Vec<u8>> {
        match *self.sign_error.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(kind) => Err(Error::new(kind, "injected")),
            None => Ok(vec![0x5a; 256]),
        }
    }
}

const ALL_KINDS: [ErrorKind; 15] = [
    ErrorKind::Config,
    ErrorKind::Network,
    ErrorKind::RateLimited,
    ErrorKind::BadResponse,
    ErrorKind::VerificationFailed,
    ErrorKind::Auth,
    ErrorKind::Forbidden,
    ErrorKind::NotFound,
    ErrorKind::Pending,
    ErrorKind::Rejected,
    ErrorKind::Expired,
    ErrorKind::Exhausted,
    ErrorKind::InvalidInput,
    ErrorKind::Unsupported,
    ErrorKind::Internal,
];

/// Runs `call` and records it; a problem (an unlisted code, CKR_OK on an error path, another
/// code than `expected`) is recorded as `!`-prefixed text, reported all together at the end.
fn check(
    name: &str,
    expected: Option<CK_RV>,
    call: impl FnOnce() -> CK_RV,
    seen: &mut Vec<String>,
) {
    let rv = call();
    if !is_listed(name, rv) {
        seen.push(format!(
            "!{name} answered {rv:#x}, which PKCS#11 does not list for it"
        ));
    } else if rv == CKR_OK {
        seen.push(format!("!{name}: an error path answered CKR_OK"));
    } else if expected.is_some_and(|e| e != rv) {
        seen.push(format!(
            "!{name}: expected {:#x}, got {rv:#x}",
            expected.unwrap_or(0)
        ));
    }
    seen.push(name.to_string());
}

fn mech(t: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: t,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

#[test]
fn every_error_path_answers_a_listed_code() {
    let mut seen = Vec::new();
    let s = &mut seen;
    let mut ul: CK_ULONG = 0;
    let mut handle: CK_SESSION_HANDLE = 0;
    let mut buf = [0u8; 512];

    // ---- before C_Initialize --------------------------------------------------------
    *STATE.write().unwrap_or_else(|e| e.into_inner()) = None;
    let not_init = Some(CKR_CRYPTOKI_NOT_INITIALIZED);
    check("C_Finalize", not_init, || C_Finalize(null_mut()), s);
    check("C_GetInfo", not_init, || C_GetInfo(null_mut()), s);
    check(
        "C_GetSlotList",
        not_init,
        || C_GetSlotList(0, null_mut(), &mut ul),
        s,
    );
    check(
        "C_OpenSession",
        not_init,
        || C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, &mut handle),
        s,
    );
    check("C_SignInit", not_init, || C_SignInit(1, null_mut(), 1), s);
    check(
        "C_Sign",
        not_init,
        || C_Sign(1, buf.as_mut_ptr(), 32, null_mut(), &mut ul),
        s,
    );
    check(
        "C_SignUpdate",
        not_init,
        || C_SignUpdate(1, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_SignFinal",
        not_init,
        || C_SignFinal(1, null_mut(), &mut ul),
        s,
    );
    check(
        "C_Verify",
        not_init,
        || C_Verify(1, buf.as_mut_ptr(), 1, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_VerifyUpdate",
        not_init,
        || C_VerifyUpdate(1, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_VerifyFinal",
        not_init,
        || C_VerifyFinal(1, buf.as_mut_ptr(), 1),
        s,
    );
    check("C_DigestInit", not_init, || C_DigestInit(1, null_mut()), s);
    check(
        "C_FindObjectsInit",
        not_init,
        || C_FindObjectsInit(1, null_mut(), 0),
        s,
    );
    check(
        "C_GetFunctionList",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetFunctionList(null_mut()),
        s,
    );
    check(
        "C_GetInterfaceList",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetInterfaceList(null_mut(), null_mut()),
        s,
    );
    check(
        "C_GetInterface",
        Some(CKR_ARGUMENTS_BAD),
        || {
            C_GetInterface(
                c"nope".as_ptr().cast_mut().cast(),
                null_mut(),
                &mut null_mut(),
                0,
            )
        },
        s,
    );

    // ---- C_Initialize ------------------------------------------------------------------
    let mut args = CK_C_INITIALIZE_ARGS {
        CreateMutex: None,
        DestroyMutex: None,
        LockMutex: None,
        UnlockMutex: None,
        flags: 0,
        pReserved: std::ptr::dangling_mut::<c_void>(),
    };
    check(
        "C_Initialize",
        Some(CKR_ARGUMENTS_BAD),
        || C_Initialize((&raw mut args).cast()),
        s,
    );
    let failing = Arc::new(Failing {
        keys: Arc::new(vec![rsa_key("key1"), ec_key("key2")]),
        list_error: Mutex::new(None),
        sign_error: Mutex::new(None),
    });
    let backend = Arc::clone(&failing);
    let factory: SignerFactory = Arc::new(move || Ok(Arc::clone(&backend) as Arc<dyn Signer>));
    *STATE.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(Token::new(factory)));
    check(
        "C_Initialize",
        Some(CKR_CRYPTOKI_ALREADY_INITIALIZED),
        || C_Initialize(null_mut()),
        s,
    );
    check(
        "C_Finalize",
        Some(CKR_ARGUMENTS_BAD),
        || C_Finalize(std::ptr::dangling_mut::<c_void>()),
        s,
    );
    check(
        "C_GetInfo",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetInfo(null_mut()),
        s,
    );

    // ---- slots and sessions --------------------------------------------------------------
    let mut slots = [0 as CK_SLOT_ID; 0];
    ul = 0;
    check(
        "C_GetSlotList",
        Some(CKR_BUFFER_TOO_SMALL),
        || C_GetSlotList(0, slots.as_mut_ptr(), &mut ul),
        s,
    );
    check(
        "C_GetSlotList",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetSlotList(0, null_mut(), null_mut()),
        s,
    );
    check(
        "C_GetSlotInfo",
        Some(CKR_SLOT_ID_INVALID),
        || C_GetSlotInfo(9, null_mut()),
        s,
    );
    check(
        "C_GetSlotInfo",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetSlotInfo(1, null_mut()),
        s,
    );
    check(
        "C_GetTokenInfo",
        Some(CKR_SLOT_ID_INVALID),
        || C_GetTokenInfo(9, null_mut()),
        s,
    );
    check(
        "C_GetTokenInfo",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetTokenInfo(1, null_mut()),
        s,
    );
    check(
        "C_GetMechanismList",
        Some(CKR_SLOT_ID_INVALID),
        || C_GetMechanismList(9, null_mut(), &mut ul),
        s,
    );
    let mut mechs = [0 as CK_MECHANISM_TYPE; 1];
    ul = 1;
    check(
        "C_GetMechanismList",
        Some(CKR_BUFFER_TOO_SMALL),
        || C_GetMechanismList(1, mechs.as_mut_ptr(), &mut ul),
        s,
    );
    let mut minfo = CK_MECHANISM_INFO {
        ulMinKeySize: 0,
        ulMaxKeySize: 0,
        flags: 0,
    };
    check(
        "C_GetMechanismInfo",
        Some(CKR_MECHANISM_INVALID),
        || C_GetMechanismInfo(1, CKM_MD5, &mut minfo),
        s,
    );
    check(
        "C_GetMechanismInfo",
        Some(CKR_SLOT_ID_INVALID),
        || C_GetMechanismInfo(9, CKM_ECDSA, &mut minfo),
        s,
    );
    check(
        "C_OpenSession",
        Some(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        || C_OpenSession(1, 0, null_mut(), None, &mut handle),
        s,
    );
    check(
        "C_OpenSession",
        Some(CKR_SLOT_ID_INVALID),
        || C_OpenSession(9, CKF_SERIAL_SESSION, null_mut(), None, &mut handle),
        s,
    );
    check(
        "C_OpenSession",
        Some(CKR_ARGUMENTS_BAD),
        || C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
        s,
    );
    check(
        "C_CloseSession",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_CloseSession(999),
        s,
    );
    check(
        "C_CloseAllSessions",
        Some(CKR_SLOT_ID_INVALID),
        || C_CloseAllSessions(9),
        s,
    );
    let mut sinfo = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    check(
        "C_GetSessionInfo",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_GetSessionInfo(999, &mut sinfo),
        s,
    );
    assert_eq!(
        C_OpenSession(1, CKF_SERIAL_SESSION, null_mut(), None, &mut handle),
        CKR_OK
    );
    let h = handle;
    check(
        "C_GetSessionInfo",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetSessionInfo(h, null_mut()),
        s,
    );
    check(
        "C_Login",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_Login(999, CKU_USER, null_mut(), 0),
        s,
    );
    check(
        "C_Login",
        Some(CKR_USER_TYPE_INVALID),
        || C_Login(h, 77, null_mut(), 0),
        s,
    );
    check(
        "C_Login",
        Some(CKR_ARGUMENTS_BAD),
        || C_Login(h, CKU_USER, null_mut(), 4),
        s,
    );
    check("C_Logout", Some(CKR_USER_NOT_LOGGED_IN), || C_Logout(h), s);
    check(
        "C_Logout",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_Logout(999),
        s,
    );

    // ---- objects -----------------------------------------------------------------------
    check(
        "C_FindObjectsInit",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_FindObjectsInit(999, null_mut(), 0),
        s,
    );
    check(
        "C_FindObjectsInit",
        Some(CKR_ARGUMENTS_BAD),
        || C_FindObjectsInit(h, null_mut(), 3),
        s,
    );
    check(
        "C_FindObjects",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_FindObjects(h, null_mut(), 0, &mut ul),
        s,
    );
    check(
        "C_FindObjectsFinal",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_FindObjectsFinal(h),
        s,
    );
    for kind in ALL_KINDS {
        *failing.list_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(kind);
        check(
            "C_FindObjectsInit",
            None,
            || C_FindObjectsInit(h, null_mut(), 0),
            s,
        );
        check(
            "C_GetAttributeValue",
            None,
            || C_GetAttributeValue(h, 1, null_mut(), 0),
            s,
        );
        check(
            "C_GetObjectSize",
            None,
            || C_GetObjectSize(h, 1, &mut ul),
            s,
        );
        let mut m = mech(CKM_ECDSA);
        check("C_SignInit", None, || C_SignInit(h, &mut m, 4), s);
        check("C_VerifyInit", None, || C_VerifyInit(h, &mut m, 5), s);
    }
    *failing.list_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    assert_eq!(C_FindObjectsInit(h, null_mut(), 0), CKR_OK);
    check(
        "C_FindObjectsInit",
        Some(CKR_OPERATION_ACTIVE),
        || C_FindObjectsInit(h, null_mut(), 0),
        s,
    );
    check(
        "C_FindObjects",
        Some(CKR_ARGUMENTS_BAD),
        || C_FindObjects(h, null_mut(), 1, &mut ul),
        s,
    );
    assert_eq!(C_FindObjectsFinal(h), CKR_OK);
    check(
        "C_GetAttributeValue",
        Some(CKR_OBJECT_HANDLE_INVALID),
        || C_GetAttributeValue(h, 99, null_mut(), 0),
        s,
    );
    check(
        "C_GetAttributeValue",
        Some(CKR_ARGUMENTS_BAD),
        || C_GetAttributeValue(h, 1, null_mut(), 2),
        s,
    );
    let mut attr = CK_ATTRIBUTE {
        type_: 0xdead_beef,
        pValue: null_mut(),
        ulValueLen: 0,
    };
    check(
        "C_GetAttributeValue",
        Some(CKR_ATTRIBUTE_TYPE_INVALID),
        || C_GetAttributeValue(h, 1, &mut attr, 1),
        s,
    );
    check(
        "C_GetObjectSize",
        Some(CKR_OBJECT_HANDLE_INVALID),
        || C_GetObjectSize(h, 99, &mut ul),
        s,
    );

    // ---- digests -------------------------------------------------------------------------
    check(
        "C_DigestInit",
        Some(CKR_ARGUMENTS_BAD),
        || C_DigestInit(h, null_mut()),
        s,
    );
    let mut md5 = mech(CKM_MD5);
    check(
        "C_DigestInit",
        Some(CKR_MECHANISM_INVALID),
        || C_DigestInit(h, &mut md5),
        s,
    );
    let mut sha1 = mech(CKM_SHA_1);
    check(
        "C_DigestInit",
        Some(CKR_MECHANISM_INVALID),
        || C_DigestInit(h, &mut sha1),
        s,
    );
    check(
        "C_Digest",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_Digest(h, buf.as_mut_ptr(), 1, null_mut(), &mut ul),
        s,
    );
    check(
        "C_DigestUpdate",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_DigestUpdate(h, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_DigestFinal",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_DigestFinal(h, null_mut(), &mut ul),
        s,
    );
    let mut sha256 = mech(CKM_SHA256);
    assert_eq!(C_DigestInit(h, &mut sha256), CKR_OK);
    check(
        "C_DigestInit",
        Some(CKR_OPERATION_ACTIVE),
        || C_DigestInit(h, &mut sha256),
        s,
    );
    check(
        "C_DigestUpdate",
        Some(CKR_ARGUMENTS_BAD),
        || C_DigestUpdate(h, null_mut(), 1),
        s,
    );
    assert_eq!(C_DigestInit(h, &mut sha256), CKR_OK);
    ul = 4;
    check(
        "C_DigestFinal",
        Some(CKR_BUFFER_TOO_SMALL),
        || C_DigestFinal(h, buf.as_mut_ptr(), &mut ul),
        s,
    );
    check(
        "C_Digest",
        Some(CKR_ARGUMENTS_BAD),
        || C_Digest(h, buf.as_mut_ptr(), 1, buf.as_mut_ptr(), null_mut()),
        s,
    );

    // ---- signing and verifying -----------------------------------------------------------
    let mut ecdsa = mech(CKM_ECDSA);
    let mut rsa_pkcs = mech(CKM_RSA_PKCS);
    let mut sha256_rsa = mech(CKM_SHA256_RSA_PKCS);
    let mut bad_param = CK_MECHANISM {
        mechanism: CKM_ECDSA,
        pParameter: buf.as_mut_ptr().cast(),
        ulParameterLen: 1,
    };
    check(
        "C_SignInit",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_SignInit(999, &mut ecdsa, 4),
        s,
    );
    check(
        "C_SignInit",
        Some(CKR_MECHANISM_INVALID),
        || C_SignInit(h, &mut md5, 4),
        s,
    );
    check(
        "C_SignInit",
        Some(CKR_MECHANISM_PARAM_INVALID),
        || C_SignInit(h, &mut bad_param, 4),
        s,
    );
    check(
        "C_SignInit",
        Some(CKR_KEY_TYPE_INCONSISTENT),
        || C_SignInit(h, &mut ecdsa, 1),
        s,
    );
    check(
        "C_SignInit",
        Some(CKR_KEY_FUNCTION_NOT_PERMITTED),
        || C_SignInit(h, &mut ecdsa, 5),
        s,
    );
    check(
        "C_SignInit",
        Some(CKR_KEY_HANDLE_INVALID),
        || C_SignInit(h, &mut ecdsa, 99),
        s,
    );
    check(
        "C_VerifyInit",
        Some(CKR_KEY_FUNCTION_NOT_PERMITTED),
        || C_VerifyInit(h, &mut ecdsa, 4),
        s,
    );
    check(
        "C_VerifyInit",
        Some(CKR_MECHANISM_INVALID),
        || C_VerifyInit(h, &mut md5, 5),
        s,
    );
    check(
        "C_Sign",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_Sign(h, buf.as_mut_ptr(), 32, null_mut(), &mut ul),
        s,
    );
    check(
        "C_SignUpdate",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_SignUpdate(h, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_SignFinal",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_SignFinal(h, null_mut(), &mut ul),
        s,
    );
    check(
        "C_Verify",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_Verify(h, buf.as_mut_ptr(), 32, buf.as_mut_ptr(), 64),
        s,
    );
    check(
        "C_VerifyUpdate",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_VerifyUpdate(h, buf.as_mut_ptr(), 1),
        s,
    );
    check(
        "C_VerifyFinal",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_VerifyFinal(h, buf.as_mut_ptr(), 64),
        s,
    );

    assert_eq!(C_SignInit(h, &mut ecdsa, 4), CKR_OK);
    check(
        "C_SignInit",
        Some(CKR_OPERATION_ACTIVE),
        || C_SignInit(h, &mut ecdsa, 4),
        s,
    );
    check(
        "C_Sign",
        Some(CKR_ARGUMENTS_BAD),
        || C_Sign(h, buf.as_mut_ptr(), 32, buf.as_mut_ptr(), null_mut()),
        s,
    );
    assert_eq!(C_SignInit(h, &mut ecdsa, 4), CKR_OK);
    let mut sig = [0u8; 64];
    check(
        "C_Sign",
        Some(CKR_DATA_LEN_RANGE),
        || C_Sign(h, buf.as_mut_ptr(), 20, sig.as_mut_ptr(), &mut 64),
        s,
    );
    assert_eq!(C_SignInit(h, &mut ecdsa, 4), CKR_OK);
    ul = 8;
    check(
        "C_Sign",
        Some(CKR_BUFFER_TOO_SMALL),
        || C_Sign(h, buf.as_mut_ptr(), 32, buf.as_mut_ptr(), &mut ul),
        s,
    );
    // Single-part mechanisms: Update and Final refused, and the operation ended.
    check(
        "C_SignUpdate",
        Some(CKR_FUNCTION_NOT_SUPPORTED),
        || C_SignUpdate(h, buf.as_mut_ptr(), 32),
        s,
    );
    check(
        "C_Sign",
        Some(CKR_OPERATION_NOT_INITIALIZED),
        || C_Sign(h, buf.as_mut_ptr(), 32, null_mut(), &mut ul),
        s,
    );
    assert_eq!(C_SignInit(h, &mut ecdsa, 4), CKR_OK);
    check(
        "C_SignFinal",
        Some(CKR_FUNCTION_NOT_SUPPORTED),
        || C_SignFinal(h, null_mut(), &mut ul),
        s,
    );
    for m in [&mut ecdsa, &mut rsa_pkcs] {
        let key = if m.mechanism == CKM_ECDSA { 4 } else { 1 };
        assert_eq!(C_VerifyInit(h, m, key + 1), CKR_OK);
        check(
            "C_VerifyUpdate",
            Some(CKR_FUNCTION_NOT_SUPPORTED),
            || C_VerifyUpdate(h, buf.as_mut_ptr(), 32),
            s,
        );
        assert_eq!(C_VerifyInit(h, m, key + 1), CKR_OK);
        check(
            "C_VerifyFinal",
            Some(CKR_FUNCTION_NOT_SUPPORTED),
            || C_VerifyFinal(h, buf.as_mut_ptr(), 64),
            s,
        );
    }
    assert_eq!(C_SignInit(h, &mut rsa_pkcs, 1), CKR_OK);
    check(
        "C_Sign",
        Some(CKR_DATA_INVALID),
        || C_Sign(h, buf.as_mut_ptr(), 51, buf.as_mut_ptr(), &mut 512),
        s,
    );
    assert_eq!(C_SignInit(h, &mut sha256_rsa, 1), CKR_OK);
    assert_eq!(C_SignUpdate(h, buf.as_mut_ptr(), 3), CKR_OK);
    check(
        "C_Sign",
        Some(CKR_FUNCTION_FAILED),
        || C_Sign(h, buf.as_mut_ptr(), 3, null_mut(), &mut ul),
        s,
    );
    assert_eq!(C_SignInit(h, &mut sha256_rsa, 1), CKR_OK);
    check(
        "C_SignUpdate",
        Some(CKR_ARGUMENTS_BAD),
        || C_SignUpdate(h, null_mut(), 3),
        s,
    );
    assert_eq!(C_VerifyInit(h, &mut sha256_rsa, 2), CKR_OK);
    check(
        "C_Verify",
        Some(CKR_SIGNATURE_LEN_RANGE),
        || C_Verify(h, buf.as_mut_ptr(), 3, buf.as_mut_ptr(), 3),
        s,
    );
    assert_eq!(C_VerifyInit(h, &mut sha256_rsa, 2), CKR_OK);
    check(
        "C_Verify",
        Some(CKR_SIGNATURE_INVALID),
        || C_Verify(h, buf.as_mut_ptr(), 3, buf.as_mut_ptr(), 256),
        s,
    );
    assert_eq!(C_VerifyInit(h, &mut sha256_rsa, 2), CKR_OK);
    assert_eq!(C_VerifyUpdate(h, buf.as_mut_ptr(), 3), CKR_OK);
    check(
        "C_VerifyFinal",
        Some(CKR_SIGNATURE_INVALID),
        || C_VerifyFinal(h, buf.as_mut_ptr(), 256),
        s,
    );
    assert_eq!(C_VerifyInit(h, &mut sha256_rsa, 2), CKR_OK);
    check(
        "C_VerifyUpdate",
        Some(CKR_ARGUMENTS_BAD),
        || C_VerifyUpdate(h, null_mut(), 3),
        s,
    );
    // Every failure KeyServer can answer to a sign order, through C_Sign and C_SignFinal.
    for kind in ALL_KINDS {
        *failing.sign_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(kind);
        assert_eq!(C_SignInit(h, &mut sha256_rsa, 1), CKR_OK);
        check(
            "C_Sign",
            None,
            || C_Sign(h, buf.as_mut_ptr(), 3, buf.as_mut_ptr(), &mut 512),
            s,
        );
        assert_eq!(C_SignInit(h, &mut sha256_rsa, 1), CKR_OK);
        assert_eq!(C_SignUpdate(h, buf.as_mut_ptr(), 3), CKR_OK);
        check(
            "C_SignFinal",
            None,
            || C_SignFinal(h, buf.as_mut_ptr(), &mut 512),
            s,
        );
    }
    *failing.sign_error.lock().unwrap_or_else(|e| e.into_inner()) = None;

    // ---- the end --------------------------------------------------------------------------
    assert_eq!(C_CloseSession(h), CKR_OK);
    check(
        "C_CloseSession",
        Some(CKR_SESSION_HANDLE_INVALID),
        || C_CloseSession(h),
        s,
    );
    assert_eq!(C_Finalize(null_mut()), CKR_OK);
    check("C_Finalize", not_init, || C_Finalize(null_mut()), s);
    let _ = null::<u8>();

    let problems: Vec<&String> = seen.iter().filter(|n| n.starts_with('!')).collect();
    assert!(problems.is_empty(), "{problems:#?}");
    // Every function of the table was driven through at least one error path.
    for name in [
        "C_Initialize",
        "C_Finalize",
        "C_GetInfo",
        "C_GetFunctionList",
        "C_GetInterfaceList",
        "C_GetInterface",
        "C_GetSlotList",
        "C_GetSlotInfo",
        "C_GetTokenInfo",
        "C_GetMechanismList",
        "C_GetMechanismInfo",
        "C_OpenSession",
        "C_CloseSession",
        "C_CloseAllSessions",
        "C_GetSessionInfo",
        "C_Login",
        "C_Logout",
        "C_GetAttributeValue",
        "C_GetObjectSize",
        "C_FindObjectsInit",
        "C_FindObjects",
        "C_FindObjectsFinal",
        "C_DigestInit",
        "C_Digest",
        "C_DigestUpdate",
        "C_DigestFinal",
        "C_SignInit",
        "C_Sign",
        "C_SignUpdate",
        "C_SignFinal",
        "C_VerifyInit",
        "C_Verify",
        "C_VerifyUpdate",
        "C_VerifyFinal",
    ] {
        assert!(
            seen.iter().any(|n| n == name),
            "{name} has no error path in the table"
        );
        assert!(
            crate::spec::listed(name).is_some(),
            "{name} is not in the spec table"
        );
    }
}
