//! `ks:` URIs as OpenSSL hands them to the provider's STORE, and the names a URI or a
//! parameter may carry (hash names or OIDs, curve names).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keyserver::store::Target::Key(id)) = keyserver::store::parse_uri(text) {
        assert!(!id.is_empty() && id.len() <= 128, "accepted key id {id:?}");
    }
    let _ = ks_common::HashAlg::from_name_or_oid(text);
    let _ = ks_common::EcCurve::from_name(text);
});
