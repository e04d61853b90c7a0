//! The hardware-speed path of [`super::verify`]: AWS-LC (through aws-lc-rs), which verifies a
//! prehashed digest (ring cannot, and our adapters hold digests, not messages).
//!
//! Each public key is parsed once per scheme and kept in a small process-wide cache keyed by the
//! key itself, so a batch of signatures with one key pays for parsing (and AWS-LC's Montgomery
//! set-up for the modulus) once. What AWS-LC cannot check exactly is left to the pure-Rust path
//! ([`Checked::NotCovered`]): RSA keys outside 2048-8192 bits, RSA-PSS with SHA-1, a raw
//! DigestInfo that is not the canonical encoding of a known hash, ECDSA digests of a length no
//! AWS-LC algorithm takes (P-384 with SHA-1, P-256/P-384 with 28 bytes, any other length), and
//! keys AWS-LC refuses to parse.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use aws_lc_rs::digest::{self as lc_digest, Digest};
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{
    self as lc_sig, EcdsaVerificationAlgorithm, ParsedPublicKey, RsaParameters, RsaPssSaltLength,
};

use crate::hash::HashAlg;
use crate::keys::{EcCurve, PublicKey};
use crate::sign::{ecdsa_p1363_to_der, EcdsaFormat};

/// What the fast path found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    /// The signature verifies.
    Valid,
    /// It does not.
    Invalid,
    /// AWS-LC cannot check this case exactly: use the pure-Rust path.
    NotCovered,
}

/// One verification scheme a parsed key is bound to (aws-lc-rs ties a parsed key to one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pkcs1(HashAlg),
    Pss(HashAlg, u16),
    /// ECDSA, by digest length.
    Ecdsa(usize),
}

/// How many distinct keys keep their parsed forms; a catalog rarely has more, and a key
/// pushed out is only parsed again.
const MAX_KEYS: usize = 64;

struct CachedKey {
    key: PublicKey,
    /// `None`: AWS-LC refused the key for that scheme (remembered, so it is not retried).
    parsed: Mutex<Vec<(Scheme, Option<Arc<ParsedPublicKey>>)>>,
}

static KEYS: Mutex<Vec<Arc<CachedKey>>> = Mutex::new(Vec::new());

/// RSA-PSS parameters for salt lengths other than the digest length, built once per
/// (hash, salt length) and kept for the process: aws-lc-rs wants `&'static` parameters. At most
/// 3 hashes × the salt lengths an 8192-bit key allows, a few hundred KiB in the worst case.
static PSS_PARAMS: Mutex<Vec<((HashAlg, u16), &'static RsaParameters)>> = Mutex::new(Vec::new());

/// The caches are only a shortcut, so they are never waited for: a lock held elsewhere (or held
/// by a thread that did not survive a `fork()` into this process) means "not cached", never a
/// stall. A lock whose holder panicked still guards consistent data (only pushes and reads).
fn lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

fn lc_hash(h: HashAlg) -> &'static lc_digest::Algorithm {
    match h {
        HashAlg::Sha1 => &lc_digest::SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &lc_digest::SHA256,
        HashAlg::Sha384 => &lc_digest::SHA384,
        HashAlg::Sha512 => &lc_digest::SHA512,
    }
}

fn pkcs1_params(h: HashAlg) -> &'static RsaParameters {
    match h {
        HashAlg::Sha1 => &lc_sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => &lc_sig::RSA_PKCS1_2048_8192_SHA256,
        HashAlg::Sha384 => &lc_sig::RSA_PKCS1_2048_8192_SHA384,
        HashAlg::Sha512 => &lc_sig::RSA_PKCS1_2048_8192_SHA512,
    }
}

/// PSS parameters with MGF1 over the same hash and exactly `salt_len` bytes of salt (AWS-LC
/// checks the salt length exactly). `None` for SHA-1, which aws-lc-rs has no PSS parameters for.
fn pss_params(h: HashAlg, salt_len: u16) -> Option<&'static RsaParameters> {
    let base: &'static RsaParameters = match h {
        HashAlg::Sha1 => return None,
        HashAlg::Sha256 => &lc_sig::RSA_PSS_2048_8192_SHA256,
        HashAlg::Sha384 => &lc_sig::RSA_PSS_2048_8192_SHA384,
        HashAlg::Sha512 => &lc_sig::RSA_PSS_2048_8192_SHA512,
    };
    if usize::from(salt_len) == h.output_len() {
        return Some(base);
    }
    // Busy: pure Rust checks this one (leaking parameters without the table could grow).
    let mut table = lock(&PSS_PARAMS)?;
    if let Some((_, p)) = table.iter().find(|(k, _)| *k == (h, salt_len)) {
        return Some(p);
    }
    let custom = RsaPssSaltLength::Custom(salt_len);
    let owned = match h {
        HashAlg::Sha256 => lc_sig::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(custom),
        HashAlg::Sha384 => lc_sig::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(custom),
        HashAlg::Sha512 | HashAlg::Sha1 => {
            lc_sig::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(custom)
        }
    };
    let params: &'static RsaParameters = Box::leak(Box::new(owned));
    table.push(((h, salt_len), params));
    Some(params)
}

/// The ECDSA algorithm (DER signatures) for a digest of `len` bytes on `curve`; the hash named
/// only fixes the digest length, the math uses the digest bytes as they are.
fn ecdsa_alg(
    curve: EcCurve,
    len: usize,
) -> Option<(
    &'static EcdsaVerificationAlgorithm,
    &'static lc_digest::Algorithm,
)> {
    use lc_sig::*;
    Some(match (curve, len) {
        (EcCurve::P256, 20) => (&ECDSA_P256_SHA1_ASN1, &lc_digest::SHA1_FOR_LEGACY_USE_ONLY),
        (EcCurve::P256, 32) => (&ECDSA_P256_SHA256_ASN1, &lc_digest::SHA256),
        (EcCurve::P256, 48) => (&ECDSA_P256_SHA384_ASN1, &lc_digest::SHA384),
        (EcCurve::P256, 64) => (&ECDSA_P256_SHA512_ASN1, &lc_digest::SHA512),
        (EcCurve::P384, 32) => (&ECDSA_P384_SHA256_ASN1, &lc_digest::SHA256),
        (EcCurve::P384, 48) => (&ECDSA_P384_SHA384_ASN1, &lc_digest::SHA384),
        (EcCurve::P384, 64) => (&ECDSA_P384_SHA512_ASN1, &lc_digest::SHA512),
        (EcCurve::P521, 20) => (&ECDSA_P521_SHA1_ASN1, &lc_digest::SHA1_FOR_LEGACY_USE_ONLY),
        (EcCurve::P521, 28) => (&ECDSA_P521_SHA224_ASN1, &lc_digest::SHA224),
        (EcCurve::P521, 32) => (&ECDSA_P521_SHA256_ASN1, &lc_digest::SHA256),
        (EcCurve::P521, 48) => (&ECDSA_P521_SHA384_ASN1, &lc_digest::SHA384),
        (EcCurve::P521, 64) => (&ECDSA_P521_SHA512_ASN1, &lc_digest::SHA512),
        _ => return None,
    })
}

/// The key's parsed form for `scheme`, parsing it with `parse` the first time.
fn parsed(
    key: &PublicKey,
    scheme: Scheme,
    parse: impl FnOnce() -> Option<ParsedPublicKey>,
) -> Option<Arc<ParsedPublicKey>> {
    let Some(mut keys) = lock(&KEYS) else {
        return parse().map(Arc::new);
    };
    let entry = match keys.iter().find(|c| c.key == *key) {
        Some(c) => Arc::clone(c),
        None => {
            if keys.len() >= MAX_KEYS {
                keys.remove(0);
            }
            let c = Arc::new(CachedKey {
                key: key.clone(),
                parsed: Mutex::new(Vec::new()),
            });
            keys.push(Arc::clone(&c));
            c
        }
    };
    drop(keys);
    let Some(mut slots) = lock(&entry.parsed) else {
        return parse().map(Arc::new);
    };
    if let Some((_, p)) = slots.iter().find(|(s, _)| *s == scheme) {
        return p.clone();
    }
    let p = parse().map(Arc::new);
    slots.push((scheme, p.clone()));
    p
}

fn outcome(r: Result<(), aws_lc_rs::error::Unspecified>) -> Checked {
    match r {
        Ok(()) => Checked::Valid,
        Err(_) => Checked::Invalid,
    }
}

/// RSA PKCS#1 v1.5 (hash known, `digest` of its length) or PSS (`salt_len` given). The caller
/// has checked that the signature is exactly the modulus length.
pub(super) fn rsa(
    key: &PublicKey,
    hash: HashAlg,
    pss_salt: Option<usize>,
    digest: &[u8],
    signature: &[u8],
) -> Checked {
    let PublicKey::Rsa { n, e } = key else {
        return Checked::NotCovered;
    };
    if !(2048..=8192).contains(&key.bits()) {
        return Checked::NotCovered;
    }
    let (scheme, params) = match pss_salt {
        None => (Scheme::Pkcs1(hash), pkcs1_params(hash)),
        Some(salt) => {
            let Ok(salt) = u16::try_from(salt) else {
                return Checked::NotCovered;
            };
            match pss_params(hash, salt) {
                Some(p) => (Scheme::Pss(hash, salt), p),
                None => return Checked::NotCovered,
            }
        }
    };
    let Ok(digest) = Digest::import_less_safe(digest, lc_hash(hash)) else {
        return Checked::NotCovered;
    };
    let parse = || {
        PublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        }
        .to_parsed_public_key(params)
        .ok()
    };
    match parsed(key, scheme, parse) {
        Some(pk) => outcome(pk.verify_digest_sig(&digest, signature)),
        None => Checked::NotCovered,
    }
}

/// ECDSA over `digest` as it is (any length AWS-LC has an algorithm for).
pub(super) fn ecdsa(
    key: &PublicKey,
    digest: &[u8],
    format: EcdsaFormat,
    signature: &[u8],
) -> Checked {
    let PublicKey::Ec { curve, point } = key else {
        return Checked::NotCovered;
    };
    let Some((alg, hash)) = ecdsa_alg(*curve, digest.len()) else {
        return Checked::NotCovered;
    };
    let Ok(digest) = Digest::import_less_safe(digest, hash) else {
        return Checked::NotCovered;
    };
    // r || s is checked in its DER form; a value that is not a valid r || s for the curve
    // (wrong length, zero, not below the order) is not a signature by this key.
    let der;
    let signature = match format {
        EcdsaFormat::Der => signature,
        EcdsaFormat::P1363 => match ecdsa_p1363_to_der(*curve, signature) {
            Ok(d) => {
                der = d;
                &der
            }
            Err(_) => return Checked::Invalid,
        },
    };
    let parse = || ParsedPublicKey::new(alg, point.as_slice()).ok();
    match parsed(key, Scheme::Ecdsa(digest.as_ref().len()), parse) {
        Some(pk) => outcome(pk.verify_digest_sig(&digest, signature)),
        None => Checked::NotCovered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash;
    use crate::keys::KeyEntry;

    const MSG: &[u8] = include_bytes!("../../tests/data/msg.txt");

    fn key(pem: &str) -> PublicKey {
        KeyEntry::from_pem("k", "", pem).unwrap().public_key
    }

    /// The cases AWS-LC covers are decided here, not left to pure Rust; the ones it does not
    /// cover say so instead of guessing.
    #[test]
    fn covered_cases_are_decided_by_aws_lc() {
        let rsa = key(include_str!("../../tests/data/rsa2048.pem"));
        let sig = include_bytes!("../../tests/data/rsa2048-pkcs1-sha256.sig");
        let d256 = hash::digest(HashAlg::Sha256, MSG);
        assert_eq!(rsa_check(&rsa, None, &d256, sig), Checked::Valid);
        let mut bad = sig.to_vec();
        bad[100] ^= 1;
        assert_eq!(rsa_check(&rsa, None, &d256, &bad), Checked::Invalid);
        let pss = include_bytes!("../../tests/data/rsa2048-pss-sha384.sig");
        let d384 = hash::digest(HashAlg::Sha384, MSG);
        assert_eq!(
            super::rsa(&rsa, HashAlg::Sha384, Some(48), &d384, pss),
            Checked::Valid
        );
        // Another salt length is another parameter set, checked exactly.
        assert_eq!(
            super::rsa(&rsa, HashAlg::Sha384, Some(47), &d384, pss),
            Checked::Invalid
        );
        // No PSS with SHA-1 in aws-lc-rs.
        let d1 = hash::digest(HashAlg::Sha1, MSG);
        assert_eq!(
            super::rsa(&rsa, HashAlg::Sha1, Some(20), &d1, pss),
            Checked::NotCovered
        );

        let p384 = key(include_str!("../../tests/data/p384.pem"));
        let der = include_bytes!("../../tests/data/p384-sha384.der.sig");
        assert_eq!(ecdsa(&p384, &d384, EcdsaFormat::Der, der), Checked::Valid);
        assert_eq!(ecdsa(&p384, &d256, EcdsaFormat::Der, der), Checked::Invalid);
        // P-384 with a 20-byte digest: no AWS-LC algorithm, pure Rust decides.
        assert_eq!(
            ecdsa(&p384, &d1, EcdsaFormat::Der, der),
            Checked::NotCovered
        );
        // An r || s that is no valid pair for the curve is not a signature.
        assert_eq!(
            ecdsa(&p384, &d384, EcdsaFormat::P1363, &[0u8; 96]),
            Checked::Invalid
        );
        // The parsed key is cached: a second key of the same kind has its own entry.
        let p256 = key(include_str!("../../tests/data/p256.pem"));
        let der256 = include_bytes!("../../tests/data/p256-sha256.der.sig");
        assert_eq!(
            ecdsa(&p256, &d256, EcdsaFormat::Der, der256),
            Checked::Valid
        );
        assert_eq!(ecdsa(&p384, &d384, EcdsaFormat::Der, der), Checked::Valid);
        assert_eq!(ecdsa(&p256, &d256, EcdsaFormat::Der, der), Checked::Invalid);
    }

    fn rsa_check(k: &PublicKey, salt: Option<usize>, d: &[u8], sig: &[u8]) -> Checked {
        super::rsa(k, HashAlg::Sha256, salt, d, sig)
    }

    /// An RSA key below 2048 bits is left to pure Rust (AWS-LC's parameters start at 2048).
    #[test]
    fn small_rsa_keys_are_not_covered() {
        let small = PublicKey::Rsa {
            n: vec![0xc5; 128],
            e: vec![1, 0, 1],
        };
        let d = hash::digest(HashAlg::Sha256, MSG);
        assert_eq!(
            rsa_check(&small, None, &d, &[0u8; 128]),
            Checked::NotCovered
        );
    }
}
