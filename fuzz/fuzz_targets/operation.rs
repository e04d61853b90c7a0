//! Operation replies: create (`{"id"}`), status (pending/approved/...), approve/reject, and the
//! RFC 3339 times in them.
#![no_main]

use ks_common::operation::{parse_created_id, parse_rfc3339, OperationStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_rfc3339(text);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = parse_created_id(&v);
    if let Ok(status) = OperationStatus::parse("42", &v) {
        let _ = status.summary();
        let _ = status.expires_in();
    }
});
