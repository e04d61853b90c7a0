//! Fork tests' helpers, shared by common/tests and tests/e2e (included with `#[path]`, not from
//! support/mod.rs, since the `ksc` tests that include that have no libc):
//! a bounded wait for a forked child that reports a stuck one, and a named pipe that serves a
//! CA file to one reader when told to (so a test knows when a thread is inside the trust store
//! load, and forks then).
#![allow(dead_code)] // each test binary uses a different part

use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Forks; the child runs `child` and leaves with its result as exit code (20 if it panics)
/// through `_exit`, so no unwinding or atexit handler of the parent's runs in it. Returns the
/// child's pid.
pub fn fork_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: fork has no memory-safety preconditions. The child runs only `child` (callers
    // keep it to the code under test, async-signal-safe libc calls, and what its one thread may
    // do), then leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(20);
        // SAFETY: terminates the child immediately.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// What the kernel says a process's threads are doing (for a stuck child).
pub fn proc_state(pid: i32) -> String {
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
        out.push_str(&format!(
            "thread {}: {state}, wchan {}; ",
            t.file_name().to_string_lossy(),
            read("wchan")
        ));
    }
    out
}

/// Waits for our child `pid`; one that has not exited within `bound` (a bound on a hang, not
/// a timing check) is described from `/proc`, killed, and fails the test. Returns the status.
pub fn wait_bounded(pid: i32, bound: Duration) -> i32 {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: waits for our own child; status is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = tx.send((waited, status));
    });
    match rx.recv_timeout(bound) {
        Ok((waited, status)) => {
            assert_eq!(waited, pid, "waitpid");
            status
        }
        Err(_) => {
            let state = proc_state(pid);
            // SAFETY: kills our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the forked child did not exit within {bound:?} (deadlock?): {state}");
        }
    }
}

/// The write end the pipe server holds open right now (-1: none), so a child can close its
/// copy: the reader sees the end of the file only when every copy is closed.
static WRITER: AtomicI32 = AtomicI32::new(-1);

/// A named pipe that serves `contents` to one reader at a time, each on request.
pub struct RootsPipe {
    go: mpsc::Sender<()>,
    opened: mpsc::Receiver<()>,
}

impl RootsPipe {
    /// Creates the pipe at `path` (a new name) and its server thread.
    pub fn create(path: &Path, contents: Vec<u8>) -> RootsPipe {
        let c_path = CString::new(path.to_string_lossy().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
        let (opened_tx, opened) = mpsc::channel::<()>();
        let (go, go_rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            // One reader per request, so that two readers never share the contents.
            while go_rx.recv().is_ok() {
                // SAFETY: a valid path; blocks until a reader opens the pipe.
                let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_WRONLY) };
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
                let _ = f.write_all(&contents);
                WRITER.store(-1, Ordering::SeqCst);
                drop(f);
            }
        });
        RootsPipe { go, opened }
    }

    /// Returns once a reader has opened the pipe (it is now blocked reading it).
    pub fn wait_for_reader(&self) {
        self.go.send(()).expect("pipe server");
        self.opened.recv().expect("a reader opened the pipe");
    }

    /// Writes the contents to that reader and closes the pipe (the reader sees the end).
    pub fn serve(&self) {
        self.go.send(()).expect("pipe server");
    }

    /// In a forked child: closes its copy of the write end, so the parent's reader is not
    /// kept waiting for the end of the file by the child.
    pub fn close_in_child() {
        let fd = WRITER.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: closes the child's copy of a descriptor it does not use.
            unsafe { libc::close(fd) };
        }
    }
}
