//! Single-flight: one fetch at a time per value, with no lock held while it runs.
//!
//! The token and the key catalog used to be fetched while holding their mutex (the catalog fetch
//! nested the token fetch inside it), so a slow auth server stalled every thread of the process,
//! even those that only needed a value already in hand. Here the mutex guards only the slot;
//! the fetch runs unlocked, concurrent callers that need a value wait on a condition variable
//! for that one fetch, and callers that can still use the current value (a token not yet
//! expired, only due for refresh) take it and go on.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

struct Slot<T> {
    value: Option<T>,
    /// The process whose thread is fetching: after `fork()` the child has no such thread, so a
    /// fetch started by the parent must not make the child wait forever.
    fetching: Option<u32>,
    /// Callers blocked in [`Flight::get`] right now (diagnostics and tests).
    waiting: usize,
}

/// A cached value that at most one thread fetches at a time.
pub struct Flight<T> {
    slot: Mutex<Slot<T>>,
    done: Condvar,
}

impl<T: Clone> Default for Flight<T> {
    fn default() -> Self {
        Flight::new()
    }
}

/// Clears `fetching` and wakes the waiters even if the fetch panics or fails.
struct FetchGuard<'a, T> {
    flight: &'a Flight<T>,
}

impl<T> Drop for FetchGuard<'_, T> {
    fn drop(&mut self) {
        let mut slot = match self.flight.slot.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        slot.fetching = None;
        drop(slot);
        self.flight.done.notify_all();
    }
}

impl<T: Clone> Flight<T> {
    /// Empty (`const`, so a process-wide value can be a `static`).
    pub const fn new() -> Flight<T> {
        Flight {
            slot: Mutex::new(Slot {
                value: None,
                fetching: None,
                waiting: 0,
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Slot<T>>> {
        self.slot
            .lock()
            .map_err(|_| Error::internal("single-flight lock poisoned"))
    }

    /// The current value if `fresh` accepts it; else one caller runs `fetch` (unlocked) while
    /// the others return a value `usable` still accepts or wait for that fetch. A failed fetch
    /// stores nothing; each waiter then tries once more itself.
    pub fn get(
        &self,
        fresh: impl Fn(&T) -> bool,
        usable: impl Fn(&T) -> bool,
        fetch: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let pid = std::process::id();
        let mut slot = self.lock()?;
        loop {
            if slot.fetching.is_some_and(|p| p != pid) {
                slot.fetching = None;
            }
            if let Some(v) = slot.value.as_ref() {
                if fresh(v) || (slot.fetching.is_some() && usable(v)) {
                    return Ok(v.clone());
                }
            }
            if slot.fetching.is_none() {
                break;
            }
            slot.waiting += 1;
            slot = self
                .done
                .wait(slot)
                .map_err(|_| Error::internal("single-flight lock poisoned"))?;
            slot.waiting -= 1;
        }
        slot.fetching = Some(pid);
        drop(slot);
        let guard = FetchGuard { flight: self };
        let result = fetch();
        if let Ok(v) = &result {
            self.lock()?.value = Some(v.clone());
        }
        drop(guard);
        result
    }

    /// The current value, whatever its age, without fetching.
    pub fn peek(&self) -> Option<T> {
        self.lock().ok().and_then(|s| s.value.clone())
    }

    /// Replaces the value (a fetch made outside [`Flight::get`]).
    pub fn set(&self, value: T) {
        if let Ok(mut s) = self.lock() {
            s.value = Some(value);
        }
    }

    /// Forgets the value if `pred` matches it (a token the server refused).
    pub fn clear_if(&self, pred: impl Fn(&T) -> bool) {
        if let Ok(mut s) = self.lock() {
            if s.value.as_ref().is_some_and(pred) {
                s.value = None;
            }
        }
    }

    /// Callers waiting for a fetch right now.
    pub fn waiting(&self) -> usize {
        self.lock().map(|s| s.waiting).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    /// Spins (yielding, no sleep) until `cond` holds.
    fn until(cond: impl Fn() -> bool) {
        while !cond() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn many_threads_one_fetch_and_nobody_stalls_on_a_usable_value() {
        let flight = Arc::new(Flight::<u32>::new());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();

        // A slow fetch (the auth server hangs until the test releases it).
        let slow = {
            let (flight, fetches) = (flight.clone(), fetches.clone());
            std::thread::spawn(move || {
                flight.get(
                    |_| false,
                    |_| false,
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(1)
                    },
                )
            })
        };
        started_rx.recv().unwrap();

        // 16 threads with nothing usable wait for that one fetch instead of starting theirs.
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let (flight, fetches) = (flight.clone(), fetches.clone());
                std::thread::spawn(move || {
                    flight.get(
                        |v| *v == 1,
                        |_| true,
                        || {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            Ok(99)
                        },
                    )
                })
            })
            .collect();
        until(|| flight.waiting() == 16);
        release_tx.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), 1);
        for w in waiters {
            assert_eq!(w.join().unwrap().unwrap(), 1);
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch for 17 callers"
        );

        // Refresh due but the old value still usable: while one thread refreshes slowly,
        // 32 others return at once with the old value (none of them waits or fetches).
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let refresher = {
            let (flight, fetches) = (flight.clone(), fetches.clone());
            std::thread::spawn(move || {
                flight.get(
                    |v| *v == 2,
                    |_| true,
                    || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(2)
                    },
                )
            })
        };
        started_rx.recv().unwrap();
        let others: Vec<_> = (0..32)
            .map(|_| {
                let flight = flight.clone();
                std::thread::spawn(move || flight.get(|v| *v == 2, |v| *v == 1, || Ok(77)).unwrap())
            })
            .collect();
        for o in others {
            assert_eq!(o.join().unwrap(), 1, "the usable value, not a stall");
        }
        release_tx.send(()).unwrap();
        assert_eq!(refresher.join().unwrap().unwrap(), 2);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
        assert_eq!(flight.peek(), Some(2));
    }

    #[test]
    fn failed_or_panicking_fetch_stores_nothing_and_frees_the_slot() {
        let flight = Flight::<u32>::new();
        let e = flight
            .get(|_| true, |_| true, || Err(Error::internal("down")))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(flight.peek(), None);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flight.get(|_| true, |_| true, || panic!("fetch panicked"))
        }));
        assert!(r.is_err());
        // Not stuck "fetching": the next caller fetches.
        assert_eq!(flight.get(|_| true, |_| true, || Ok(5)).unwrap(), 5);
        flight.clear_if(|v| *v == 4);
        assert_eq!(flight.peek(), Some(5));
        flight.clear_if(|v| *v == 5);
        assert_eq!(flight.peek(), None);
        flight.set(6);
        assert_eq!(flight.get(|_| true, |_| true, || Ok(0)).unwrap(), 6);
    }

    #[test]
    fn forked_child_does_not_wait_for_the_parents_fetch() {
        let flight = Arc::new(Flight::<u32>::new());
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let parent_fetch = {
            let flight = flight.clone();
            std::thread::spawn(move || {
                flight.get(
                    |_| false,
                    |_| false,
                    || {
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(1)
                    },
                )
            })
        };
        started_rx.recv().unwrap();
        // SAFETY: fork(2) has no memory-safety preconditions. The child touches only the
        // flight's mutex (not held: the fetching thread is blocked in recv, outside it) and
        // leaves with _exit; alarm() ends it if it would wait forever.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: async-signal-safe calls only, in the child.
            unsafe { libc::alarm(20) };
            let got = flight.get(|_| false, |_| false, || Ok(7));
            let code = if matches!(got, Ok(7)) { 0 } else { 1 };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for our own child; status is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        release_tx.send(()).unwrap();
        assert_eq!(parent_fetch.join().unwrap().unwrap(), 1);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child waited for (or failed after) the parent's fetch: status {status}"
        );
    }
}
