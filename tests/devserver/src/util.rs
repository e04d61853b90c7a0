//! Small helpers: durations, time stamps, hex, random ids.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a Go-style duration (`1h`, `50ms`, `1m30s`, `10s`, `0s`), as the
/// clients' configuration does, so the same strings work everywhere. An own copy
/// (the dev server is a test oracle and does not link ks-common) with the same
/// grammar: a leading `+` is allowed, negatives are refused, and a number without
/// a unit is an error unless it is `0`. common/tests/duration_grammar.rs pins this
/// copy and ks-common's parser to the same cases.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("duration {s:?} is negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {s:?} lacks a unit (e.g. 10s, 500ms, 1h)"))?;
        if num_end == 0 {
            return Err(format!("duration {s:?} is not a number with a unit"));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("duration {s:?} has a bad number"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let secs = match unit {
            "ns" => value / 1e9,
            "us" | "µs" | "μs" => value / 1e6,
            "ms" => value / 1e3,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(format!("duration {s:?} has an unknown unit {unit:?}")),
        };
        total += Duration::try_from_secs_f64(secs).map_err(|e| format!("duration {s:?}: {e}"))?;
    }
    Ok(total)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// RFC 3339 (UTC, milliseconds) for a Unix time in milliseconds.
pub fn rfc3339_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Strict lowercase-or-uppercase hex decoding with a useful message.
pub fn decode_hex(field: &str, s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err(format!("{field} is empty"));
    }
    if s.len() % 2 != 0 {
        return Err(format!("{field} has an odd number of hex digits"));
    }
    hex::decode(s).map_err(|_| format!("{field} is not hexadecimal"))
}

/// A random identifier of `bytes` random bytes, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5parsecs").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_ms(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn hex_strict() {
        assert!(decode_hex("x", "").is_err());
        assert!(decode_hex("x", "abc").is_err());
        assert!(decode_hex("x", "zz").is_err());
        assert_eq!(decode_hex("x", "0aFF").unwrap(), vec![10, 255]);
    }
}
