//! Trust in the signing certificates KeyServer lists (`KSC_SIGNING_CA_FILE`, `KSC_KEY_PINS`).
//!
//! Local verification of a returned signature only proves it matches the certificate the same
//! server sent; a hostile or compromised server could list its own key under `key1`. With a
//! signing CA configured, a key is offered only if its certificate was issued by one of the CA
//! certificates in that file (its signature checked, not just the issuer name), is inside its
//! validity period and allows signatures (keyUsage digitalSignature, or no keyUsage at all).
//! A pin binds a key id to the SHA-256 of its certificate or of its public key.
//!
//! Every certificate in the CA file is a trust anchor: put the CA that issues the signing
//! certificates there (an intermediate works the same way). Anchors are not checked for expiry,
//! as TLS trust stores are not.

use std::path::Path;
use std::time::SystemTime;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use sha2::Digest as _;
use x509_cert::Certificate;

use crate::config::{Config, KSC_KEY_PINS, KSC_SIGNING_CA_FILE};
use crate::error::{Error, Result};
use crate::hash::HashAlg;
use crate::keys::{KeyEntry, PublicKey};
use crate::sign::{EcdsaFormat, SignRequest};

const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

/// Certificate signature algorithms accepted for a signing certificate, and their hash.
const SIGNATURE_ALGORITHMS: [(&str, HashAlg, bool); 6] = [
    ("1.2.840.113549.1.1.11", HashAlg::Sha256, true),
    ("1.2.840.113549.1.1.12", HashAlg::Sha384, true),
    ("1.2.840.113549.1.1.13", HashAlg::Sha512, true),
    ("1.2.840.10045.4.3.2", HashAlg::Sha256, false),
    ("1.2.840.10045.4.3.3", HashAlg::Sha384, false),
    ("1.2.840.10045.4.3.4", HashAlg::Sha512, false),
];

/// One CA certificate of `KSC_SIGNING_CA_FILE`.
#[derive(Debug, Clone)]
struct Anchor {
    subject_der: Vec<u8>,
    public_key: PublicKey,
}

/// The configured trust rules for signing certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    anchors: Vec<Anchor>,
    pins: Vec<(String, [u8; 32])>,
}

/// A key the policy refused, and why (shown by `ksc keys`, logged by the adapters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedKey {
    /// The catalog entry as the server listed it.
    pub entry: KeyEntry,
    /// Why it is not offered, e.g. `its certificate expired on 2021-01-01`.
    pub reason: String,
}

impl TrustPolicy {
    /// The policy `config` asks for: `None` when neither a signing CA nor a pin is set (every
    /// listed key is offered, as before these settings existed).
    pub fn from_config(config: &Config) -> Result<Option<TrustPolicy>> {
        if config.signing_ca_file.is_none() && config.key_pins.is_empty() {
            return Ok(None);
        }
        let anchors = match &config.signing_ca_file {
            Some(path) => load_anchors(path)?,
            None => Vec::new(),
        };
        Ok(Some(TrustPolicy {
            anchors,
            pins: config.key_pins.clone(),
        }))
    }

    /// Checks one key at time `now`; `Err` carries the reason it must not be used.
    pub fn check(&self, entry: &KeyEntry, now: SystemTime) -> std::result::Result<(), String> {
        let cert = Certificate::from_der(&entry.certificate_der)
            .map_err(|e| format!("its certificate cannot be parsed ({e})"))?;
        if !self.anchors.is_empty() {
            self.check_issuer(entry, &cert)?;
            if now < entry.not_before {
                return Err(format!(
                    "its certificate is not valid before {}",
                    day(entry.not_before)
                ));
            }
            if now > entry.not_after {
                return Err(format!(
                    "its certificate expired on {}",
                    day(entry.not_after)
                ));
            }
            check_key_usage(&cert)?;
        }
        let pins: Vec<&[u8; 32]> = self
            .pins
            .iter()
            .filter(|(k, _)| *k == entry.keyid)
            .map(|(_, p)| p)
            .collect();
        if !pins.is_empty() {
            let cert_hash: [u8; 32] = sha2::Sha256::digest(&entry.certificate_der).into();
            let spki_hash: [u8; 32] = sha2::Sha256::digest(&entry.spki_der).into();
            if !pins.iter().any(|p| **p == cert_hash || **p == spki_hash) {
                return Err(format!(
                    "its certificate (sha256:{}, public key sha256:{}) matches none of its {KSC_KEY_PINS}",
                    hex::encode(cert_hash),
                    hex::encode(spki_hash)
                ));
            }
        }
        Ok(())
    }

    /// Splits a catalog into the keys to offer and the refused ones with their reasons.
    pub fn partition(
        &self,
        keys: Vec<KeyEntry>,
        now: SystemTime,
    ) -> (Vec<KeyEntry>, Vec<UntrustedKey>) {
        let mut trusted = Vec::with_capacity(keys.len());
        let mut untrusted = Vec::new();
        for entry in keys {
            match self.check(&entry, now) {
                Ok(()) => trusted.push(entry),
                Err(reason) => untrusted.push(UntrustedKey { entry, reason }),
            }
        }
        (trusted, untrusted)
    }

    fn check_issuer(
        &self,
        entry: &KeyEntry,
        cert: &Certificate,
    ) -> std::result::Result<(), String> {
        let issuer = x509_cert::name::Name::from_der(&entry.issuer_der)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let candidates: Vec<&Anchor> = self
            .anchors
            .iter()
            .filter(|a| a.subject_der == entry.issuer_der)
            .collect();
        if candidates.is_empty() {
            return Err(format!(
                "its certificate was not issued by a CA in {KSC_SIGNING_CA_FILE} (issuer: {issuer})"
            ));
        }
        let oid = cert.signature_algorithm.oid.to_string();
        let Some(&(_, hash, rsa)) = SIGNATURE_ALGORITHMS.iter().find(|(o, _, _)| *o == oid) else {
            return Err(format!(
                "its certificate is signed with algorithm {oid}, which is not accepted (RSA PKCS#1 v1.5 or ECDSA with SHA-256/384/512 are)"
            ));
        };
        let signature = cert
            .signature
            .as_bytes()
            .ok_or("its certificate's signature is not a whole number of bytes")?;
        let tbs = cert
            .tbs_certificate
            .to_der()
            .map_err(|e| format!("its certificate cannot be re-encoded ({e})"))?;
        let digest = crate::hash::digest(hash, &tbs);
        let request = if rsa {
            SignRequest::RsaPkcs1 { hash, digest }
        } else {
            SignRequest::Ecdsa {
                digest,
                format: EcdsaFormat::Der,
            }
        };
        if candidates
            .iter()
            .any(|a| crate::verify::verify(&a.public_key, &request, signature).is_ok())
        {
            Ok(())
        } else {
            Err(format!(
                "its certificate names {issuer} as issuer but its signature does not verify with that CA of {KSC_SIGNING_CA_FILE} (forged or altered)"
            ))
        }
    }
}

fn check_key_usage(cert: &Certificate) -> std::result::Result<(), String> {
    let Some(ext) = cert
        .tbs_certificate
        .extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|e| e.extn_id == OID_KEY_USAGE)
    else {
        return Ok(());
    };
    let ku = x509_cert::ext::pkix::KeyUsage::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("its certificate's keyUsage cannot be parsed ({e})"))?;
    if ku.digital_signature() {
        Ok(())
    } else {
        Err("its certificate's keyUsage does not allow signatures (no digitalSignature)".into())
    }
}

fn day(t: SystemTime) -> String {
    match crate::date::ymd(t) {
        Some((y, m, d)) => format!("{y:04}-{m:02}-{d:02}"),
        None => "an unrepresentable date".into(),
    }
}

fn load_anchors(path: &Path) -> Result<Vec<Anchor>> {
    let text = std::fs::read(path).map_err(|e| {
        Error::config(
            KSC_SIGNING_CA_FILE,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let certs = Certificate::load_pem_chain(&text).map_err(|e| {
        Error::config(
            KSC_SIGNING_CA_FILE,
            format!("{} is not PEM certificates: {e}", path.display()),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::config(
            KSC_SIGNING_CA_FILE,
            format!("{} contains no PEM certificate", path.display()),
        ));
    }
    certs
        .iter()
        .map(|c| {
            let tbs = &c.tbs_certificate;
            let bad = |what: String| {
                Error::config(
                    KSC_SIGNING_CA_FILE,
                    format!("{}: unusable CA certificate: {what}", path.display()),
                )
            };
            let spki = tbs
                .subject_public_key_info
                .to_der()
                .map_err(|e| bad(e.to_string()))?;
            Ok(Anchor {
                subject_der: tbs.subject.to_der().map_err(|e| bad(e.to_string()))?,
                public_key: PublicKey::from_spki_der(&spki).map_err(|e| bad(e.to_string()))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn data(name: &str) -> String {
        format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn entry(keyid: &str, file: &str) -> KeyEntry {
        let pem = std::fs::read_to_string(data(file)).unwrap();
        KeyEntry::from_pem(keyid, "", &pem).unwrap()
    }

    fn policy(ca: &[&str], pins: &[(&str, [u8; 32])]) -> TrustPolicy {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cas.pem");
        let text: String = ca
            .iter()
            .map(|c| std::fs::read_to_string(data(&format!("trust/{c}"))).unwrap())
            .collect();
        std::fs::write(&file, text).unwrap();
        let config = Config {
            signing_ca_file: (!ca.is_empty()).then(|| file.clone()),
            key_pins: pins.iter().map(|(k, p)| (k.to_string(), *p)).collect(),
            ..Config::default()
        };
        TrustPolicy::from_config(&config).unwrap().unwrap()
    }

    #[test]
    fn unset_means_no_policy() {
        assert!(TrustPolicy::from_config(&Config::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn issued_valid_and_usable_keys_pass() {
        let p = policy(&["ca-rsa.pem", "ca-ec.pem"], &[]);
        let now = SystemTime::now();
        // ECDSA-signed with keyUsage digitalSignature; RSA-signed without keyUsage.
        assert_eq!(p.check(&entry("k1", "trust/ec-ok.pem"), now), Ok(()));
        assert_eq!(p.check(&entry("k2", "trust/rsa-ok.pem"), now), Ok(()));
    }

    #[test]
    fn each_failure_has_its_reason() {
        let p = policy(&["ca-ec.pem"], &[]);
        let now = SystemTime::now();
        let reason = |file: &str| p.check(&entry("k", file), now).unwrap_err();
        let r = reason("p256.pem");
        assert!(
            r.contains("not issued by a CA in KSC_SIGNING_CA_FILE"),
            "{r}"
        );
        let r = reason("trust/rsa-ok.pem");
        assert!(r.contains("issuer: CN=Test RSA Signing CA"), "{r}");
        let r = reason("trust/forged.pem");
        assert!(r.contains("does not verify"), "{r}");
        let r = reason("trust/expired.pem");
        assert_eq!(r, "its certificate expired on 2021-01-01");
        let r = reason("trust/future.pem");
        assert_eq!(r, "its certificate is not valid before 2090-01-01");
        let r = reason("trust/certsign.pem");
        assert!(r.contains("does not allow signatures"), "{r}");
        // The validity check uses the time given.
        let in_2020 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_590_000_000);
        assert_eq!(p.check(&entry("k", "trust/expired.pem"), in_2020), Ok(()));
    }

    #[test]
    fn pins_bind_a_key_to_its_certificate_or_public_key() {
        let good = entry("key1", "trust/ec-ok.pem");
        let cert_pin: [u8; 32] = sha2::Sha256::digest(&good.certificate_der).into();
        let spki_pin: [u8; 32] = sha2::Sha256::digest(&good.spki_der).into();
        let now = SystemTime::now();
        for pin in [cert_pin, spki_pin] {
            let p = policy(&[], &[("key1", pin)]);
            assert_eq!(p.check(&good, now), Ok(()));
            // Another certificate under the pinned key id is refused; other ids are not pinned.
            let r = p.check(&entry("key1", "p256.pem"), now).unwrap_err();
            assert!(r.contains("matches none of its KSC_KEY_PINS"), "{r}");
            assert_eq!(p.check(&entry("key2", "p256.pem"), now), Ok(()));
        }
        // With a CA too, both must hold.
        let p = policy(&["ca-ec.pem"], &[("key1", [0; 32])]);
        assert!(p.check(&good, now).unwrap_err().contains("KSC_KEY_PINS"));
    }

    #[test]
    fn partition_keeps_order_and_reasons() {
        let p = policy(&["ca-ec.pem"], &[]);
        let keys = vec![
            entry("a", "trust/ec-ok.pem"),
            entry("b", "p256.pem"),
            entry("c", "trust/ec-ok.pem"),
        ];
        let (ok, bad) = p.partition(keys, SystemTime::now());
        let ids: Vec<&str> = ok.iter().map(|k| k.keyid.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].entry.keyid, "b");
    }

    #[test]
    fn bad_ca_files_are_config_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let config = Config {
                signing_ca_file: Some(path),
                ..Config::default()
            };
            let e = TrustPolicy::from_config(&config).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config);
            assert!(e.to_string().contains(KSC_SIGNING_CA_FILE), "{e}");
        }
    }
}
