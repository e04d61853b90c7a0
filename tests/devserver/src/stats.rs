//! Counters served at `GET {api}/api/dev/stats` (benchmarks and tests).

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters; relaxed ordering is enough for statistics.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests on both listeners.
    pub requests: AtomicU64,
    /// Completed TLS handshakes (connections are reused when this stays low).
    pub tls_handshakes: AtomicU64,
    /// Failed TLS handshakes.
    pub tls_failures: AtomicU64,
    /// Successful sign orders (idempotent replays not counted).
    pub signorders: AtomicU64,
    /// Sign orders answered from a stored requestid.
    pub signorder_replays: AtomicU64,
    /// Tokens issued.
    pub tokens: AtomicU64,
    /// Operations created.
    pub operations: AtomicU64,
    /// Requests answered with a 4xx.
    pub client_errors: AtomicU64,
    /// Injected faults (all kinds).
    pub faults: AtomicU64,
    /// Sign-order requests being handled right now.
    pub signorders_in_flight: AtomicU64,
    /// The most sign-order requests ever handled at once: tests read it to
    /// prove that a client signs in parallel (serialised clients never exceed 1).
    pub signorders_max_in_flight: AtomicU64,
}

/// Counts one sign-order request as in flight until dropped.
pub struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    /// Marks a sign-order request as started and updates the peak.
    pub fn start(stats: &'a Stats) -> InFlight<'a> {
        let now = stats.signorders_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats
            .signorders_max_in_flight
            .fetch_max(now, Ordering::SeqCst);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.signorders_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stats {
    /// Adds one.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The JSON document.
    pub fn json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": g(&self.requests),
            "tls_handshakes": g(&self.tls_handshakes),
            "tls_failures": g(&self.tls_failures),
            "signorders": g(&self.signorders),
            "signorder_replays": g(&self.signorder_replays),
            "tokens": g(&self.tokens),
            "operations": g(&self.operations),
            "client_errors": g(&self.client_errors),
            "faults": g(&self.faults),
            "signorders_in_flight": g(&self.signorders_in_flight),
            "signorders_max_in_flight": g(&self.signorders_max_in_flight),
        })
    }
}
