//! Go-style durations (`10s`, `1m30s`, `500ms`, `1.5h`), as the existing Go client's
//! `KSC_HTTP_CLIENT_TIMEOUT` takes them, and a matching formatter for messages.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`;
/// fractions allowed; a leading `+` is allowed; a bare `0` is zero. As in Go, any other number
/// without a unit is an error (`10` could mean seconds or nanoseconds). Negative durations are
/// refused. The dev server's copy (tests/devserver/src/util.rs) follows the same grammar; both
/// are pinned to one case table by common/tests/duration_grammar.rs.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("negative duration {text:?}"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!(
                "invalid duration {text:?} (expected e.g. 10s, 1m30s, 500ms)"
            ));
        }
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "missing unit in duration {text:?} (use ns, us, ms, s, m or h)"
                ))
            }
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total += value * scale;
    }
    secs_to_duration(total, text)
}

fn secs_to_duration(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(format!("duration {text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats like Go does for whole units (`3m10s`, `45s`, `1h0m5s`, `500ms`), for messages.
pub fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("+15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration(" 3s ").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "", "abc", "10x", "-5s", "s", "1m30", "1..5s", "10 s", "NaN", "inf", "15", "0.0",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_secs(190)), "3m10s");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h0m5s");
    }
}
