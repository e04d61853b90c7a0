//! Key certificates (DER and PEM) and SubjectPublicKeyInfo: everything the client derives
//! from them, and local verification of a signature against the key.
#![no_main]

use ks_common::{EcdsaFormat, HashAlg, KeyEntry, PublicKey, SignRequest};
use libfuzzer_sys::fuzz_target;

fn exercise(entry: &KeyEntry) {
    let _ = entry.certificate_pem();
    let _ = entry.public_key_pem();
    let _ = entry.subject_string();
    let key = &entry.public_key;
    let _ = (key.bits(), key.type_name(), key.algorithm_name());
    let _ = key.max_signature_len(EcdsaFormat::Der);
    let digest = vec![0x11; 32];
    let request = match key {
        PublicKey::Rsa { .. } => SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest,
        },
        PublicKey::Ec { .. } => SignRequest::Ecdsa {
            digest,
            format: EcdsaFormat::Der,
        },
    };
    let _ = ks_common::verify::verify(
        key,
        &request,
        &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = KeyEntry::from_der("key1", "fuzz", data) {
        exercise(&entry);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entry) = KeyEntry::from_pem("key1", "fuzz", text) {
            exercise(&entry);
        }
    }
    let _ = PublicKey::from_spki_der(data);
});
