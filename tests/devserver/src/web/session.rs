//! Browser sessions of the approvers' page: the session cookie, CSRF tokens,
//! one-shot messages, and the login rate limiter. Everything lives in memory
//! (a restart logs everybody out; the operations themselves are durable).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::random_hex;

/// Name of the session cookie. The `__Host-` prefix makes the browser insist
/// on `Secure`, `Path=/` and no `Domain`, so no other host can plant it.
pub const COOKIE: &str = "__Host-keyclient";
/// A session unused this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session never lives longer than this.
pub const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most (anonymous ones are evicted first).
const MAX_SESSIONS: usize = 10_000;

/// Failed logins per user name within [`LIMIT_WINDOW`] before that user name
/// is refused for the rest of the window.
pub const USER_FAILURES: usize = 5;
/// Failed logins per client address within [`LIMIT_WINDOW`].
pub const ADDRESS_FAILURES: usize = 20;
/// The rate-limit window.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(60);

/// A one-shot message shown on the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// `true` for a success, `false` for a refusal.
    pub ok: bool,
    /// The sentence.
    pub text: String,
}

/// One browser session; `user` is `None` before login (the login form needs
/// a CSRF token too).
#[derive(Debug, Clone)]
pub struct Session {
    /// The logged-in user.
    pub user: Option<String>,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
    flash: Option<Flash>,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) < IDLE_TIMEOUT
            && now.duration_since(self.created) < MAX_AGE
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// The session table and the login limiter.
#[derive(Debug, Default)]
pub struct WebState {
    sessions: Mutex<HashMap<String, Session>>,
    limiter: Mutex<Limiter>,
}

impl WebState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave a half-written session
        // behind (every update is one insert/remove), so poison is harmless.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live session for cookie value `id` (touching it), if any.
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.sessions();
        match map.get_mut(id) {
            Some(s) if s.alive(now) => {
                s.last_seen = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Creates a session (anonymous when `user` is `None`); returns its id.
    pub fn create(&self, user: Option<String>) -> String {
        let now = Instant::now();
        let id = random_hex(32);
        let mut map = self.sessions();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.alive(now));
        }
        if map.len() >= MAX_SESSIONS {
            // Still full: drop the oldest anonymous session, else the oldest.
            let victim = map
                .iter()
                .min_by_key(|(_, s)| (s.user.is_some(), s.last_seen))
                .map(|(k, _)| k.clone());
            if let Some(v) = victim {
                map.remove(&v);
            }
        }
        map.insert(
            id.clone(),
            Session {
                user,
                csrf: random_hex(32),
                created: now,
                last_seen: now,
                flash: None,
            },
        );
        id
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// Leaves a message for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.sessions().get_mut(id) {
            s.flash = Some(flash);
        }
    }

    /// Takes the session's pending message.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.sessions().get_mut(id).and_then(|s| s.flash.take())
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Some(wait)` when a login for `user` from `addr` must be refused now.
    pub fn login_refused(&self, user: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let mut l = self.limiter();
        let now = Instant::now();
        let u = l.blocked(&user_key(user), USER_FAILURES, now);
        let a = addr.and_then(|a| l.blocked(&addr_key(a), ADDRESS_FAILURES, now));
        u.max(a)
    }

    /// Counts a failed login.
    pub fn login_failed(&self, user: &str, addr: Option<IpAddr>) {
        let mut l = self.limiter();
        let now = Instant::now();
        l.record(user_key(user), now);
        if let Some(a) = addr {
            l.record(addr_key(a), now);
        }
    }

    /// A successful login clears the user name's failures.
    pub fn login_succeeded(&self, user: &str) {
        self.limiter().fails.remove(&user_key(user));
    }
}

fn user_key(user: &str) -> String {
    format!("user:{}", user.to_ascii_lowercase())
}

fn addr_key(addr: IpAddr) -> String {
    format!("addr:{addr}")
}

/// Sliding-window counts of failed logins.
#[derive(Debug, Default)]
struct Limiter {
    fails: HashMap<String, VecDeque<Instant>>,
}

impl Limiter {
    fn prune(&mut self, now: Instant) {
        for q in self.fails.values_mut() {
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= LIMIT_WINDOW)
            {
                q.pop_front();
            }
        }
        self.fails.retain(|_, q| !q.is_empty());
    }

    fn blocked(&mut self, key: &str, max: usize, now: Instant) -> Option<Duration> {
        self.prune(now);
        let q = self.fails.get(key)?;
        if q.len() < max {
            return None;
        }
        // Free again when the oldest counted failure leaves the window.
        q.front()
            .map(|t| LIMIT_WINDOW.saturating_sub(now.duration_since(*t)))
    }

    fn record(&mut self, key: String, now: Instant) {
        if self.fails.len() > 50_000 {
            self.prune(now);
        }
        let q = self.fails.entry(key).or_default();
        q.push_back(now);
        // Never more than needed to decide.
        while q.len() > ADDRESS_FAILURES.max(USER_FAILURES) {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_flash() {
        let w = WebState::default();
        let id = w.create(None);
        let s = w.get(&id).unwrap();
        assert!(s.user.is_none() && s.csrf.len() == 64);
        let id2 = w.create(Some("approver-key4".into()));
        assert_ne!(id, id2);
        assert_ne!(w.get(&id2).unwrap().csrf, s.csrf);
        w.set_flash(
            &id2,
            Flash {
                ok: true,
                text: "done".into(),
            },
        );
        assert_eq!(w.take_flash(&id2).unwrap().text, "done");
        assert!(w.take_flash(&id2).is_none());
        w.remove(&id2);
        assert!(w.get(&id2).is_none());
        assert!(w.get("nonsense").is_none());
    }

    #[test]
    fn login_limit_per_user_and_address() {
        let w = WebState::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..USER_FAILURES {
            assert!(w.login_refused("approver-key4", Some(a)).is_none());
            w.login_failed("approver-key4", Some(a));
        }
        let wait = w.login_refused("Approver-Key4", Some(a)).unwrap();
        assert!(wait > Duration::ZERO && wait <= LIMIT_WINDOW);
        assert!(w.login_refused("approver-key2", Some(a)).is_none());
        for _ in USER_FAILURES..ADDRESS_FAILURES {
            w.login_failed("someone-else", Some(a));
        }
        assert!(w.login_refused("approver-key2", Some(a)).is_some());
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(w.login_refused("approver-key2", Some(other)).is_none());
        w.login_succeeded("approver-key4");
        assert!(w.login_refused("approver-key4", Some(other)).is_none());
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
