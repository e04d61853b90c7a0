//! The key catalog: parsing `GET /api/keys` (API.md §2) into [`KeyEntry`]s.
//!
//! One bad certificate must not hide every other key from pkcs11-tool or openssl, so a key whose
//! entry cannot be parsed is skipped with a warning; a reply that is not a key list at all is a
//! [`BadResponse`](crate::error::ErrorKind::BadResponse).

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::KeyEntry;

/// The parsed catalog plus what it tells about the server.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Keys in server order.
    pub keys: Vec<KeyEntry>,
    /// True if the server sent this project's extension fields (`approvers`, `algorithm`),
    /// i.e. it is a server that also implements the other extensions such as `requestid`.
    pub has_extensions: bool,
}

/// Parses the body of `GET /api/keys`. Accepts a bare array or `{"keys": [...]}`.
pub fn parse_keys(body: &[u8]) -> Result<Catalog> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::bad_response(format!("the key list is not JSON ({e})")))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("keys") {
            Some(Value::Array(a)) => a,
            _ => return Err(Error::bad_response("the key list is not a JSON array")),
        },
        _ => return Err(Error::bad_response("the key list is not a JSON array")),
    };
    let mut keys = Vec::with_capacity(list.len());
    let mut has_extensions = false;
    for (i, item) in list.iter().enumerate() {
        let Some(keyid) = item
            .get("keyid")
            .and_then(|k| k.as_str())
            .filter(|k| !k.is_empty())
        else {
            log::warn!("key list entry {i} has no keyid; skipped");
            continue;
        };
        if keys.iter().any(|k: &KeyEntry| k.keyid == keyid) {
            log::warn!("key {keyid} is listed twice; the first entry is used");
            continue;
        }
        let keyinfo = item.get("keyinfo").and_then(|k| k.as_str()).unwrap_or("");
        let Some(pem) = item.get("certificate").and_then(|c| c.as_str()) else {
            log::warn!("key {keyid} has no certificate; skipped");
            continue;
        };
        let mut entry = match KeyEntry::from_pem(keyid, keyinfo, pem) {
            Ok(e) => e,
            Err(e) => {
                log::warn!("{e}; key skipped");
                continue;
            }
        };
        entry.approvers = item
            .get("approvers")
            .and_then(|a| a.as_u64())
            .and_then(|a| u32::try_from(a).ok());
        entry.algorithm = item
            .get("algorithm")
            .and_then(|a| a.as_str())
            .map(|s| s.to_string());
        has_extensions |= entry.approvers.is_some() || entry.algorithm.is_some();
        keys.push(entry);
    }
    Ok(Catalog {
        keys,
        has_extensions,
    })
}

/// `keyid` in `keys`, or the NotFound error that names the keys there are.
pub fn find_key(keys: &[KeyEntry], keyid: &str) -> Result<KeyEntry> {
    if let Some(k) = keys.iter().find(|k| k.keyid == keyid) {
        return Ok(k.clone());
    }
    let known: Vec<&str> = keys.iter().map(|k| k.keyid.as_str()).collect();
    Err(Error::new(
        ErrorKind::NotFound,
        format!("the server has no such key (it has: {})", known.join(", ")),
    )
    .with_key(keyid)
    .with_remedy("use one of the listed key ids (ksc keys)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const RSA: &str = include_str!("../tests/data/rsa2048.pem");
    const P256: &str = include_str!("../tests/data/p256.pem");

    #[test]
    fn parses_known_and_extension_fields() {
        let body = serde_json::json!([
            {"keyid": "key1", "keyinfo": "RSA key", "certificate": RSA, "approvers": 0, "algorithm": "RSA-2048", "future": {"x": 1}},
            {"keyid": "key2", "certificate": P256},
        ]);
        let c = parse_keys(body.to_string().as_bytes()).unwrap();
        assert_eq!(c.keys.len(), 2);
        assert!(c.has_extensions);
        assert_eq!(c.keys[0].approvers, Some(0));
        assert_eq!(c.keys[0].algorithm.as_deref(), Some("RSA-2048"));
        assert_eq!(c.keys[1].keyinfo, "");
        assert_eq!(c.keys[1].approvers, None);
        let wrapped = serde_json::json!({"keys": [{"keyid": "key2", "certificate": P256}]});
        let c = parse_keys(wrapped.to_string().as_bytes()).unwrap();
        assert!(!c.has_extensions);
    }

    #[test]
    fn bad_entries_are_skipped() {
        let body = serde_json::json!([
            {"keyid": "good", "certificate": P256},
            {"keyid": "broken", "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
            {"keyid": "nocert"},
            {"certificate": RSA},
            {"keyid": "good", "certificate": RSA},
            "junk",
        ]);
        let c = parse_keys(body.to_string().as_bytes()).unwrap();
        assert_eq!(c.keys.len(), 1);
        assert_eq!(c.keys[0].keyid, "good");
        assert_eq!(c.keys[0].public_key.type_name(), "EC");
    }

    #[test]
    fn malformed_replies() {
        for body in [
            &b"<html>login</html>"[..],
            b"{\"keys\": 1}",
            b"42",
            b"",
            b"[1,",
        ] {
            let e = parse_keys(body).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadResponse);
        }
    }
}
