//! Audit log entries: who, what, when, key, digest, operation, outcome.

use serde::{Deserialize, Serialize};

use crate::util::{now_ms, rfc3339_ms};

/// One audit record; stored in the database next to the state it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (assigned by the store).
    #[serde(default)]
    pub seq: u64,
    /// RFC 3339 time.
    pub at: String,
    /// Principal id (or the client id for token requests).
    pub who: String,
    /// What was attempted: `token`, `create`, `approve`, `reject`, `sign`.
    pub action: String,
    /// Operation id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Key id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Signed input (hex), for sign orders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `ok` or the §7 error code.
    pub outcome: String,
    /// `ui` when done through the approvers' web page (absent for the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl AuditEntry {
    /// A new entry stamped now.
    pub fn new(who: &str, action: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: rfc3339_ms(now_ms()),
            who: who.to_string(),
            action: action.to_string(),
            operation: None,
            key: None,
            digest: None,
            outcome: "ok".into(),
            via: None,
        }
    }
    /// With an operation id.
    pub fn op(mut self, id: &str) -> Self {
        self.operation = Some(id.to_string());
        self
    }
    /// With a key id.
    pub fn key(mut self, id: &str) -> Self {
        self.key = Some(id.to_string());
        self
    }
    /// With the signed input.
    pub fn digest(mut self, hex: &str) -> Self {
        // Bounded: the input is validated before it is signed, but refusals
        // of huge inputs are audited too.
        self.digest = Some(hex.chars().take(256).collect());
        self
    }
    /// Done through `channel` (e.g. `ui`).
    pub fn via(mut self, channel: &str) -> Self {
        self.via = Some(channel.to_string());
        self
    }
    /// With an outcome.
    pub fn outcome(mut self, o: &str) -> Self {
        self.outcome = o.to_string();
        self
    }
}
