//! Typed sign requests and their KeyServer wire form (API.md §6).
//!
//! A request says what the caller wants signed (a DigestInfo, a hash, PSS parameters); this
//! module checks it against the key and turns it into the sign-order fields. The HTTP part is in
//! `client` module.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::hash::{self, HashAlg};
pub use crate::keys::EcdsaFormat;
use crate::keys::PublicKey;

/// What to sign, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignRequest {
    /// RSA PKCS#1 v1.5 over a ready DER DigestInfo (`CKM_RSA_PKCS`); validated as a DigestInfo.
    RsaPkcs1DigestInfo {
        /// The DER DigestInfo.
        digest_info: Vec<u8>,
    },
    /// RSA PKCS#1 v1.5 of a digest; the DigestInfo is built here.
    RsaPkcs1 {
        /// The hash that produced `digest`.
        hash: HashAlg,
        /// The digest.
        digest: Vec<u8>,
    },
    /// RSA-PSS of a digest; MGF1 uses the same hash.
    RsaPss {
        /// The hash that produced `digest` (and MGF1's hash).
        hash: HashAlg,
        /// Salt length in bytes.
        salt_len: usize,
        /// The digest.
        digest: Vec<u8>,
    },
    /// ECDSA of a digest of 32, 48 or 64 bytes.
    Ecdsa {
        /// The digest.
        digest: Vec<u8>,
        /// The signature encoding the caller wants back.
        format: EcdsaFormat,
    },
}

/// The minimum description length the real server accepts; shorter ones are padded with `-`
/// exactly as the existing Go client does.
pub const MIN_DESCRIPTION_LEN: usize = 8;

/// Pads `description` with `-` to [`MIN_DESCRIPTION_LEN`] characters.
pub fn pad_description(description: &str) -> String {
    let mut d = description.to_string();
    while d.chars().count() < MIN_DESCRIPTION_LEN {
        d.push('-');
    }
    d
}

impl SignRequest {
    /// A short name for messages and logs (`RSA PKCS#1 v1.5 sha256`, `ECDSA`).
    pub fn describe(&self) -> String {
        match self {
            SignRequest::RsaPkcs1DigestInfo { digest_info } => {
                match hash::parse_digest_info(digest_info) {
                    Ok((h, _)) => format!("RSA PKCS#1 v1.5 {h}"),
                    Err(_) => "RSA PKCS#1 v1.5".to_string(),
                }
            }
            SignRequest::RsaPkcs1 { hash, .. } => format!("RSA PKCS#1 v1.5 {hash}"),
            SignRequest::RsaPss { hash, salt_len, .. } => {
                format!("RSA-PSS {hash} salt {salt_len}")
            }
            SignRequest::Ecdsa { .. } => "ECDSA".to_string(),
        }
    }

    /// The length of the signature this request yields with `key` (no server contact), for the
    /// PKCS#11 two-call size convention. EC DER signatures are variable: this is the maximum.
    pub fn signature_len(&self, key: &PublicKey) -> usize {
        match self {
            SignRequest::Ecdsa { format, .. } => key.max_signature_len(*format),
            _ => key.max_signature_len(EcdsaFormat::P1363),
        }
    }

    /// The sign-order JSON fields that depend on the request (`inputdata`, `inputformat`,
    /// `inputpadding`, `signatureformat`, and for PSS `hashalgorithm`, `saltlength`).
    pub fn wire_fields(&self) -> Result<Map<String, Value>> {
        let v = match self {
            SignRequest::RsaPkcs1DigestInfo { digest_info } => json!({
                "inputdata": hex::encode(digest_info),
                "inputformat": "hex",
                "inputpadding": "digestinfo",
                "signatureformat": "asn1",
            }),
            SignRequest::RsaPkcs1 { hash, digest } => json!({
                "inputdata": hex::encode(hash::digest_info(*hash, digest)?),
                "inputformat": "hex",
                "inputpadding": "digestinfo",
                "signatureformat": "asn1",
            }),
            SignRequest::RsaPss {
                hash,
                salt_len,
                digest,
            } => json!({
                "inputdata": hex::encode(digest),
                "inputformat": "hex",
                "inputpadding": "pss",
                "hashalgorithm": hash.name(),
                "saltlength": salt_len,
                "signatureformat": "asn1",
            }),
            // Always ask for P1363 (the Known format) and convert to DER locally: the server's
            // `asn1` for EC is only assumed (API.md §6).
            SignRequest::Ecdsa { digest, .. } => json!({
                "inputdata": hex::encode(digest),
                "inputformat": "hex",
                "inputpadding": "none",
                "signatureformat": "p1363",
            }),
        };
        match v {
            Value::Object(m) => Ok(m),
            _ => Err(Error::internal("sign order fields are not an object")),
        }
    }
}

/// Converts an ECDSA `r || s` signature to DER for `curve`.
pub fn ecdsa_p1363_to_der(curve: crate::keys::EcCurve, sig: &[u8]) -> Result<Vec<u8>> {
    use crate::keys::EcCurve;
    let bad = |_| {
        Error::bad_response(format!(
            "the {} signature is not a valid r||s",
            curve.name()
        ))
    };
    Ok(match curve {
        EcCurve::P256 => p256::ecdsa::Signature::from_slice(sig)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        EcCurve::P384 => p384::ecdsa::Signature::from_slice(sig)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        EcCurve::P521 => p521::ecdsa::Signature::from_slice(sig)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
    })
}

/// Converts a DER ECDSA signature to `r || s` for `curve`.
pub fn ecdsa_der_to_p1363(curve: crate::keys::EcCurve, sig: &[u8]) -> Result<Vec<u8>> {
    use crate::keys::EcCurve;
    let bad = |_| Error::invalid_input(format!("not a DER {} ECDSA signature", curve.name()));
    Ok(match curve {
        EcCurve::P256 => p256::ecdsa::Signature::from_der(sig)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
        EcCurve::P384 => p384::ecdsa::Signature::from_der(sig)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
        EcCurve::P521 => p521::ecdsa::Signature::from_der(sig)
            .map_err(bad)?
            .to_bytes()
            .to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::keys::EcCurve;

    fn rsa_key() -> PublicKey {
        PublicKey::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1],
        }
    }

    #[test]
    fn description_padding() {
        assert_eq!(pad_description("abc"), "abc-----");
        assert_eq!(pad_description(""), "--------");
        assert_eq!(pad_description("long enough"), "long enough");
    }

    #[test]
    fn wire_fields_per_request() {
        let d = vec![1u8; 32];
        let f = SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest: d.clone(),
        }
        .wire_fields()
        .unwrap();
        assert_eq!(f["inputpadding"], "digestinfo");
        assert_eq!(f["signatureformat"], "asn1");
        assert!(f["inputdata"].as_str().unwrap().starts_with(&format!(
            "{}0101",
            hex::encode(HashAlg::Sha256.facts().digest_info_prefix)
        )));
        let f = SignRequest::RsaPss {
            hash: HashAlg::Sha384,
            salt_len: 48,
            digest: vec![2; 48],
        }
        .wire_fields()
        .unwrap();
        assert_eq!(f["inputpadding"], "pss");
        assert_eq!(f["hashalgorithm"], "sha384");
        assert_eq!(f["saltlength"], 48);
        let f = SignRequest::Ecdsa {
            digest: d,
            format: EcdsaFormat::Der,
        }
        .wire_fields()
        .unwrap();
        assert_eq!(f["inputpadding"], "none");
        assert_eq!(f["signatureformat"], "p1363");
        assert_eq!(f["inputdata"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn validation() {
        let ec = PublicKey::Ec {
            curve: EcCurve::P256,
            point: vec![],
        };
        let ecdsa = SignRequest::Ecdsa {
            digest: vec![0; 32],
            format: EcdsaFormat::P1363,
        };
        assert!(ecdsa.validate(&ec).is_ok());
        assert!(ecdsa.validate(&rsa_key()).is_err());
        assert!(SignRequest::Ecdsa {
            digest: vec![0; 20],
            format: EcdsaFormat::P1363
        }
        .validate(&ec)
        .is_err());
        let pss = SignRequest::RsaPss {
            hash: HashAlg::Sha256,
            salt_len: 32,
            digest: vec![0; 32],
        };
        assert!(pss.validate(&rsa_key()).is_ok());
        assert!(pss.validate(&ec).is_err());
        let big_salt = SignRequest::RsaPss {
            hash: HashAlg::Sha256,
            salt_len: 300,
            digest: vec![0; 32],
        };
        assert_eq!(
            big_salt.validate(&rsa_key()).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let not_di = SignRequest::RsaPkcs1DigestInfo {
            digest_info: vec![0; 51],
        };
        assert!(not_di.validate(&rsa_key()).is_err());
        assert_eq!(ecdsa.signature_len(&ec), 64);
        assert_eq!(pss.signature_len(&rsa_key()), 256);
    }

    #[test]
    fn ecdsa_conversions_round_trip() {
        let mut rs = vec![0u8; 64];
        rs[31] = 5;
        rs[63] = 9;
        let der = ecdsa_p1363_to_der(EcCurve::P256, &rs).unwrap();
        assert_eq!(hex::encode(&der), "3006020105020109");
        assert_eq!(ecdsa_der_to_p1363(EcCurve::P256, &der).unwrap(), rs);
        assert!(
            ecdsa_p1363_to_der(EcCurve::P256, &[0u8; 64]).is_err(),
            "r=0"
        );
        assert!(
            ecdsa_p1363_to_der(EcCurve::P384, &rs).is_err(),
            "wrong length"
        );
    }
}
