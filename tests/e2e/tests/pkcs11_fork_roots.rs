//! Fork while another thread is loading the system trust store for the first
//! connection of the process. Without `KSC_CA_FILE` the client trusts the
//! system roots, read once per process; here `SSL_CERT_FILE` (the user's
//! choice of bundle) is a named pipe that serves the dev CA, so the test knows
//! the moment a thread is inside that load (the pipe's reader has opened it)
//! and forks then. The child initialises again and signs (loading the store
//! itself, from a regular file); the parent's thread finishes its load and
//! signs. A child that does not exit within a generous bound is reported from
//! `/proc` and killed.
//! (Alone in its own test binary: no other test's thread is running at the fork.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cryptoki_sys as sys;
use ks_e2e::pkcs11_support::Pkcs11Env;

#[path = "../../../common/tests/support/fork.rs"]
mod fork;
#[path = "support/pkcs11_raw.rs"]
mod pkcs11_raw;
use fork::{fork_child, RootsPipe};
use pkcs11_raw::{assert_child_ok, RawModule};

/// How long the child may take before it is declared stuck (a bound on a
/// hang, not a timing check: it needs two unhindered requests).
const CHILD_BOUND: Duration = Duration::from_secs(60);

/// The child: its system store is the CA file `roots` (the pipe serves the
/// parent's thread only); exit codes as [`RawModule::child_steps`].
fn child(module: &RawModule, roots: &std::path::Path) -> i32 {
    RootsPipe::close_in_child();
    // The child has one thread: nothing else reads the environment now.
    std::env::set_var("SSL_CERT_FILE", roots);
    module.child_steps(b"signed in the child, forked mid-load")
}

#[test]
fn fork_while_another_thread_loads_the_system_roots() {
    let env = Pkcs11Env::start(10);
    let fifo = env.path("roots.pem");
    let roots = env.server.ca_file().to_path_buf();
    let pipe = RootsPipe::create(&fifo, std::fs::read(&roots).expect("the dev CA"));
    for (k, v) in &env.env {
        if k != "KSC_CA_FILE" {
            std::env::set_var(k, v);
        }
    }
    std::env::set_var("SSL_CERT_FILE", &fifo);
    std::env::set_var("KSC_CACHE", "off");

    let module = Arc::new(RawModule::load());
    assert_eq!(module.initialize(), sys::CKR_OK);
    let done = Arc::new(AtomicBool::new(false));
    let loading = {
        let (module, done) = (module.clone(), done.clone());
        std::thread::spawn(move || {
            let rv = module.sign_once(b"signed in the parent, across the fork");
            done.store(true, Ordering::SeqCst);
            rv
        })
    };
    pipe.wait_for_reader();

    let pid = fork_child(|| child(&module, &roots));
    assert!(!done.load(Ordering::SeqCst), "forked inside the load");
    pipe.serve();
    assert_eq!(loading.join().expect("thread"), sys::CKR_OK);

    assert_child_ok(pid, CHILD_BOUND, "forked inside the trust store load");
    assert_eq!(module.sign_once(b"signed in the parent after"), sys::CKR_OK);
}
