//! Retry and time bounds of the HTTP layer: the per-call deadline ([`CallDeadline`]), the
//! backoff between attempts, `Retry-After`, and the classification of a failed attempt (was
//! the request possibly seen by the server, may it be repeated).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::Failure;
use crate::config::KSC_CA_FILE;
use crate::error::{Error, ErrorKind};

/// First backoff delay; doubles per attempt.
pub(super) const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest single backoff delay.
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(4);

thread_local! {
    /// The deadline of the library call running on this thread, if any (see [`CallDeadline`]).
    static CALL_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The total deadline of one library call, active on this thread until dropped. Nested calls
/// (a sign that fetches the key list and a token) keep the earliest deadline, so the outer call's
/// bound holds for everything under it.
#[must_use = "the deadline applies only while the guard lives"]
pub struct CallDeadline {
    previous: Option<Instant>,
}

impl CallDeadline {
    /// Opens a deadline `total` from now (or keeps an earlier one already open on this thread).
    pub fn start(total: Duration) -> CallDeadline {
        let proposed = Instant::now().checked_add(total);
        let previous = CALL_DEADLINE.with(|d| d.get());
        let effective = match (previous, proposed) {
            (Some(p), Some(n)) => Some(p.min(n)),
            (Some(p), None) => Some(p),
            (None, n) => n,
        };
        CALL_DEADLINE.with(|d| d.set(effective));
        CallDeadline { previous }
    }

    /// The deadline active on this thread.
    pub fn current() -> Option<Instant> {
        CALL_DEADLINE.with(|d| d.get())
    }
}

impl Drop for CallDeadline {
    fn drop(&mut self) {
        CALL_DEADLINE.with(|d| d.set(self.previous));
    }
}
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_BASE.saturating_mul(1 << (attempt - 1).min(8));
    let base = base.min(BACKOFF_MAX);
    // Jitter (0–25%) so many clients retrying together do not stay in lockstep; the subsecond
    // clock is random enough for this and needs no RNG dependency.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

/// `Retry-After: <seconds>` or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(v).ok().map(|t| {
        t.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    })
}

/// Maps a reqwest error to our error and whether the server may have seen the request.
pub(super) fn classify(e: reqwest::Error) -> Failure {
    let chain = error_chain_text(&e);
    // The kept cause must not carry the URL either: whoever walks `source()` would print it.
    let e = e.without_url();
    if e.is_connect() {
        // The connector failed: TCP connect, or the TLS handshake. No request bytes were sent.
        let tls = is_certificate_error(&e, &chain);
        let refused = !tls && is_refused(&e);
        let message = if tls {
            format!("TLS certificate verification failed ({chain})")
        } else {
            format!("cannot connect to the server ({chain})")
        };
        let mut error = Error::new(ErrorKind::Network, message).with_source(e);
        if tls {
            error = error.with_remedy(format!(
                "point {KSC_CA_FILE} at the PEM CA that issued the server's certificate"
            ));
        }
        return Failure {
            error,
            maybe_sent: false,
            retryable: !tls,
            refused,
        };
    }
    let message = if e.is_timeout() {
        format!("the server did not answer in time ({chain})")
    } else {
        format!("the connection failed ({chain})")
    };
    let remedy = if e.is_timeout() {
        "retry, or raise KSC_HTTP_CLIENT_TIMEOUT"
    } else {
        "check the network and the server, then retry"
    };
    Failure {
        error: Error::new(ErrorKind::Network, message)
            .with_remedy(remedy)
            .with_source(e),
        maybe_sent: true,
        retryable: true,
        refused: false,
    }
}

/// True when an I/O error in the chain is `ECONNREFUSED`.
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    // Tokens travel in headers, never in reqwest's texts, but the URL it names may carry
    // userinfo.
    crate::redact::userinfo(&crate::error::sanitize_server_text(&parts.join(": "), 400))
}

fn is_certificate_error(e: &(dyn std::error::Error + 'static), chain: &str) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return matches!(r, rustls::Error::InvalidCertificate(_));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(rustls::Error::InvalidCertificate(_)) =
                    inner.downcast_ref::<rustls::Error>()
                {
                    return true;
                }
            }
        }
        cur = err.source();
    }
    chain.contains("invalid peer certificate")
}
