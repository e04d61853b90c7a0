//! One client shared across `fork()` (as the OpenSSL provider shares its client with a forked
//! child): the child forks while another thread of the parent is setting up the client's first
//! connection, here held inside the system trust store load (`SSL_CERT_FILE` is a named pipe
//! that serves the dev CA, and `KSC_CA_FILE` is not set). The child must build its own
//! connection and list the keys, not wait for the parent's thread, which does not exist in the
//! child (its own load reads the CA from a regular file). A child that does not exit within a
//! generous bound is reported from `/proc` and killed. (Alone in its own test binary: no other
//! test's thread is running at the fork.)

#[path = "support/fork.rs"]
mod fork;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fork::{fork_child, wait_bounded, RootsPipe};
use ks_devserver::harness::DevServer;
use support::{client, user_settings};

/// How long the child may take before it is declared stuck (a bound on a hang, not a timing
/// check: it needs a token and the key list from an unhindered server).
const CHILD_BOUND: Duration = Duration::from_secs(60);

#[test]
fn child_forked_during_the_first_connection_set_up_connects_itself() {
    let srv = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fifo = tmp.path().join("roots.pem");
    let roots = srv.ca_file().to_path_buf();
    let pipe = RootsPipe::create(&fifo, std::fs::read(&roots).expect("the dev CA"));
    // The system store is the user's SSL_CERT_FILE (read from the process environment).
    std::env::set_var("SSL_CERT_FILE", &fifo);
    let mut settings = user_settings(&srv, "orderer-client");
    settings.retain(|(k, _)| k != "KSC_CA_FILE");
    settings.push(("KSC_CACHE".into(), "off".into()));
    let client = Arc::new(client(&settings));

    let done = Arc::new(AtomicBool::new(false));
    let first = {
        let (client, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            let keys = client.keys().map(|k| k.len());
            done.store(true, Ordering::SeqCst);
            keys
        })
    };
    pipe.wait_for_reader();

    let pid = fork_child(|| {
        RootsPipe::close_in_child();
        // Its own load reads a regular file; the child has one thread, so nothing else reads
        // the environment now.
        std::env::set_var("SSL_CERT_FILE", &roots);
        let ok = match client.keys() {
            Ok(k) => !k.is_empty(),
            Err(e) => {
                eprintln!("child: {e}");
                false
            }
        };
        i32::from(!ok)
    });
    assert!(!done.load(Ordering::SeqCst), "forked inside the set-up");
    pipe.serve();
    let listed = first
        .join()
        .expect("thread")
        .expect("the parent lists the keys");
    assert!(listed > 0);

    let status = wait_bounded(pid, CHILD_BOUND);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child could not list the keys: {status:#x}"
    );
}
