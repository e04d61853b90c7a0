//! Hash algorithms and PKCS#1 DigestInfo, in pure Rust (sha2, der).
//!
//! Hashing happens locally: only the digest travels to KeyServer, and the PKCS#11 module that
//! links this crate must not call back into OpenSSL.

use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tagged};
use sha2::Digest as _;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Error, Result};

/// The hash algorithms KeyServer signatures use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256 (32-byte digest).
    Sha256,
    /// SHA-384 (48-byte digest).
    Sha384,
    /// SHA-512 (64-byte digest).
    Sha512,
}

const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

impl HashAlg {
    /// All supported algorithms, strongest last.
    pub const ALL: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Lowercase name as KeyServer's `hashalgorithm` field and OpenSSL use it: `"sha256"`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        }
    }

    /// Parses `sha256`, `SHA-256`, `SHA2-256` and the like (case-insensitive).
    pub fn from_name(name: &str) -> Option<HashAlg> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match n.as_str() {
            "sha256" | "sha2256" => Some(HashAlg::Sha256),
            "sha384" | "sha2384" => Some(HashAlg::Sha384),
            "sha512" | "sha2512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// The algorithm whose digest has `len` bytes.
    pub fn from_output_len(len: usize) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.output_len() == len)
    }

    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlg::Sha256 => OID_SHA256,
            HashAlg::Sha384 => OID_SHA384,
            HashAlg::Sha512 => OID_SHA512,
        }
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        HashAlg::ALL.into_iter().find(|h| h.oid() == *oid)
    }
}

impl std::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Hashes `data` in one go.
pub fn digest(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    let mut h = Hasher::new(alg);
    h.update(data);
    h.finalize()
}

/// A streaming hash (for multi-part `C_SignUpdate` / `digest_sign_update`); `Clone` so a context
/// can be duplicated mid-stream.
#[derive(Clone)]
pub struct Hasher {
    inner: HasherInner,
}

#[derive(Clone)]
enum HasherInner {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `alg`.
    pub fn new(alg: HashAlg) -> Hasher {
        let inner = match alg {
            HashAlg::Sha256 => HasherInner::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => HasherInner::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => HasherInner::Sha512(sha2::Sha512::new()),
        };
        Hasher { inner }
    }

    /// The algorithm of this hasher.
    pub fn alg(&self) -> HashAlg {
        match self.inner {
            HasherInner::Sha256(_) => HashAlg::Sha256,
            HasherInner::Sha384(_) => HashAlg::Sha384,
            HasherInner::Sha512(_) => HashAlg::Sha512,
        }
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha384(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Vec<u8> {
        match self.inner {
            HasherInner::Sha256(h) => h.finalize().to_vec(),
            HasherInner::Sha384(h) => h.finalize().to_vec(),
            HasherInner::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hasher({})", self.alg())
    }
}

/// PKCS#1 `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`.
#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// The DER `DigestInfo` of `digest` (parameters NULL, as RFC 8017 and OpenSSL write it).
pub fn digest_info(alg: HashAlg, digest: &[u8]) -> Result<Vec<u8>> {
    if digest.len() != alg.output_len() {
        return Err(Error::invalid_input(format!(
            "a {} digest has {} bytes, got {}",
            alg,
            alg.output_len(),
            digest.len()
        )));
    }
    let info = DigestInfo {
        algorithm: AlgorithmIdentifierOwned {
            oid: alg.oid(),
            parameters: Some(AnyRef::NULL.into()),
        },
        digest: OctetString::new(digest)
            .map_err(|e| Error::internal(format!("DigestInfo: {e}")))?,
    };
    info.to_der()
        .map_err(|e| Error::internal(format!("DigestInfo encoding: {e}")))
}

/// Parses a DER `DigestInfo` (as `CKM_RSA_PKCS` receives it) into algorithm and digest.
/// Accepts NULL or absent parameters; rejects unknown algorithms, wrong lengths, trailing data.
pub fn parse_digest_info(der_bytes: &[u8]) -> Result<(HashAlg, Vec<u8>)> {
    let info = DigestInfo::from_der(der_bytes)
        .map_err(|e| Error::invalid_input(format!("input is not a DER DigestInfo: {e}")))?;
    let alg = HashAlg::from_oid(&info.algorithm.oid).ok_or_else(|| {
        Error::invalid_input(format!(
            "DigestInfo names hash {} which is not supported (sha256, sha384, sha512 are)",
            info.algorithm.oid
        ))
    })?;
    if let Some(p) = &info.algorithm.parameters {
        if p.tag() != der::Tag::Null {
            return Err(Error::invalid_input(
                "DigestInfo hash parameters must be NULL or absent",
            ));
        }
    }
    let d = info.digest.as_bytes();
    if d.len() != alg.output_len() {
        return Err(Error::invalid_input(format!(
            "DigestInfo holds a {}-byte digest, {} needs {}",
            d.len(),
            alg,
            alg.output_len()
        )));
    }
    Ok((alg, d.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for h in HashAlg::ALL {
            assert_eq!(HashAlg::from_name(h.name()), Some(h));
            assert_eq!(HashAlg::from_output_len(h.output_len()), Some(h));
        }
        assert_eq!(HashAlg::from_name("SHA-384"), Some(HashAlg::Sha384));
        assert_eq!(HashAlg::from_name("SHA2-512"), Some(HashAlg::Sha512));
        assert_eq!(HashAlg::from_name("md5"), None);
    }

    #[test]
    fn known_digest_and_streaming() {
        let d = digest(HashAlg::Sha256, b"abc");
        assert_eq!(
            hex::encode(&d),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(HashAlg::Sha256);
        h.update(b"a");
        let h2 = h.clone();
        h.update(b"bc");
        assert_eq!(h.finalize(), d);
        assert_eq!(h2.finalize(), digest(HashAlg::Sha256, b"a"));
        assert_eq!(digest(HashAlg::Sha512, b"").len(), 64);
    }

    #[test]
    fn digest_info_matches_rfc8017_prefixes() {
        let d = [7u8; 32];
        let di = digest_info(HashAlg::Sha256, &d).unwrap();
        let prefix = hex::decode("3031300d060960864801650304020105000420").unwrap();
        assert_eq!(&di[..prefix.len()], &prefix[..]);
        assert_eq!(&di[prefix.len()..], &d);
        let di = digest_info(HashAlg::Sha384, &[1u8; 48]).unwrap();
        assert!(di.starts_with(&hex::decode("3041300d060960864801650304020205000430").unwrap()));
        let di = digest_info(HashAlg::Sha512, &[1u8; 64]).unwrap();
        assert!(di.starts_with(&hex::decode("3051300d060960864801650304020305000440").unwrap()));
        assert_eq!(
            parse_digest_info(&di).unwrap(),
            (HashAlg::Sha512, vec![1u8; 64])
        );
    }

    #[test]
    fn parse_digest_info_rejects_garbage() {
        assert!(parse_digest_info(&[0u8; 32]).is_err());
        assert!(digest_info(HashAlg::Sha256, &[0u8; 31]).is_err());
        let mut di = digest_info(HashAlg::Sha256, &[7u8; 32]).unwrap();
        di.push(0);
        assert!(parse_digest_info(&di).is_err(), "trailing data");
        // Absent parameters are accepted.
        let absent = hex::decode(format!(
            "302f300b06096086480165030402010420{}",
            "00".repeat(32)
        ))
        .unwrap();
        assert_eq!(parse_digest_info(&absent).unwrap().0, HashAlg::Sha256);
        // SHA-1 is not supported.
        let sha1 = hex::decode("3021300906052b0e03021a05000414").unwrap();
        let mut sha1 = sha1;
        sha1.extend_from_slice(&[0u8; 20]);
        assert!(parse_digest_info(&sha1).is_err());
    }
}
