//! DER AlgorithmIdentifiers for the signatures this provider makes (the
//! `algorithm-id` parameter `req`, `x509` and `cms` embed).

use ks_common::HashAlg;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn oid(arcs_der: &[u8]) -> Vec<u8> {
    tlv(0x06, arcs_der)
}

const RSA_PKCS1_PREFIX: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];

fn pkcs1_oid(last: u8) -> Vec<u8> {
    let mut v = RSA_PKCS1_PREFIX.to_vec();
    v.push(last);
    oid(&v)
}

fn hash_alg_id(hash: HashAlg) -> Vec<u8> {
    // SHA-2 AlgorithmIdentifiers carry no parameters (RFC 5754).
    tlv(0x30, &oid(&HashAlg::oid_der(hash.facts().oid)))
}

/// `shaNNNWithRSAEncryption` with NULL parameters.
pub fn rsa_pkcs1(hash: HashAlg) -> Vec<u8> {
    let mut c = oid(&HashAlg::oid_der(hash.facts().rsa_pkcs1_oid));
    c.extend([0x05, 0x00]);
    tlv(0x30, &c)
}

/// `ecdsa-with-SHANNN` without parameters.
pub fn ecdsa(hash: HashAlg) -> Vec<u8> {
    tlv(0x30, &oid(&HashAlg::oid_der(hash.facts().ecdsa_oid)))
}

/// `RSASSA-PSS` with explicit hash, MGF1 (same hash) and salt length.
pub fn rsa_pss(hash: HashAlg, salt_len: usize) -> Vec<u8> {
    let mut mgf1 = pkcs1_oid(0x08);
    mgf1.extend(hash_alg_id(hash));
    let mut params = tlv(0xa0, &hash_alg_id(hash));
    params.extend(tlv(0xa1, &tlv(0x30, &mgf1)));
    let mut salt = (salt_len as u32).to_be_bytes().to_vec();
    while salt.len() > 1 && salt[0] == 0 && salt[1] & 0x80 == 0 {
        salt.remove(0);
    }
    if salt[0] & 0x80 != 0 {
        salt.insert(0, 0);
    }
    params.extend(tlv(0xa2, &tlv(0x02, &salt)));
    let mut c = pkcs1_oid(0x0a);
    c.extend(tlv(0x30, &params));
    tlv(0x30, &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        assert_eq!(
            rsa_pkcs1(HashAlg::Sha256),
            [
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00
            ]
        );
        assert_eq!(
            ecdsa(HashAlg::Sha384),
            [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]
        );
        // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (as OpenSSL writes it).
        let pss = rsa_pss(HashAlg::Sha256, 32);
        assert_eq!(pss[0], 0x30);
        assert_eq!(pss.len(), 2 + pss[1] as usize);
        assert!(pss.ends_with(&[0xa2, 0x03, 0x02, 0x01, 0x20]));
    }
}
