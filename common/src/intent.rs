//! The one signing decision: what an adapter was asked for (a key, a hash or a prehashed digest,
//! the padding and PSS parameters, the output format) becomes checked [`SignRequest`]s here, and
//! the server's answer is decoded here.
//!
//! Every rule about which combination is allowed (digest lengths, PSS salt against the modulus,
//! MGF1's hash, DigestInfo inputs) and its message lives in this module or in
//! [`SignRequest::validate`]; the PKCS#11 mechanism parser and the provider's parameter handling
//! only translate their callers' words into a [`SignIntent`] (or a [`SignRequest`]) and map the
//! resulting [`Error`] to their own codes.

use crate::digest_policy;
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{self, check_digest_len, HashAlg};
use crate::keys::PublicKey;
use crate::sign::{ecdsa_der_to_p1363, ecdsa_p1363_to_der, EcdsaFormat, SignRequest};
use crate::verify::verify;

/// How the PSS salt length is chosen (OpenSSL's `saltlen` words; PKCS#11 gives a number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Salt {
    /// As long as the digest.
    Digest,
    /// As long as the key allows.
    Max,
    /// Signing: the maximum; verifying: whatever the signature used.
    Auto,
    /// The digest length, capped by what the key allows (OpenSSL 3.1's default).
    AutoDigestMax,
    /// Exactly this many bytes.
    Len(usize),
}

/// The RSA padding asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// PKCS#1 v1.5.
    Pkcs1,
    /// RSASSA-PSS; MGF1's hash must be the signing hash when given.
    Pss {
        /// The salt length rule.
        salt: Salt,
        /// MGF1's hash, if the caller named one.
        mgf1: Option<HashAlg>,
    },
}

/// What a caller wants signed, before any check.
#[derive(Clone, Copy, Debug)]
pub struct SignIntent<'a> {
    /// The hash the caller named, if any (otherwise inferred from the input length).
    pub hash: Option<HashAlg>,
    /// A prehashed digest, or for PKCS#1 v1.5 a DER DigestInfo.
    pub input: &'a [u8],
    /// The padding for RSA keys (ignored for EC keys).
    pub padding: Padding,
    /// The ECDSA signature encoding wanted back.
    pub format: EcdsaFormat,
}

/// The longest PSS salt a key allows with `hash` (RFC 8017 9.1.1: emLen >= hLen + sLen + 2),
/// `None` when even an empty salt does not fit.
pub fn pss_max_salt(key_bits: u32, hash: HashAlg) -> Option<usize> {
    let em_len = (key_bits as usize).saturating_sub(1).div_ceil(8);
    em_len.checked_sub(hash.output_len() + 2)
}

/// Checks an explicit PSS salt length against the key.
pub fn check_pss_salt(key: &PublicKey, hash: HashAlg, salt_len: usize) -> Result<()> {
    match pss_max_salt(key.bits(), hash) {
        Some(max) if salt_len <= max => Ok(()),
        _ => Err(Error::invalid_input(format!(
            "PSS salt length {salt_len} is too long for a {}-bit key with {hash}",
            key.bits()
        ))),
    }
}

/// The salt lengths a rule stands for with this key and hash: one when signing, two when
/// verifying with [`Salt::Auto`] (the digest length and the maximum are tried).
pub fn pss_salts(salt: Salt, hash: HashAlg, key_bits: u32, verifying: bool) -> Result<Vec<usize>> {
    let max = pss_max_salt(key_bits, hash)
        .ok_or_else(|| Error::invalid_input("RSA key too small for PSS with this digest"))?;
    Ok(match salt {
        Salt::Digest | Salt::AutoDigestMax => vec![hash.output_len().min(max)],
        Salt::Max => vec![max],
        Salt::Auto if verifying => vec![hash.output_len(), max],
        Salt::Auto => vec![max],
        Salt::Len(n) if n <= max => vec![n],
        Salt::Len(n) => {
            return Err(Error::invalid_input(format!(
                "PSS salt length {n} is too long for this key (at most {max})"
            )))
        }
    })
}

impl SignRequest {
    /// Checks the request fits `key` (type, digest length, PSS salt fits the modulus).
    pub fn validate(&self, key: &PublicKey) -> Result<()> {
        match (self, key) {
            (SignRequest::RsaPkcs1DigestInfo { digest_info }, PublicKey::Rsa { n, .. }) => {
                let (alg, _) = hash::parse_digest_info(digest_info)?;
                digest_policy::check_allowed(alg)?;
                // EMSA-PKCS1-v1_5 needs at least 11 bytes of padding.
                if digest_info.len() + 11 > n.len() {
                    return Err(Error::invalid_input(
                        "DigestInfo is too long for the RSA key",
                    ));
                }
                Ok(())
            }
            (SignRequest::RsaPkcs1 { hash, digest }, PublicKey::Rsa { .. }) => {
                digest_policy::check_allowed(*hash)?;
                check_digest_len(*hash, digest)
            }
            (
                SignRequest::RsaPss {
                    hash,
                    salt_len,
                    digest,
                },
                PublicKey::Rsa { .. },
            ) => {
                digest_policy::check_allowed(*hash)?;
                check_digest_len(*hash, digest)?;
                check_pss_salt(key, *hash, *salt_len)
            }
            (SignRequest::Ecdsa { digest, .. }, PublicKey::Ec { .. }) => {
                match HashAlg::from_output_len(digest.len()) {
                    Some(alg) => digest_policy::check_allowed(alg),
                    None => Err(Error::invalid_input(format!(
                        "ECDSA needs a digest of 32, 48 or 64 bytes, got {}",
                        digest.len()
                    ))),
                }
            }
            (SignRequest::Ecdsa { .. }, PublicKey::Rsa { .. }) => Err(Error::new(
                ErrorKind::InvalidInput,
                "ECDSA was requested but this is an RSA key",
            )),
            (_, PublicKey::Ec { .. }) => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} was requested but this is an EC key", self.describe()),
            )),
        }
    }
}

impl SignIntent<'_> {
    /// The sign requests for this intent with `key`: one, or more only when verifying with an
    /// unknown PSS salt length ([`Salt::Auto`]).
    pub fn requests(&self, key: &PublicKey, verifying: bool) -> Result<Vec<SignRequest>> {
        let input = self.input;
        let is_pkcs1 = matches!(key, PublicKey::Rsa { .. }) && self.padding == Padding::Pkcs1;
        let digest_info = || {
            (is_pkcs1 && hash::parse_digest_info(input).is_ok()).then(|| {
                vec![SignRequest::RsaPkcs1DigestInfo {
                    digest_info: input.to_vec(),
                }]
            })
        };
        let hash = match self.hash {
            Some(h) if input.len() == h.output_len() => h,
            Some(h) => {
                return digest_info().ok_or_else(|| {
                    Error::invalid_input(format!(
                        "the input has {} bytes but a {} digest has {}",
                        input.len(),
                        h.name(),
                        h.output_len()
                    ))
                })
            }
            None => match HashAlg::from_output_len(input.len()) {
                Some(h) => h,
                None => {
                    return digest_info().ok_or_else(|| {
                        Error::invalid_input(format!(
                            "a {}-byte input is not a SHA-256/384/512 digest; KeyServer signs digests only",
                            input.len()
                        ))
                    })
                }
            },
        };
        if !verifying {
            // The digest policy, before anything is sent (validation checks it again).
            digest_policy::check_allowed(hash)?;
        }
        let digest = input.to_vec();
        match (key, self.padding) {
            (PublicKey::Ec { .. }, _) => Ok(vec![SignRequest::Ecdsa {
                digest,
                format: self.format,
            }]),
            (PublicKey::Rsa { .. }, Padding::Pkcs1) => {
                Ok(vec![SignRequest::RsaPkcs1 { hash, digest }])
            }
            (PublicKey::Rsa { .. }, Padding::Pss { salt, mgf1 }) => {
                if let Some(m) = mgf1 {
                    if m != hash {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            format!(
                                "KeyServer PSS uses MGF1 with the signing digest ({}); MGF1 with {} is not supported",
                                hash.name(),
                                m.name()
                            ),
                        ));
                    }
                }
                Ok(pss_salts(salt, hash, key.bits(), verifying)?
                    .into_iter()
                    .map(|salt_len| SignRequest::RsaPss {
                        hash,
                        salt_len,
                        digest: digest.clone(),
                    })
                    .collect())
            }
        }
    }
}

/// Decodes and checks a signature the server returned for `request` with `key`: an RSA
/// signature short of leading zero bytes is restored to the modulus length; an EC signature
/// (asked for as `r || s`, accepted as DER too) is verified and converted to the requested
/// format. Nothing is returned that does not verify.
pub fn decode_signature(
    key: &PublicKey,
    request: &SignRequest,
    mut sig: Vec<u8>,
) -> Result<Vec<u8>> {
    match (key, request) {
        (PublicKey::Rsa { n, .. }, _) => {
            // A server may drop leading zero bytes of the integer; restore the k-byte form.
            if sig.len() < n.len() && !sig.is_empty() {
                let mut padded = vec![0u8; n.len() - sig.len()];
                padded.extend_from_slice(&sig);
                sig = padded;
            }
            verify(key, request, &sig).map(|_| sig)
        }
        (PublicKey::Ec { curve, .. }, SignRequest::Ecdsa { digest, format }) => {
            // We asked for r||s; accept DER too rather than fail on a server quirk.
            if sig.len() != 2 * curve.field_len() {
                if let Ok(rs) = ecdsa_der_to_p1363(*curve, &sig) {
                    sig = rs;
                }
            }
            let as_p1363 = SignRequest::Ecdsa {
                digest: digest.clone(),
                format: EcdsaFormat::P1363,
            };
            verify(key, &as_p1363, &sig).and_then(|_| match format {
                EcdsaFormat::P1363 => Ok(sig),
                EcdsaFormat::Der => ecdsa_p1363_to_der(*curve, &sig),
            })
        }
        (PublicKey::Ec { .. }, _) => Err(Error::internal("validated request does not fit key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa2048() -> PublicKey {
        PublicKey::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1],
        }
    }

    #[test]
    fn pss_salt_rules() {
        let max = pss_max_salt(2048, HashAlg::Sha256).unwrap();
        assert_eq!(max, 256 - 32 - 2);
        assert_eq!(
            pss_salts(Salt::Digest, HashAlg::Sha256, 2048, false).unwrap(),
            vec![32]
        );
        assert_eq!(
            pss_salts(Salt::Auto, HashAlg::Sha256, 2048, true).unwrap(),
            vec![32, max]
        );
        assert!(pss_salts(Salt::Len(max + 1), HashAlg::Sha256, 2048, false).is_err());
        assert!(check_pss_salt(&rsa2048(), HashAlg::Sha256, max).is_ok());
        assert!(check_pss_salt(&rsa2048(), HashAlg::Sha256, max + 1).is_err());
        assert_eq!(pss_max_salt(512, HashAlg::Sha512), None);
    }

    #[test]
    fn sha1_is_refused_by_default() {
        // Unit tests never call `signer::connect`, so the process has not opted in.
        let ec = PublicKey::Ec {
            curve: crate::keys::EcCurve::P256,
            point: vec![4; 65],
        };
        let sha1 = SignRequest::Ecdsa {
            digest: vec![1; 20],
            format: EcdsaFormat::P1363,
        };
        let err = sha1.validate(&ec).unwrap_err();
        assert!(err.message().contains("KSC_ALLOW_SHA1"), "{err}");
        let pkcs1 = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha1,
            digest: vec![1; 20],
        };
        assert!(pkcs1.validate(&rsa2048()).is_err());
        let di = SignRequest::RsaPkcs1DigestInfo {
            digest_info: [HashAlg::Sha1.facts().digest_info_prefix, &[1; 20]].concat(),
        };
        assert!(di
            .validate(&rsa2048())
            .unwrap_err()
            .message()
            .contains("SHA-1"));
        // A 20-byte input without a named hash is read as SHA-1: refused for signing,
        // still checked for verification.
        let intent = SignIntent {
            hash: None,
            input: &[7; 20],
            padding: Padding::Pkcs1,
            format: EcdsaFormat::Der,
        };
        let err = intent.requests(&rsa2048(), false).unwrap_err();
        assert!(err.message().contains("KSC_ALLOW_SHA1"), "{err}");
        assert!(intent.requests(&rsa2048(), true).is_ok());
        for h in HashAlg::ALL {
            let ok = SignRequest::RsaPkcs1 {
                hash: h,
                digest: vec![1; h.output_len()],
            };
            assert!(ok.validate(&rsa2048()).is_ok(), "{h}");
        }
    }

    #[test]
    fn intents_become_requests() {
        let intent = SignIntent {
            hash: None,
            input: &[7; 48],
            padding: Padding::Pkcs1,
            format: EcdsaFormat::Der,
        };
        assert_eq!(
            intent.requests(&rsa2048(), false).unwrap(),
            vec![SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha384,
                digest: vec![7; 48]
            }]
        );
        let mgf = SignIntent {
            hash: Some(HashAlg::Sha256),
            input: &[1; 32],
            padding: Padding::Pss {
                salt: Salt::Digest,
                mgf1: Some(HashAlg::Sha384),
            },
            format: EcdsaFormat::Der,
        };
        assert_eq!(
            mgf.requests(&rsa2048(), false).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}
