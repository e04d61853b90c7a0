//! Function lists (PKCS#11 2.40 and 3.0) and interface discovery:
//! `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`. These work
//! before `C_Initialize`.

use std::ffi::c_void;

use cryptoki_sys::*;

use super::digest::*;
use super::general::*;
use super::object::*;
use super::session::*;
use super::sign::*;
use super::slot::*;
use super::unsupported::*;
use super::verify::*;
use crate::error::Result;
use crate::ffi::{count, guard, out};

/// The interface name PKCS#11 3.0 defines for the standard function lists.
const INTERFACE_NAME: &[u8] = b"PKCS 11\0";

/// A `CK_INTERFACE` in a static (its pointers refer to immutable statics).
struct Interface(CK_INTERFACE);

// SAFETY: the raw pointers point to immutable statics (name and function
// lists), which are valid and never written for the life of the process.
unsafe impl Sync for Interface {}

static INTERFACES: [Interface; 2] = [
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut(),
        pFunctionList: (&raw const FUNCTION_LIST_3_0).cast_mut().cast::<c_void>(),
        flags: 0,
    }),
    Interface(CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut(),
        pFunctionList: (&raw const FUNCTION_LIST_2_40).cast_mut().cast::<c_void>(),
        flags: 0,
    }),
];

/// A pointer to the writable copies of [`INTERFACES`].
struct Writable(*mut CK_INTERFACE);

// SAFETY: the pointer is to a leaked heap array that lives for the process; the module
// itself never reads or writes it after creating it (lookups use the immutable
// `INTERFACES`), so sharing the pointer between threads adds no data race of ours.
unsafe impl Send for Writable {}
// SAFETY: as above.
unsafe impl Sync for Writable {}

/// The records `C_GetInterface` hands out: writable copies of [`INTERFACES`], made once.
/// Clients may write into the returned `CK_INTERFACE` (OpenSC 0.23's pkcs11-spy replaces
/// `pFunctionList` with its own), and the statics live in read-only memory.
fn writable_interfaces() -> *mut CK_INTERFACE {
    static COPIES: std::sync::OnceLock<Writable> = std::sync::OnceLock::new();
    COPIES
        .get_or_init(|| {
            let copies: Box<[CK_INTERFACE]> =
                INTERFACES.iter().map(|i| CK_INTERFACE { ..i.0 }).collect();
            Writable(Box::leak(copies).as_mut_ptr())
        })
        .0
}

/// `C_GetFunctionList`: the 2.40 function list.
#[no_mangle]
pub extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    guard("C_GetFunctionList", || get_function_list(list))
}

fn get_function_list(list: *mut *mut CK_FUNCTION_LIST) -> Result<()> {
    // SAFETY: a non-null pointer is writable for a pointer (PKCS#11).
    let list = unsafe { out(list) }?;
    *list = (&raw const FUNCTION_LIST_2_40).cast_mut();
    Ok(())
}

/// `C_GetInterfaceList`: the 3.0 interface, then the 2.40 one.
#[no_mangle]
pub extern "C" fn C_GetInterfaceList(list: *mut CK_INTERFACE, count: *mut CK_ULONG) -> CK_RV {
    guard("C_GetInterfaceList", || get_interface_list(list, count))
}

fn get_interface_list(list: *mut CK_INTERFACE, count_ptr: *mut CK_ULONG) -> Result<()> {
    // SAFETY: a non-null pointer is writable for a CK_ULONG (PKCS#11).
    let n = unsafe { out(count_ptr) }?;
    if list.is_null() {
        *n = INTERFACES.len() as CK_ULONG;
        return Ok(());
    }
    let capacity = count(*n)?;
    *n = INTERFACES.len() as CK_ULONG;
    if capacity < INTERFACES.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    for (i, interface) in INTERFACES.iter().enumerate() {
        // SAFETY: the caller provides `capacity` >= INTERFACES.len() writable
        // CK_INTERFACE slots at `list`.
        unsafe { list.add(i).write(CK_INTERFACE { ..interface.0 }) };
    }
    Ok(())
}

/// `C_GetInterface`: a NULL name means the default (3.0) interface; a NULL
/// version means the newest version of the named interface; `flags` must be
/// offered by the interface.
#[no_mangle]
pub extern "C" fn C_GetInterface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_GetInterface", || {
        get_interface(name, version, interface, flags)
    })
}

fn get_interface(
    name: *mut CK_UTF8CHAR,
    version: *mut CK_VERSION,
    interface: *mut *mut CK_INTERFACE,
    flags: CK_FLAGS,
) -> Result<()> {
    // SAFETY: a non-null pointer is writable for a pointer (PKCS#11).
    let result = unsafe { out(interface) }?;
    if !name.is_null() {
        // SAFETY: a non-null name is a NUL-terminated string (PKCS#11).
        let wanted = unsafe { std::ffi::CStr::from_ptr(name.cast_const().cast()) };
        if wanted.to_bytes_with_nul() != INTERFACE_NAME {
            return Err(CKR_ARGUMENTS_BAD);
        }
    }
    // SAFETY: a non-null pointer points to a readable CK_VERSION (PKCS#11).
    let version = unsafe { version.as_ref() };
    let found = INTERFACES.iter().position(|i| {
        // SAFETY: every pFunctionList starts with its CK_VERSION.
        let v = unsafe { *i.0.pFunctionList.cast::<CK_VERSION>() };
        let version_ok = version.is_none_or(|w| w.major == v.major && w.minor == v.minor);
        version_ok && i.0.flags & flags == flags
    });
    match found {
        Some(i) => {
            // SAFETY: `i` indexes INTERFACES, and the writable copies have its length.
            *result = unsafe { writable_interfaces().add(i) };
            Ok(())
        }
        None => Err(CKR_ARGUMENTS_BAD),
    }
}

/// Builds a function list: every PKCS#11 2.40 entry point, then `$extra` (the
/// 3.0 additions), so both lists name the shared functions in one place.
macro_rules! function_list {
    ($ty:ident, $major:expr, $minor:expr $(, $extra:ident)*) => {
        $ty {
            version: CK_VERSION {
                major: $major,
                minor: $minor,
            },
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

pub(crate) static FUNCTION_LIST_2_40: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST, 2, 40);

pub(crate) static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 = function_list!(
    CK_FUNCTION_LIST_3_0,
    3,
    0,
    C_GetInterfaceList,
    C_GetInterface,
    C_LoginUser,
    C_SessionCancel,
    C_MessageEncryptInit,
    C_EncryptMessage,
    C_EncryptMessageBegin,
    C_EncryptMessageNext,
    C_MessageEncryptFinal,
    C_MessageDecryptInit,
    C_DecryptMessage,
    C_DecryptMessageBegin,
    C_DecryptMessageNext,
    C_MessageDecryptFinal,
    C_MessageSignInit,
    C_SignMessage,
    C_SignMessageBegin,
    C_SignMessageNext,
    C_MessageSignFinal,
    C_MessageVerifyInit,
    C_VerifyMessage,
    C_VerifyMessageBegin,
    C_VerifyMessageNext,
    C_MessageVerifyFinal
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_records_are_writable() {
        let mut first: *mut CK_INTERFACE = std::ptr::null_mut();
        let none = std::ptr::null_mut();
        assert_eq!(
            C_GetInterface(none, std::ptr::null_mut(), &mut first, 0),
            CKR_OK
        );
        // SAFETY: C_GetInterface answered a valid record; a client may write into it, as
        // pkcs11-spy does (this faulted when the record was a read-only static).
        let record = unsafe { &mut *first };
        assert_eq!(
            record.pFunctionList.cast_const(),
            (&raw const FUNCTION_LIST_3_0).cast::<c_void>()
        );
        record.pFunctionList = std::ptr::null_mut();
        record.flags = 0x55;
        // Lookups do not depend on what a client wrote.
        let mut v2 = CK_VERSION {
            major: 2,
            minor: 40,
        };
        let mut second: *mut CK_INTERFACE = std::ptr::null_mut();
        assert_eq!(C_GetInterface(none, &mut v2, &mut second, 0), CKR_OK);
        // SAFETY: as above.
        let record = unsafe { &mut *second };
        assert_eq!(
            record.pFunctionList.cast_const(),
            (&raw const FUNCTION_LIST_2_40).cast::<c_void>()
        );
        record.flags = 0x55;
        // The list is copied into the caller's buffer, writable by construction.
        let mut list = [CK_INTERFACE {
            pInterfaceName: std::ptr::null_mut(),
            pFunctionList: std::ptr::null_mut(),
            flags: 0,
        }; 2];
        let mut n: CK_ULONG = 2;
        assert_eq!(C_GetInterfaceList(list.as_mut_ptr(), &mut n), CKR_OK);
        assert_eq!(list[0].flags, 0);
        assert_eq!(
            list[1].pFunctionList.cast_const(),
            (&raw const FUNCTION_LIST_2_40).cast::<c_void>()
        );
    }
}
