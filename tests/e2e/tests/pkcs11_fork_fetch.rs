//! Fork while another thread is in the middle of the key-catalog fetch: the
//! dev KeyServer holds every client `GET /api/keys` at its gate until the test
//! releases it (`--fault-hold-keys`), one thread of the process starts a
//! signature (so the module fetches the catalog, to be written to an empty
//! per-user cache), and the moment the server holds that request the main
//! thread forks, then releases the gate. The child initialises again and
//! signs; the parent's fetch completes and its thread signs too; the parent
//! signs once more afterwards. The child gets a generous bound: if it does not
//! exit within it, its state (`/proc`) is reported and it is killed, so a
//! deadlock fails the test instead of hanging it. (Alone in its own test
//! binary: no other test's thread is running at the fork.)

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys as sys;
use ks_devserver::harness::DevServer;
use ks_e2e::pkcs11_support::Pkcs11Env;

#[path = "../../../common/tests/support/fork.rs"]
mod fork;
#[path = "support/pkcs11_raw.rs"]
mod pkcs11_raw;
use fork::fork_child;
use pkcs11_raw::{assert_child_ok, RawModule};

/// How long the child may take (its own catalog and sign order) before it is
/// declared stuck. A bound on a hang, not a timing check.
const CHILD_BOUND: Duration = Duration::from_secs(120);

#[test]
fn fork_while_another_thread_fetches_the_catalog() {
    let env = Pkcs11Env::start_with(DevServer::builder().hold_keys(), 10);
    let cache = env.path("cache");
    for (k, v) in &env.env {
        std::env::set_var(k, v);
    }
    std::env::set_var("KSC_CACHE", &cache);
    let module = Arc::new(RawModule::load());
    assert_eq!(module.initialize(), sys::CKR_OK);
    let signorders = || {
        env.server.stats()["signorders"]
            .as_u64()
            .expect("signorders")
    };
    let orders_before = signorders();

    // The fetching thread: its first request is the key list (nothing is
    // cached and an ID token needs no token request), which the server holds.
    let done = Arc::new(AtomicBool::new(false));
    let fetching = {
        let (module, done) = (module.clone(), done.clone());
        std::thread::spawn(move || {
            let rv = module.sign_once(b"signed in the parent, across the fork");
            done.store(true, Ordering::SeqCst);
            rv
        })
    };
    assert_eq!(
        env.server.wait_until_held(),
        1,
        "one request of the module held"
    );

    let pid = fork_child(|| module.child_steps(b"signed in the child, forked mid-fetch"));
    // The fork happened inside the fetch: the thread had not finished, and
    // the server had answered none of the module's requests.
    assert!(
        !done.load(Ordering::SeqCst),
        "the signature finished before the fork"
    );
    assert_eq!(signorders(), orders_before, "no sign order before the fork");
    // Lets the parent's fetch go on (and the child's, if it has asked yet).
    env.server.release_held();

    assert_child_ok(pid, CHILD_BOUND, "forked inside the catalog fetch");

    // The parent's fetch completes and its thread signs.
    assert_eq!(fetching.join().expect("thread"), sys::CKR_OK);
    assert_eq!(
        signorders() - orders_before,
        2,
        "child and parent signed once each"
    );
    // And the parent goes on signing (its catalog now in memory).
    assert_eq!(module.sign_once(b"signed in the parent after"), sys::CKR_OK);
    assert_eq!(signorders() - orders_before, 3);
    assert!(
        std::fs::read_dir(&cache)
            .map(|d| d
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".catalog.json")))
            .unwrap_or(false),
        "the fetched catalog was cached"
    );
    assert_eq!(
        // SAFETY: NULL reserved pointer.
        unsafe { module.lib.C_Finalize(ptr::null_mut()) },
        sys::CKR_OK
    );
}
