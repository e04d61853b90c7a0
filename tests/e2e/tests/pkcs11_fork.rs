//! Fork and re-initialise: a process that has signed through the module forks;
//! the child cannot use the parent's state, initialises again and signs with a
//! fresh client; the parent keeps working. (Alone in its own test binary, so
//! no other test thread is running at the fork.)

use std::ptr;

use cryptoki_sys as sys;
use ks_e2e::pkcs11_support::Pkcs11Env;

#[path = "../../../common/tests/support/fork.rs"]
mod fork;
#[path = "support/pkcs11_raw.rs"]
mod pkcs11_raw;
use fork::fork_child;
use pkcs11_raw::{assert_child_ok, RawModule};

#[test]
fn fork_and_reinitialise() {
    let env = Pkcs11Env::start(10);
    for (k, v) in &env.env {
        std::env::set_var(k, v);
    }
    let module = RawModule::load();
    assert_eq!(module.initialize(), sys::CKR_OK);
    // The parent has a live client (connections, token, key catalog).
    assert_eq!(
        module.sign_once(b"signed in the parent before fork"),
        sys::CKR_OK
    );
    let before = env.server.stats()["signorders"].as_u64();

    let pid = fork_child(|| module.child_steps(b"signed in the child"));
    assert_child_ok(
        pid,
        std::time::Duration::from_secs(120),
        "re-initialise and sign after the fork",
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
