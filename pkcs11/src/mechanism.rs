//! Supported mechanisms: the list and info answered by the token, parsing and
//! validation of `CK_MECHANISM`s, and the typed [`SignRequest`] each one yields.

use cryptoki_sys::*;
use ks_common::hash::{parse_digest_info, HashAlg};
use ks_common::keys::{EcCurve, PublicKey};
use ks_common::sign::{EcdsaFormat, SignRequest};

use crate::error::Result;

/// RSA signature mechanisms.
pub const RSA_MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA512_RSA_PKCS,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
];

/// ECDSA signature mechanisms.
pub const EC_MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
];

/// Digest mechanisms (computed locally).
pub const DIGEST_MECHANISMS: &[CK_MECHANISM_TYPE] = &[CKM_SHA256, CKM_SHA384, CKM_SHA512];

/// Smallest and largest RSA modulus KeyServer keys have, in bits.
pub const RSA_KEY_BITS: (CK_ULONG, CK_ULONG) = (2048, 4096);
/// Smallest and largest EC field KeyServer keys have, in bits.
pub const EC_KEY_BITS: (CK_ULONG, CK_ULONG) = (256, 521);

/// Every mechanism of `C_GetMechanismList`.
pub fn mechanism_list() -> Vec<CK_MECHANISM_TYPE> {
    let mut all = RSA_MECHANISMS.to_vec();
    all.extend_from_slice(EC_MECHANISMS);
    all.extend_from_slice(DIGEST_MECHANISMS);
    all
}

/// `C_GetMechanismInfo` of a supported mechanism.
pub fn mechanism_info(mechanism: CK_MECHANISM_TYPE) -> Option<CK_MECHANISM_INFO> {
    let sign = CKF_HW | CKF_SIGN | CKF_VERIFY;
    if RSA_MECHANISMS.contains(&mechanism) {
        Some(CK_MECHANISM_INFO {
            ulMinKeySize: RSA_KEY_BITS.0,
            ulMaxKeySize: RSA_KEY_BITS.1,
            flags: sign,
        })
    } else if EC_MECHANISMS.contains(&mechanism) {
        Some(CK_MECHANISM_INFO {
            ulMinKeySize: EC_KEY_BITS.0,
            ulMaxKeySize: EC_KEY_BITS.1,
            flags: sign | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
        })
    } else if DIGEST_MECHANISMS.contains(&mechanism) {
        Some(CK_MECHANISM_INFO {
            ulMinKeySize: 0,
            ulMaxKeySize: 0,
            flags: CKF_DIGEST,
        })
    } else {
        None
    }
}

/// The signature mechanisms usable with a key (`CKA_ALLOWED_MECHANISMS`).
pub fn sign_mechanisms_for(key: &PublicKey) -> &'static [CK_MECHANISM_TYPE] {
    match key {
        PublicKey::Rsa { .. } => RSA_MECHANISMS,
        PublicKey::Ec { .. } => EC_MECHANISMS,
    }
}

/// The hash of a digest mechanism (`CKM_SHA256`, ...).
// CK_ULONG is 64 bits here but 32 bits on other targets: the conversions are not useless there.
#[allow(clippy::useless_conversion)]
pub fn digest_hash(mechanism: CK_MECHANISM_TYPE) -> Option<HashAlg> {
    if !DIGEST_MECHANISMS.contains(&mechanism) {
        return None;
    }
    HashAlg::find(|f| f.ckm_digest == u64::from(mechanism))
}

fn mgf_for(hash: HashAlg) -> CK_RSA_PKCS_MGF_TYPE {
    hash.facts().ckg_mgf1 as CK_RSA_PKCS_MGF_TYPE
}

/// A validated signature (or verification) mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMechanism {
    /// `CKM_RSA_PKCS`: the input is a DER DigestInfo.
    RsaPkcsRaw,
    /// `CKM_SHA*_RSA_PKCS`: hash locally, PKCS#1 v1.5.
    RsaPkcs(HashAlg),
    /// `CKM_RSA_PKCS_PSS`: the input is a hash of `hash`.
    RsaPssRaw {
        /// Hash (and MGF1 hash) of the parameters.
        hash: HashAlg,
        /// Salt length in bytes.
        salt_len: usize,
    },
    /// `CKM_SHA*_RSA_PKCS_PSS`: hash locally, PSS.
    RsaPss {
        /// Hash (and MGF1 hash).
        hash: HashAlg,
        /// Salt length in bytes.
        salt_len: usize,
    },
    /// `CKM_ECDSA`: the input is a hash; the output r‖s.
    EcdsaRaw,
    /// `CKM_ECDSA_SHA*`: hash locally; the output r‖s.
    Ecdsa(HashAlg),
}

/// Reads `CK_RSA_PKCS_PSS_PARAMS` from the mechanism parameter bytes.
fn pss_params(param: &[u8]) -> Result<CK_RSA_PKCS_PSS_PARAMS> {
    if param.len() != std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>() {
        log::warn!(
            "libpkcs11ks: RSA-PSS needs CK_RSA_PKCS_PSS_PARAMS ({} bytes), got {} bytes",
            std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
            param.len()
        );
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    // SAFETY: the slice holds exactly size_of::<CK_RSA_PKCS_PSS_PARAMS>() bytes,
    // the struct is plain old data (three CK_ULONGs), and read_unaligned has no
    // alignment requirement.
    Ok(unsafe { std::ptr::read_unaligned(param.as_ptr().cast::<CK_RSA_PKCS_PSS_PARAMS>()) })
}

// CK_ULONG is 64 bits here but 32 bits on other targets.
#[allow(clippy::useless_conversion)]
fn pss_hash(params: &CK_RSA_PKCS_PSS_PARAMS) -> Result<(HashAlg, usize)> {
    let Some(hash) = HashAlg::find(|f| f.ckm_digest == u64::from(params.hashAlg)) else {
        log::warn!(
            "libpkcs11ks: RSA-PSS hashAlg {:#x} is not supported (SHA-256, SHA-384, SHA-512 are)",
            params.hashAlg
        );
        return Err(CKR_MECHANISM_PARAM_INVALID);
    };
    if let Err(e) = ks_common::digest_policy::check_allowed(hash) {
        log::warn!("libpkcs11ks: RSA-PSS hashAlg: {}", e.message());
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    if params.mgf != mgf_for(hash) {
        log::warn!(
            "libpkcs11ks: RSA-PSS MGF {:#x} must be MGF1 with the same hash as hashAlg ({})",
            params.mgf,
            hash.name()
        );
        return Err(CKR_MECHANISM_PARAM_INVALID);
    }
    let salt_len = usize::try_from(params.sLen).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
    Ok((hash, salt_len))
}

impl SignMechanism {
    /// Parses a mechanism type and its parameter bytes (`pParameter`/`ulParameterLen`).
    pub fn parse(mechanism: CK_MECHANISM_TYPE, param: &[u8]) -> Result<SignMechanism> {
        // CK_ULONG is 64 bits here but 32 bits on other targets.
        #[allow(clippy::useless_conversion)]
        let hashed = |m: CK_MECHANISM_TYPE| {
            let m = u64::from(m);
            HashAlg::find(|f| [f.ckm_rsa_pkcs, f.ckm_rsa_pss, f.ckm_ecdsa].contains(&m))
        };
        let no_params = || {
            if param.is_empty() {
                Ok(())
            } else {
                log::warn!("libpkcs11ks: mechanism {mechanism:#x} takes no parameters");
                Err(CKR_MECHANISM_PARAM_INVALID)
            }
        };
        match mechanism {
            CKM_RSA_PKCS => no_params().map(|()| SignMechanism::RsaPkcsRaw),
            CKM_ECDSA => no_params().map(|()| SignMechanism::EcdsaRaw),
            CKM_SHA256_RSA_PKCS | CKM_SHA384_RSA_PKCS | CKM_SHA512_RSA_PKCS => {
                no_params()?;
                Ok(SignMechanism::RsaPkcs(
                    hashed(mechanism).ok_or(CKR_MECHANISM_INVALID)?,
                ))
            }
            CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384 | CKM_ECDSA_SHA512 => {
                no_params()?;
                Ok(SignMechanism::Ecdsa(
                    hashed(mechanism).ok_or(CKR_MECHANISM_INVALID)?,
                ))
            }
            CKM_RSA_PKCS_PSS => {
                let (hash, salt_len) = pss_hash(&pss_params(param)?)?;
                Ok(SignMechanism::RsaPssRaw { hash, salt_len })
            }
            CKM_SHA256_RSA_PKCS_PSS | CKM_SHA384_RSA_PKCS_PSS | CKM_SHA512_RSA_PKCS_PSS => {
                let expected = hashed(mechanism).ok_or(CKR_MECHANISM_INVALID)?;
                let (hash, salt_len) = pss_hash(&pss_params(param)?)?;
                if hash != expected {
                    log::warn!(
                        "libpkcs11ks: RSA-PSS hashAlg {} contradicts the mechanism's {}",
                        hash.name(),
                        expected.name()
                    );
                    return Err(CKR_MECHANISM_PARAM_INVALID);
                }
                Ok(SignMechanism::RsaPss { hash, salt_len })
            }
            _ => Err(CKR_MECHANISM_INVALID),
        }
    }

    /// The mechanism's PKCS#11 name, for log lines.
    pub fn name(&self) -> &'static str {
        match self {
            SignMechanism::RsaPkcsRaw => "CKM_RSA_PKCS",
            SignMechanism::RsaPkcs(_) => "CKM_SHA*_RSA_PKCS",
            SignMechanism::RsaPssRaw { .. } => "CKM_RSA_PKCS_PSS",
            SignMechanism::RsaPss { .. } => "CKM_SHA*_RSA_PKCS_PSS",
            SignMechanism::EcdsaRaw => "CKM_ECDSA",
            SignMechanism::Ecdsa(_) => "CKM_ECDSA_SHA*",
        }
    }

    /// Checks the mechanism against a key: key type, and the PSS salt length
    /// against the modulus (RFC 8017: emLen ≥ hLen + sLen + 2).
    pub fn check_key(&self, key: &PublicKey) -> Result<()> {
        match (self, key) {
            (
                SignMechanism::RsaPssRaw { hash, salt_len }
                | SignMechanism::RsaPss { hash, salt_len },
                PublicKey::Rsa { .. },
            ) => ks_common::intent::check_pss_salt(key, *hash, *salt_len).map_err(|e| {
                log::warn!("libpkcs11ks: RSA-{}", e.message());
                CKR_MECHANISM_PARAM_INVALID
            }),
            (SignMechanism::RsaPkcsRaw | SignMechanism::RsaPkcs(_), PublicKey::Rsa { .. }) => {
                Ok(())
            }
            (SignMechanism::EcdsaRaw | SignMechanism::Ecdsa(_), PublicKey::Ec { .. }) => Ok(()),
            _ => Err(CKR_KEY_TYPE_INCONSISTENT),
        }
    }

    /// The hash computed locally for hash-and-sign mechanisms (`None` for the
    /// raw ones, which are single-part only).
    pub fn local_hash(&self) -> Option<HashAlg> {
        match self {
            SignMechanism::RsaPkcs(h) | SignMechanism::Ecdsa(h) => Some(*h),
            SignMechanism::RsaPss { hash, .. } => Some(*hash),
            _ => None,
        }
    }

    /// The exact signature length with this key (known without the server).
    pub fn signature_len(&self, key: &PublicKey) -> usize {
        key.max_signature_len(EcdsaFormat::P1363)
    }

    /// The sign request for the raw input of a raw mechanism.
    pub fn request_from_input(&self, key: &PublicKey, input: &[u8]) -> Result<SignRequest> {
        match self {
            SignMechanism::RsaPkcsRaw => {
                if input.len() + 11 > key.max_signature_len(EcdsaFormat::P1363) {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                let checked = parse_digest_info(input)
                    .and_then(|(alg, _)| ks_common::digest_policy::check_allowed(alg));
                if let Err(e) = checked {
                    log::warn!("libpkcs11ks: CKM_RSA_PKCS input must be a DER DigestInfo of SHA-256/384/512: {}", e.message());
                    return Err(CKR_DATA_INVALID);
                }
                Ok(SignRequest::RsaPkcs1DigestInfo {
                    digest_info: input.to_vec(),
                })
            }
            SignMechanism::RsaPssRaw { hash, salt_len } => {
                if let Err(e) = ks_common::hash::check_digest_len(*hash, input) {
                    log::warn!("libpkcs11ks: CKM_RSA_PKCS_PSS input: {}", e.message());
                    return Err(CKR_DATA_LEN_RANGE);
                }
                Ok(SignRequest::RsaPss {
                    hash: *hash,
                    salt_len: *salt_len,
                    digest: input.to_vec(),
                })
            }
            SignMechanism::EcdsaRaw => match key {
                PublicKey::Ec { curve, .. } => Ok(SignRequest::Ecdsa {
                    digest: ecdsa_input(*curve, input)?,
                    format: EcdsaFormat::P1363,
                }),
                PublicKey::Rsa { .. } => Err(CKR_KEY_TYPE_INCONSISTENT),
            },
            SignMechanism::RsaPkcs(_) | SignMechanism::RsaPss { .. } | SignMechanism::Ecdsa(_) => {
                Err(CKR_GENERAL_ERROR)
            }
        }
    }

    /// The sign request for a locally computed hash of a hash-and-sign mechanism.
    pub fn request_from_digest(&self, digest: Vec<u8>) -> Result<SignRequest> {
        match self {
            SignMechanism::RsaPkcs(hash) => Ok(SignRequest::RsaPkcs1 {
                hash: *hash,
                digest,
            }),
            SignMechanism::RsaPss { hash, salt_len } => Ok(SignRequest::RsaPss {
                hash: *hash,
                salt_len: *salt_len,
                digest,
            }),
            SignMechanism::Ecdsa(_) => Ok(SignRequest::Ecdsa {
                digest,
                format: EcdsaFormat::P1363,
            }),
            _ => Err(CKR_GENERAL_ERROR),
        }
    }
}

/// Checks a `CKM_ECDSA` input against the digest policy and brings it to what KeyServer
/// signs. The input must be a digest: 32, 48 or 64 bytes (20, SHA-1, only under the
/// `KSC_ALLOW_SHA1` opt-in); any other length is refused with `CKR_DATA_LEN_RANGE` (never
/// padded: a short input is not a digest the policy allows). A digest longer than the curve
/// order is truncated to its leftmost bytes, as ECDSA itself does, so the integer is kept.
pub fn ecdsa_input(curve: EcCurve, input: &[u8]) -> Result<Vec<u8>> {
    let checked = match HashAlg::from_output_len(input.len()) {
        Some(alg) => {
            ks_common::digest_policy::check_allowed(alg).map_err(|e| e.message().to_string())
        }
        None => Err(format!(
            "{} bytes is not the length of a SHA-256/384/512 digest (32, 48 or 64 bytes)",
            input.len()
        )),
    };
    if let Err(reason) = checked {
        log::warn!("libpkcs11ks: CKM_ECDSA input refused: {reason}");
        return Err(CKR_DATA_LEN_RANGE);
    }
    let order_bytes = (curve.bits() as usize).div_ceil(8);
    let mut data = input.to_vec();
    if curve.bits() % 8 == 0 && data.len() > order_bytes {
        data.truncate(order_bytes);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // CK_ULONG is 64 bits here but 32 bits on other targets.
    #[allow(clippy::unnecessary_cast)]
    fn hash_table_matches_cryptoki() {
        let expected = [
            (
                HashAlg::Sha256,
                CKM_SHA256,
                CKM_SHA256_RSA_PKCS,
                CKM_SHA256_RSA_PKCS_PSS,
                CKM_ECDSA_SHA256,
                CKG_MGF1_SHA256,
            ),
            (
                HashAlg::Sha384,
                CKM_SHA384,
                CKM_SHA384_RSA_PKCS,
                CKM_SHA384_RSA_PKCS_PSS,
                CKM_ECDSA_SHA384,
                CKG_MGF1_SHA384,
            ),
            (
                HashAlg::Sha512,
                CKM_SHA512,
                CKM_SHA512_RSA_PKCS,
                CKM_SHA512_RSA_PKCS_PSS,
                CKM_ECDSA_SHA512,
                CKG_MGF1_SHA512,
            ),
        ];
        for (h, digest, pkcs, pss, ecdsa, mgf) in expected {
            let f = h.facts();
            assert_eq!(
                (
                    f.ckm_digest,
                    f.ckm_rsa_pkcs,
                    f.ckm_rsa_pss,
                    f.ckm_ecdsa,
                    f.ckg_mgf1
                ),
                (
                    digest as u64,
                    pkcs as u64,
                    pss as u64,
                    ecdsa as u64,
                    mgf as u64
                ),
                "{h}"
            );
        }
    }

    fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_RSA_PKCS_MGF_TYPE, s_len: CK_ULONG) -> Vec<u8> {
        [hash, mgf, s_len]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    fn rsa(bits: usize) -> PublicKey {
        PublicKey::Rsa {
            n: vec![0xff; bits / 8],
            e: vec![1, 0, 1],
        }
    }

    #[test]
    fn pss_parameters_are_validated() {
        let ok = pss(CKM_SHA384, CKG_MGF1_SHA384, 48);
        assert_eq!(
            SignMechanism::parse(CKM_SHA384_RSA_PKCS_PSS, &ok),
            Ok(SignMechanism::RsaPss {
                hash: HashAlg::Sha384,
                salt_len: 48
            })
        );
        let cases = [
            (
                CKM_SHA384_RSA_PKCS_PSS,
                pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
            ),
            (
                CKM_SHA384_RSA_PKCS_PSS,
                pss(CKM_SHA384, CKG_MGF1_SHA256, 32),
            ),
            (CKM_RSA_PKCS_PSS, pss(CKM_SHA_1, CKG_MGF1_SHA1, 20)),
            (CKM_RSA_PKCS_PSS, vec![0; 5]),
            (CKM_RSA_PKCS_PSS, vec![]),
            (CKM_ECDSA, vec![1]),
        ];
        for (mech, param) in cases {
            assert_eq!(
                SignMechanism::parse(mech, &param),
                Err(CKR_MECHANISM_PARAM_INVALID),
                "{mech:#x}"
            );
        }
        assert_eq!(
            SignMechanism::parse(CKM_MD5_RSA_PKCS, &[]),
            Err(CKR_MECHANISM_INVALID)
        );
    }

    #[test]
    fn salt_length_must_fit_the_modulus() {
        let m = SignMechanism::RsaPss {
            hash: HashAlg::Sha512,
            salt_len: 190,
        };
        assert_eq!(m.check_key(&rsa(2048)), Ok(()));
        let m = SignMechanism::RsaPss {
            hash: HashAlg::Sha512,
            salt_len: 191,
        };
        assert_eq!(m.check_key(&rsa(2048)), Err(CKR_MECHANISM_PARAM_INVALID));
        assert_eq!(
            SignMechanism::EcdsaRaw.check_key(&rsa(2048)),
            Err(CKR_KEY_TYPE_INCONSISTENT)
        );
    }

    #[test]
    fn ecdsa_inputs_keep_their_integer() {
        // Not a SHA-256/384/512 digest: refused, never zero-padded (SHA-1 needs the opt-in,
        // which unit tests never give).
        for len in [1, 16, 20, 31, 33, 47, 63, 65] {
            assert_eq!(
                ecdsa_input(EcCurve::P256, &vec![1; len]),
                Err(CKR_DATA_LEN_RANGE),
                "{len}"
            );
        }
        assert_eq!(ecdsa_input(EcCurve::P256, &[1; 32]), Ok(vec![1; 32]));
        assert_eq!(ecdsa_input(EcCurve::P256, &[1; 64]), Ok(vec![1; 32]));
        assert_eq!(ecdsa_input(EcCurve::P384, &[1; 32]), Ok(vec![1; 32]));
        assert_eq!(ecdsa_input(EcCurve::P384, &[1; 64]), Ok(vec![1; 48]));
        assert_eq!(ecdsa_input(EcCurve::P521, &[1; 64]), Ok(vec![1; 64]));
        assert_eq!(
            ecdsa_input(EcCurve::P521, &[1; 66]),
            Err(CKR_DATA_LEN_RANGE)
        );
        assert_eq!(ecdsa_input(EcCurve::P256, &[]), Err(CKR_DATA_LEN_RANGE));
    }

    #[test]
    fn raw_rsa_input_must_be_a_digest_info() {
        let key = rsa(2048);
        // A SHA-1 DigestInfo is refused by the default policy.
        let sha1 = [HashAlg::Sha1.facts().digest_info_prefix, &[1; 20]].concat();
        assert_eq!(
            SignMechanism::RsaPkcsRaw.request_from_input(&key, &sha1),
            Err(CKR_DATA_INVALID)
        );
        let sha256 = [HashAlg::Sha256.facts().digest_info_prefix, &[1; 32]].concat();
        assert!(SignMechanism::RsaPkcsRaw
            .request_from_input(&key, &sha256)
            .is_ok());
        assert_eq!(digest_hash(CKM_SHA_1), None);
        assert_eq!(
            SignMechanism::RsaPkcsRaw.request_from_input(&key, b"just some bytes"),
            Err(CKR_DATA_INVALID)
        );
        assert_eq!(
            SignMechanism::RsaPkcsRaw.request_from_input(&key, &[0; 250]),
            Err(CKR_DATA_LEN_RANGE)
        );
    }
}
