//! PKCS#11 attribute templates: `C_FindObjectsInit` (values to match) and
//! `C_GetAttributeValue` (types and caller buffers of any size, NULL for the size query).
//!
//! Input: object selector u8, then entries: type u32 LE, value length u8, value, buffer size
//! u8 for `C_GetAttributeValue` (0xff: NULL pValue).
#![no_main]

#[path = "shared/pkcs11.rs"]
mod shared;

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use pkcs11ks::fns::object;
use shared::Input;

fuzz_target!(|data: &[u8]| {
    let objects = shared::setup();
    let mut input = Input(data);
    let Some(selector) = input.u8() else {
        return;
    };
    let mut values: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    while let (Some(ty), Some(len)) = (input.u32(), input.u8()) {
        let Some(value) = input.bytes(usize::from(len)) else {
            break;
        };
        let Some(buf) = input.u8() else {
            break;
        };
        let buf = (buf != 0xff).then(|| vec![0u8; usize::from(buf)]);
        values.push((CK_ATTRIBUTE_TYPE::from(ty), value.to_vec(), buf));
    }
    let s = shared::open();
    let mut find: Vec<CK_ATTRIBUTE> = values
        .iter_mut()
        .map(|(ty, value, _)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: value.as_mut_ptr().cast(),
            ulValueLen: value.len() as CK_ULONG,
        })
        .collect();
    if object::C_FindObjectsInit(s, find.as_mut_ptr(), find.len() as CK_ULONG) == CKR_OK {
        let mut found = [0 as CK_OBJECT_HANDLE; 8];
        let mut n: CK_ULONG = 0;
        let _ = object::C_FindObjects(s, found.as_mut_ptr(), found.len() as CK_ULONG, &mut n);
        let _ = object::C_FindObjectsFinal(s);
    }
    let handle = match objects.all.get(usize::from(selector)) {
        Some(h) => *h,
        None => CK_OBJECT_HANDLE::from(selector),
    };
    let mut get: Vec<CK_ATTRIBUTE> = values
        .iter_mut()
        .map(|(ty, _, buf)| CK_ATTRIBUTE {
            type_: *ty,
            pValue: buf
                .as_mut()
                .map_or(std::ptr::null_mut(), |b| b.as_mut_ptr().cast()),
            ulValueLen: buf.as_ref().map_or(0, |b| b.len() as CK_ULONG),
        })
        .collect();
    let _ = object::C_GetAttributeValue(s, handle, get.as_mut_ptr(), get.len() as CK_ULONG);
    let mut size: CK_ULONG = 0;
    let _ = object::C_GetObjectSize(s, handle, &mut size);
    shared::close(s);
});
