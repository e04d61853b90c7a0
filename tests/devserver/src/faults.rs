//! Injected faults for client robustness tests; all off by default.
//!
//! Requests carrying [`NO_FAULT_HEADER`] are exempt, so the test harness's own
//! set-up calls stay deterministic while the client under test sees faults.

use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

/// Header that exempts a request from injected faults (harness only).
pub const NO_FAULT_HEADER: &str = "x-ks-dev-nofault";

/// Probabilities and latency of injected faults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Added to every request.
    pub latency: Duration,
    /// Fraction answered 503.
    pub p_5xx: f64,
    /// Fraction answered 429 with `Retry-After`.
    pub p_429: f64,
    /// Fraction whose connection is dropped without an answer.
    pub p_drop: f64,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Serve normally.
    None,
    /// Answer 503 without processing.
    Error5xx,
    /// Answer 429 without processing.
    RateLimit,
    /// Close the connection before processing.
    DropBefore,
    /// Process the request, then close the connection without the answer:
    /// the case a requestid exists for.
    DropAfter,
}

impl FaultConfig {
    /// True when any fault is configured.
    pub fn any(&self) -> bool {
        !self.latency.is_zero() || self.p_5xx > 0.0 || self.p_429 > 0.0 || self.p_drop > 0.0
    }

    /// Draws the fault for one request.
    pub fn draw(&self) -> Fault {
        let mut rng = rand::thread_rng();
        let x: f64 = rng.gen();
        if x < self.p_drop {
            if rng.gen_bool(0.5) {
                Fault::DropBefore
            } else {
                Fault::DropAfter
            }
        } else if x < self.p_drop + self.p_5xx {
            Fault::Error5xx
        } else if x < self.p_drop + self.p_5xx + self.p_429 {
            Fault::RateLimit
        } else {
            Fault::None
        }
    }
}

/// What the hold gate has seen: requests held so far, and whether the test
/// has released them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct GateState {
    held: u64,
    released: bool,
}

/// The `--fault-hold-keys` gate: every client `GET /api/keys` waits at the
/// gate until the test releases it (`POST /api/dev/gate/release`), and the
/// test can wait for the moment one is held (`GET /api/dev/gate/held`). A
/// fork test uses it to fork while a thread is inside the key-catalog fetch,
/// by an event rather than by a latency it hopes is long enough. Once
/// released, the gate stays open.
#[derive(Debug)]
pub struct HoldGate {
    enabled: bool,
    state: watch::Sender<GateState>,
}

impl HoldGate {
    /// A gate; a disabled one never holds anything.
    pub fn new(enabled: bool) -> HoldGate {
        HoldGate {
            enabled,
            state: watch::Sender::new(GateState::default()),
        }
    }

    /// Whether the fault is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Holds the calling request until the gate is released (at once when
    /// the gate is disabled or already open).
    pub async fn hold(&self) {
        if !self.enabled {
            return;
        }
        let mut rx = self.state.subscribe();
        self.state.send_modify(|s| s.held += 1);
        // The sender lives as long as the gate, which outlives its requests.
        let _ = rx.wait_for(|s| s.released).await;
    }

    /// Waits until at least one request has been held, or `bound` has passed
    /// (a long poll: the caller asks again); returns how many were held.
    pub async fn wait_held(&self, bound: std::time::Duration) -> u64 {
        let mut rx = self.state.subscribe();
        let _ = tokio::time::timeout(bound, rx.wait_for(|s| s.held > 0)).await;
        let held = rx.borrow().held;
        held
    }

    /// Opens the gate for good: held requests go on, later ones pass.
    /// Returns how many requests were held.
    pub fn release(&self) -> u64 {
        self.state.send_modify(|s| s.released = true);
        self.state.borrow().held
    }
}

/// Marker error that makes hyper close the connection without a response.
#[derive(Debug)]
pub struct DroppedConnection;

impl std::fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped (injected fault)")
    }
}

impl std::error::Error for DroppedConnection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        let f = FaultConfig::default();
        assert!(!f.any());
        for _ in 0..1000 {
            assert_eq!(f.draw(), Fault::None);
        }
    }

    #[tokio::test]
    async fn gate_holds_until_released() {
        let gate = std::sync::Arc::new(HoldGate::new(true));
        let held = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.hold().await })
        };
        // Returns on the event (the spawned request is held), not on the bound.
        assert_eq!(gate.wait_held(Duration::from_secs(600)).await, 1);
        assert!(!held.is_finished(), "released before release()");
        assert_eq!(gate.release(), 1);
        held.await.expect("the held request goes on");
        // Open for good: a later request passes.
        gate.hold().await;
        assert_eq!(gate.wait_held(Duration::ZERO).await, 2);
    }

    #[tokio::test]
    async fn disabled_gate_holds_nothing() {
        let gate = HoldGate::new(false);
        assert!(!gate.enabled());
        gate.hold().await;
        assert_eq!(gate.wait_held(Duration::ZERO).await, 0);
    }

    #[test]
    fn always_5xx() {
        let f = FaultConfig {
            p_5xx: 1.0,
            ..Default::default()
        };
        assert_eq!(f.draw(), Fault::Error5xx);
    }
}
