//! Token endpoint replies (granted, refused, rate-limited, anything else), GitHub Actions'
//! token service replies, and the JWT claims (`exp`, `aud`) the client reads from a token.
#![no_main]

use ks_common::token::{jwt_claims, jwt_expiry, parse_github_reply, parse_token_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for status in [200, 201, 400, 401, 403, 429, 500, 302] {
        let _ = parse_token_response(status, data, "orderer-client");
        let _ = parse_github_reply(status, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jwt_expiry(text);
        let _ = jwt_claims(text);
    }
});
