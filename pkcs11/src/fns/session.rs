//! Session management: `C_OpenSession`, `C_CloseSession`,
//! `C_CloseAllSessions`, `C_GetSessionInfo`, `C_Login`, `C_LoginUser`,
//! `C_Logout`. No login is required; any PIN is accepted and never logged.

use std::ffi::c_void;

use cryptoki_sys::*;

use crate::error::Result;

use super::{check_slot, token};
use crate::ffi::{guard, input, out};
use crate::token::SLOT_ID;

/// `C_OpenSession`: serial sessions, read-only or read/write (the token itself
/// stays write-protected). Notification callbacks are never called.
#[no_mangle]
pub extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard("C_OpenSession", || {
        open_session(slot, flags, _application, _notify, session)
    })
}

fn open_session(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _application: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> Result<()> {
    let t = token()?;
    check_slot(slot)?;
    if flags & CKF_SERIAL_SESSION == 0 {
        return Err(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    }
    // SAFETY: a non-null pointer is writable for a handle (PKCS#11).
    let session = unsafe { out(session) }?;
    *session = t.open_session(flags & CKF_RW_SESSION != 0)?;
    Ok(())
}

/// `C_CloseSession`.
#[no_mangle]
pub extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || token()?.close_session(session))
}

/// `C_CloseAllSessions`.
#[no_mangle]
pub extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || close_all_sessions(slot))
}

fn close_all_sessions(slot: CK_SLOT_ID) -> Result<()> {
    let t = token()?;
    check_slot(slot)?;
    t.close_all_sessions();
    Ok(())
}

/// `C_GetSessionInfo`.
#[no_mangle]
pub extern "C" fn C_GetSessionInfo(
    session: CK_SESSION_HANDLE,
    info: *mut CK_SESSION_INFO,
) -> CK_RV {
    guard("C_GetSessionInfo", || get_session_info(session, info))
}

fn get_session_info(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null pointer is writable for a CK_SESSION_INFO (PKCS#11).
    let info = unsafe { out(info) }?;
    let (state, flags) = t.session_info(session)?;
    *info = CK_SESSION_INFO {
        slotID: SLOT_ID,
        state,
        flags,
        ulDeviceError: 0,
    };
    Ok(())
}

/// `C_Login`: accepted with any PIN.
#[no_mangle]
pub extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || login(session, user, pin, pin_len))
}

fn login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null PIN has `pin_len` readable bytes (PKCS#11); it is
    // only checked for presence, never stored or logged.
    unsafe { input(pin.cast_const(), pin_len) }?;
    t.login(session, user)
}

/// `C_LoginUser` (3.0): like `C_Login`; the user name is ignored.
#[no_mangle]
pub extern "C" fn C_LoginUser(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    username: *mut CK_UTF8CHAR,
    username_len: CK_ULONG,
) -> CK_RV {
    guard("C_LoginUser", || {
        login_user(session, user, pin, pin_len, username, username_len)
    })
}

fn login_user(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    pin_len: CK_ULONG,
    username: *mut CK_UTF8CHAR,
    username_len: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    // SAFETY: as in C_Login; the name has `username_len` readable bytes.
    unsafe { input(pin.cast_const(), pin_len) }?;
    // SAFETY: as above.
    unsafe { input(username.cast_const(), username_len) }?;
    t.login(session, user)
}

/// `C_Logout`.
#[no_mangle]
pub extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || token()?.logout(session))
}
