//! Raw PKCS#11 calls on libpkcs11ks.so for the fork suites (pkcs11_fork*.rs,
//! included with `#[path]`): initialise, one complete RSA signature with key1,
//! a forked child's steps, and the check of that child's exit. The including
//! suite also includes the shared fork helpers as `mod fork`.

use std::ffi::c_void;
use std::ptr;
use std::time::Duration;

use cryptoki_sys as sys;

use ks_e2e::pkcs11_support::module_path;

use crate::fork::wait_bounded;

/// What a child's exit code from [`RawModule::child_steps`] means.
fn child_failure(code: i32) -> &'static str {
    match code {
        11 => "the parent's initialisation carried over into the child",
        12 => "C_Initialize failed in the child",
        13 => "signing failed in the child",
        14 => "C_Finalize failed in the child",
        20 => "the child panicked",
        _ => "unexpected exit code",
    }
}

/// Waits for the forked child `pid` (one that has not exited within `bound`,
/// a guard against a hang, is described from `/proc`, killed, and fails the
/// test) and fails the test unless it exited normally with 0; `what` says
/// what the child was doing.
pub fn assert_child_ok(pid: i32, bound: Duration, what: &str) {
    let status = wait_bounded(pid, bound);
    assert!(
        libc::WIFEXITED(status),
        "the child ({what}) did not exit normally: status {status:#x}"
    );
    let code = libc::WEXITSTATUS(status);
    assert_eq!(
        code,
        0,
        "the child ({what}) failed with exit code {code}: {}",
        child_failure(code)
    );
}

/// libpkcs11ks.so loaded for raw PKCS#11 calls (no wrapper state of its own, so a
/// forked child can use it exactly as a C application would).
pub struct RawModule {
    /// The function list.
    pub lib: sys::Pkcs11,
}

impl RawModule {
    /// Loads the built module.
    pub fn load() -> RawModule {
        // SAFETY: loading our own module.
        let lib = unsafe { sys::Pkcs11::new(module_path()) }.expect("load libpkcs11ks.so");
        RawModule { lib }
    }

    /// `C_Initialize` with OS locking.
    pub fn initialize(&self) -> sys::CK_RV {
        let mut args = sys::CK_C_INITIALIZE_ARGS {
            CreateMutex: None,
            DestroyMutex: None,
            LockMutex: None,
            UnlockMutex: None,
            flags: sys::CKF_OS_LOCKING_OK,
            pReserved: ptr::null_mut(),
        };
        // SAFETY: a valid CK_C_INITIALIZE_ARGS.
        unsafe { self.lib.C_Initialize(&mut args as *mut _ as *mut c_void) }
    }

    /// Opens a session, finds key1's private key, signs once; returns the first
    /// failing CK_RV (or CKR_OK).
    pub fn sign_once(&self, message: &[u8]) -> sys::CK_RV {
        let mut session = 0;
        // SAFETY: valid out-pointer; slot 1 is the module's slot (checked by C_GetSlotList).
        let mut slots = [0 as sys::CK_SLOT_ID; 1];
        let mut n = 1;
        // SAFETY: one slot of room.
        let rv = unsafe { self.lib.C_GetSlotList(1, slots.as_mut_ptr(), &mut n) };
        if rv != sys::CKR_OK {
            return rv;
        }
        // SAFETY: valid out-pointer.
        let rv = unsafe {
            self.lib.C_OpenSession(
                slots[0],
                sys::CKF_SERIAL_SESSION,
                ptr::null_mut(),
                None,
                &mut session,
            )
        };
        if rv != sys::CKR_OK {
            return rv;
        }
        let mut class = sys::CKO_PRIVATE_KEY;
        let mut label = *b"key1";
        let mut template = [
            sys::CK_ATTRIBUTE {
                type_: sys::CKA_CLASS,
                pValue: &mut class as *mut _ as *mut c_void,
                ulValueLen: std::mem::size_of::<sys::CK_OBJECT_CLASS>() as _,
            },
            sys::CK_ATTRIBUTE {
                type_: sys::CKA_LABEL,
                pValue: label.as_mut_ptr() as *mut c_void,
                ulValueLen: 4,
            },
        ];
        // SAFETY: a valid template.
        let rv = unsafe {
            self.lib
                .C_FindObjectsInit(session, template.as_mut_ptr(), 2)
        };
        if rv != sys::CKR_OK {
            return rv;
        }
        let mut key = 0;
        let mut found = 0;
        // SAFETY: room for one handle.
        let rv = unsafe { self.lib.C_FindObjects(session, &mut key, 1, &mut found) };
        // SAFETY: ends the search.
        unsafe { self.lib.C_FindObjectsFinal(session) };
        if rv != sys::CKR_OK || found != 1 {
            return if rv == sys::CKR_OK {
                sys::CKR_GENERAL_ERROR
            } else {
                rv
            };
        }
        let mut mech = sys::CK_MECHANISM {
            mechanism: sys::CKM_SHA256_RSA_PKCS,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        // SAFETY: valid mechanism and handles.
        let rv = unsafe { self.lib.C_SignInit(session, &mut mech, key) };
        if rv != sys::CKR_OK {
            return rv;
        }
        let mut data = message.to_vec();
        let mut sig = [0u8; 512];
        let mut len = sig.len() as sys::CK_ULONG;
        // SAFETY: valid buffers.
        let rv = unsafe {
            self.lib.C_Sign(
                session,
                data.as_mut_ptr(),
                data.len() as _,
                sig.as_mut_ptr(),
                &mut len,
            )
        };
        // SAFETY: closes the session.
        unsafe { self.lib.C_CloseSession(session) };
        if rv == sys::CKR_OK && len != 256 {
            return sys::CKR_GENERAL_ERROR;
        }
        rv
    }

    /// What a forked child does: checks that the parent's initialisation does
    /// not carry over, initialises, signs `message`, finalises. Returns the
    /// child's exit code: 0 all good, 11 not-initialised check, 12
    /// C_Initialize, 13 sign, 14 C_Finalize.
    pub fn child_steps(&self, message: &[u8]) -> i32 {
        let mut n = 0;
        // SAFETY: valid out-pointer.
        if unsafe { self.lib.C_GetSlotList(0, ptr::null_mut(), &mut n) }
            != sys::CKR_CRYPTOKI_NOT_INITIALIZED
        {
            return 11;
        }
        if self.initialize() != sys::CKR_OK {
            return 12;
        }
        if self.sign_once(message) != sys::CKR_OK {
            return 13;
        }
        // SAFETY: NULL reserved pointer.
        if unsafe { self.lib.C_Finalize(ptr::null_mut()) } != sys::CKR_OK {
            return 14;
        }
        0
    }
}
