//! The PKCS#11 objects of the token: for every KeyServer key a private key, a
//! public key and an X.509 certificate, sharing `CKA_LABEL` (the keyid) and a
//! stable `CKA_ID` derived from the public key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use cryptoki_sys::*;
use ks_common::hash::{digest, HashAlg};
use ks_common::keys::{KeyEntry, PublicKey};

use crate::mechanism;

/// One attribute's value as this token stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// `CK_BBOOL`.
    Bool(bool),
    /// `CK_ULONG` (and the `CK_ULONG`-sized types: class, key type, ...).
    Ulong(CK_ULONG),
    /// Byte strings: DER, UTF-8, `CK_DATE`, arrays of `CK_MECHANISM_TYPE`.
    Bytes(Vec<u8>),
    /// Exists, but is never revealed (`CKR_ATTRIBUTE_SENSITIVE`).
    Sensitive,
}

impl AttrValue {
    /// The value in its C representation, `None` when sensitive.
    pub fn encode(&self) -> Option<Vec<u8>> {
        match self {
            AttrValue::Bool(b) => Some(vec![CK_BBOOL::from(*b)]),
            AttrValue::Ulong(v) => Some(v.to_ne_bytes().to_vec()),
            AttrValue::Bytes(b) => Some(b.clone()),
            AttrValue::Sensitive => None,
        }
    }

    /// Whether a template value (C representation) equals this value.
    pub fn matches(&self, wanted: &[u8]) -> bool {
        match self {
            AttrValue::Bool(b) => wanted.len() == 1 && (wanted[0] != 0) == *b,
            AttrValue::Ulong(v) => <[u8; std::mem::size_of::<CK_ULONG>()]>::try_from(wanted)
                .is_ok_and(|w| CK_ULONG::from_ne_bytes(w) == *v),
            AttrValue::Bytes(b) => b.as_slice() == wanted,
            AttrValue::Sensitive => false,
        }
    }
}

/// One token object.
#[derive(Debug)]
pub struct Object {
    handle: CK_OBJECT_HANDLE,
    class: CK_OBJECT_CLASS,
    key: Arc<KeyEntry>,
    attrs: BTreeMap<CK_ATTRIBUTE_TYPE, AttrValue>,
}

impl Object {
    /// The object's handle (stable for the lifetime of the initialised library).
    pub fn handle(&self) -> CK_OBJECT_HANDLE {
        self.handle
    }

    /// `CKA_CLASS`.
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.class
    }

    /// The KeyServer key the object belongs to.
    pub fn key(&self) -> &Arc<KeyEntry> {
        &self.key
    }

    /// The attribute, or `None` when the object has no such attribute.
    pub fn attribute(&self, attr: CK_ATTRIBUTE_TYPE) -> Option<&AttrValue> {
        self.attrs.get(&attr)
    }

    /// All attribute types of the object.
    pub fn attribute_types(&self) -> impl Iterator<Item = CK_ATTRIBUTE_TYPE> + '_ {
        self.attrs.keys().copied()
    }

    /// Template matching for `C_FindObjects`: every attribute of the template
    /// must exist on the object with an equal value (an empty template matches).
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template
            .iter()
            .all(|(attr, value)| self.attrs.get(attr).is_some_and(|v| v.matches(value)))
    }

    /// An approximate size in bytes (`C_GetObjectSize`).
    pub fn size(&self) -> usize {
        self.attrs
            .values()
            .map(|v| v.encode().map_or(0, |b| b.len()) + 2 * std::mem::size_of::<CK_ULONG>())
            .sum()
    }
}

/// All objects of the token, built once from the key catalog.
#[derive(Debug, Default)]
pub struct ObjectStore {
    objects: Vec<Object>,
}

impl ObjectStore {
    /// Builds the three objects of every key. Handles are `3i+1` (private key),
    /// `3i+2` (public key) and `3i+3` (certificate) for the i-th key.
    pub fn new(keys: &[KeyEntry]) -> ObjectStore {
        let mut objects = Vec::with_capacity(keys.len() * 3);
        for key in keys {
            let key = Arc::new(key.clone());
            for class in [CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE] {
                let handle = objects.len() as CK_OBJECT_HANDLE + 1;
                let attrs = attributes(&key, class);
                objects.push(Object {
                    handle,
                    class,
                    key: Arc::clone(&key),
                    attrs,
                });
            }
        }
        ObjectStore { objects }
    }

    /// The object with this handle.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<&Object> {
        let index = usize::try_from(handle).ok()?.checked_sub(1)?;
        self.objects.get(index)
    }

    /// Handles of the objects matching the template, in handle order.
    pub fn find(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<CK_OBJECT_HANDLE> {
        self.objects
            .iter()
            .filter(|o| o.matches(template))
            .map(|o| o.handle)
            .collect()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether the token holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// `CKA_ID` shared by a key's three objects: the first 20 bytes of SHA-256 over
/// the DER SubjectPublicKeyInfo (stable across processes and servers).
pub fn key_id(key: &KeyEntry) -> Vec<u8> {
    let mut id = digest(HashAlg::Sha256, &key.spki_der);
    id.truncate(20);
    id
}

/// DER encoding of an OCTET STRING (`CKA_EC_POINT`).
pub fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `CK_DATE` ("YYYYMMDD") of a time, empty when it cannot be expressed.
pub fn ck_date(time: SystemTime) -> Vec<u8> {
    match ks_common::date::ymd(time) {
        Some((year, month, day)) if (0..=9999).contains(&year) => {
            format!("{year:04}{month:02}{day:02}").into_bytes()
        }
        _ => Vec::new(),
    }
}

fn attributes(key: &KeyEntry, class: CK_OBJECT_CLASS) -> BTreeMap<CK_ATTRIBUTE_TYPE, AttrValue> {
    use AttrValue::{Bool, Bytes, Sensitive, Ulong};
    let mut a = BTreeMap::new();
    let suffix = match class {
        CKO_PRIVATE_KEY => "private",
        CKO_PUBLIC_KEY => "public",
        _ => "certificate",
    };
    // Storage objects.
    a.insert(CKA_CLASS, Ulong(class));
    a.insert(CKA_TOKEN, Bool(true));
    a.insert(CKA_PRIVATE, Bool(false));
    a.insert(CKA_MODIFIABLE, Bool(false));
    a.insert(CKA_COPYABLE, Bool(false));
    a.insert(CKA_DESTROYABLE, Bool(false));
    a.insert(CKA_LABEL, Bytes(key.keyid.as_bytes().to_vec()));
    a.insert(
        CKA_UNIQUE_ID,
        Bytes(format!("{}/{suffix}", key.keyid).into_bytes()),
    );
    a.insert(CKA_ID, Bytes(key_id(key)));
    a.insert(CKA_START_DATE, Bytes(ck_date(key.not_before)));
    a.insert(CKA_END_DATE, Bytes(ck_date(key.not_after)));
    a.insert(CKA_SUBJECT, Bytes(key.subject_der.clone()));
    a.insert(CKA_PUBLIC_KEY_INFO, Bytes(key.spki_der.clone()));

    if class == CKO_CERTIFICATE {
        a.insert(CKA_CERTIFICATE_TYPE, Ulong(CKC_X_509));
        a.insert(CKA_TRUSTED, Bool(false));
        a.insert(
            CKA_CERTIFICATE_CATEGORY,
            Ulong(CK_CERTIFICATE_CATEGORY_UNSPECIFIED),
        );
        a.insert(CKA_ISSUER, Bytes(key.issuer_der.clone()));
        a.insert(CKA_SERIAL_NUMBER, Bytes(key.serial_der.clone()));
        a.insert(CKA_VALUE, Bytes(key.certificate_der.clone()));
        a.insert(CKA_URL, Bytes(Vec::new()));
        a.insert(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Bytes(Vec::new()));
        a.insert(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Bytes(Vec::new()));
        a.insert(
            CKA_JAVA_MIDP_SECURITY_DOMAIN,
            Ulong(CK_SECURITY_DOMAIN_UNSPECIFIED),
        );
        a.insert(CKA_NAME_HASH_ALGORITHM, Ulong(CKM_SHA_1));
        return a;
    }

    // Keys.
    let private = class == CKO_PRIVATE_KEY;
    let allowed: Vec<u8> = mechanism::sign_mechanisms_for(&key.public_key)
        .iter()
        .flat_map(|m| m.to_ne_bytes())
        .collect();
    a.insert(CKA_DERIVE, Bool(false));
    a.insert(CKA_LOCAL, Bool(false));
    a.insert(CKA_KEY_GEN_MECHANISM, Ulong(CK_UNAVAILABLE_INFORMATION));
    a.insert(CKA_ALLOWED_MECHANISMS, Bytes(allowed));
    if private {
        a.insert(CKA_SENSITIVE, Bool(true));
        a.insert(CKA_DECRYPT, Bool(false));
        a.insert(CKA_SIGN, Bool(true));
        a.insert(CKA_SIGN_RECOVER, Bool(false));
        a.insert(CKA_UNWRAP, Bool(false));
        a.insert(CKA_EXTRACTABLE, Bool(false));
        a.insert(CKA_ALWAYS_SENSITIVE, Bool(true));
        a.insert(CKA_NEVER_EXTRACTABLE, Bool(true));
        a.insert(CKA_WRAP_WITH_TRUSTED, Bool(false));
        a.insert(CKA_ALWAYS_AUTHENTICATE, Bool(false));
    } else {
        a.insert(CKA_ENCRYPT, Bool(false));
        a.insert(CKA_VERIFY, Bool(true));
        a.insert(CKA_VERIFY_RECOVER, Bool(false));
        a.insert(CKA_WRAP, Bool(false));
        a.insert(CKA_TRUSTED, Bool(false));
    }
    match &key.public_key {
        PublicKey::Rsa { n, e } => {
            a.insert(CKA_KEY_TYPE, Ulong(CKK_RSA));
            a.insert(CKA_MODULUS, Bytes(n.clone()));
            a.insert(CKA_PUBLIC_EXPONENT, Bytes(e.clone()));
            a.insert(CKA_MODULUS_BITS, Ulong(key.public_key.bits() as CK_ULONG));
            if private {
                for attr in [
                    CKA_PRIVATE_EXPONENT,
                    CKA_PRIME_1,
                    CKA_PRIME_2,
                    CKA_EXPONENT_1,
                    CKA_EXPONENT_2,
                    CKA_COEFFICIENT,
                ] {
                    a.insert(attr, Sensitive);
                }
            }
        }
        PublicKey::Ec { curve, point } => {
            a.insert(CKA_KEY_TYPE, Ulong(CKK_EC));
            a.insert(CKA_EC_PARAMS, Bytes(curve.oid_der()));
            // Not in the standard set of an EC private key, but consumers such as
            // libp11 look for the point on the private key when no public key is
            // at hand; it is public information.
            a.insert(CKA_EC_POINT, Bytes(der_octet_string(point)));
            if private {
                a.insert(CKA_VALUE, Sensitive);
            }
        }
    }
    a
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// An RSA-2048 key (test fixture certificate, CN=key1).
    pub(crate) fn rsa_key(keyid: &str) -> KeyEntry {
        KeyEntry::from_pem(keyid, "test", include_str!("testdata/rsa2048.pem"))
            .expect("RSA fixture")
    }

    /// An EC P-256 key (test fixture certificate).
    pub(crate) fn ec_key(keyid: &str) -> KeyEntry {
        KeyEntry::from_pem(keyid, "test", include_str!("testdata/p256.pem")).expect("EC fixture")
    }

    fn ulong(v: CK_ULONG) -> Vec<u8> {
        v.to_ne_bytes().to_vec()
    }

    #[test]
    fn three_objects_per_key_with_shared_id_and_label() {
        let store = ObjectStore::new(&[rsa_key("key1"), ec_key("key2")]);
        assert_eq!(store.len(), 6);
        let key1 = store.find(&[(CKA_LABEL, b"key1".to_vec())]);
        assert_eq!(key1, vec![1, 2, 3]);
        let ids: Vec<_> = key1
            .iter()
            .map(|h| store.get(*h).and_then(|o| o.attribute(CKA_ID)).cloned())
            .collect();
        assert!(ids.iter().all(|id| id == &ids[0] && id.is_some()));
        let other = store.get(4).and_then(|o| o.attribute(CKA_ID)).cloned();
        assert_ne!(ids[0], other);
        assert!(store.get(0).is_none());
        assert!(store.get(7).is_none());
    }

    #[test]
    fn template_matching() {
        let store = ObjectStore::new(&[rsa_key("key1"), ec_key("key2")]);
        assert_eq!(store.find(&[]).len(), 6);
        assert_eq!(
            store.find(&[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]),
            vec![1, 4]
        );
        assert_eq!(
            store.find(&[
                (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
                (CKA_KEY_TYPE, ulong(CKK_EC))
            ]),
            vec![5]
        );
        assert_eq!(store.find(&[(CKA_SIGN, vec![1])]), vec![1, 4]);
        assert_eq!(
            store.find(&[(CKA_TOKEN, vec![1]), (CKA_LABEL, b"key2".to_vec())]),
            vec![4, 5, 6]
        );
        assert!(store.find(&[(CKA_LABEL, b"nope".to_vec())]).is_empty());
        // Sensitive values never match, not even a guess.
        assert!(store.find(&[(CKA_VALUE, vec![])]).is_empty());
        assert!(store.find(&[(CKA_PRIVATE_EXPONENT, vec![1])]).is_empty());
        // Wrong-sized ulong never matches.
        assert!(store.find(&[(CKA_CLASS, vec![3])]).is_empty());
    }

    #[test]
    fn ec_point_is_an_octet_string() {
        let mut point = vec![4];
        point.extend_from_slice(&[7; 132]);
        let der = der_octet_string(&point);
        assert_eq!(&der[..3], &[0x04, 0x81, 133]);
        assert_eq!(der.len(), 136);
        assert_eq!(der_octet_string(&[1, 2]), vec![4, 2, 1, 2]);
    }

    #[test]
    fn dates() {
        assert_eq!(ck_date(UNIX_EPOCH), b"19700101".to_vec());
        // 2024-02-29T12:00:00Z
        assert_eq!(
            ck_date(UNIX_EPOCH + Duration::from_secs(1_709_208_000)),
            b"20240229".to_vec()
        );
    }

    #[test]
    fn private_values_are_sensitive() {
        let store = ObjectStore::new(&[rsa_key("key1"), ec_key("key2")]);
        let rsa = store.get(1).expect("rsa private");
        assert_eq!(
            rsa.attribute(CKA_PRIVATE_EXPONENT),
            Some(&AttrValue::Sensitive)
        );
        assert!(matches!(
            rsa.attribute(CKA_MODULUS),
            Some(AttrValue::Bytes(_))
        ));
        let ec = store.get(4).expect("ec private");
        assert_eq!(ec.attribute(CKA_VALUE), Some(&AttrValue::Sensitive));
        let cert = store.get(6).expect("cert");
        assert_eq!(
            cert.attribute(CKA_VALUE),
            Some(&AttrValue::Bytes(cert.key().certificate_der.clone()))
        );
        assert!(cert.attribute(CKA_MODULUS).is_none());
    }
}
