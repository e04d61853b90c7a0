//! Token endpoint replies (granted, refused, rate-limited, anything else) and the JWT `exp`
//! the client reads from the token.
#![no_main]

use ks_common::token::{jwt_expiry, parse_token_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for status in [200, 201, 400, 401, 403, 429, 500, 302] {
        let _ = parse_token_response(status, data, "orderer-client");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jwt_expiry(text);
    }
});
