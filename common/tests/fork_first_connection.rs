//! One client shared across `fork()` (as the OpenSSL provider shares its client with a forked
//! child): the child forks while another thread of the parent is setting up the client's first
//! connection, here held inside the system trust store load (`SSL_CERT_FILE` is a named pipe
//! that serves the dev CA, and `KSC_CA_FILE` is not set). The child must build its own
//! connection and list the keys, not wait for the parent's thread, which does not exist in the
//! child (its own load reads the CA from a regular file). A child that does not exit within a generous bound is reported from `/proc` and
//! killed. (Alone in its own test binary: no other test's thread is running at the fork.)

mod support;

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use ks_devserver::harness::DevServer;
use support::{client, user_settings};

/// How long the child may take before it is declared stuck (a bound on a hang, not a timing
/// check: it needs a token and the key list from an unhindered server).
const CHILD_BOUND: Duration = Duration::from_secs(60);

/// The write end the pipe server holds open right now (-1: none), so the child can close its
/// copy: the parent's reader sees the end of the file only when every copy is closed.
static WRITER: AtomicI32 = AtomicI32::new(-1);

/// What the kernel says a process's threads are doing (for a stuck child).
fn proc_state(pid: i32) -> String {
    let mut out = String::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()).collect::<Vec<_>>())
        .unwrap_or_default();
    for t in tasks {
        let read = |f: &str| {
            std::fs::read_to_string(t.path().join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let state = read("status")
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string();
        out.push_str(&format!("{state}, wchan {}; ", read("wchan")));
    }
    out
}

#[test]
fn child_forked_during_the_first_connection_set_up_connects_itself() {
    let srv = DevServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let fifo = tmp.path().join("roots.pem");
    let c_fifo = CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    let roots = srv.ca_file().to_path_buf();
    let ca = std::fs::read(&roots).expect("the dev CA");
    // The system store is the user's SSL_CERT_FILE (read from the process environment).
    std::env::set_var("SSL_CERT_FILE", &fifo);
    let mut settings = user_settings(&srv, "orderer-client");
    settings.retain(|(k, _)| k != "KSC_CA_FILE");
    settings.push(("KSC_CACHE".into(), "off".into()));
    let client = Arc::new(client(&settings));

    // The pipe server: the dev CA for the parent's thread, after the fork.
    let (opened_tx, opened_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        // One reader per `go`, so that two readers never share the pipe's contents.
        while go_rx.recv().is_ok() {
            // SAFETY: a valid path; blocks until a reader opens the pipe.
            let fd = unsafe { libc::open(c_fifo.as_ptr(), libc::O_WRONLY) };
            if fd < 0 {
                return;
            }
            WRITER.store(fd, Ordering::SeqCst);
            let _ = opened_tx.send(());
            if go_rx.recv().is_err() {
                return;
            }
            // SAFETY: we own fd, just opened.
            let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
            let _ = f.write_all(&ca);
            WRITER.store(-1, Ordering::SeqCst);
            drop(f);
        }
    });

    let done = Arc::new(AtomicBool::new(false));
    let first = {
        let (client, done) = (client.clone(), done.clone());
        std::thread::spawn(move || {
            let keys = client.keys().map(|k| k.len());
            done.store(true, Ordering::SeqCst);
            keys
        })
    };
    go_tx.send(()).expect("open the pipe for the first reader");
    opened_rx.recv().expect("a thread opened the trust store");

    // SAFETY: the child calls the client and async-signal-safe libc functions, then leaves
    // with _exit (no unwinding, no atexit handlers).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let fd = WRITER.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: closes the child's copy of a descriptor it does not use.
            unsafe { libc::close(fd) };
        }
        // Its own load reads a regular file; the child has one thread, so nothing else reads
        // the environment now.
        std::env::set_var("SSL_CERT_FILE", &roots);
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match client.keys() {
            Ok(k) => !k.is_empty(),
            Err(e) => {
                eprintln!("child: {e}");
                false
            }
        }))
        .unwrap_or(false);
        // SAFETY: terminates the child immediately.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    assert!(!done.load(Ordering::SeqCst), "forked inside the set-up");
    go_tx.send(()).expect("serve the parent");
    let listed = first
        .join()
        .expect("thread")
        .expect("the parent lists the keys");
    assert!(listed > 0);

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: waits for our own child; status is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = tx.send((waited, status));
    });
    let (waited, status) = match rx.recv_timeout(CHILD_BOUND) {
        Ok(r) => r,
        Err(_) => {
            let state = proc_state(pid);
            // SAFETY: kills our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child did not exit within {CHILD_BOUND:?} (deadlock?): {state}");
        }
    };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child could not list the keys: {status:#x}"
    );
}
