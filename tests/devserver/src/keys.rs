//! Signing keys: generation (through a shared cache), persistence, and the
//! raw signing primitives the sign orders use.
//!
//! Keys live in `<data>/keys/<id>.key.pem` (PKCS#8). Generating RSA-4096 is
//! slow, so fresh data directories take pre-generated keys from the key cache
//! (`<target>/ks-devserver-keycache` by default): the n-th key of an algorithm
//! in the configuration always takes cache entry n of that algorithm.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::rngs::OsRng;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Sha256, Sha384, Sha512};

/// Key algorithms the server can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSA with the given modulus size.
    Rsa(u32),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521.
    EcP521,
}

impl Algorithm {
    /// Parses `RSA-2048`, `EC-P256` (also `EC-P-256`, case-insensitive).
    pub fn parse(s: &str) -> Result<Algorithm, String> {
        let u = s.trim().to_ascii_uppercase().replace("P-", "P");
        match u.as_str() {
            "RSA-2048" => Ok(Algorithm::Rsa(2048)),
            "RSA-3072" => Ok(Algorithm::Rsa(3072)),
            "RSA-4096" => Ok(Algorithm::Rsa(4096)),
            "EC-P256" => Ok(Algorithm::EcP256),
            "EC-P384" => Ok(Algorithm::EcP384),
            "EC-P521" => Ok(Algorithm::EcP521),
            _ => Err(format!(
                "unknown key algorithm {s:?} (RSA-2048, RSA-3072, RSA-4096, EC-P256, EC-P384, EC-P521)"
            )),
        }
    }

    /// True for RSA.
    pub fn is_rsa(self) -> bool {
        matches!(self, Algorithm::Rsa(_))
    }

    /// Field size in bytes for EC keys (r and s are padded to this in p1363).
    pub fn ec_field_len(self) -> Option<usize> {
        match self {
            Algorithm::EcP256 => Some(32),
            Algorithm::EcP384 => Some(48),
            Algorithm::EcP521 => Some(66),
            Algorithm::Rsa(_) => None,
        }
    }

    fn cache_name(self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Algorithm::Rsa(bits) => write!(f, "RSA-{bits}"),
            Algorithm::EcP256 => f.write_str("EC-P256"),
            Algorithm::EcP384 => f.write_str("EC-P384"),
            Algorithm::EcP521 => f.write_str("EC-P521"),
        }
    }
}

/// A private key.
pub enum PrivateKey {
    /// RSA.
    Rsa(Box<RsaPrivateKey>),
    /// P-256.
    P256(p256::ecdsa::SigningKey),
    /// P-384.
    P384(p384::ecdsa::SigningKey),
    /// P-521.
    P521(Box<p521::ecdsa::SigningKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str("PrivateKey(..)")
    }
}

/// Hash algorithms accepted for RSA-PSS and recognised in DigestInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Parses `sha256` / `sha384` / `sha512` (also `SHA-256`).
    pub fn parse(s: &str) -> Option<HashAlg> {
        match s.to_ascii_lowercase().replace('-', "").as_str() {
            "sha256" => Some(HashAlg::Sha256),
            "sha384" => Some(HashAlg::Sha384),
            "sha512" => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// The DER DigestInfo prefix (AlgorithmIdentifier with NULL parameters).
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Checks that `data` is exactly a DER DigestInfo of SHA-256/384/512 with a
/// digest of the right length; returns the hash. Anything else (SHA-1, a bare
/// hash, trailing bytes, absent NULL parameters) is refused.
pub fn parse_digest_info(data: &[u8]) -> Result<HashAlg, String> {
    for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let prefix = alg.digest_info_prefix();
        if data.len() == prefix.len() + alg.output_len() && data.starts_with(prefix) {
            return Ok(alg);
        }
    }
    if matches!(data.len(), 32 | 48 | 64) {
        return Err(format!(
            "inputdata is a bare {}-byte hash, but inputpadding \"digestinfo\" needs a DER DigestInfo \
             (AlgorithmIdentifier + hash)",
            data.len()
        ));
    }
    Err("inputdata is not a DER DigestInfo of a SHA-256, SHA-384 or SHA-512 hash".into())
}

impl PrivateKey {
    /// Generates a key of `alg`.
    pub fn generate(alg: Algorithm) -> Result<PrivateKey, String> {
        Ok(match alg {
            Algorithm::Rsa(bits) => PrivateKey::Rsa(Box::new(
                RsaPrivateKey::new(&mut OsRng, bits as usize)
                    .map_err(|e| format!("RSA key generation: {e}"))?,
            )),
            Algorithm::EcP256 => PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::EcP384 => PrivateKey::P384(p384::ecdsa::SigningKey::random(&mut OsRng)),
            Algorithm::EcP521 => {
                PrivateKey::P521(Box::new(p521::ecdsa::SigningKey::random(&mut OsRng)))
            }
        })
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Rsa(k) => Algorithm::Rsa((k.size() * 8) as u32),
            PrivateKey::P256(_) => Algorithm::EcP256,
            PrivateKey::P384(_) => Algorithm::EcP384,
            PrivateKey::P521(_) => Algorithm::EcP521,
        }
    }

    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, String> {
        let r = match self {
            PrivateKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            PrivateKey::P521(k) => p521::SecretKey::from_bytes(&k.to_bytes())
                .map_err(|_| p256::pkcs8::Error::KeyMalformed)
                .and_then(|s| s.to_pkcs8_pem(LineEnding::LF)),
        };
        r.map(|z| z.to_string())
            .map_err(|e| format!("encoding private key: {e}"))
    }

    /// Reads PKCS#8 PEM of the expected algorithm.
    pub fn from_pem(pem: &str, alg: Algorithm) -> Result<PrivateKey, String> {
        let bad =
            |e: &dyn fmt::Display| format!("private key is not a valid {alg} PKCS#8 key: {e}");
        let k = match alg {
            Algorithm::Rsa(_) => PrivateKey::Rsa(Box::new(
                RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| bad(&e))?,
            )),
            Algorithm::EcP256 => {
                PrivateKey::P256(p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| bad(&e))?)
            }
            Algorithm::EcP384 => {
                PrivateKey::P384(p384::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| bad(&e))?)
            }
            Algorithm::EcP521 => {
                let sk = p521::SecretKey::from_pkcs8_pem(pem).map_err(|e| bad(&e))?;
                PrivateKey::P521(Box::new(
                    p521::ecdsa::SigningKey::from_bytes(&sk.to_bytes()).map_err(|e| bad(&e))?,
                ))
            }
        };
        if k.algorithm() != alg {
            return Err(format!(
                "private key is {} but the configuration says {alg}",
                k.algorithm()
            ));
        }
        Ok(k)
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn spki_der(&self) -> Result<Vec<u8>, String> {
        let r = match self {
            PrivateKey::Rsa(k) => k.to_public_key().to_public_key_der(),
            PrivateKey::P256(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::P384(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::P521(k) => p521::SecretKey::from_bytes(&k.to_bytes())
                .map_err(|_| spki::Error::KeyMalformed)
                .and_then(|s| s.public_key().to_public_key_der()),
        };
        r.map(|d| d.as_bytes().to_vec())
            .map_err(|e| format!("encoding public key: {e}"))
    }

    /// RSA PKCS#1 v1.5 over a complete DigestInfo (validated by the caller).
    pub fn sign_pkcs1_digest_info(&self, digest_info: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            PrivateKey::Rsa(k) => k
                .sign_with_rng(&mut OsRng, Pkcs1v15Sign::new_unprefixed(), digest_info)
                .map_err(|e| format!("RSA signing failed: {e}")),
            _ => Err("not an RSA key".into()),
        }
    }

    /// Largest PSS salt for this key and hash.
    pub fn max_pss_salt(&self, hash: HashAlg) -> Option<usize> {
        match self {
            PrivateKey::Rsa(k) => {
                let em_len = (k.n().bits() - 1).div_ceil(8);
                em_len.checked_sub(hash.output_len() + 2)
            }
            _ => None,
        }
    }

    /// RSA-PSS with MGF1 of the same hash.
    pub fn sign_pss(
        &self,
        hash: HashAlg,
        salt_len: usize,
        digest: &[u8],
    ) -> Result<Vec<u8>, String> {
        let PrivateKey::Rsa(k) = self else {
            return Err("not an RSA key".into());
        };
        let padding = match hash {
            HashAlg::Sha256 => Pss::new_with_salt::<Sha256>(salt_len),
            HashAlg::Sha384 => Pss::new_with_salt::<Sha384>(salt_len),
            HashAlg::Sha512 => Pss::new_with_salt::<Sha512>(salt_len),
        };
        k.sign_with_rng(&mut OsRng, padding, digest)
            .map_err(|e| format!("RSA-PSS signing failed: {e}"))
    }

    /// ECDSA over a hash; returns (r‖s, DER).
    pub fn sign_ecdsa(&self, digest: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        use ecdsa::signature::hazmat::{PrehashSigner, RandomizedPrehashSigner};
        let field = self
            .algorithm()
            .ec_field_len()
            .ok_or_else(|| "not an EC key".to_string())?;
        // A hash shorter than the field is its own integer value: left-pad it
        // so the ecdsa crate (which wants at least half the field) accepts
        // e.g. SHA-256 with P-521, exactly as OpenSSL computes it.
        let mut z = digest.to_vec();
        if z.len() < field {
            let mut padded = vec![0u8; field - z.len()];
            padded.extend_from_slice(digest);
            z = padded;
        }
        let err = |e: ecdsa::Error| format!("ECDSA signing failed: {e}");
        match self {
            PrivateKey::P256(k) => {
                let s: p256::ecdsa::Signature = k.sign_prehash(&z).map_err(err)?;
                Ok((s.to_bytes().to_vec(), s.to_der().as_bytes().to_vec()))
            }
            PrivateKey::P384(k) => {
                let s: p384::ecdsa::Signature = k.sign_prehash(&z).map_err(err)?;
                Ok((s.to_bytes().to_vec(), s.to_der().as_bytes().to_vec()))
            }
            PrivateKey::P521(k) => {
                // p521's SigningKey only offers the randomized prehash signer.
                let s: p521::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut OsRng, &z).map_err(err)?;
                Ok((s.to_bytes().to_vec(), s.to_der().as_bytes().to_vec()))
            }
            PrivateKey::Rsa(_) => Err("not an EC key".into()),
        }
    }
}

/// Writes `contents` to `path` atomically (temporary file + rename), so a
/// crash or a concurrent reader never sees half a file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        crate::util::random_hex(6)
    ));
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Private keys readable by the owner only; certificates and the
        // ready file by anyone (clients may run as another user).
        let private = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.ends_with(".key.pem") || n.starts_with("ec-") || n.starts_with("rsa-")
        });
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if private { 0o600 } else { 0o644 })
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

/// The shared cache of generated keys.
#[derive(Debug, Clone)]
pub struct KeyCache {
    dir: Option<PathBuf>,
}

impl KeyCache {
    /// A cache in `dir` (None: always generate).
    pub fn new(dir: Option<PathBuf>) -> KeyCache {
        KeyCache { dir }
    }

    /// The n-th cached key of `alg`, generating (and caching) it if absent.
    /// Concurrent servers coordinate through a lock file so RSA-4096 is only
    /// generated once.
    pub fn get(&self, alg: Algorithm, index: usize) -> Result<PrivateKey, String> {
        let Some(dir) = &self.dir else {
            return PrivateKey::generate(alg);
        };
        fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create key cache {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}-{index}.pem", alg.cache_name()));
        let lock = dir.join(format!("{}-{index}.lock", alg.cache_name()));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(pem) = fs::read_to_string(&path) {
                return PrivateKey::from_pem(&pem, alg);
            }
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(_) => {
                    let result = PrivateKey::generate(alg).and_then(|k| {
                        let pem = k.to_pem()?;
                        write_atomic(&path, pem.as_bytes())
                            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                        Ok(k)
                    });
                    let _ = fs::remove_file(&lock);
                    return result;
                }
                Err(_) => {
                    // Another process is generating this key. A lock older
                    // than the deadline belongs to a crashed process.
                    let stale = fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(120));
                    if stale || Instant::now() > deadline {
                        let _ = fs::remove_file(&lock);
                        continue;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        for s in [
            "RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384", "EC-P521",
        ] {
            assert_eq!(Algorithm::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Algorithm::parse("ec-p-384").unwrap(), Algorithm::EcP384);
        assert!(Algorithm::parse("RSA-1024").is_err());
    }

    #[test]
    fn digest_info_strict() {
        let mut di = HashAlg::Sha256.digest_info_prefix().to_vec();
        di.extend_from_slice(&[7u8; 32]);
        assert_eq!(parse_digest_info(&di).unwrap(), HashAlg::Sha256);
        assert!(parse_digest_info(&di[..di.len() - 1]).is_err());
        let mut longer = di.clone();
        longer.push(0);
        assert!(parse_digest_info(&longer).is_err());
        assert!(parse_digest_info(&[7u8; 32]).is_err());
    }

    #[test]
    fn ec_roundtrip_and_sign() {
        for alg in [Algorithm::EcP256, Algorithm::EcP384, Algorithm::EcP521] {
            let k = PrivateKey::generate(alg).unwrap();
            let k2 = PrivateKey::from_pem(&k.to_pem().unwrap(), alg).unwrap();
            assert_eq!(k.spki_der().unwrap(), k2.spki_der().unwrap());
            let (raw, der) = k2.sign_ecdsa(&[1u8; 32]).unwrap();
            assert_eq!(raw.len(), 2 * alg.ec_field_len().unwrap());
            assert_eq!(der[0], 0x30);
        }
    }
}
