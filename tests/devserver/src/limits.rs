//! One limiter for every credential check: the token endpoint's client
//! credentials and the approvers' page login count against the same
//! failures, per client id and in total, so neither entry point can be used
//! to get around the other's limit.
//!
//! Only failures count. A client that keeps logging in with the right secret
//! is never slowed down (the suites log in hundreds of times in parallel);
//! once a client id (or the server as a whole) has failed too often within
//! the window, every check for it is refused before the secret is even
//! looked at, so a brute force learns nothing from the refusals.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The `[credential_limits]` table of the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialLimits {
    /// Failed checks per client id within the window before that id is refused.
    pub failures_per_client: u32,
    /// Failed checks of all client ids together within the window before every
    /// check is refused (spraying many client ids).
    pub failures_total: u32,
    /// The sliding window, in seconds.
    pub window_secs: u64,
}

impl Default for CredentialLimits {
    fn default() -> Self {
        CredentialLimits {
            failures_per_client: 5,
            failures_total: 100,
            window_secs: 60,
        }
    }
}

impl CredentialLimits {
    /// Refuses settings that would switch the limiter off or never forgive.
    pub fn validate(&self) -> Result<(), String> {
        if self.failures_per_client == 0 || self.failures_total == 0 {
            return Err(
                "config credential_limits: failures_per_client and failures_total must be at least 1"
                    .into(),
            );
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err("config credential_limits: window_secs must be between 1 and 86400".into());
        }
        Ok(())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }
}

/// Why a check is refused and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Whole seconds until a check may succeed again (at least 1), for
    /// `Retry-After`.
    pub retry_after: u64,
    /// One sentence for a person (names the client id or says "in total").
    pub message: String,
}

/// Longest client id kept as a key; longer ids share their prefix's count.
const MAX_KEY: usize = 128;

/// Sliding-window counts of failed credential checks.
#[derive(Debug)]
pub struct CredentialLimiter {
    limits: CredentialLimits,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    per_client: HashMap<String, VecDeque<Instant>>,
    total: VecDeque<Instant>,
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

fn key(client: &str) -> String {
    client.chars().take(MAX_KEY).collect()
}

impl CredentialLimiter {
    /// A limiter with `limits` (already validated).
    pub fn new(limits: CredentialLimits) -> CredentialLimiter {
        CredentialLimiter {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> CredentialLimits {
        self.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a push or a pop: a panic cannot leave a half-made
        // change behind, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err` when a credential check for `client` must be refused now,
    /// before the secret is compared.
    pub fn check(&self, client: &str) -> Result<(), Refusal> {
        let now = Instant::now();
        let window = self.limits.window();
        let mut st = self.state();
        prune(&mut st.total, now, window);
        let wait = |q: &VecDeque<Instant>| {
            let oldest = q.front().copied().unwrap_or(now);
            let left = window.saturating_sub(now.duration_since(oldest));
            // Rounded up: retrying after Retry-After seconds must succeed.
            (left.as_millis().div_ceil(1000) as u64).max(1)
        };
        if st.total.len() >= self.limits.failures_total as usize {
            let secs = wait(&st.total);
            return Err(Refusal {
                retry_after: secs,
                message: format!(
                    "too many failed credential checks in total ({} within {} s); retry in {secs} s",
                    self.limits.failures_total, self.limits.window_secs
                ),
            });
        }
        let k = key(client);
        if let Some(q) = st.per_client.get_mut(&k) {
            prune(q, now, window);
            if q.len() >= self.limits.failures_per_client as usize {
                let secs = wait(q);
                return Err(Refusal {
                    retry_after: secs,
                    message: format!(
                        "too many failed credential checks for client {:?} ({} within {} s); retry in {secs} s",
                        k, self.limits.failures_per_client, self.limits.window_secs
                    ),
                });
            }
            if q.is_empty() {
                st.per_client.remove(&k);
            }
        }
        Ok(())
    }

    /// Counts a failed check for `client` (a wrong secret, an unknown id, or
    /// credentials that could not even be read).
    pub fn failed(&self, client: &str) {
        let now = Instant::now();
        let window = self.limits.window();
        let mut st = self.state();
        st.total.push_back(now);
        // At most `failures_total` failures are in the window, so pruning
        // here keeps the table that small however many ids are tried.
        if st.per_client.len() > self.limits.failures_total as usize {
            st.per_client.retain(|_, q| {
                prune(q, now, window);
                !q.is_empty()
            });
        }
        let q = st.per_client.entry(key(client)).or_default();
        q.push_back(now);
        prune(q, now, window);
        while q.len() > self.limits.failures_per_client as usize {
            q.pop_front();
        }
        prune(&mut st.total, now, window);
        while st.total.len() > self.limits.failures_total as usize {
            st.total.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_then_in_total() {
        let l = CredentialLimiter::new(CredentialLimits {
            failures_per_client: 3,
            failures_total: 5,
            window_secs: 60,
        });
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
            l.failed("a");
        }
        let r = l.check("a").unwrap_err();
        assert!((1..=60).contains(&r.retry_after), "{r:?}");
        assert!(r.message.contains("\"a\""), "{}", r.message);
        // Another client is not affected by a's failures...
        assert!(l.check("b").is_ok());
        l.failed("b");
        l.failed("c");
        // ...until the total is reached: then everyone waits.
        let r = l.check("d").unwrap_err();
        assert!(r.message.contains("in total"), "{}", r.message);
    }

    #[test]
    fn settings_are_checked() {
        assert!(CredentialLimits::default().validate().is_ok());
        for bad in [
            CredentialLimits {
                failures_per_client: 0,
                ..Default::default()
            },
            CredentialLimits {
                failures_total: 0,
                ..Default::default()
            },
            CredentialLimits {
                window_secs: 0,
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
