//! Entry points for the fuzz targets (`fuzz/`), for parsers no public function reaches.
//! Not part of the API: hidden from the docs and free to change.

use crate::client::Client;
use crate::config::Config;
use crate::keys::KeyEntry;
use crate::sign::SignRequest;
use crate::Result;

/// Runs a sign order's 2xx reply `body` through exactly what [`Client::sign`] does with it
/// (JSON, `keyid`, `requestid`, hex `result`, decoding and local verification against `entry`).
#[doc(hidden)]
pub fn sign_reply(entry: &KeyEntry, request: &SignRequest, body: &[u8]) -> Result<Vec<u8>> {
    // No I/O: a client is only a configuration until it sends something.
    let client = Client::new(Config::default());
    client.finish_sign(entry, request, body, "00000000-0000-4000-8000-000000000000")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash, EcdsaFormat, ErrorKind, HashAlg};

    // The sign_reply target's seeds are real dev-server replies over this digest; if they
    // stopped verifying, the fuzzer would never get past the signature check.
    fn digest() -> Vec<u8> {
        hash::digest(HashAlg::Sha256, b"keyserver-signing fuzz")
    }

    #[test]
    fn corpus_replies_verify_and_tampered_ones_do_not() {
        let rsa = KeyEntry::from_pem("key1", "", include_str!("../../fuzz/fixtures/key1.pem"))
            .expect("key1");
        let ec = KeyEntry::from_pem("key2", "", include_str!("../../fuzz/fixtures/key2.pem"))
            .expect("key2");
        let pkcs1 = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest: digest(),
        };
        let reply = include_str!("../../fuzz/corpus/sign_reply/rsa-pkcs1.json");
        assert_eq!(
            sign_reply(&rsa, &pkcs1, reply.as_bytes())
                .expect("rsa")
                .len(),
            256
        );
        for (file, reply) in [
            (
                "p1363",
                include_str!("../../fuzz/corpus/sign_reply/ecdsa-p1363.json"),
            ),
            (
                "der",
                include_str!("../../fuzz/corpus/sign_reply/ecdsa-der.json"),
            ),
        ] {
            let ecdsa = SignRequest::Ecdsa {
                digest: digest(),
                format: EcdsaFormat::P1363,
            };
            assert_eq!(
                sign_reply(&ec, &ecdsa, reply.as_bytes()).expect(file).len(),
                64
            );
        }
        // One hex digit of the signature changed.
        let at = reply.find("\"result\":\"").expect("result") + 10;
        let mut tampered = reply.as_bytes().to_vec();
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        let err = sign_reply(&rsa, &pkcs1, &tampered).expect_err("tampered");
        assert_eq!(err.kind(), ErrorKind::VerificationFailed);
        // Another key's reply.
        let err = sign_reply(&ec, &pkcs1, reply.as_bytes()).expect_err("wrong key");
        assert_eq!(err.kind(), ErrorKind::VerificationFailed);
    }
}
