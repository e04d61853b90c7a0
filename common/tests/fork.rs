//! A forked child signs correctly after the parent has signed: the child must not reuse the
//! parent's runtime or connections (it builds its own), and the parent keeps working after.
//!
//! Runs without the libtest harness (`harness = false`) so that `fork()` happens in a
//! single-threaded process, as in a real host (a shell, a build tool) that forks.

#[path = "support/mod.rs"]
mod support;

use ks_common::hash::{self, HashAlg};
use ks_common::SignRequest;
use ks_devserver::harness::DevServer;

fn request(data: &[u8]) -> SignRequest {
    SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, data),
    }
}

fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path().join("comm")).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn main() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 3)], 120_000);
    let settings = support::with(
        support::user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let threads_before = thread_names();
    let client = support::client(&settings);
    client
        .sign("key1", &request(b"parent"))
        .expect("parent signs");

    // The client runs no thread of its own: signing left the thread count as it was before
    // the client existed (the harness has its own log-draining thread).
    assert_eq!(
        thread_names(),
        threads_before,
        "the client left a background thread running"
    );

    // SAFETY: fork(2) has no memory-safety preconditions. This process is single-threaded
    // apart from the harness's thread blocked in read(2) (no libtest harness, the client runs
    // no background thread), so the child may run arbitrary code that takes no lock that
    // thread holds. The child leaves with _exit so it never runs the parent's destructors
    // (which would kill the dev server).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match client.sign("key1", &request(b"child")) {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("child: {e}");
                1
            }
        };
        // SAFETY: _exit(2) ends the child immediately; always safe to call.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waitpid(2) on our own child with a valid pointer to a local int.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child could not sign (status {status})"
    );
    client
        .sign("key1", &request(b"parent again"))
        .expect("parent signs after the child");
    let st = srv.operation(&op);
    assert_eq!(st["keyusagerestrictions"][0]["usagecount"], 3, "{st}");
    println!("fork: 1 passed, 0 failed");
}
