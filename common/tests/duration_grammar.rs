//! One duration grammar (Go's `time.ParseDuration`, negatives refused): ks-common's parser and
//! the dev server's own copy (it stays independent of ks-common as a test oracle) accept and
//! refuse exactly the same strings, with the same values.

use std::time::Duration;

/// (input, value) for accepted strings; `None` for refused ones.
const CASES: &[(&str, Option<Duration>)] = &[
    ("0", Some(Duration::ZERO)),
    ("+0", Some(Duration::ZERO)),
    ("0s", Some(Duration::ZERO)),
    ("10s", Some(Duration::from_secs(10))),
    ("+15s", Some(Duration::from_secs(15))),
    (" 3s ", Some(Duration::from_secs(3))),
    ("1m30s", Some(Duration::from_secs(90))),
    ("2h45m", Some(Duration::from_secs(9900))),
    ("1.5h", Some(Duration::from_secs(5400))),
    ("1h", Some(Duration::from_secs(3600))),
    ("500ms", Some(Duration::from_millis(500))),
    ("50ms", Some(Duration::from_millis(50))),
    (".5s", Some(Duration::from_millis(500))),
    ("100us", Some(Duration::from_micros(100))),
    ("100µs", Some(Duration::from_micros(100))),
    ("100μs", Some(Duration::from_micros(100))),
    ("10", None),
    ("15", None),
    ("0.0", None),
    ("0.5", None),
    ("", None),
    ("abc", None),
    ("x", None),
    ("10x", None),
    ("5parsecs", None),
    ("-5s", None),
    ("-0", None),
    ("s", None),
    ("1m30", None),
    ("1..5s", None),
    ("10 s", None),
    ("NaN", None),
    ("inf", None),
];

#[test]
fn common_and_dev_server_share_one_grammar() {
    for (input, want) in CASES {
        let common = ks_common::duration::parse_duration(input).ok();
        let devserver = ks_devserver::util::parse_duration(input).ok();
        assert_eq!(common, *want, "ks-common on {input:?}");
        assert_eq!(devserver, *want, "dev server on {input:?}");
    }
}
