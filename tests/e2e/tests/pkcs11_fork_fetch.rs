//! Fork while another thread is in the middle of the key-catalog fetch: the
//! dev KeyServer holds every client request for a few seconds (its latency
//! fault), one thread of the process starts a signature (so the module fetches
//! the catalog, to be written to an empty per-user cache), and as soon as the
//! server has received that request the main thread forks. The child
//! initialises again and signs; the parent's fetch completes and its thread
//! signs too; the parent signs once more afterwards. The child gets a generous
//! bound: if it does not exit within it, its state (`/proc`) is reported and
//! it is killed, so a deadlock fails the test instead of hanging it. (Alone in
//! its own test binary: no other test's thread is running at the fork.)

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
use fork::{fork_child, wait_bounded};
use pkcs11_raw::RawModule;

/// How long the server holds each client request: long enough that the fork
/// lands inside the parent's catalog fetch on a loaded machine.
const LATENCY: Duration = Duration::from_secs(3);
/// How long the child may take (two held requests: its own catalog and sign
/// order) before it is declared stuck. A bound on a hang, not a timing check.
const CHILD_BOUND: Duration = Duration::from_secs(120);

fn requests(server: &DevServer) -> u64 {
    server.stats()["requests"]
        .as_u64()
        .expect("requests counter")
}

#[test]
fn fork_while_another_thread_fetches_the_catalog() {
    let env = Pkcs11Env::start_with(DevServer::builder().fault_latency(LATENCY), 10);
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
    let baseline = requests(&env.server);

    // The fetching thread: its first request is the key list (nothing is
    // cached and an ID token needs no token request).
    let done = Arc::new(AtomicBool::new(false));
    let fetching = {
        let (module, done) = (module.clone(), done.clone());
        std::thread::spawn(move || {
            let rv = module.sign_once(b"signed in the parent, across the fork");
            done.store(true, Ordering::SeqCst);
            rv
        })
    };
    // Until the server has received it (each stats call counts itself; the
    // server holds the module's request for LATENCY before answering).
    let mut polls = 0;
    loop {
        polls += 1;
        let seen = requests(&env.server) - baseline - polls;
        if seen > 0 {
            assert_eq!(seen, 1, "one request of the module, none answered yet");
            break;
        }
        assert!(
            !done.load(Ordering::SeqCst),
            "the signature finished unseen"
        );
        std::thread::yield_now();
    }

    let pid = fork_child(|| module.child_steps(b"signed in the child, forked mid-fetch"));
    // The fork happened inside the fetch: the thread had not finished, and
    // the server had answered none of the module's requests before we forked.
    let in_flight_at_fork = !done.load(Ordering::SeqCst);
    assert_eq!(signorders(), orders_before, "no sign order before the fork");
    assert!(in_flight_at_fork, "the signature finished before the fork");

    let status = wait_bounded(pid, CHILD_BOUND);
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status:#x}"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child failed (11 not-initialised check, 12 C_Initialize, 13 sign, 14 C_Finalize)"
    );

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
