//! `GET /api/keys` replies: the catalog parser and what is derived from each key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(catalog) = ks_common::catalog::parse_keys(data) {
        for key in &catalog.keys {
            let _ = key.certificate_pem();
            let _ = key.public_key_pem();
            let _ = key.subject_string();
            let _ = key.public_key.algorithm_name();
        }
        if let Some(first) = catalog.keys.first() {
            let _ = ks_common::catalog::find_key(&catalog.keys, &first.keyid);
        }
        let _ = ks_common::catalog::find_key(&catalog.keys, "no-such-key");
    }
});
