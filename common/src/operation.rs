//! Operations ("pipelines", API.md §3–5): what to create, and the parsed status.
//!
//! The status reply is Known only in part (`"approved": "true"`); the extension fields are read
//! when present and everything else is derived, so a server without them still works.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::duration::format_duration;
use crate::error::{Error, Result};

/// What `POST /api/operations` should create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationSpec {
    /// How long the whole sequence (approval and signing) may take (`validms`).
    pub valid: Duration,
    /// Shown to approvers.
    pub description: String,
    /// Keys and how many signatures each may make (`maxusagecount`).
    pub keys: Vec<(String, u32)>,
}

impl OperationSpec {
    /// The request body.
    pub fn to_json(&self) -> Result<Value> {
        if self.keys.is_empty() {
            return Err(Error::invalid_input("an operation needs at least one key"));
        }
        if self.valid.is_zero() {
            return Err(Error::invalid_input(
                "an operation needs a validity greater than 0",
            ));
        }
        let restrictions: Vec<Value> = self
            .keys
            .iter()
            .map(|(k, n)| json!({"keyid": k, "maxusagecount": n}))
            .collect();
        Ok(json!({
            "validms": self.valid.as_millis() as u64,
            "description": self.description,
            "new-keyusagerestrictions": restrictions,
        }))
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationState {
    /// Waiting for approvals.
    Pending,
    /// Approved; signing may proceed.
    Approved,
    /// Rejected by an approver (final).
    Rejected,
    /// Validity window over (final).
    Expired,
    /// Every use of every key spent (final).
    Exhausted,
}

impl OperationState {
    /// Lowercase name as the server's `status` field.
    pub fn name(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Approved => "approved",
            OperationState::Rejected => "rejected",
            OperationState::Expired => "expired",
            OperationState::Exhausted => "exhausted",
        }
    }

    /// True for states that can never change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OperationState::Rejected | OperationState::Expired | OperationState::Exhausted
        )
    }
}

impl std::fmt::Display for OperationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One key's usage restriction inside an operation (extension fields are `None` when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    /// Key id.
    pub keyid: String,
    /// Signatures allowed.
    pub max_usage: Option<u32>,
    /// Signatures made so far.
    pub usage_count: Option<u32>,
    /// Approvals this key needs.
    pub required_approvals: Option<u32>,
    /// Who approved for this key.
    pub approved_by: Vec<String>,
}

impl KeyUsage {
    /// The approvals part of a status line: `no approval needed`, `1 of 2 approvals
    /// (approver-key3)`; never `1 of 0` or `2 of 1` (extra approvals are named, not counted).
    pub fn approvals_text(&self) -> Option<String> {
        let req = self.required_approvals?;
        if req == 0 {
            return Some("no approval needed".into());
        }
        let have = (self.approved_by.len() as u32).min(req);
        let mut s = format!("{have} of {req} approvals");
        if !self.approved_by.is_empty() {
            s.push_str(&format!(" ({})", self.approved_by.join(", ")));
        }
        Some(s)
    }
}

/// The parsed `GET /api/operations/{id}` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationStatus {
    /// Operation id.
    pub id: String,
    /// Derived state (from `status`, else `approved`).
    pub state: OperationState,
    /// The Known `approved` flag (string `"true"` or boolean).
    pub approved: bool,
    /// Description, if sent.
    pub description: Option<String>,
    /// Creator, if sent.
    pub created_by: Option<String>,
    /// End of the validity window, if sent.
    pub expires_at: Option<SystemTime>,
    /// Per-key restrictions, if sent.
    pub keys: Vec<KeyUsage>,
    /// Who rejected, if sent.
    pub rejected_by: Vec<String>,
    /// The whole reply, for `ksc --json` and fields this type does not model.
    pub raw: Value,
}

fn as_u32(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|x| u32::try_from(x).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => Some(n.as_u64() == Some(1)),
        _ => None,
    }
}

fn as_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| as_string(Some(x))).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Reads the operation id from a create reply (`{"id": ...}`, string or number).
pub fn parse_created_id(body: &Value) -> Result<String> {
    let id = as_string(body.get("id")).filter(|s| !s.trim().is_empty());
    id.ok_or_else(|| Error::bad_response("the create-operation reply has no \"id\""))
}

impl OperationStatus {
    /// Parses a status reply for operation `id`.
    pub fn parse(id: &str, body: &Value) -> Result<OperationStatus> {
        let obj = body.as_object().ok_or_else(|| {
            Error::bad_response("the operation status is not a JSON object").with_operation(id)
        })?;
        let approved = as_bool(obj.get("approved")).unwrap_or(false);
        let state = match as_string(obj.get("status")).map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "pending" => OperationState::Pending,
            Some(s) if s == "approved" => OperationState::Approved,
            Some(s) if s == "rejected" => OperationState::Rejected,
            Some(s) if s == "expired" => OperationState::Expired,
            Some(s) if s == "exhausted" => OperationState::Exhausted,
            _ if approved => OperationState::Approved,
            _ => OperationState::Pending,
        };
        let keys = match obj.get("keyusagerestrictions") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|k| {
                    Some(KeyUsage {
                        keyid: as_string(k.get("keyid"))?,
                        max_usage: as_u32(k.get("maxusagecount")),
                        usage_count: as_u32(k.get("usagecount")),
                        required_approvals: as_u32(k.get("requiredapprovals")),
                        approved_by: as_string_list(k.get("approvedby")),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let expires_at = as_string(obj.get("expiresat")).and_then(|s| parse_rfc3339(&s));
        Ok(OperationStatus {
            id: as_string(obj.get("id")).unwrap_or_else(|| id.to_string()),
            state,
            approved: approved || state == OperationState::Approved,
            description: as_string(obj.get("description")),
            created_by: as_string(obj.get("createdby")),
            expires_at,
            keys,
            rejected_by: as_string_list(obj.get("rejectedby")),
            raw: body.clone(),
        })
    }

    /// Time left in the validity window, if the server says when it ends.
    pub fn expires_in(&self) -> Option<Duration> {
        self.expires_at.map(|t| {
            t.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }

    /// One line saying what the operation waits for, e.g.
    /// `operation 42: key3 has 1 of 2 approvals, expires in 3m10s`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for k in &self.keys {
            if let Some(req) = k.required_approvals {
                let have = k.approved_by.len() as u32;
                if have < req {
                    parts.push(format!("{} has {} of {} approvals", k.keyid, have, req));
                }
            }
        }
        let mut s = format!("operation {}: ", self.id);
        match self.state {
            OperationState::Pending if parts.is_empty() => s.push_str("waiting for approval"),
            OperationState::Pending => s.push_str(&parts.join(", ")),
            other => s.push_str(other.name()),
        }
        if let Some(left) = self.expires_in() {
            if left.is_zero() && !self.state.is_final() {
                s.push_str(", validity ended");
            } else if !self.state.is_final() {
                s.push_str(&format!(", expires in {}", format_duration(left)));
            }
        }
        s
    }
}

/// Parses an RFC 3339 timestamp (`2026-11-26T19:00:00Z`, fractional seconds and `±hh:mm`
/// offsets allowed). Returns `None` for anything else: expiry is informative, never essential.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let digits = &frac[..end.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let oh: i64 = o.get(1..3)?.parse().ok()?;
            let om: i64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset;
    if secs < 0 {
        return None;
    }
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_json() {
        let spec = OperationSpec {
            valid: Duration::from_secs(60),
            description: "Building of firmware".into(),
            keys: vec![("key1".into(), 1), ("key4".into(), 1)],
        };
        let v = spec.to_json().unwrap();
        assert_eq!(v["validms"], 60000);
        assert_eq!(v["new-keyusagerestrictions"][1]["keyid"], "key4");
        assert_eq!(v["new-keyusagerestrictions"][1]["maxusagecount"], 1);
        let empty = OperationSpec {
            keys: vec![],
            ..spec
        };
        assert!(empty.to_json().is_err());
    }

    #[test]
    fn known_minimal_status() {
        let st = OperationStatus::parse("7", &json!({"approved": "true"})).unwrap();
        assert_eq!(st.state, OperationState::Approved);
        let st = OperationStatus::parse("7", &json!({"approved": "false", "junk": [1]})).unwrap();
        assert_eq!(st.state, OperationState::Pending);
        let st = OperationStatus::parse("7", &json!({"approved": true})).unwrap();
        assert!(st.approved);
        assert!(OperationStatus::parse("7", &json!([1])).is_err());
        assert_eq!(parse_created_id(&json!({"id": 42})).unwrap(), "42");
        assert!(parse_created_id(&json!({"id": ""})).is_err());
        assert!(parse_created_id(&json!({})).is_err());
    }

    #[test]
    fn extension_status_and_summary() {
        let exp = SystemTime::now() + Duration::from_secs(190);
        let secs = exp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let body = json!({
            "id": "42", "status": "pending", "approved": "false",
            "expiresat": format_rfc3339(secs),
            "keyusagerestrictions": [
                {"keyid": "key1", "maxusagecount": 1, "usagecount": 0, "requiredapprovals": 0, "approvedby": []},
                {"keyid": "key3", "maxusagecount": 2, "usagecount": 0, "requiredapprovals": 2, "approvedby": ["approver-key3"]}
            ]
        });
        let st = OperationStatus::parse("42", &body).unwrap();
        assert_eq!(st.keys.len(), 2);
        let s = st.summary();
        assert!(
            s.starts_with("operation 42: key3 has 1 of 2 approvals, expires in 3m"),
            "{s}"
        );
        let st = OperationStatus::parse(
            "42",
            &json!({"status": "REJECTED", "rejectedby": "approver-key2"}),
        )
        .unwrap();
        assert_eq!(st.state, OperationState::Rejected);
        assert_eq!(st.rejected_by, vec!["approver-key2".to_string()]);
        assert_eq!(st.summary(), "operation 42: rejected");
    }

    fn format_rfc3339(secs: u64) -> String {
        // Inverse of the parser for tests only (UTC).
        let rem = secs % 86400;
        let (y, m, d) = crate::date::civil_from_days((secs / 86400) as i64);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }

    #[test]
    fn approvals_never_read_1_of_0_or_2_of_1() {
        let k = |req: u32, by: &[&str]| KeyUsage {
            keyid: "key1".into(),
            max_usage: Some(1),
            usage_count: Some(0),
            required_approvals: Some(req),
            approved_by: by.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            k(0, &["admin"]).approvals_text().unwrap(),
            "no approval needed"
        );
        assert_eq!(
            k(1, &["a", "b"]).approvals_text().unwrap(),
            "1 of 1 approvals (a, b)"
        );
        assert_eq!(k(2, &[]).approvals_text().unwrap(), "0 of 2 approvals");
    }

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339("1970-01-02T00:00:01Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(86401));
        let a = parse_rfc3339("2026-11-26T19:00:00.250+01:00").unwrap();
        let b = parse_rfc3339("2026-11-26T18:00:00.25Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            format_rfc3339(b.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()),
            "2026-11-26T18:00:00Z"
        );
        assert!(parse_rfc3339("2026-13-01T00:00:00Z").is_none());
        assert!(parse_rfc3339("yesterday").is_none());
        assert!(parse_rfc3339("2026-11-26T18:00:00").is_none());
    }
}
