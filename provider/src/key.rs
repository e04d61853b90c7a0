//! Keys as the provider holds them: public parts local, the private half a
//! reference to a KeyServer key.

use std::ffi::c_void;
use std::sync::Arc;

use ks_common::{EcdsaFormat, KeyEntry, PublicKey};

use crate::core::ProvCtx;

/// The key types the provider manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// rsaEncryption keys.
    Rsa,
    /// RSASSA-PSS keys.
    RsaPss,
    /// id-ecPublicKey on a named curve.
    Ec,
}

impl KeyKind {
    /// The keymgmt name OpenSSL knows the type by (store `data-type`).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::RsaPss => "RSA-PSS",
            KeyKind::Ec => "EC",
        }
    }

    /// The kind for a public key.
    pub fn of(public: &PublicKey) -> KeyKind {
        match public {
            PublicKey::Rsa { .. } => KeyKind::Rsa,
            PublicKey::Ec { .. } => KeyKind::Ec,
        }
    }
}

/// A KeyServer key: the catalog entry and the provider instance to sign through.
pub struct Remote {
    /// The provider instance that found the key.
    pub prov: Arc<ProvCtx>,
    /// The key as KeyServer lists it.
    pub entry: Arc<KeyEntry>,
}

/// The keymgmt's key object (`void *keydata` for OpenSSL).
#[derive(Clone)]
pub struct KeyData {
    /// The type.
    pub kind: KeyKind,
    /// The public key, once known.
    pub public: Option<PublicKey>,
    /// Set only for key references: the private half on KeyServer.
    pub remote: Option<Arc<Remote>>,
}

impl KeyData {
    /// Key size in bits.
    pub fn bits(&self) -> u32 {
        self.public.as_ref().map(PublicKey::bits).unwrap_or(0)
    }

    /// Security strength in bits, as OpenSSL computes it.
    pub fn security_bits(&self) -> u32 {
        match &self.public {
            Some(PublicKey::Ec { curve, .. }) => curve.bits() / 2,
            Some(PublicKey::Rsa { .. }) => rsa_security_bits(self.bits()),
            None => 0,
        }
    }

    /// Largest signature: modulus bytes, or the largest DER ECDSA-Sig-Value.
    pub fn max_size(&self) -> usize {
        self.public
            .as_ref()
            .map(|p| p.max_signature_len(EcdsaFormat::Der))
            .unwrap_or(0)
    }

    /// The keyid when this is a KeyServer key.
    pub fn keyid(&self) -> Option<&str> {
        self.remote.as_ref().map(|r| r.entry.keyid.as_str())
    }
}

/// OpenSSL's security strength for an RSA modulus (SP 800-57 table).
pub fn rsa_security_bits(bits: u32) -> u32 {
    match bits {
        b if b >= 15360 => 256,
        b if b >= 8192 => 200,
        b if b >= 7680 => 192,
        b if b >= 6144 => 176,
        b if b >= 4096 => 152,
        b if b >= 3072 => 128,
        b if b >= 2048 => 112,
        b if b >= 1024 => 80,
        _ => 0,
    }
}

/// The bytes the store passes as `OSSL_OBJECT_PARAM_REFERENCE`; only valid
/// during the store's object callback, while the store context holds `object`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KeyRef {
    magic: [u8; 8],
    object: *const Remote,
    private: u32,
}

const KEYREF_MAGIC: [u8; 8] = *b"ksref\0v1";

impl KeyRef {
    /// A reference to `object` (private or public half).
    pub fn new(object: &Arc<Remote>, private: bool) -> KeyRef {
        KeyRef {
            magic: KEYREF_MAGIC,
            object: Arc::as_ptr(object),
            private: u32::from(private),
        }
    }

    /// The reference as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: KeyRef is repr(C) plain data; viewing it as bytes is sound.
        unsafe {
            std::slice::from_raw_parts(
                self as *const KeyRef as *const u8,
                std::mem::size_of::<KeyRef>(),
            )
        }
    }

    /// Turns a reference received by keymgmt `load` back into key data.
    ///
    /// # Safety
    /// `data`/`len` must be readable; if they hold a `KeyRef` made by this
    /// library, the store that made it must still hold its object (true
    /// during the store's object callback, the only place OpenSSL loads it).
    pub unsafe fn load(data: *const c_void, len: usize) -> Option<KeyData> {
        if data.is_null() || len != std::mem::size_of::<KeyRef>() {
            return None;
        }
        // SAFETY: len matches; read_unaligned copes with any alignment.
        let r: KeyRef = unsafe { std::ptr::read_unaligned(data as *const KeyRef) };
        if r.magic != KEYREF_MAGIC || r.object.is_null() {
            return None;
        }
        // SAFETY: per the contract the pointee is a live Arc<Remote>; we
        // take a new strong count for the key data we return.
        let remote = unsafe {
            Arc::increment_strong_count(r.object);
            Arc::from_raw(r.object)
        };
        let public = remote.entry.public_key.clone();
        Some(KeyData {
            kind: KeyKind::of(&public),
            public: Some(public),
            remote: if r.private == 1 { Some(remote) } else { None },
        })
    }
}

/// A catalog entry with only an id and a public key (unit tests).
#[cfg(test)]
pub(crate) fn test_entry(keyid: &str, public: PublicKey) -> KeyEntry {
    KeyEntry {
        keyid: keyid.into(),
        keyinfo: String::new(),
        certificate_der: Vec::new(),
        spki_der: Vec::new(),
        public_key: public,
        subject_der: Vec::new(),
        issuer_der: Vec::new(),
        serial_der: Vec::new(),
        not_before: std::time::SystemTime::UNIX_EPOCH,
        not_after: std::time::SystemTime::UNIX_EPOCH,
        approvers: None,
        algorithm: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_bits_match_openssl() {
        assert_eq!(rsa_security_bits(2048), 112);
        assert_eq!(rsa_security_bits(3072), 128);
        assert_eq!(rsa_security_bits(4096), 152);
    }

    #[test]
    fn foreign_bytes_are_not_a_reference() {
        let junk = [0u8; 24];
        // SAFETY: `junk` is readable for its length.
        assert!(unsafe { KeyRef::load(junk.as_ptr() as *const c_void, junk.len()) }.is_none());
        // SAFETY: a null pointer is rejected before any read.
        assert!(unsafe { KeyRef::load(std::ptr::null(), 0) }.is_none());
    }
}
