//! Fork and re-initialise: a process that has signed through the module forks;
//! the child cannot use the parent's state, initialises again and signs with a
//! fresh client; the parent keeps working. (Alone in its own test binary, so
//! no other test thread is running at the fork.)

use std::ffi::c_void;
use std::ptr;

use cryptoki_sys as sys;
use ks_e2e::pkcs11_support::{module_path, Pkcs11Env};

struct Module {
    lib: sys::Pkcs11,
}

impl Module {
    fn load() -> Module {
        // SAFETY: loading our own module.
        let lib = unsafe { sys::Pkcs11::new(module_path()) }.expect("load libpkcs11ks.so");
        Module { lib }
    }

    fn initialize(&self) -> sys::CK_RV {
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
    fn sign_once(&self, message: &[u8]) -> sys::CK_RV {
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
}

/// Exit codes of the child: 0 all good, 10+k step k failed.
fn child(module: &Module) -> i32 {
    // The parent's initialisation does not carry over.
    let mut n = 0;
    // SAFETY: valid out-pointer.
    if unsafe { module.lib.C_GetSlotList(0, ptr::null_mut(), &mut n) }
        != sys::CKR_CRYPTOKI_NOT_INITIALIZED
    {
        return 11;
    }
    if module.initialize() != sys::CKR_OK {
        return 12;
    }
    if module.sign_once(b"signed in the child") != sys::CKR_OK {
        return 13;
    }
    // SAFETY: NULL reserved pointer.
    if unsafe { module.lib.C_Finalize(ptr::null_mut()) } != sys::CKR_OK {
        return 14;
    }
    0
}

#[test]
fn fork_and_reinitialise() {
    let env = Pkcs11Env::start(10);
    for (k, v) in &env.env {
        std::env::set_var(k, v);
    }
    let module = Module::load();
    assert_eq!(module.initialize(), sys::CKR_OK);
    // The parent has a live client (connections, token, key catalog).
    assert_eq!(
        module.sign_once(b"signed in the parent before fork"),
        sys::CKR_OK
    );
    let before = env.server.stats()["signorders"].as_u64();

    // SAFETY: the child only calls the module and async-signal-safe libc
    // functions, then leaves with _exit (no unwinding, no atexit handlers).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(&module))).unwrap_or(20);
        // SAFETY: terminates the child immediately.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status:#x}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child failed (11 not-initialised check, 12 C_Initialize, 13 sign, 14 C_Finalize)"
    );
    let after_child = env.server.stats()["signorders"].as_u64();
    assert_eq!(
        after_child.zip(before).map(|(a, b)| a - b),
        Some(1),
        "the child signed once"
    );

    // The parent is unaffected.
    assert_eq!(
        module.sign_once(b"signed in the parent after fork"),
        sys::CKR_OK
    );
    assert_eq!(
        // SAFETY: NULL reserved pointer.
        unsafe { module.lib.C_Finalize(ptr::null_mut()) },
        sys::CKR_OK
    );
}
