//! Browser sessions of the approvers' page: the session cookie, CSRF tokens,
//! and one-shot messages (failed logins are counted by
//! [`crate::limits`], together with the token endpoint's). Everything lives in memory
//! (a restart logs everybody out; the operations themselves are durable).

use std::collections::HashMap;
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

/// The session table.
#[derive(Debug, Default)]
pub struct WebState {
    sessions: Mutex<HashMap<String, Session>>,
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
    fn secrets_compare() {
        assert!(
            same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("ab", "abc")
        );
    }
}
