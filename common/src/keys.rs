//! Typed public keys and key-catalog entries, parsed from the PEM certificates KeyServer lists.
//!
//! The certificate is the only source of the algorithm, size and curve (API.md §2), so this is
//! where a KeyServer key becomes something the adapters can describe (PKCS#11 attributes,
//! OpenSSL key parameters). Parsing uses x509-cert/der/spki and the curve crates, not
//! hand-written DER.

use std::time::SystemTime;

use der::asn1::ObjectIdentifier;
use der::{Decode, DecodePem, Encode};
use x509_cert::Certificate;

use crate::error::{Error, ErrorKind, Result};

/// How an ECDSA signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcdsaFormat {
    /// `r || s`, each left-padded to the field size (PKCS#11 `CKM_ECDSA`).
    P1363,
    /// DER `ECDSA-Sig-Value` (OpenSSL, X.509, CMS).
    Der,
}

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// The NIST curves KeyServer EC keys use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (prime256v1, secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl EcCurve {
    /// Key size in bits (256, 384, 521).
    pub fn bits(self) -> u32 {
        match self {
            EcCurve::P256 => 256,
            EcCurve::P384 => 384,
            EcCurve::P521 => 521,
        }
    }

    /// Bytes of one field element / one of r and s in P1363 form (32, 48, 66).
    pub fn field_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }

    /// The curve's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            EcCurve::P256 => OID_P256,
            EcCurve::P384 => OID_P384,
            EcCurve::P521 => OID_P521,
        }
    }

    /// The DER `OBJECT IDENTIFIER` of the named curve (what `CKA_EC_PARAMS` holds).
    pub fn oid_der(self) -> Vec<u8> {
        // Encoding a constant OID cannot fail; fall back to empty rather than panic.
        self.oid().to_der().unwrap_or_default()
    }

    /// The NIST name: `"P-256"`, `"P-384"`, `"P-521"`.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }

    /// OpenSSL's group name: `"prime256v1"`, `"secp384r1"`, `"secp521r1"`.
    pub fn openssl_group(self) -> &'static str {
        match self {
            EcCurve::P256 => "prime256v1",
            EcCurve::P384 => "secp384r1",
            EcCurve::P521 => "secp521r1",
        }
    }

    /// The curve with this object identifier.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<EcCurve> {
        [EcCurve::P256, EcCurve::P384, EcCurve::P521]
            .into_iter()
            .find(|c| c.oid() == *oid)
    }

    /// The curve named `P-256`/`prime256v1`/`secp256r1` etc. (case-insensitive).
    pub fn from_name(name: &str) -> Option<EcCurve> {
        match name.to_ascii_lowercase().as_str() {
            "p-256" | "p256" | "prime256v1" | "secp256r1" => Some(EcCurve::P256),
            "p-384" | "p384" | "secp384r1" => Some(EcCurve::P384),
            "p-521" | "p521" | "secp521r1" => Some(EcCurve::P521),
            _ => None,
        }
    }
}

/// A KeyServer public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RSA: modulus and public exponent, big-endian, unsigned, no leading zero bytes.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC on a named curve, the point uncompressed SEC1: `0x04 || X || Y`.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// Uncompressed point.
        point: Vec<u8>,
    },
}

/// Length in bytes of a DER TLV whose content has `content_len` bytes.
fn der_tlv_len(content_len: usize) -> usize {
    let len_of_len = if content_len < 0x80 {
        1
    } else if content_len < 0x100 {
        2
    } else {
        3
    };
    1 + len_of_len + content_len
}

impl PublicKey {
    /// Key size in bits: the modulus bits for RSA, the curve size for EC.
    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Rsa { n, .. } => match n.first() {
                Some(&first) => (n.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
                None => 0,
            },
            PublicKey::Ec { curve, .. } => curve.bits(),
        }
    }

    /// Largest signature this key produces: the modulus length for RSA; for EC `2 * field_len`
    /// (P1363) or the largest DER `ECDSA-Sig-Value` (DER).
    pub fn max_signature_len(&self, format: EcdsaFormat) -> usize {
        match self {
            PublicKey::Rsa { n, .. } => n.len(),
            PublicKey::Ec { curve, .. } => match format {
                EcdsaFormat::P1363 => 2 * curve.field_len(),
                // Each INTEGER may need a leading zero byte to stay positive.
                EcdsaFormat::Der => der_tlv_len(2 * der_tlv_len(curve.field_len() + 1)),
            },
        }
    }

    /// `"RSA"` or `"EC"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::Ec { .. } => "EC",
        }
    }

    /// A short description like `RSA-2048` or `EC-P256`, as the dev server's `algorithm` field.
    pub fn algorithm_name(&self) -> String {
        match self {
            PublicKey::Rsa { .. } => format!("RSA-{}", self.bits()),
            PublicKey::Ec { curve, .. } => format!("EC-{}", curve.name().replace('-', "")),
        }
    }

    /// Builds the key from a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<PublicKey> {
        let spki = spki::SubjectPublicKeyInfoOwned::from_der(spki_der).map_err(|e| {
            Error::new(
                ErrorKind::BadResponse,
                format!("public key is not a valid SubjectPublicKeyInfo: {e}"),
            )
        })?;
        Self::from_spki(&spki)
    }

    fn from_spki(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<PublicKey> {
        let key_bytes = spki.subject_public_key.as_bytes().ok_or_else(|| {
            Error::bad_response("public key bit string has unused bits".to_string())
        })?;
        if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            let rsa = rsa::pkcs1::RsaPublicKey::from_der(key_bytes)
                .map_err(|e| Error::bad_response(format!("RSA public key is malformed: {e}")))?;
            let n = strip_zeros(rsa.modulus.as_bytes());
            let e = strip_zeros(rsa.public_exponent.as_bytes());
            if n.is_empty() || e.is_empty() {
                return Err(Error::bad_response(
                    "RSA public key has a zero modulus or exponent",
                ));
            }
            Ok(PublicKey::Rsa { n, e })
        } else if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
            let params = spki.algorithm.parameters.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    "EC key without named-curve parameters",
                )
            })?;
            let curve_oid: ObjectIdentifier = params.decode_as().map_err(|_| {
                Error::new(
                    ErrorKind::Unsupported,
                    "EC key with explicit curve parameters (only named curves are supported)",
                )
            })?;
            let curve = EcCurve::from_oid(&curve_oid).ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    format!("EC curve {curve_oid} is not supported (P-256, P-384, P-521 are)"),
                )
            })?;
            let point = normalize_point(curve, key_bytes)?;
            Ok(PublicKey::Ec { curve, point })
        } else {
            Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "public key algorithm {} is not supported (RSA and EC are)",
                    spki.algorithm.oid
                ),
            ))
        }
    }
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[start..].to_vec()
}

/// Checks the point is on the curve and returns it uncompressed.
fn normalize_point(curve: EcCurve, sec1: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| {
        Error::bad_response(format!(
            "EC public key is not a valid {} point",
            curve.name()
        ))
    };
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    Ok(match curve {
        EcCurve::P256 => p256::PublicKey::from_sec1_bytes(sec1)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        EcCurve::P384 => p384::PublicKey::from_sec1_bytes(sec1)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        EcCurve::P521 => p521::PublicKey::from_sec1_bytes(sec1)
            .map_err(bad)?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
    })
}

/// One key of the catalog (`GET /api/keys`), with everything the adapters need pre-parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The KeyServer key id (`key1`); PKCS#11 `CKA_LABEL`, provider URI `ks:key1`.
    pub keyid: String,
    /// Free text from the server.
    pub keyinfo: String,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// The certificate's `SubjectPublicKeyInfo`, DER.
    pub spki_der: Vec<u8>,
    /// The typed public key.
    pub public_key: PublicKey,
    /// Subject `Name`, full DER.
    pub subject_der: Vec<u8>,
    /// Issuer `Name`, full DER.
    pub issuer_der: Vec<u8>,
    /// Serial number as a DER INTEGER (tag, length, value), as `CKA_SERIAL_NUMBER` wants.
    pub serial_der: Vec<u8>,
    /// Certificate validity start.
    pub not_before: SystemTime,
    /// Certificate validity end.
    pub not_after: SystemTime,
    /// Extension: approvals the key requires, when the server says.
    pub approvers: Option<u32>,
    /// Extension: the server's algorithm label (`RSA-2048`, `EC-P256`), when present.
    pub algorithm: Option<String>,
}

impl KeyEntry {
    /// Parses a key from its id, info text and PEM certificate (the fields of `GET /api/keys`).
    pub fn from_pem(keyid: &str, keyinfo: &str, certificate_pem: &str) -> Result<KeyEntry> {
        let cert = Certificate::from_pem(certificate_pem.trim().as_bytes()).map_err(|e| {
            Error::bad_response(format!("the certificate is not valid PEM X.509: {e}"))
                .with_key(keyid)
        })?;
        Self::from_certificate(keyid, keyinfo, &cert)
    }

    /// Parses a key from its DER certificate.
    pub fn from_der(keyid: &str, keyinfo: &str, certificate_der: &[u8]) -> Result<KeyEntry> {
        let cert = Certificate::from_der(certificate_der).map_err(|e| {
            Error::bad_response(format!("the certificate is not valid DER X.509: {e}"))
                .with_key(keyid)
        })?;
        Self::from_certificate(keyid, keyinfo, &cert)
    }

    fn from_certificate(keyid: &str, keyinfo: &str, cert: &Certificate) -> Result<KeyEntry> {
        let enc = |what: &str, r: der::Result<Vec<u8>>| {
            r.map_err(|e| {
                Error::bad_response(format!("certificate {what} cannot be encoded: {e}"))
                    .with_key(keyid)
            })
        };
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let public_key = PublicKey::from_spki(spki).map_err(|e| e.with_key(keyid))?;
        Ok(KeyEntry {
            keyid: keyid.to_string(),
            keyinfo: keyinfo.to_string(),
            certificate_der: enc("", cert.to_der())?,
            spki_der: enc("public key", spki.to_der())?,
            public_key,
            subject_der: enc("subject", tbs.subject.to_der())?,
            issuer_der: enc("issuer", tbs.issuer.to_der())?,
            serial_der: enc("serial number", tbs.serial_number.to_der())?,
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            approvers: None,
            algorithm: None,
        })
    }

    /// The certificate as PEM text.
    pub fn certificate_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.certificate_der)
    }

    /// The public key as PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl x509 -pubkey` writes it.
    pub fn public_key_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }

    /// The subject as a readable string (`CN=key1,O=...`).
    pub fn subject_string(&self) -> String {
        x509_cert::name::Name::from_der(&self.subject_der)
            .map(|n| n.to_string())
            .unwrap_or_default()
    }
}

/// PEM with 64-column lines, as OpenSSL writes it.
fn pem_encode(label: &str, der_bytes: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der_bytes);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        let k = PublicKey::Ec {
            curve: EcCurve::P256,
            point: vec![],
        };
        assert_eq!(k.max_signature_len(EcdsaFormat::Der), 72);
        assert_eq!(k.max_signature_len(EcdsaFormat::P1363), 64);
        let k = PublicKey::Ec {
            curve: EcCurve::P384,
            point: vec![],
        };
        assert_eq!(k.max_signature_len(EcdsaFormat::Der), 104);
        let k = PublicKey::Ec {
            curve: EcCurve::P521,
            point: vec![],
        };
        assert_eq!(k.max_signature_len(EcdsaFormat::Der), 141);
        assert_eq!(k.max_signature_len(EcdsaFormat::P1363), 132);
    }

    #[test]
    fn curve_oids() {
        assert_eq!(hex::encode(EcCurve::P256.oid_der()), "06082a8648ce3d030107");
        assert_eq!(hex::encode(EcCurve::P384.oid_der()), "06052b81040022");
        assert_eq!(hex::encode(EcCurve::P521.oid_der()), "06052b81040023");
        assert_eq!(EcCurve::from_name("secp384r1"), Some(EcCurve::P384));
    }

    #[test]
    fn rsa_bits() {
        let k = PublicKey::Rsa {
            n: vec![0x80; 256],
            e: vec![1, 0, 1],
        };
        assert_eq!(k.bits(), 2048);
        let k = PublicKey::Rsa {
            n: vec![0x01, 0, 0],
            e: vec![3],
        };
        assert_eq!(k.bits(), 17);
    }

    #[test]
    fn garbage_certificate_is_bad_response_naming_key() {
        let e = KeyEntry::from_pem(
            "key9",
            "",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadResponse);
        assert_eq!(e.keyid(), Some("key9"));
        assert!(KeyEntry::from_pem("key9", "", "not pem").is_err());
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;

    #[test]
    fn parses_rsa_certificate() {
        let k =
            KeyEntry::from_pem("key1", "info", include_str!("../tests/data/rsa2048.pem")).unwrap();
        assert_eq!(k.public_key.bits(), 2048);
        assert_eq!(k.public_key.algorithm_name(), "RSA-2048");
        match &k.public_key {
            PublicKey::Rsa { n, e } => {
                assert_eq!(n.len(), 256);
                assert_eq!(e, &vec![1, 0, 1]);
            }
            _ => panic!("not RSA"),
        }
        assert_eq!(k.subject_string(), "CN=key1");
        assert_eq!(k.subject_der, k.issuer_der, "self-signed");
        assert_eq!(k.serial_der[0], 0x02, "serial is a DER INTEGER");
        assert!(k.not_after > k.not_before);
        assert_eq!(PublicKey::from_spki_der(&k.spki_der).unwrap(), k.public_key);
        let again = KeyEntry::from_der("key1", "info", &k.certificate_der).unwrap();
        assert_eq!(again, k);
        let pem = k.certificate_pem();
        assert_eq!(KeyEntry::from_pem("key1", "info", &pem).unwrap(), k);
        assert!(k
            .public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    }

    #[test]
    fn parses_ec_certificates() {
        for (pem, curve) in [
            (include_str!("../tests/data/p256.pem"), EcCurve::P256),
            (include_str!("../tests/data/p384.pem"), EcCurve::P384),
            (include_str!("../tests/data/p521.pem"), EcCurve::P521),
        ] {
            let k = KeyEntry::from_pem("k", "", pem).unwrap();
            match &k.public_key {
                PublicKey::Ec { curve: c, point } => {
                    assert_eq!(*c, curve);
                    assert_eq!(point.len(), 1 + 2 * curve.field_len());
                    assert_eq!(point[0], 4);
                }
                _ => panic!("not EC"),
            }
            assert_eq!(k.public_key.bits(), curve.bits());
        }
    }
}
