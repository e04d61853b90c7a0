//! Sign-order replies: a 2xx body goes through exactly what `Client::sign` does with it
//! (JSON, hex, DER/P1363 decoding, local verification against the real key1/key2
//! certificates of the dev server), an error body through the error mapping, and the
//! `Retry-After` value through its parser.
#![no_main]

use ks_common::{hash, EcdsaFormat, HashAlg, KeyEntry, SignRequest};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Fixture {
    rsa: KeyEntry,
    ec: KeyEntry,
    digest: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        rsa: KeyEntry::from_pem("key1", "", include_str!("../fixtures/key1.pem")).expect("key1"),
        ec: KeyEntry::from_pem("key2", "", include_str!("../fixtures/key2.pem")).expect("key2"),
        // The digest the corpus's sign orders were made over (fuzz/make-corpus.sh).
        digest: hash::digest(HashAlg::Sha256, b"keyserver-signing fuzz"),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let rsa = SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: f.digest.clone(),
    };
    let _ = ks_common::fuzzing::sign_reply(&f.rsa, &rsa, data);
    for format in [EcdsaFormat::P1363, EcdsaFormat::Der] {
        let ec = SignRequest::Ecdsa {
            digest: f.digest.clone(),
            format,
        };
        let _ = ks_common::fuzzing::sign_reply(&f.ec, &ec, data);
    }
    for status in [400, 403, 404, 409, 429, 503] {
        let e = ks_common::error::from_server_reply(status, data, None);
        let _ = e.to_string();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ks_common::http::parse_retry_after(text);
    }
});
