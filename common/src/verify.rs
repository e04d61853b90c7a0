//! Local signature verification: AWS-LC (aws-lc-rs) where it checks the case exactly, pure
//! Rust (rsa, p256/p384/p521) for the rest (the private `fast` module says which cases those are).
//!
//! Every signature KeyServer returns passes through [`verify`] before anyone sees it, so a wrong
//! key, a server fault or an altered reply is caught here; the adapters use the same function for
//! `C_Verify` and the provider's verify.

mod fast;

use ecdsa::signature::hazmat::PrehashVerifier;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{self, HashAlg};
use crate::keys::{EcCurve, PublicKey};
use crate::sign::{EcdsaFormat, SignRequest};
use fast::Checked;

/// The longest PSS salt a signature by `key` can carry with `hash` (RFC 8017 9.1.1:
/// emLen - hLen - 2, emLen = ceil((modBits - 1) / 8)); 0 for a key too small for any.
fn max_pss_salt(key: &PublicKey, hash: HashAlg) -> usize {
    let em_len = (key.bits() as usize).saturating_sub(1).div_ceil(8);
    em_len.saturating_sub(hash.output_len() + 2)
}

fn mismatch(what: &str) -> Error {
    Error::new(
        ErrorKind::VerificationFailed,
        format!("the {what} signature does not verify with the certificate's public key"),
    )
}

/// Checks `signature` over `request` with `key`. `Ok(())` means valid; an invalid signature is
/// [`ErrorKind::VerificationFailed`]; a request that does not fit the key is
/// [`ErrorKind::InvalidInput`].
pub fn verify(key: &PublicKey, request: &SignRequest, signature: &[u8]) -> Result<()> {
    verify_with(key, request, signature, true)
}

/// [`verify`] on the pure-Rust path alone, never AWS-LC: the reference the tests compare the
/// AWS-LC path with, and what `examples/verify_cost.rs` measures it against.
pub fn verify_pure_rust(key: &PublicKey, request: &SignRequest, signature: &[u8]) -> Result<()> {
    verify_with(key, request, signature, false)
}

/// [`verify`], with the AWS-LC path on or off.
fn verify_with(
    key: &PublicKey,
    request: &SignRequest,
    signature: &[u8],
    use_fast: bool,
) -> Result<()> {
    match key {
        PublicKey::Rsa { n, e } => verify_rsa(key, n, e, request, signature, use_fast),
        PublicKey::Ec { curve, point } => {
            verify_ec(key, *curve, point, request, signature, use_fast)
        }
    }
}

fn verify_rsa(
    key: &PublicKey,
    n: &[u8],
    e: &[u8],
    request: &SignRequest,
    signature: &[u8],
    use_fast: bool,
) -> Result<()> {
    // An RSA signature is exactly k bytes; reject other lengths before the math.
    if signature.len() != n.len() {
        return Err(mismatch(&format!(
            "{}-byte RSA (expected {} bytes)",
            signature.len(),
            n.len()
        )));
    }
    let what = request.describe();
    let fast_result = match request {
        SignRequest::RsaPkcs1DigestInfo { digest_info } => {
            let (alg, digest) = hash::parse_digest_info(digest_info)?;
            // Only the canonical encoding (NULL parameters) is what AWS-LC rebuilds and compares;
            // any other accepted DigestInfo is compared byte for byte by the pure-Rust path.
            if use_fast && hash::digest_info(alg, &digest)? == *digest_info {
                fast::rsa(key, alg, None, &digest, signature)
            } else {
                Checked::NotCovered
            }
        }
        SignRequest::RsaPkcs1 { hash, digest } => {
            hash::check_digest_len(*hash, digest)?;
            if use_fast {
                fast::rsa(key, *hash, None, digest, signature)
            } else {
                Checked::NotCovered
            }
        }
        SignRequest::RsaPss {
            hash,
            salt_len,
            digest,
        } => {
            hash::check_digest_len(*hash, digest)?;
            // A salt longer than the key allows cannot verify; the pure-Rust path says so, and
            // AWS-LC's per-salt parameters stay bounded by what a key can use.
            if use_fast && *salt_len <= max_pss_salt(key, *hash) {
                fast::rsa(key, *hash, Some(*salt_len), digest, signature)
            } else {
                Checked::NotCovered
            }
        }
        SignRequest::Ecdsa { .. } => {
            return Err(Error::invalid_input(
                "an ECDSA signature cannot be checked with an RSA key",
            ))
        }
    };
    match fast_result {
        Checked::Valid => return Ok(()),
        Checked::Invalid => return Err(mismatch(&what)),
        Checked::NotCovered => {}
    }
    let rsa_key = RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(n),
        BigUint::from_bytes_be(e),
        // KeyServer keys go up to 4096 bits; allow larger without a separate code path.
        16384,
    )
    .map_err(|err| Error::new(ErrorKind::Unsupported, format!("RSA public key: {err}")))?;
    let result = match request {
        SignRequest::RsaPkcs1DigestInfo { digest_info } => {
            rsa_key.verify(Pkcs1v15Sign::new_unprefixed(), digest_info, signature)
        }
        SignRequest::RsaPkcs1 { hash, digest } => {
            let di = hash::digest_info(*hash, digest)?;
            rsa_key.verify(Pkcs1v15Sign::new_unprefixed(), &di, signature)
        }
        SignRequest::RsaPss {
            hash,
            salt_len,
            digest,
        } => {
            let scheme = match hash {
                HashAlg::Sha1 => Pss::new_with_salt::<sha1::Sha1>(*salt_len),
                HashAlg::Sha256 => Pss::new_with_salt::<sha2::Sha256>(*salt_len),
                HashAlg::Sha384 => Pss::new_with_salt::<sha2::Sha384>(*salt_len),
                HashAlg::Sha512 => Pss::new_with_salt::<sha2::Sha512>(*salt_len),
            };
            rsa_key.verify(scheme, digest, signature)
        }
        SignRequest::Ecdsa { .. } => return Err(Error::internal("checked above")),
    };
    result.map_err(|_| mismatch(&what))
}

fn verify_ec(
    key: &PublicKey,
    curve: EcCurve,
    point: &[u8],
    request: &SignRequest,
    signature: &[u8],
    use_fast: bool,
) -> Result<()> {
    let (digest, format) = match request {
        SignRequest::Ecdsa { digest, format } => (digest, *format),
        other => {
            return Err(Error::invalid_input(format!(
                "a {} signature cannot be checked with an EC key",
                other.describe()
            )))
        }
    };
    let name = format!("{} ECDSA", curve.name());
    if use_fast {
        match fast::ecdsa(key, digest, format, signature) {
            Checked::Valid => return Ok(()),
            Checked::Invalid => return Err(mismatch(&name)),
            Checked::NotCovered => {}
        }
    }
    // ecdsa's bits2field refuses digests shorter than half the field (a SHA-256 digest with
    // P-521), although ECDSA defines them: a shorter digest is used as an integer as is. Left
    // zero-padding to the field size keeps that integer and passes the check.
    let mut padded;
    let mut digest: &[u8] = digest;
    if digest.len() < curve.field_len() {
        padded = vec![0u8; curve.field_len() - digest.len()];
        padded.extend_from_slice(digest);
        digest = &padded;
    }
    let bad_key = |_| Error::new(ErrorKind::BadResponse, "EC public key is not a valid point");
    // Parse failures of the signature are a mismatch too: the bytes are not a signature by this key.
    macro_rules! check {
        ($m:ident) => {{
            let vk = $m::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(bad_key)?;
            let sig = match format {
                EcdsaFormat::P1363 => $m::ecdsa::Signature::from_slice(signature),
                EcdsaFormat::Der => $m::ecdsa::Signature::from_der(signature),
            }
            .map_err(|_| mismatch(&name))?;
            vk.verify_prehash(digest, &sig).map_err(|_| mismatch(&name))
        }};
    }
    match curve {
        EcCurve::P256 => check!(p256),
        EcCurve::P384 => check!(p384),
        EcCurve::P521 => check!(p521),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyEntry;
    use crate::sign::{ecdsa_der_to_p1363, ecdsa_p1363_to_der};

    const MSG: &[u8] = include_bytes!("../tests/data/msg.txt");

    fn key(pem: &str) -> KeyEntry {
        KeyEntry::from_pem("k", "", pem).unwrap()
    }

    /// Verifies with the AWS-LC path and with the pure-Rust path alone, asserts that both say
    /// the same, and names the outcome.
    fn outcome(k: &PublicKey, r: &SignRequest, sig: &[u8]) -> &'static str {
        let name = |res: Result<()>| match res {
            Ok(()) => "verified",
            Err(e) if e.kind() == ErrorKind::VerificationFailed => "caught",
            Err(_) => "other error",
        };
        let fast = name(verify_with(k, r, sig, true));
        let pure = name(verify_with(k, r, sig, false));
        assert_eq!(
            fast,
            pure,
            "AWS-LC and pure Rust disagree on {}",
            r.describe()
        );
        fast
    }

    #[test]
    fn rsa_pkcs1_from_openssl() {
        let k = key(include_str!("../tests/data/rsa2048.pem"));
        let sig = include_bytes!("../tests/data/rsa2048-pkcs1-sha256.sig");
        let digest = hash::digest(HashAlg::Sha256, MSG);
        let req = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest: digest.clone(),
        };
        verify(&k.public_key, &req, sig).unwrap();
        let di = SignRequest::RsaPkcs1DigestInfo {
            digest_info: hash::digest_info(HashAlg::Sha256, &digest).unwrap(),
        };
        verify(&k.public_key, &di, sig).unwrap();
        let mut bad = sig.to_vec();
        bad[10] ^= 1;
        let e = verify(&k.public_key, &req, &bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::VerificationFailed);
        assert_eq!(
            verify(&k.public_key, &req, &sig[1..]).unwrap_err().kind(),
            ErrorKind::VerificationFailed
        );
        let other = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest: hash::digest(HashAlg::Sha256, b"other"),
        };
        assert!(verify(&k.public_key, &other, sig).is_err());
    }

    #[test]
    fn rsa_pss_from_openssl() {
        let k = key(include_str!("../tests/data/rsa2048.pem"));
        let sig = include_bytes!("../tests/data/rsa2048-pss-sha384.sig");
        let req = SignRequest::RsaPss {
            hash: HashAlg::Sha384,
            salt_len: 48,
            digest: hash::digest(HashAlg::Sha384, MSG),
        };
        verify(&k.public_key, &req, sig).unwrap();
        let pkcs1 = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha384,
            digest: hash::digest(HashAlg::Sha384, MSG),
        };
        assert!(verify(&k.public_key, &pkcs1, sig).is_err());
    }

    #[test]
    fn ecdsa_from_openssl_all_curves() {
        let cases: [(&str, &[u8], HashAlg, EcCurve); 4] = [
            (
                include_str!("../tests/data/p256.pem"),
                include_bytes!("../tests/data/p256-sha256.der.sig"),
                HashAlg::Sha256,
                EcCurve::P256,
            ),
            (
                include_str!("../tests/data/p384.pem"),
                include_bytes!("../tests/data/p384-sha384.der.sig"),
                HashAlg::Sha384,
                EcCurve::P384,
            ),
            (
                include_str!("../tests/data/p521.pem"),
                include_bytes!("../tests/data/p521-sha512.der.sig"),
                HashAlg::Sha512,
                EcCurve::P521,
            ),
            (
                include_str!("../tests/data/p521.pem"),
                include_bytes!("../tests/data/p521-sha256.der.sig"),
                HashAlg::Sha256,
                EcCurve::P521,
            ),
        ];
        for (pem, der_sig, h, curve) in cases {
            let k = key(pem);
            assert!(matches!(k.public_key, PublicKey::Ec { curve: c, .. } if c == curve));
            let digest = hash::digest(h, MSG);
            let req = SignRequest::Ecdsa {
                digest: digest.clone(),
                format: EcdsaFormat::Der,
            };
            verify(&k.public_key, &req, der_sig).unwrap();
            let rs = ecdsa_der_to_p1363(curve, der_sig).unwrap();
            assert_eq!(rs.len(), 2 * curve.field_len());
            let p1363 = SignRequest::Ecdsa {
                digest,
                format: EcdsaFormat::P1363,
            };
            verify(&k.public_key, &p1363, &rs).unwrap();
            assert_eq!(ecdsa_p1363_to_der(curve, &rs).unwrap(), der_sig);
            let mut bad = rs.clone();
            bad[5] ^= 0x40;
            assert_eq!(
                verify(&k.public_key, &p1363, &bad).unwrap_err().kind(),
                ErrorKind::VerificationFailed
            );
            // A P1363 signature presented as DER is a mismatch, not a panic.
            assert!(verify(&k.public_key, &req, &rs).is_err());
            // An RSA request against an EC key is an input error.
            let rsa_req = SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: vec![0; 32],
            };
            assert_eq!(
                verify(&k.public_key, &rsa_req, &rs).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }

    /// Every key type KeyServer offers: the genuine signature verifies, and any altered byte,
    /// a shortened signature, another digest or another key's signature is caught.
    #[test]
    fn bad_signature_caught_on_every_key_type() {
        let pss = |h: HashAlg, salt_len: usize| SignRequest::RsaPss {
            hash: h,
            salt_len,
            digest: hash::digest(h, MSG),
        };
        let pkcs1 = |h: HashAlg| SignRequest::RsaPkcs1 {
            hash: h,
            digest: hash::digest(h, MSG),
        };
        let ecdsa = |h: HashAlg| SignRequest::Ecdsa {
            digest: hash::digest(h, MSG),
            format: EcdsaFormat::Der,
        };
        let cases: Vec<(&str, &str, &[u8], SignRequest)> = vec![
            (
                "RSA-2048 PKCS#1",
                include_str!("../tests/data/rsa2048.pem"),
                include_bytes!("../tests/data/rsa2048-pkcs1-sha256.sig"),
                pkcs1(HashAlg::Sha256),
            ),
            (
                "RSA-2048 PSS",
                include_str!("../tests/data/rsa2048.pem"),
                include_bytes!("../tests/data/rsa2048-pss-sha384.sig"),
                pss(HashAlg::Sha384, 48),
            ),
            (
                "RSA-3072 PKCS#1",
                include_str!("../tests/data/rsa3072.pem"),
                include_bytes!("../tests/data/rsa3072-pkcs1-sha256.sig"),
                pkcs1(HashAlg::Sha256),
            ),
            (
                "RSA-3072 PSS",
                include_str!("../tests/data/rsa3072.pem"),
                include_bytes!("../tests/data/rsa3072-pss-sha512.sig"),
                pss(HashAlg::Sha512, 64),
            ),
            (
                "RSA-4096 PKCS#1",
                include_str!("../tests/data/rsa4096.pem"),
                include_bytes!("../tests/data/rsa4096-pkcs1-sha256.sig"),
                pkcs1(HashAlg::Sha256),
            ),
            (
                "RSA-4096 PSS",
                include_str!("../tests/data/rsa4096.pem"),
                include_bytes!("../tests/data/rsa4096-pss-sha512.sig"),
                pss(HashAlg::Sha512, 64),
            ),
            (
                "P-256",
                include_str!("../tests/data/p256.pem"),
                include_bytes!("../tests/data/p256-sha256.der.sig"),
                ecdsa(HashAlg::Sha256),
            ),
            (
                "P-384",
                include_str!("../tests/data/p384.pem"),
                include_bytes!("../tests/data/p384-sha384.der.sig"),
                ecdsa(HashAlg::Sha384),
            ),
            (
                "P-521",
                include_str!("../tests/data/p521.pem"),
                include_bytes!("../tests/data/p521-sha512.der.sig"),
                ecdsa(HashAlg::Sha512),
            ),
        ];
        let failed = outcome;
        for (name, pem, sig, req) in &cases {
            let k = key(pem).public_key;
            verify(&k, req, sig).unwrap_or_else(|e| panic!("{name}: genuine: {e}"));
            for pos in [0, 1, sig.len() / 2, sig.len() - 1] {
                for bit in [0x01u8, 0x80] {
                    let mut bad = sig.to_vec();
                    bad[pos] ^= bit;
                    // A flipped DER header byte may make it unparsable: still not "verified".
                    assert_ne!(failed(&k, req, &bad), "verified", "{name}: byte {pos}");
                    if pos > 8 {
                        assert_eq!(failed(&k, req, &bad), "caught", "{name}: byte {pos}");
                    }
                }
            }
            assert_eq!(
                failed(&k, req, &sig[..sig.len() - 1]),
                "caught",
                "{name}: short"
            );
            if let (PublicKey::Ec { curve, .. }, SignRequest::Ecdsa { digest, .. }) = (&k, req) {
                // The same signature as r || s: caught the same way.
                let rs = ecdsa_der_to_p1363(*curve, sig).unwrap();
                let p1363 = SignRequest::Ecdsa {
                    digest: digest.clone(),
                    format: EcdsaFormat::P1363,
                };
                assert_eq!(failed(&k, &p1363, &rs), "verified", "{name}: r||s");
                for pos in [0, rs.len() / 2, rs.len() - 1] {
                    let mut bad = rs.clone();
                    bad[pos] ^= 0x01;
                    assert_eq!(failed(&k, &p1363, &bad), "caught", "{name}: r||s {pos}");
                }
                assert_eq!(failed(&k, &p1363, &rs[1..]), "caught", "{name}: r||s short");
            }
            let mut other = req.clone();
            match &mut other {
                SignRequest::RsaPkcs1 { digest, .. }
                | SignRequest::RsaPss { digest, .. }
                | SignRequest::Ecdsa { digest, .. } => digest[0] ^= 1,
                SignRequest::RsaPkcs1DigestInfo { .. } => unreachable!(),
            }
            assert_eq!(failed(&k, &other, sig), "caught", "{name}: other digest");
            // Another key's signature of the same kind and length is caught too.
            for (other_name, other_pem, other_sig, other_req) in &cases {
                if other_name != name
                    && other_sig.len() == sig.len()
                    && std::mem::discriminant(other_req) == std::mem::discriminant(req)
                    && other_pem != pem
                {
                    assert_ne!(
                        failed(&k, req, other_sig),
                        "verified",
                        "{name} vs {other_name}"
                    );
                }
            }
        }
    }

    /// Keys made for the test (the dev KeyServer's key cache) sign every scheme the adapters
    /// can ask for, including the ones the AWS-LC path leaves to pure Rust (a DigestInfo without
    /// NULL parameters, ECDSA digest lengths AWS-LC has no algorithm for): both paths agree,
    /// the genuine signature verifies, and a flipped bit, a wrong salt length, a wrong hash, a
    /// short signature or another key's signature is caught.
    #[test]
    fn every_scheme_fast_and_pure_agree() {
        use ks_devserver::keys::{Algorithm, HashAlg as DevHash, KeyCache};
        let cache = KeyCache::new(Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/ks-devserver-keycache"),
        ));
        let public = |k: &ks_devserver::keys::PrivateKey| {
            PublicKey::from_spki_der(&k.spki_der().unwrap()).unwrap()
        };
        let dev = |h: HashAlg| match h {
            HashAlg::Sha256 => DevHash::Sha256,
            HashAlg::Sha384 => DevHash::Sha384,
            HashAlg::Sha512 => DevHash::Sha512,
            HashAlg::Sha1 => unreachable!(),
        };
        let assert_caught_when_flipped = |k: &PublicKey, req: &SignRequest, sig: &[u8]| {
            for pos in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.to_vec();
                bad[pos] ^= 0x10;
                assert_ne!(outcome(k, req, &bad), "verified", "{}", req.describe());
            }
            assert_eq!(outcome(k, req, &sig[..sig.len() - 1]), "caught");
        };
        let rsa_other = public(&cache.get(Algorithm::Rsa(2048), 0).unwrap());
        for bits in [2048, 3072, 4096] {
            let sk = cache.get(Algorithm::Rsa(bits), 0).unwrap();
            let k = public(&sk);
            for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                let digest = hash::digest(h, MSG);
                // PKCS#1 v1.5, as a hash + digest and as the raw canonical DigestInfo.
                let di = hash::digest_info(h, &digest).unwrap();
                let sig = sk.sign_pkcs1_digest_info(&di).unwrap();
                let req = SignRequest::RsaPkcs1 {
                    hash: h,
                    digest: digest.clone(),
                };
                assert_eq!(outcome(&k, &req, &sig), "verified", "RSA-{bits} {h}");
                // Decided by AWS-LC, not silently left to pure Rust (speed, not safety).
                assert_eq!(
                    fast::rsa(&k, h, None, &digest, &sig),
                    fast::Checked::Valid,
                    "AWS-LC covers RSA-{bits} PKCS#1 {h}"
                );
                let raw = SignRequest::RsaPkcs1DigestInfo {
                    digest_info: di.clone(),
                };
                assert_eq!(outcome(&k, &raw, &sig), "verified");
                assert_caught_when_flipped(&k, &req, &sig);
                assert_caught_when_flipped(&k, &raw, &sig);
                // The wrong hash: the same signature claimed for the SHA-1 of the message.
                let sha1 = SignRequest::RsaPkcs1 {
                    hash: HashAlg::Sha1,
                    digest: hash::digest(HashAlg::Sha1, MSG),
                };
                assert_eq!(outcome(&k, &sha1, &sig), "caught");
                if bits != 2048 {
                    assert_ne!(outcome(&rsa_other, &req, &sig), "verified");
                }
                // A DigestInfo without the NULL parameters: only the exact bytes verify.
                let mut no_null = di.clone();
                let prefix_len = di.len() - digest.len();
                let null_at = prefix_len - 4;
                assert_eq!(&no_null[null_at..prefix_len - 2], &[0x05, 0x00]);
                no_null.drain(null_at..null_at + 2);
                no_null[1] -= 2;
                no_null[3] -= 2;
                let odd = SignRequest::RsaPkcs1DigestInfo {
                    digest_info: no_null.clone(),
                };
                let odd_sig = sk.sign_pkcs1_digest_info(&no_null).unwrap();
                assert_eq!(outcome(&k, &odd, &odd_sig), "verified", "no NULL {h}");
                assert_eq!(outcome(&k, &raw, &odd_sig), "caught");
                assert_eq!(outcome(&k, &odd, &sig), "caught");
                assert_caught_when_flipped(&k, &odd, &odd_sig);
                // PSS with every kind of salt length the adapters pass on.
                let max = sk.max_pss_salt(dev(h)).unwrap();
                for salt in [0, 20, h.output_len(), max] {
                    let sig = sk.sign_pss(dev(h), salt, &digest).unwrap();
                    let pss = |salt_len: usize| SignRequest::RsaPss {
                        hash: h,
                        salt_len,
                        digest: digest.clone(),
                    };
                    assert_eq!(outcome(&k, &pss(salt), &sig), "verified", "PSS {h} {salt}");
                    assert_eq!(
                        fast::rsa(&k, h, Some(salt), &digest, &sig),
                        fast::Checked::Valid,
                        "AWS-LC covers RSA-{bits} PSS {h} salt {salt}"
                    );
                    assert_caught_when_flipped(&k, &pss(salt), &sig);
                    for wrong in [salt + 1, salt.saturating_sub(1), h.output_len() + 1] {
                        if wrong != salt {
                            assert_eq!(outcome(&k, &pss(wrong), &sig), "caught", "salt {wrong}");
                        }
                    }
                    let other_h = if h == HashAlg::Sha256 {
                        HashAlg::Sha512
                    } else {
                        HashAlg::Sha256
                    };
                    let wrong_hash = SignRequest::RsaPss {
                        hash: other_h,
                        salt_len: salt,
                        digest: hash::digest(other_h, MSG),
                    };
                    assert_eq!(outcome(&k, &wrong_hash, &sig), "caught");
                    assert_eq!(outcome(&k, &req, &sig), "caught", "PSS as PKCS#1");
                }
            }
        }
        let curves = [
            (Algorithm::EcP256, EcCurve::P256),
            (Algorithm::EcP384, EcCurve::P384),
            (Algorithm::EcP521, EcCurve::P521),
        ];
        for (alg, curve) in curves {
            let sk = cache.get(alg, 0).unwrap();
            let k = public(&sk);
            let other_curve = if curve == EcCurve::P256 {
                Algorithm::EcP384
            } else {
                Algorithm::EcP256
            };
            // Lengths AWS-LC takes (20, 32, 48, 64 bytes, and 28 on P-521) and ones it does not.
            for len in [20, 28, 32, 48, 64, 17] {
                let digest: Vec<u8> = hash::digest(HashAlg::Sha512, MSG)[..len].to_vec();
                let (rs, der) = sk.sign_ecdsa(&digest).unwrap();
                for (format, sig) in [(EcdsaFormat::P1363, &rs), (EcdsaFormat::Der, &der)] {
                    let req = SignRequest::Ecdsa {
                        digest: digest.clone(),
                        format,
                    };
                    let what = format!("{} {len} {format:?}", curve.name());
                    assert_eq!(outcome(&k, &req, sig), "verified", "{what}");
                    // The lengths AWS-LC has an algorithm for are decided by it.
                    let covered = matches!(
                        (curve, len),
                        (EcCurve::P256, 20 | 32 | 48 | 64)
                            | (EcCurve::P384, 32 | 48 | 64)
                            | (EcCurve::P521, 20 | 28 | 32 | 48 | 64)
                    );
                    if covered {
                        assert_eq!(
                            fast::ecdsa(&k, &digest, format, sig),
                            fast::Checked::Valid,
                            "AWS-LC covers {what}"
                        );
                    }
                    assert_caught_when_flipped(&k, &req, sig);
                    // The first byte: a digest longer than the field is cut to its left part.
                    let mut wrong = digest.clone();
                    wrong[0] ^= 1;
                    let wrong = SignRequest::Ecdsa {
                        digest: wrong,
                        format,
                    };
                    assert_eq!(outcome(&k, &wrong, sig), "caught", "{what}");
                    // Another hash's digest of the message (the wrong hash).
                    let sha256 = SignRequest::Ecdsa {
                        digest: hash::digest(HashAlg::Sha256, MSG),
                        format,
                    };
                    if len != 32 {
                        assert_eq!(outcome(&k, &sha256, sig), "caught", "{what}");
                    }
                }
                let (other_rs, _) = cache
                    .get(other_curve, 0)
                    .unwrap()
                    .sign_ecdsa(&digest)
                    .unwrap();
                let req = SignRequest::Ecdsa {
                    digest: digest.clone(),
                    format: EcdsaFormat::P1363,
                };
                assert_ne!(outcome(&k, &req, &other_rs), "verified");
            }
        }
    }
}
