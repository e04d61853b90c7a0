//! PKCS#11 mechanisms and their parameters as an application passes them: `C_SignInit`,
//! `C_VerifyInit`, `C_DigestInit` with any mechanism type and parameter bytes, then the data.
//!
//! Input: flags u8 (bit 0: key2 (EC) instead of key1 (RSA); bit 1: verify; bit 2: digest),
//! mechanism u64 LE, parameter length u8 (0xff: NULL pParameter), parameter, data.
#![no_main]

#[path = "shared/pkcs11.rs"]
mod shared;

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use pkcs11ks::fns::{digest, sign, slot, verify};
use shared::Input;

fuzz_target!(|data: &[u8]| {
    let objects = shared::setup();
    let mut input = Input(data);
    let (Some(flags), Some(ty), Some(plen)) = (input.u8(), input.u64(), input.u8()) else {
        return;
    };
    let mut param = if plen == 0xff {
        None
    } else {
        match input.bytes(usize::from(plen)) {
            Some(p) => Some(p.to_vec()),
            None => return,
        }
    };
    let mut payload = input.0.to_vec();
    let mut mech = CK_MECHANISM {
        mechanism: ty as CK_MECHANISM_TYPE,
        pParameter: param
            .as_mut()
            .map_or(std::ptr::null_mut(), |p| p.as_mut_ptr().cast()),
        ulParameterLen: param.as_ref().map_or(0, |p| p.len() as CK_ULONG),
    };
    let mut info = CK_MECHANISM_INFO::default();
    let _ = slot::C_GetMechanismInfo(pkcs11ks::token::SLOT_ID, mech.mechanism, &mut info);

    let key_index = if flags & 1 == 0 { 0 } else { 3 };
    let s = shared::open();
    let data_ptr = payload.as_mut_ptr();
    let data_len = payload.len() as CK_ULONG;
    if flags & 4 != 0 {
        if digest::C_DigestInit(s, &mut mech) == CKR_OK {
            let mut out = [0u8; 64];
            let mut out_len = out.len() as CK_ULONG;
            let _ = digest::C_Digest(s, data_ptr, data_len, out.as_mut_ptr(), &mut out_len);
        }
    } else if flags & 2 != 0 {
        // Verify with the public key of the same pair.
        let key = objects.all[key_index + 1];
        if verify::C_VerifyInit(s, &mut mech, key) == CKR_OK {
            let mut sig = vec![0x5a; 512];
            let _ = verify::C_Verify(s, data_ptr, data_len, sig.as_mut_ptr(), 256);
        }
    } else {
        let key = objects.all[key_index];
        if sign::C_SignInit(s, &mut mech, key) == CKR_OK {
            // The size query first (no signature made), then a short buffer, then the real one.
            let mut len: CK_ULONG = 0;
            let rv = sign::C_Sign(s, data_ptr, data_len, std::ptr::null_mut(), &mut len);
            if rv == CKR_OK {
                let mut short = vec![0u8; 1];
                let mut short_len: CK_ULONG = 1;
                let _ = sign::C_Sign(s, data_ptr, data_len, short.as_mut_ptr(), &mut short_len);
                let mut out = vec![0u8; len as usize];
                let _ = sign::C_Sign(s, data_ptr, data_len, out.as_mut_ptr(), &mut len);
            }
        }
        // Multi-part use of the same mechanism in a fresh operation.
        if sign::C_SignInit(s, &mut mech, key) == CKR_OK {
            let half = payload.len() / 2;
            let _ = sign::C_SignUpdate(s, data_ptr, half as CK_ULONG);
            let _ = sign::C_SignUpdate(
                s,
                payload[half..].as_mut_ptr(),
                (payload.len() - half) as CK_ULONG,
            );
            let mut out = vec![0u8; 1024];
            let mut len = out.len() as CK_ULONG;
            let _ = sign::C_SignFinal(s, out.as_mut_ptr(), &mut len);
        }
    }
    shared::close(s);
});
