//! The PKCS#11 module as an application sees it, initialised once per process over
//! `ks_common`'s fake signer holding the dev server's key1 (RSA-2048) and key2 (EC P-256):
//! the targets drive the real `C_*` functions and never reach a network.

use std::sync::{Arc, OnceLock};

use cryptoki_sys::*;
use ks_common::signer::fake::FakeSigner;
use ks_common::signer::Signer;
use ks_common::KeyEntry;
use pkcs11ks::fns::{object, session};

/// Handles of the objects the targets use: key1 then key2, private, public, certificate.
pub struct Objects {
    pub all: Vec<CK_OBJECT_HANDLE>,
}

fn keys() -> Vec<KeyEntry> {
    vec![
        KeyEntry::from_pem("key1", "RSA", include_str!("../../fixtures/key1.pem")).expect("key1"),
        KeyEntry::from_pem("key2", "EC", include_str!("../../fixtures/key2.pem")).expect("key2"),
    ]
}

/// Initialises the module (once) and returns the object handles.
pub fn setup() -> &'static Objects {
    static O: OnceLock<Objects> = OnceLock::new();
    O.get_or_init(|| {
        let rv = pkcs11ks::fuzzing::initialize_with(Arc::new(|| {
            Ok(Arc::new(FakeSigner::new(keys())) as Arc<dyn Signer>)
        }));
        assert_eq!(rv, CKR_OK, "initialize");
        let s = open();
        let mut all = Vec::new();
        for label in [&b"key1"[..], b"key2"] {
            for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE] {
                let mut class_v = class;
                let mut template = [
                    CK_ATTRIBUTE {
                        type_: CKA_CLASS,
                        pValue: (&mut class_v as *mut CK_ULONG).cast(),
                        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
                    },
                    CK_ATTRIBUTE {
                        type_: CKA_LABEL,
                        pValue: label.as_ptr() as *mut _,
                        ulValueLen: label.len() as CK_ULONG,
                    },
                ];
                assert_eq!(
                    object::C_FindObjectsInit(s, template.as_mut_ptr(), 2),
                    CKR_OK
                );
                let mut h: CK_OBJECT_HANDLE = 0;
                let mut n: CK_ULONG = 0;
                assert_eq!(object::C_FindObjects(s, &mut h, 1, &mut n), CKR_OK);
                assert_eq!(n, 1, "object {class} of {label:?}");
                assert_eq!(object::C_FindObjectsFinal(s), CKR_OK);
                all.push(h);
            }
        }
        close(s);
        Objects { all }
    })
}

/// A fresh read-only session (each run starts with no active operation).
pub fn open() -> CK_SESSION_HANDLE {
    let mut s: CK_SESSION_HANDLE = 0;
    let rv = session::C_OpenSession(
        pkcs11ks::token::SLOT_ID,
        CKF_SERIAL_SESSION,
        std::ptr::null_mut(),
        None,
        &mut s,
    );
    assert_eq!(rv, CKR_OK, "C_OpenSession");
    s
}

/// Closes a session opened by [`open`].
pub fn close(s: CK_SESSION_HANDLE) {
    assert_eq!(session::C_CloseSession(s), CKR_OK, "C_CloseSession");
}

/// A little-endian reader over the fuzz input (each target uses some of it).
pub struct Input<'a>(pub &'a [u8]);

#[allow(dead_code)]
impl<'a> Input<'a> {
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}
