//! Hash algorithms and PKCS#1 DigestInfo, in pure Rust (sha2, der).
//!
//! Hashing happens locally: only the digest travels to KeyServer, and the PKCS#11 module that
//! links this crate must not call back into OpenSSL.

use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence, Tagged};
use sha2::Digest as _;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Error, Result};

/// The hash algorithms KeyServer signatures use. SHA-1 is known (so that a legacy input is
/// recognised and refused with a reason) but signed only under the explicit opt-in of the
/// digest policy (`digest_policy::check_policy`); [`HashAlg::ALL`] lists the ones the default
/// policy signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1 (20-byte digest): legacy, refused unless `KSC_ALLOW_SHA1=1`.
    Sha1,
    /// SHA-256 (32-byte digest).
    Sha256,
    /// SHA-384 (48-byte digest).
    Sha384,
    /// SHA-512 (64-byte digest).
    Sha512,
}

/// Everything the crates know about one hash, one row per hash (like pkcs11-provider's
/// `mech_map[]`). OIDs and DigestInfo prefixes are written here and nowhere else; the PKCS#11
/// values are plain numbers (this crate does not link cryptoki), checked against cryptoki-sys by
/// a test in the pkcs11 crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashFacts {
    /// The algorithm this row describes.
    pub alg: HashAlg,
    /// Lowercase name as KeyServer's `hashalgorithm` field uses it: `"sha256"`.
    pub name: &'static str,
    /// OpenSSL's canonical digest name: `"SHA2-256"`.
    pub openssl_name: &'static str,
    /// Digest length in bytes.
    pub output_len: usize,
    /// The hash's object identifier, dotted.
    pub oid: &'static str,
    /// The DER DigestInfo up to the digest bytes (parameters NULL, RFC 8017 §9.2 note 1).
    pub digest_info_prefix: &'static [u8],
    /// `sha*WithRSAEncryption` (RFC 4055), dotted.
    pub rsa_pkcs1_oid: &'static str,
    /// `ecdsa-with-SHA*` (RFC 5758), dotted.
    pub ecdsa_oid: &'static str,
    /// `CKM_SHA*` (the digest mechanism, also a PSS `hashAlg`).
    pub ckm_digest: u64,
    /// `CKM_SHA*_RSA_PKCS`.
    pub ckm_rsa_pkcs: u64,
    /// `CKM_SHA*_RSA_PKCS_PSS`.
    pub ckm_rsa_pss: u64,
    /// `CKM_ECDSA_SHA*`.
    pub ckm_ecdsa: u64,
    /// `CKG_MGF1_SHA*`.
    pub ckg_mgf1: u64,
}

/// The hash table: SHA-1 (legacy, see `digest_policy::check_policy`), then [`HashAlg::ALL`] in
/// order.
pub const HASHES: [HashFacts; 4] = [
    HashFacts {
        alg: HashAlg::Sha1,
        name: "sha1",
        openssl_name: "SHA1",
        output_len: 20,
        oid: "1.3.14.3.2.26",
        digest_info_prefix: &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        rsa_pkcs1_oid: "1.2.840.113549.1.1.5",
        ecdsa_oid: "1.2.840.10045.4.1",
        ckm_digest: 0x220,
        ckm_rsa_pkcs: 0x6,
        ckm_rsa_pss: 0xe,
        ckm_ecdsa: 0x1042,
        ckg_mgf1: 0x1,
    },
    HashFacts {
        alg: HashAlg::Sha256,
        name: "sha256",
        openssl_name: "SHA2-256",
        output_len: 32,
        oid: "2.16.840.1.101.3.4.2.1",
        digest_info_prefix: &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        rsa_pkcs1_oid: "1.2.840.113549.1.1.11",
        ecdsa_oid: "1.2.840.10045.4.3.2",
        ckm_digest: 0x250,
        ckm_rsa_pkcs: 0x40,
        ckm_rsa_pss: 0x43,
        ckm_ecdsa: 0x1044,
        ckg_mgf1: 0x2,
    },
    HashFacts {
        alg: HashAlg::Sha384,
        name: "sha384",
        openssl_name: "SHA2-384",
        output_len: 48,
        oid: "2.16.840.1.101.3.4.2.2",
        digest_info_prefix: &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        rsa_pkcs1_oid: "1.2.840.113549.1.1.12",
        ecdsa_oid: "1.2.840.10045.4.3.3",
        ckm_digest: 0x260,
        ckm_rsa_pkcs: 0x41,
        ckm_rsa_pss: 0x44,
        ckm_ecdsa: 0x1045,
        ckg_mgf1: 0x3,
    },
    HashFacts {
        alg: HashAlg::Sha512,
        name: "sha512",
        openssl_name: "SHA2-512",
        output_len: 64,
        oid: "2.16.840.1.101.3.4.2.3",
        digest_info_prefix: &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        rsa_pkcs1_oid: "1.2.840.113549.1.1.13",
        ecdsa_oid: "1.2.840.10045.4.3.4",
        ckm_digest: 0x270,
        ckm_rsa_pkcs: 0x42,
        ckm_rsa_pss: 0x45,
        ckm_ecdsa: 0x1046,
        ckg_mgf1: 0x4,
    },
];

impl HashAlg {
    /// The algorithms the default digest policy signs, strongest last (SHA-1 is not here).
    pub const ALL: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

    /// This algorithm's row of [`HASHES`].
    pub fn facts(self) -> &'static HashFacts {
        match self {
            HashAlg::Sha1 => &HASHES[0],
            HashAlg::Sha256 => &HASHES[1],
            HashAlg::Sha384 => &HASHES[2],
            HashAlg::Sha512 => &HASHES[3],
        }
    }

    /// The algorithm whose row satisfies `pred`.
    pub fn find(pred: impl Fn(&HashFacts) -> bool) -> Option<HashAlg> {
        HASHES.iter().find(|f| pred(f)).map(|f| f.alg)
    }

    /// Digest length in bytes.
    pub fn output_len(self) -> usize {
        self.facts().output_len
    }

    /// Lowercase name as KeyServer's `hashalgorithm` field and OpenSSL use it: `"sha256"`.
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// Parses `sha256`, `SHA-256`, `SHA2-256` and the like (case-insensitive).
    pub fn from_name(name: &str) -> Option<HashAlg> {
        let n: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        HashAlg::find(|f| n == f.name || n == f.openssl_name.replace('-', "").to_ascii_lowercase())
    }

    /// Parses a digest name (as [`HashAlg::from_name`]) or a dotted OID, as OpenSSL passes
    /// either for a `digest` parameter.
    pub fn from_name_or_oid(name: &str) -> Option<HashAlg> {
        HashAlg::find(|f| f.oid == name).or_else(|| HashAlg::from_name(name))
    }

    /// The algorithm whose digest has `len` bytes.
    pub fn from_output_len(len: usize) -> Option<HashAlg> {
        HashAlg::find(|f| f.output_len == len)
    }

    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(self.facts().oid)
    }

    /// The DER content bytes of an OID written in [`HASHES`] (for hand-built DER).
    pub fn oid_der(dotted: &str) -> Vec<u8> {
        ObjectIdentifier::new_unwrap(dotted).as_bytes().to_vec()
    }

    fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlg> {
        HASHES.iter().map(|f| f.alg).find(|h| h.oid() == *oid)
    }
}

/// Checks that `digest` has the length of a `hash` digest (the one place this rule and its
/// message live).
pub fn check_digest_len(hash: HashAlg, digest: &[u8]) -> Result<()> {
    if digest.len() != hash.output_len() {
        return Err(Error::invalid_input(format!(
            "a {} digest has {} bytes, got {}",
            hash,
            hash.output_len(),
            digest.len()
        )));
    }
    Ok(())
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
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh hasher for `alg`.
    pub fn new(alg: HashAlg) -> Hasher {
        let inner = match alg {
            HashAlg::Sha1 => HasherInner::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => HasherInner::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => HasherInner::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => HasherInner::Sha512(sha2::Sha512::new()),
        };
        Hasher { inner }
    }

    /// The algorithm of this hasher.
    pub fn alg(&self) -> HashAlg {
        match self.inner {
            HasherInner::Sha1(_) => HashAlg::Sha1,
            HasherInner::Sha256(_) => HashAlg::Sha256,
            HasherInner::Sha384(_) => HashAlg::Sha384,
            HasherInner::Sha512(_) => HashAlg::Sha512,
        }
    }

    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            HasherInner::Sha1(h) => h.update(data),
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha384(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Vec<u8> {
        match self.inner {
            HasherInner::Sha1(h) => h.finalize().to_vec(),
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
    check_digest_len(alg, digest)?;
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
            "DigestInfo names hash {} which is not supported (sha256, sha384, sha512 are; sha1 by opt-in)",
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
        let prefix = HashAlg::Sha256.facts().digest_info_prefix;
        assert_eq!(&di[..prefix.len()], prefix);
        assert_eq!(&di[prefix.len()..], &d);
        // The DER encoder agrees with every hand-written prefix of the table.
        for f in HASHES {
            let di = digest_info(f.alg, &vec![1u8; f.output_len]).unwrap();
            assert_eq!(
                &di[..f.digest_info_prefix.len()],
                f.digest_info_prefix,
                "{}",
                f.name
            );
            assert_eq!(di.len(), f.digest_info_prefix.len() + f.output_len);
            assert_eq!(digest(f.alg, b"").len(), f.output_len);
            assert_eq!(HashAlg::from_name_or_oid(f.oid), Some(f.alg));
            assert_eq!(HashAlg::from_name(f.openssl_name), Some(f.alg));
        }
        let di = digest_info(HashAlg::Sha512, &[1u8; 64]).unwrap();
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
        // SHA-1 is recognised (the policy, not the parser, decides whether it is signed).
        let mut sha1 = hex::decode("3021300906052b0e03021a05000414").unwrap();
        sha1.extend_from_slice(&[0u8; 20]);
        assert_eq!(parse_digest_info(&sha1).unwrap().0, HashAlg::Sha1);
        // MD5 is not.
        let mut md5 = hex::decode("3020300c06082a864886f70d020505000410").unwrap();
        md5.extend_from_slice(&[0u8; 16]);
        assert!(parse_digest_info(&md5).is_err());
    }

    #[test]
    fn sha1_is_known() {
        assert_eq!(
            hex::encode(digest(HashAlg::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(HashAlg::from_output_len(20), Some(HashAlg::Sha1));
        assert_eq!(HashAlg::from_name("SHA-1"), Some(HashAlg::Sha1));
    }
}
