//! Operations ("pipelines"): the persisted record, its status, and the rules
//! of API.md §3–§5 (creation, expiry from creation, approvals, rejection).
//!
//! Everything here is pure (no I/O) so the rules are unit-testable; the store
//! applies these functions inside database transactions.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::users::{CiContext, Principal};
use crate::util::rfc3339_ms;

/// Bounds on what a caller may ask for (a dev server still refuses nonsense).
pub const MAX_VALIDMS: u64 = 30 * 24 * 3600 * 1000;
/// Largest usage count per key.
pub const MAX_USAGE: u64 = 1_000_000;
/// Longest accepted description.
pub const MAX_DESCRIPTION: usize = 4096;

/// Per-key restriction and progress inside an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// Key id.
    pub keyid: String,
    /// Allowed sign orders.
    pub maxusagecount: u64,
    /// Sign orders done.
    pub usagecount: u64,
    /// Approvals the key needs (fixed at creation).
    pub requiredapprovals: u32,
    /// Who approved for this key.
    pub approvedby: Vec<String>,
}

/// A persisted operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Operation id.
    pub id: String,
    /// Shown to approvers.
    pub description: String,
    /// Principal id of the creator (four-eyes).
    pub createdby: String,
    /// Creation time, ms since the epoch.
    pub createdat_ms: u64,
    /// Lifetime from creation.
    pub validms: u64,
    /// Keys with counts and approvals.
    pub keys: Vec<KeyUsage>,
    /// Who rejected it, if anyone (final).
    pub rejectedby: Option<String>,
    /// The creator's CI context, when its token carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub createdcontext: Option<CiContext>,
}

/// The operation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for approvals.
    Pending,
    /// Approved; signing allowed.
    Approved,
    /// Rejected (final).
    Rejected,
    /// Past `validms` (final).
    Expired,
    /// Every key used up (final).
    Exhausted,
}

impl Status {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
            Status::Exhausted => "exhausted",
        }
    }
}

/// The body of `POST /api/operations`.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    /// Lifetime in ms.
    pub validms: u64,
    /// Description.
    pub description: String,
    /// Keys and counts.
    #[serde(rename = "new-keyusagerestrictions")]
    pub restrictions: Vec<NewRestriction>,
}

/// One entry of `new-keyusagerestrictions`.
#[derive(Debug, Deserialize)]
pub struct NewRestriction {
    /// Key id.
    pub keyid: String,
    /// Allowed uses.
    pub maxusagecount: u64,
}

/// The name of a character no description may contain, or `None` when it
/// is allowed: C0/C1 controls (NUL, newline, ESC, ...), the bidirectional
/// embeddings, overrides and isolates that make text display in an order
/// other than it reads (the "Trojan Source" trick), and the line and
/// paragraph separators.
pub fn forbidden_char(c: char) -> Option<&'static str> {
    Some(match c {
        '\0' => "NUL",
        '\n' => "LINE FEED",
        '\r' => "CARRIAGE RETURN",
        '\t' => "TAB",
        '\u{1b}' => "ESCAPE",
        '\u{7f}' => "DELETE",
        c if c.is_control() => "a control character",
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        _ => return None,
    })
}

/// Refuses text shown to approvers (`field` names it in the message) that
/// contains a [`forbidden_char`], naming the first one and where it is.
pub fn check_display_text(field: &str, text: &str) -> ApiResult<()> {
    match text
        .chars()
        .enumerate()
        .find_map(|(i, c)| forbidden_char(c).map(|name| (i, c, name)))
    {
        None => Ok(()),
        Some((i, c, name)) => Err(ApiError::invalid(format!(
            "{field} contains U+{:04X} ({name}) at character {}: control and \
             bidirectional-formatting characters are not allowed, because approvers \
             must see exactly what is signed",
            u32::from(c),
            i + 1
        ))),
    }
}

impl CreateRequest {
    /// Checks everything that does not need the key list.
    pub fn validate(&self) -> ApiResult<()> {
        if self.validms == 0 || self.validms > MAX_VALIDMS {
            return Err(ApiError::invalid(format!(
                "validms must be between 1 and {MAX_VALIDMS}"
            )));
        }
        let d = self.description.trim();
        if d.is_empty() || self.description.chars().count() > MAX_DESCRIPTION {
            return Err(ApiError::invalid(format!(
                "description must be between 1 and {MAX_DESCRIPTION} characters"
            )));
        }
        check_display_text("description", &self.description)?;
        if self.restrictions.is_empty() {
            return Err(ApiError::invalid(
                "new-keyusagerestrictions must name at least one key",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &self.restrictions {
            if r.maxusagecount == 0 || r.maxusagecount > MAX_USAGE {
                return Err(ApiError::invalid(format!(
                    "maxusagecount for {} must be between 1 and {MAX_USAGE}",
                    r.keyid
                )));
            }
            if !seen.insert(r.keyid.as_str()) {
                return Err(ApiError::invalid(format!(
                    "key {} appears twice in new-keyusagerestrictions",
                    r.keyid
                )));
            }
        }
        Ok(())
    }
}

impl Operation {
    /// Expiry time, ms since the epoch.
    pub fn expires_ms(&self) -> u64 {
        self.createdat_ms.saturating_add(self.validms)
    }

    /// Every key has its required approvals.
    pub fn approvals_complete(&self) -> bool {
        self.keys
            .iter()
            .all(|k| k.approvedby.len() >= k.requiredapprovals as usize)
    }

    /// The state at `now_ms`.
    pub fn status(&self, now_ms: u64) -> Status {
        if self.rejectedby.is_some() {
            Status::Rejected
        } else if now_ms >= self.expires_ms() {
            Status::Expired
        } else if self.keys.iter().all(|k| k.usagecount >= k.maxusagecount) {
            Status::Exhausted
        } else if self.approvals_complete() {
            Status::Approved
        } else {
            Status::Pending
        }
    }

    /// May `p` see this operation?
    pub fn visible_to(&self, p: &Principal) -> bool {
        p.rights.admin
            || self.createdby == p.id
            || self
                .keys
                .iter()
                .any(|k| p.rights.sign.contains(&k.keyid) || p.rights.approve.contains(&k.keyid))
    }

    /// The status document (Known fields plus the Extension fields).
    pub fn to_json(&self, now_ms: u64) -> Value {
        let status = self.status(now_ms);
        let approved = self.rejectedby.is_none() && self.approvals_complete();
        let mut doc = json!({
            "id": self.id,
            // A string, as in the tutorial ("approved":"true").
            "approved": if approved { "true" } else { "false" },
            "status": status.name(),
            "description": self.description,
            "createdby": self.createdby,
            "createdat": rfc3339_ms(self.createdat_ms),
            "expiresat": rfc3339_ms(self.expires_ms()),
            "validms": self.validms,
            "keyusagerestrictions": self.keys,
            "rejectedby": self.rejectedby,
        });
        if let Some(c) = &self.createdcontext {
            doc["createdcontext"] = json!(c);
        }
        doc
    }

    /// The 409 for a state that forbids signing or approving, if any.
    pub fn refuse_if_final(&self, now_ms: u64) -> ApiResult<()> {
        match self.status(now_ms) {
            Status::Rejected => Err(ApiError::conflict(
                "operation_rejected",
                format!(
                    "operation {} was rejected by {}",
                    self.id,
                    self.rejectedby.as_deref().unwrap_or("an approver")
                ),
            )),
            Status::Expired => Err(ApiError::conflict(
                "operation_expired",
                format!(
                    "operation {} expired at {}; create a new operation",
                    self.id,
                    rfc3339_ms(self.expires_ms())
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Applies `p`'s approval (API.md §5). Idempotent per approver and key.
    pub fn approve(&mut self, p: &Principal, now_ms: u64) -> ApiResult<()> {
        self.check_approver(p)?;
        if self.createdby == p.id {
            return Err(ApiError::forbidden(format!(
                "four-eyes rule: {} created operation {} and cannot approve it",
                p.id, self.id
            )));
        }
        self.refuse_if_final(now_ms)?;
        for k in &mut self.keys {
            if p.rights.approve.contains(&k.keyid) && !k.approvedby.contains(&p.id) {
                k.approvedby.push(p.id.clone());
            }
        }
        Ok(())
    }

    /// Applies `p`'s rejection: final. Rejecting twice is harmless.
    pub fn reject(&mut self, p: &Principal, now_ms: u64) -> ApiResult<()> {
        self.check_approver(p)?;
        if self.rejectedby.is_some() {
            return Ok(());
        }
        if self.status(now_ms) == Status::Expired {
            return self.refuse_if_final(now_ms);
        }
        self.rejectedby = Some(p.id.clone());
        Ok(())
    }

    fn check_approver(&self, p: &Principal) -> ApiResult<()> {
        if self
            .keys
            .iter()
            .any(|k| p.rights.approve.contains(&k.keyid))
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not approve or reject operation {}: it holds the approve right for none of its keys",
                p.id, self.id
            )))
        }
    }

    /// Only the creator identity (or an admin) signs under an operation: an
    /// approval is for one pipeline, not for anyone who holds sign rights on
    /// the key (operation ids are sequential and easy to guess).
    pub fn check_creator_may_sign(&self, p: &Principal) -> ApiResult<()> {
        if p.rights.admin || self.createdby == p.id {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "operation {} belongs to {}: only the identity that created it (or an admin) may sign under it, not {}",
                self.id, self.createdby, p.id
            )))
        }
    }

    /// Checks that `keyid` may be used once more now (state, approval, count).
    pub fn check_can_sign(&self, keyid: &str, now_ms: u64) -> ApiResult<()> {
        let k = self.keys.iter().find(|k| k.keyid == keyid).ok_or_else(|| {
            ApiError::key_not_in_operation(format!(
                "key {keyid} is not part of operation {}",
                self.id
            ))
        })?;
        self.refuse_if_final(now_ms)?;
        if k.usagecount >= k.maxusagecount {
            return Err(ApiError::conflict(
                "usage_exhausted",
                format!(
                    "key {keyid} has been used {} of {} times in operation {}; create a new operation",
                    k.usagecount, k.maxusagecount, self.id
                ),
            ));
        }
        if !self.approvals_complete() {
            let missing: Vec<String> = self
                .keys
                .iter()
                .filter(|k| k.approvedby.len() < k.requiredapprovals as usize)
                .map(|k| {
                    format!(
                        "{} has {} of {} approvals",
                        k.keyid,
                        k.approvedby.len(),
                        k.requiredapprovals
                    )
                })
                .collect();
            return Err(ApiError::conflict(
                "operation_pending",
                format!(
                    "operation {} is not approved yet: {}",
                    self.id,
                    missing.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Counts one use of `keyid` (after [`Operation::check_can_sign`]).
    pub fn consume(&mut self, keyid: &str) {
        if let Some(k) = self.keys.iter_mut().find(|k| k.keyid == keyid) {
            k.usagecount += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{KeySet, Rights};

    fn op() -> Operation {
        Operation {
            id: "1".into(),
            description: "test operation".into(),
            createdby: "creator".into(),
            createdat_ms: 1000,
            validms: 1000,
            keys: vec![
                KeyUsage {
                    keyid: "key1".into(),
                    maxusagecount: 1,
                    usagecount: 0,
                    requiredapprovals: 0,
                    approvedby: vec![],
                },
                KeyUsage {
                    keyid: "key3".into(),
                    maxusagecount: 2,
                    usagecount: 0,
                    requiredapprovals: 2,
                    approvedby: vec![],
                },
            ],
            rejectedby: None,
            createdcontext: None,
        }
    }

    fn approver(id: &str, key: &str) -> Principal {
        Principal {
            id: id.into(),
            rights: Rights {
                approve: KeySet::one(key),
                ..Rights::nothing()
            },
            context: None,
        }
    }

    #[test]
    fn two_distinct_approvers_and_expiry() {
        let mut o = op();
        assert_eq!(o.status(1500), Status::Pending);
        let a = approver("a", "key3");
        o.approve(&a, 1500).unwrap();
        o.approve(&a, 1500).unwrap();
        assert_eq!(o.status(1500), Status::Pending);
        assert_eq!(
            o.check_can_sign("key1", 1500).unwrap_err().code,
            "operation_pending"
        );
        o.approve(&approver("b", "key3"), 1500).unwrap();
        assert_eq!(o.status(1500), Status::Approved);
        assert_eq!(o.status(2000), Status::Expired);
        assert_eq!(
            o.check_can_sign("key1", 2000).unwrap_err().code,
            "operation_expired"
        );
        o.check_can_sign("key1", 1500).unwrap();
        o.consume("key1");
        assert_eq!(
            o.check_can_sign("key1", 1500).unwrap_err().code,
            "usage_exhausted"
        );
        assert_eq!(
            o.check_can_sign("key9", 1500).unwrap_err().code,
            "key_not_in_operation"
        );
    }

    #[test]
    fn four_eyes_and_rejection() {
        let mut o = op();
        let creator = Principal {
            id: "creator".into(),
            rights: Rights {
                approve: KeySet::All,
                ..Rights::nothing()
            },
            context: None,
        };
        assert_eq!(o.approve(&creator, 1500).unwrap_err().code, "forbidden");
        assert_eq!(
            o.approve(&approver("x", "key2"), 1500).unwrap_err().code,
            "forbidden"
        );
        o.reject(&approver("r", "key1"), 1500).unwrap();
        assert_eq!(o.status(1500), Status::Rejected);
        assert_eq!(
            o.approve(&approver("a", "key3"), 1500).unwrap_err().code,
            "operation_rejected"
        );
    }
}
