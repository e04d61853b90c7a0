//! Slot and token management: `C_GetSlotList`, `C_GetSlotInfo`,
//! `C_GetTokenInfo`, `C_GetMechanismList`, `C_GetMechanismInfo`. None of them
//! needs the network.

use cryptoki_sys::*;

use super::{check_slot, token};
use crate::error::Result;
use crate::ffi::{count, crate_version, guard, out, padded};
use crate::mechanism::{mechanism_info, mechanism_list};
use crate::token::SLOT_ID;

/// The token label existing scripts and URIs (`pkcs11:token=KEYSERVER`) use.
pub const TOKEN_LABEL: &str = "KEYSERVER";

/// `C_GetSlotList`: the one slot (its token is always present).
#[no_mangle]
pub extern "C" fn C_GetSlotList(
    present: CK_BBOOL,
    list: *mut CK_SLOT_ID,
    n: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetSlotList", || get_slot_list(present, list, n))
}

fn get_slot_list(_present: CK_BBOOL, list: *mut CK_SLOT_ID, n: *mut CK_ULONG) -> Result<()> {
    token()?;
    // SAFETY: a non-null pointer is writable for a CK_ULONG (PKCS#11).
    let n = unsafe { out(n) }?;
    if list.is_null() {
        *n = 1;
        return Ok(());
    }
    let capacity = count(*n)?;
    *n = 1;
    if capacity < 1 {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `list` holds at least one writable CK_SLOT_ID.
    unsafe { list.write(SLOT_ID) };
    Ok(())
}

/// `C_GetSlotInfo`.
#[no_mangle]
pub extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard("C_GetSlotInfo", || get_slot_info(slot, info))
}

fn get_slot_info(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> Result<()> {
    token()?;
    check_slot(slot)?;
    // SAFETY: a non-null pointer is writable for a CK_SLOT_INFO (PKCS#11).
    let info = unsafe { out(info) }?;
    *info = CK_SLOT_INFO {
        slotDescription: padded("KeyServer remote signing"),
        manufacturerID: padded("KeyServer"),
        flags: CKF_TOKEN_PRESENT,
        hardwareVersion: crate_version(),
        firmwareVersion: crate_version(),
    };
    Ok(())
}

/// `C_GetTokenInfo`: token `KEYSERVER`, write-protected, no login required.
#[no_mangle]
pub extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard("C_GetTokenInfo", || get_token_info(slot, info))
}

fn get_token_info(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> Result<()> {
    let t = token()?;
    check_slot(slot)?;
    // SAFETY: a non-null pointer is writable for a CK_TOKEN_INFO (PKCS#11).
    let info = unsafe { out(info) }?;
    let (sessions, rw) = t.session_counts();
    *info = CK_TOKEN_INFO {
        label: padded(TOKEN_LABEL),
        manufacturerID: padded("KeyServer"),
        model: padded("remote signing"),
        serialNumber: padded("0000000000000001"),
        flags: CKF_TOKEN_INITIALIZED | CKF_WRITE_PROTECTED | CKF_USER_PIN_INITIALIZED,
        ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
        ulSessionCount: sessions as CK_ULONG,
        ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
        ulRwSessionCount: rw as CK_ULONG,
        ulMaxPinLen: 255,
        ulMinPinLen: 0,
        ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
        ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
        ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
        hardwareVersion: crate_version(),
        firmwareVersion: crate_version(),
        utcTime: padded(""),
    };
    Ok(())
}

/// `C_GetMechanismList`.
#[no_mangle]
pub extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    n: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetMechanismList", || get_mechanism_list(slot, list, n))
}

fn get_mechanism_list(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    n: *mut CK_ULONG,
) -> Result<()> {
    token()?;
    check_slot(slot)?;
    // SAFETY: a non-null pointer is writable for a CK_ULONG (PKCS#11).
    let n = unsafe { out(n) }?;
    let all = mechanism_list();
    if list.is_null() {
        *n = all.len() as CK_ULONG;
        return Ok(());
    }
    let capacity = count(*n)?;
    *n = all.len() as CK_ULONG;
    if capacity < all.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `list` holds `capacity` >= all.len() writable entries.
    unsafe { std::ptr::copy_nonoverlapping(all.as_ptr(), list, all.len()) };
    Ok(())
}

/// `C_GetMechanismInfo`.
#[no_mangle]
pub extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        get_mechanism_info(slot, mechanism, info)
    })
}

fn get_mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> Result<()> {
    token()?;
    check_slot(slot)?;
    // SAFETY: a non-null pointer is writable for a CK_MECHANISM_INFO (PKCS#11).
    let info = unsafe { out(info) }?;
    *info = mechanism_info(mechanism).ok_or(CKR_MECHANISM_INVALID)?;
    Ok(())
}
