//! The dev signing CA and the X.509 certificates of the signing keys.
//!
//! Built with `x509-cert`'s builder rather than rcgen because rcgen (with the
//! ring provider) cannot describe a P-521 subject key, and the key
//! certificates must carry every algorithm the server supports.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use der::{Decode, Encode, EncodePem};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_cert::Certificate;

use crate::keys::write_atomic;

/// Ten years: dev certificates should never expire under a test.
const VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The signing CA: issues the key certificates.
pub struct SigningCa {
    key: p256::ecdsa::SigningKey,
    name: Name,
    /// PEM of the CA certificate (`signing-ca.pem`).
    pub cert_pem: String,
}

fn random_serial() -> Result<SerialNumber, String> {
    let mut bytes = hex::decode(crate::util::random_hex(16)).map_err(|e| e.to_string())?;
    // Positive and without a leading zero byte, as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| format!("serial number: {e}"))
}

impl SigningCa {
    /// Loads `<dir>/signing-ca.pem` + `signing-ca.key.pem`, creating them on first start.
    pub fn load_or_create(dir: &Path) -> Result<SigningCa, String> {
        let cert_path = dir.join("signing-ca.pem");
        let key_path = dir.join("signing-ca.key.pem");
        if cert_path.exists() && key_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path)
                .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&key_pem)
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            let cert_pem = std::fs::read_to_string(&cert_path)
                .map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
            let (_, der) = der::pem::decode_vec(cert_pem.as_bytes())
                .map_err(|e| format!("{}: {e}", cert_path.display()))?;
            let cert =
                Certificate::from_der(&der).map_err(|e| format!("{}: {e}", cert_path.display()))?;
            return Ok(SigningCa {
                key,
                name: cert.tbs_certificate.subject,
                cert_pem,
            });
        }
        let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let name = Name::from_str("CN=ks-devserver signing CA,O=ks-devserver (development only)")
            .map_err(|e| format!("CA name: {e}"))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key())
            .map_err(|e| format!("CA public key: {e}"))?;
        let validity = Validity::from_now(VALIDITY).map_err(|e| format!("validity: {e}"))?;
        let builder = CertificateBuilder::new(
            Profile::Root,
            random_serial()?,
            validity,
            name.clone(),
            spki,
            &key,
        )
        .map_err(|e| format!("CA certificate: {e}"))?;
        let cert = builder
            .build::<p256::ecdsa::DerSignature>()
            .map_err(|e| format!("CA certificate: {e}"))?;
        let cert_pem = cert
            .to_pem(LineEnding::LF)
            .map_err(|e| format!("CA certificate: {e}"))?;
        let key_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("CA key: {e}"))?;
        write_atomic(&key_path, key_pem.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
        write_atomic(&cert_path, cert_pem.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
        Ok(SigningCa {
            key,
            name,
            cert_pem,
        })
    }

    /// Issues a certificate for a key: subject `CN=<keyid>`, issuer this CA.
    /// Returns the DER.
    pub fn issue(&self, keyid: &str, spki_der: &[u8]) -> Result<Vec<u8>, String> {
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| format!("public key of {keyid}: {e}"))?;
        let subject = Name::from_str(&format!("CN={keyid},O=ks-devserver (development only)"))
            .map_err(|e| format!("subject for {keyid}: {e}"))?;
        let validity = Validity::from_now(VALIDITY).map_err(|e| format!("validity: {e}"))?;
        let builder = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            random_serial()?,
            validity,
            subject,
            spki,
            &self.key,
        )
        .map_err(|e| format!("certificate for {keyid}: {e}"))?;
        let cert = builder
            .build::<p256::ecdsa::DerSignature>()
            .map_err(|e| format!("certificate for {keyid}: {e}"))?;
        cert.to_der()
            .map_err(|e| format!("certificate for {keyid}: {e}"))
    }
}

/// PEM of a DER certificate.
pub fn cert_pem(der: &[u8]) -> Result<String, String> {
    der::pem::encode_string("CERTIFICATE", LineEnding::LF, der).map_err(|e| e.to_string())
}

/// DER of a PEM certificate.
pub fn cert_der(pem: &str) -> Result<Vec<u8>, String> {
    der::pem::decode_vec(pem.as_bytes())
        .map(|(_, d)| d)
        .map_err(|e| e.to_string())
}

/// The DER SubjectPublicKeyInfo inside a DER certificate.
pub fn cert_spki(der: &[u8]) -> Result<Vec<u8>, String> {
    let cert = Certificate::from_der(der).map_err(|e| e.to_string())?;
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())
}
