//! The return codes PKCS#11 3.0 lists for each implemented function (section 5, "Return
//! values" of each function, plus the universal codes of 5.1.1). The FFI guard (`ffi::guard`) keeps
//! every answer inside its function's list: a code the core chose that the specification does
//! not list there becomes `CKR_FUNCTION_FAILED` (universal), with the precise code in the log,
//! because callers such as conformance tools and pkcs11-spy treat an unlisted code as a bug.

use cryptoki_sys::*;

/// Every function may return these (PKCS#11 3.0 5.1.1).
pub(crate) const UNIVERSAL: &[CK_RV] = &[
    CKR_OK,
    CKR_GENERAL_ERROR,
    CKR_HOST_MEMORY,
    CKR_FUNCTION_FAILED,
];

/// Device and session codes most token and session functions list (5.1.2, 5.1.3).
const DEVICE: &[CK_RV] = &[CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY, CKR_DEVICE_REMOVED];

macro_rules! codes {
    ($($c:ident),* $(,)?) => { &[$($c),*] };
}

/// The multi-part calls may also answer `CKR_FUNCTION_NOT_SUPPORTED`, the code PKCS#11 5.1
/// gives any function for what the library does not support, for a single-part mechanism
/// (`CKM_RSA_PKCS`, `CKM_ECDSA`, `CKM_RSA_PKCS_PSS`): it is what callers test for there
/// (pkcs11-tool `--test` then signs single-part instead).
const MULTI_PART_NOT_SUPPORTED: &[&str] = &[
    "C_SignUpdate",
    "C_SignFinal",
    "C_VerifyUpdate",
    "C_VerifyFinal",
];

/// The codes listed for `name` besides [`UNIVERSAL`] (and, where marked, the device codes);
/// `None` for a function not in the table (its answer is passed through).
pub(crate) fn listed(name: &str) -> Option<(&'static [CK_RV], bool)> {
    // (codes, whether the device codes are listed too)
    let entry: (&'static [CK_RV], bool) = match name {
        "C_Initialize" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CANT_LOCK,
                CKR_CRYPTOKI_ALREADY_INITIALIZED,
                CKR_NEED_TO_CREATE_THREADS
            ],
            false,
        ),
        "C_Finalize" | "C_GetInfo" => (
            codes![CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED],
            false,
        ),
        "C_GetFunctionList" | "C_GetInterface" => (codes![CKR_ARGUMENTS_BAD], false),
        "C_GetInterfaceList" => (codes![CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL], false),
        "C_GetSlotList" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED
            ],
            false,
        ),
        "C_GetSlotInfo" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DEVICE_ERROR,
                CKR_SLOT_ID_INVALID
            ],
            false,
        ),
        "C_GetTokenInfo" | "C_GetMechanismList" | "C_GetMechanismInfo" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_MECHANISM_INVALID,
                CKR_SLOT_ID_INVALID,
                CKR_TOKEN_NOT_PRESENT,
                CKR_TOKEN_NOT_RECOGNIZED
            ],
            true,
        ),
        "C_OpenSession" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_SESSION_COUNT,
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                CKR_SESSION_READ_WRITE_SO_EXISTS,
                CKR_SLOT_ID_INVALID,
                CKR_TOKEN_NOT_PRESENT,
                CKR_TOKEN_NOT_RECOGNIZED,
                CKR_TOKEN_WRITE_PROTECTED
            ],
            true,
        ),
        "C_CloseSession" => (
            codes![
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_CloseAllSessions" => (
            codes![
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_SLOT_ID_INVALID,
                CKR_TOKEN_NOT_PRESENT
            ],
            true,
        ),
        "C_GetSessionInfo" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_Login" | "C_LoginUser" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_PIN_INCORRECT,
                CKR_PIN_LOCKED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_SESSION_READ_ONLY_EXISTS,
                CKR_USER_ALREADY_LOGGED_IN,
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
                CKR_USER_PIN_NOT_INITIALIZED,
                CKR_USER_TOO_MANY_TYPES,
                CKR_USER_TYPE_INVALID
            ],
            true,
        ),
        "C_Logout" => (
            codes![
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN
            ],
            true,
        ),
        "C_GetAttributeValue" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_ATTRIBUTE_SENSITIVE,
                CKR_ATTRIBUTE_TYPE_INVALID,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_OBJECT_HANDLE_INVALID,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_GetObjectSize" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_INFORMATION_SENSITIVE,
                CKR_OBJECT_HANDLE_INVALID,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_FindObjectsInit" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_ATTRIBUTE_TYPE_INVALID,
                CKR_ATTRIBUTE_VALUE_INVALID,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_FindObjects" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_FindObjectsFinal" => (
            codes![
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_DigestInit" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_FUNCTION_CANCELED,
                CKR_MECHANISM_INVALID,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN
            ],
            true,
        ),
        "C_Digest" | "C_DigestFinal" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_DigestUpdate" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID
            ],
            true,
        ),
        "C_SignInit" | "C_VerifyInit" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_FUNCTION_CANCELED,
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                CKR_KEY_HANDLE_INVALID,
                CKR_KEY_SIZE_RANGE,
                CKR_KEY_TYPE_INCONSISTENT,
                CKR_MECHANISM_INVALID,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN
            ],
            true,
        ),
        "C_Sign" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_INVALID,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN,
                CKR_FUNCTION_REJECTED,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        "C_SignUpdate" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        "C_SignFinal" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_BUFFER_TOO_SMALL,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_USER_NOT_LOGGED_IN,
                CKR_FUNCTION_REJECTED,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        "C_Verify" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_INVALID,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_SIGNATURE_INVALID,
                CKR_SIGNATURE_LEN_RANGE,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        "C_VerifyUpdate" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        "C_VerifyFinal" => (
            codes![
                CKR_ARGUMENTS_BAD,
                CKR_CRYPTOKI_NOT_INITIALIZED,
                CKR_DATA_LEN_RANGE,
                CKR_FUNCTION_CANCELED,
                CKR_OPERATION_NOT_INITIALIZED,
                CKR_SESSION_CLOSED,
                CKR_SESSION_HANDLE_INVALID,
                CKR_SIGNATURE_INVALID,
                CKR_SIGNATURE_LEN_RANGE,
                CKR_TOKEN_RESOURCE_EXCEEDED
            ],
            true,
        ),
        _ => return None,
    };
    Some(entry)
}

/// Whether PKCS#11 lists `rv` for the function `name` (true for a function not in the table).
pub(crate) fn is_listed(name: &str, rv: CK_RV) -> bool {
    match listed(name) {
        None => true,
        Some((codes, device)) => {
            UNIVERSAL.contains(&rv)
                || codes.contains(&rv)
                || (device && DEVICE.contains(&rv))
                || (rv == CKR_FUNCTION_NOT_SUPPORTED && MULTI_PART_NOT_SUPPORTED.contains(&name))
        }
    }
}
