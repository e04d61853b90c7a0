//! Injected faults for client robustness tests; all off by default.
//!
//! Requests carrying [`NO_FAULT_HEADER`] are exempt, so the test harness's own
//! set-up calls stay deterministic while the client under test sees faults.

use std::time::Duration;

use rand::Rng;

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

    #[test]
    fn always_5xx() {
        let f = FaultConfig {
            p_5xx: 1.0,
            ..Default::default()
        };
        assert_eq!(f.draw(), Fault::Error5xx);
    }
}
