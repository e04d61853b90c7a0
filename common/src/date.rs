//! Calendar dates from Unix time (UTC, proleptic Gregorian), without a date crate: the one
//! civil-from-days calculation that `ksc`'s key table, the PKCS#11 `CK_DATE` attributes and the
//! tests use.

use std::time::{SystemTime, UNIX_EPOCH};

/// `(year, month, day)` of the day `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// `(year, month, day)` (UTC) of a time; `None` before 1970.
pub fn ymd(time: SystemTime) -> Option<(i64, u32, u32)> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(civil_from_days((since.as_secs() / 86_400) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_787), (2026, 11, 30));
        assert_eq!(ymd(UNIX_EPOCH - std::time::Duration::from_secs(1)), None);
    }
}
