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

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use cryptoki_sys as sys;
use ks_e2e::pkcs11_support::Pkcs11Env;

#[path = "support/pkcs11_raw.rs"]
mod pkcs11_raw;
use pkcs11_raw::RawModule;

/// How long the child may take before it is declared stuck (a bound on a
/// hang, not a timing check: it needs two unhindered requests).
const CHILD_BOUND: Duration = Duration::from_secs(60);

/// The write end the pipe server holds open right now (-1: none), so the
/// child can close its copy: the parent's reader sees the end of the file only
/// when every copy of the write end is closed.
static WRITER: AtomicI32 = AtomicI32::new(-1);

/// Exit codes of the child: 0 all good, 10+k step k failed. Its system store
/// is the CA file `roots` (the pipe serves the parent's thread only).
fn child(module: &RawModule, roots: &std::path::Path) -> i32 {
    let fd = WRITER.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: closes the child's copy of a descriptor it does not use.
        unsafe { libc::close(fd) };
    }
    // The child has one thread: nothing else reads the environment now.
    std::env::set_var("SSL_CERT_FILE", roots);
    if module.initialize() != sys::CKR_OK {
        return 12;
    }
    if module.sign_once(b"signed in the child, forked mid-load") != sys::CKR_OK {
        return 13;
    }
    // SAFETY: NULL reserved pointer.
    if unsafe { module.lib.C_Finalize(ptr::null_mut()) } != sys::CKR_OK {
        return 14;
    }
    0
}

/// What the kernel says a process's threads are doing (for a stuck child).
fn proc_state(pid: i32) -> String {
    let mut out = String::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.filter_map(|e| e.ok()).collect::<Vec<_>>())
        .unwrap_or_default();
    for t in tasks {
        let p = t.path();
        let read = |f: &str| {
            std::fs::read_to_string(p.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let state = read("status")
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string();
        out.push_str(&format!(
            "thread {}: {state}, wchan {}, syscall {}; ",
            t.file_name().to_string_lossy(),
            read("wchan"),
            read("syscall").split(' ').next().unwrap_or_default()
        ));
    }
    out
}

#[test]
fn fork_while_another_thread_loads_the_system_roots() {
    let env = Pkcs11Env::start(10);
    let fifo = env.path("roots.pem");
    let c_fifo = CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    let roots = env.server.ca_file().to_path_buf();
    let ca = std::fs::read(&roots).expect("the dev CA");
    for (k, v) in &env.env {
        if k != "KSC_CA_FILE" {
            std::env::set_var(k, v);
        }
    }
    std::env::set_var("SSL_CERT_FILE", &fifo);
    std::env::set_var("KSC_CACHE", "off");

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
    go_tx.send(()).expect("open the pipe for the first reader");
    opened_rx.recv().expect("a thread opened the trust store");

    // SAFETY: the child (one thread) only sets a variable, calls the module and
    // async-signal-safe libc functions, then leaves with _exit (no unwinding,
    // no atexit handlers).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child(&module, &roots)))
                .unwrap_or(20);
        // SAFETY: terminates the child immediately.
        unsafe { libc::_exit(code) };
    }
    assert!(!done.load(Ordering::SeqCst), "forked inside the load");
    go_tx.send(()).expect("serve the parent");
    assert_eq!(loading.join().expect("thread"), sys::CKR_OK);

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
        "child failed: {status:#x} (12 C_Initialize, 13 sign, 14 C_Finalize)"
    );
    assert_eq!(module.sign_once(b"signed in the parent after"), sys::CKR_OK);
}
