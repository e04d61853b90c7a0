//! Object management: `C_FindObjectsInit`, `C_FindObjects`,
//! `C_FindObjectsFinal`, `C_GetAttributeValue`, `C_GetObjectSize`; the token
//! is write-protected, so creating, copying, destroying and modifying objects
//! is refused.

use cryptoki_sys::*;

use super::token;
use crate::error::Result;
use crate::ffi::{count, guard, input, out};
use crate::object::AttrValue;

/// `C_FindObjectsInit`: matches any attribute; an empty template matches all.
#[no_mangle]
pub extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        find_objects_init(session, template, n)
    })
}

fn find_objects_init(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    t.session(session)?;
    // SAFETY: a non-null template has `n` readable CK_ATTRIBUTEs (PKCS#11).
    let attrs = unsafe { input(template.cast_const(), n) }?;
    let mut wanted = Vec::with_capacity(attrs.len());
    for a in attrs {
        // SAFETY: each attribute's value has `ulValueLen` readable bytes.
        let value = unsafe { input(a.pValue.cast::<u8>().cast_const(), a.ulValueLen) }?;
        wanted.push((a.type_, value.to_vec()));
    }
    t.find_init(session, &wanted)
}

/// `C_FindObjects`.
#[no_mangle]
pub extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> CK_RV {
    guard("C_FindObjects", || {
        find_objects(session, objects, max, found)
    })
}

fn find_objects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null pointer is writable for a CK_ULONG (PKCS#11).
    let found = unsafe { out(found) }?;
    if objects.is_null() && max > 0 {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let handles = t.find_next(session, count(max)?)?;
    // SAFETY: `objects` has room for `max` >= handles.len() handles.
    unsafe { std::ptr::copy_nonoverlapping(handles.as_ptr(), objects, handles.len()) };
    *found = handles.len() as CK_ULONG;
    Ok(())
}

/// `C_FindObjectsFinal`.
#[no_mangle]
pub extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || token()?.find_final(session))
}

/// `C_GetAttributeValue`, attribute by attribute: a NULL `pValue` asks for the
/// size; an unknown attribute gets `CK_UNAVAILABLE_INFORMATION` and
/// `CKR_ATTRIBUTE_TYPE_INVALID`, a sensitive one `CKR_ATTRIBUTE_SENSITIVE`, a
/// short buffer `CKR_BUFFER_TOO_SMALL`; every other attribute is still served.
#[no_mangle]
pub extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        get_attribute_value(session, object, template, n)
    })
}

fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    n: CK_ULONG,
) -> Result<()> {
    let t = token()?;
    let n = count(n)?;
    if template.is_null() && n > 0 {
        return Err(CKR_ARGUMENTS_BAD);
    }
    let objects = t.objects_for(session)?;
    let obj = objects.get(object).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
    let attrs: &mut [CK_ATTRIBUTE] = if n == 0 {
        &mut []
    } else {
        // SAFETY: `template` is non-null with `n` writable CK_ATTRIBUTEs (PKCS#11).
        unsafe { std::slice::from_raw_parts_mut(template, n) }
    };
    let mut result = Ok(());
    for a in attrs {
        let value = match obj.attribute(a.type_) {
            None => {
                a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                result = Err(CKR_ATTRIBUTE_TYPE_INVALID);
                continue;
            }
            Some(AttrValue::Sensitive) => {
                a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                result = Err(CKR_ATTRIBUTE_SENSITIVE);
                continue;
            }
            Some(v) => v.encode().unwrap_or_default(),
        };
        if a.pValue.is_null() {
            a.ulValueLen = value.len() as CK_ULONG;
        } else if count(a.ulValueLen)? < value.len() {
            a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            result = Err(CKR_BUFFER_TOO_SMALL);
        } else {
            // SAFETY: `pValue` has room for `ulValueLen` >= value.len() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(value.as_ptr(), a.pValue.cast::<u8>(), value.len())
            };
            a.ulValueLen = value.len() as CK_ULONG;
        }
    }
    result
}

/// `C_GetObjectSize`.
#[no_mangle]
pub extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard("C_GetObjectSize", || get_object_size(session, object, size))
}

fn get_object_size(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> Result<()> {
    let t = token()?;
    // SAFETY: a non-null pointer is writable for a CK_ULONG (PKCS#11).
    let size = unsafe { out(size) }?;
    let objects = t.objects_for(session)?;
    let obj = objects.get(object).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
    *size = obj.size() as CK_ULONG;
    Ok(())
}

/// `C_CreateObject`: the token is write-protected.
#[no_mangle]
pub extern "C" fn C_CreateObject(
    session: CK_SESSION_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
    _object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CreateObject", || {
        create_object(session, _template, _n, _object)
    })
}

fn create_object(
    session: CK_SESSION_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
    _object: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    token()?.session(session)?;
    Err(CKR_TOKEN_WRITE_PROTECTED)
}

/// `C_CopyObject`: the token is write-protected.
#[no_mangle]
pub extern "C" fn C_CopyObject(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
    _new_object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_CopyObject", || {
        copy_object(session, object, _template, _n, _new_object)
    })
}

fn copy_object(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
    _new_object: *mut CK_OBJECT_HANDLE,
) -> Result<()> {
    let objects = token()?.objects_for(session)?;
    objects.get(object).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
    Err(CKR_ACTION_PROHIBITED)
}

/// `C_DestroyObject`: the token is write-protected.
#[no_mangle]
pub extern "C" fn C_DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
    guard("C_DestroyObject", || destroy_object(session, object))
}

fn destroy_object(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
    let objects = token()?.objects_for(session)?;
    objects.get(object).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
    Err(CKR_ACTION_PROHIBITED)
}

/// `C_SetAttributeValue`: every attribute is read-only.
#[no_mangle]
pub extern "C" fn C_SetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        set_attribute_value(session, object, _template, _n)
    })
}

fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    _template: *mut CK_ATTRIBUTE,
    _n: CK_ULONG,
) -> Result<()> {
    let objects = token()?.objects_for(session)?;
    objects.get(object).ok_or(CKR_OBJECT_HANDLE_INVALID)?;
    Err(CKR_ACTION_PROHIBITED)
}
