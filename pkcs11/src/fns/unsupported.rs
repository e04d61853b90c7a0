//! Functions this token does not offer: present in the function lists and
//! exported, answering `CKR_FUNCTION_NOT_SUPPORTED` (the legacy parallel
//! functions answer `CKR_FUNCTION_NOT_PARALLEL`, as PKCS#11 requires; the
//! random-number functions `CKR_RANDOM_NO_RNG`: the token has no RNG).

#![allow(non_snake_case)]

use std::ffi::c_void;

use cryptoki_sys::*;

macro_rules! unsupported {
    ($rv:expr => $($name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {$(
        #[doc = concat!("`", stringify!($name), "`: not supported by this token.")]
        #[no_mangle]
        pub extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $(let _ = $arg;)*
            $rv
        }
    )*};
}

unsupported! { CKR_FUNCTION_NOT_SUPPORTED =>
    C_InitToken(a1: CK_SLOT_ID, a2: *mut CK_UTF8CHAR, a3: CK_ULONG, a4: *mut CK_UTF8CHAR);
    C_InitPIN(a1: CK_SESSION_HANDLE, a2: *mut CK_UTF8CHAR, a3: CK_ULONG);
    C_SetPIN(a1: CK_SESSION_HANDLE, a2: *mut CK_UTF8CHAR, a3: CK_ULONG, a4: *mut CK_UTF8CHAR, a5: CK_ULONG);
    C_GetOperationState(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: *mut CK_ULONG);
    C_SetOperationState(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: CK_OBJECT_HANDLE, a5: CK_OBJECT_HANDLE);
    C_EncryptInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_Encrypt(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_EncryptUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_EncryptFinal(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: *mut CK_ULONG);
    C_DecryptInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_Decrypt(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_DecryptUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_DecryptFinal(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: *mut CK_ULONG);
    C_DigestKey(a1: CK_SESSION_HANDLE, a2: CK_OBJECT_HANDLE);
    C_SignRecoverInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_SignRecover(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_VerifyRecoverInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_VerifyRecover(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_DigestEncryptUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_DecryptDigestUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_SignEncryptUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_DecryptVerifyUpdate(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG, a4: *mut CK_BYTE, a5: *mut CK_ULONG);
    C_GenerateKey(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: *mut CK_ATTRIBUTE, a4: CK_ULONG, a5: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: *mut CK_ATTRIBUTE, a4: CK_ULONG, a5: *mut CK_ATTRIBUTE, a6: CK_ULONG, a7: *mut CK_OBJECT_HANDLE, a8: *mut CK_OBJECT_HANDLE);
    C_WrapKey(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE, a4: CK_OBJECT_HANDLE, a5: *mut CK_BYTE, a6: *mut CK_ULONG);
    C_UnwrapKey(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_ATTRIBUTE, a7: CK_ULONG, a8: *mut CK_OBJECT_HANDLE);
    C_DeriveKey(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE, a4: *mut CK_ATTRIBUTE, a5: CK_ULONG, a6: *mut CK_OBJECT_HANDLE);
    C_WaitForSlotEvent(a1: CK_FLAGS, a2: *mut CK_SLOT_ID, a3: *mut c_void);
    C_SessionCancel(a1: CK_SESSION_HANDLE, a2: CK_FLAGS);
    C_MessageEncryptInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_EncryptMessage(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: CK_ULONG, a8: *mut CK_BYTE, a9: *mut CK_ULONG);
    C_EncryptMessageBegin(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG);
    C_EncryptMessageNext(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: *mut CK_ULONG, a8: CK_FLAGS);
    C_MessageEncryptFinal(a1: CK_SESSION_HANDLE);
    C_MessageDecryptInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_DecryptMessage(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: CK_ULONG, a8: *mut CK_BYTE, a9: *mut CK_ULONG);
    C_DecryptMessageBegin(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG);
    C_DecryptMessageNext(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: *mut CK_ULONG, a8: CK_FLAGS);
    C_MessageDecryptFinal(a1: CK_SESSION_HANDLE);
    C_MessageSignInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_SignMessage(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: *mut CK_ULONG);
    C_SignMessageBegin(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG);
    C_SignMessageNext(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: *mut CK_ULONG);
    C_MessageSignFinal(a1: CK_SESSION_HANDLE);
    C_MessageVerifyInit(a1: CK_SESSION_HANDLE, a2: *mut CK_MECHANISM, a3: CK_OBJECT_HANDLE);
    C_VerifyMessage(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: CK_ULONG);
    C_VerifyMessageBegin(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG);
    C_VerifyMessageNext(a1: CK_SESSION_HANDLE, a2: *mut c_void, a3: CK_ULONG, a4: *mut CK_BYTE, a5: CK_ULONG, a6: *mut CK_BYTE, a7: CK_ULONG);
    C_MessageVerifyFinal(a1: CK_SESSION_HANDLE);
}

unsupported! { CKR_FUNCTION_NOT_PARALLEL =>
    C_GetFunctionStatus(a1: CK_SESSION_HANDLE);
    C_CancelFunction(a1: CK_SESSION_HANDLE);
}

// The token has no random number generator (PKCS#11: CKR_RANDOM_NO_RNG).
unsupported! { CKR_RANDOM_NO_RNG =>
    C_SeedRandom(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG);
    C_GenerateRandom(a1: CK_SESSION_HANDLE, a2: *mut CK_BYTE, a3: CK_ULONG);
}
