//! The digest policy's SHA-1 opt-in, in a process of its own (the opt-in is per process, so
//! it cannot share the unit tests' process, which relies on the default refusal).

use std::sync::Arc;

use cryptoki_sys::*;
use ks_common::digest_policy::set_allow_sha1;
use ks_common::hash::{digest_info, HashAlg};
use ks_common::keys::EcCurve;
use ks_common::sign::SignRequest;
use ks_common::signer::{fake::FakeSigner, Signer};
use pkcs11ks::mechanism::{ecdsa_input, SignMechanism};
use pkcs11ks::token::{Output, SignerFactory, Token};

const RSA_CERT: &str = include_str!("../src/testdata/rsa2048.pem");

#[test]
fn sha1_is_signed_only_after_the_opt_in() {
    let key = ks_common::KeyEntry::from_pem("key1", "", RSA_CERT).expect("test certificate");
    let fake = Arc::new(FakeSigner::new(vec![key]));
    let backend = Arc::clone(&fake);
    let factory: SignerFactory = Arc::new(move || Ok(Arc::clone(&backend) as Arc<dyn Signer>));
    let t = Token::new(factory);
    let s = t.open_session(false).expect("session");
    let sha1_di = digest_info(HashAlg::Sha1, &[9; 20]).expect("SHA-1 DigestInfo");

    // Default policy: refused with CKR_DATA_INVALID (CKM_RSA_PKCS) / CKR_DATA_LEN_RANGE
    // (CKM_ECDSA), nothing sent.
    t.sign_init(s, Some(SignMechanism::RsaPkcsRaw), 1)
        .expect("init");
    assert_eq!(t.sign(s, &sha1_di, Some(256)), Err(CKR_DATA_INVALID));
    assert_eq!(
        ecdsa_input(EcCurve::P384, &[9; 20]),
        Err(CKR_DATA_LEN_RANGE)
    );
    assert_eq!(fake.sign_calls(), 0);

    // Opted in: the same calls sign, and the SHA-1 digest travels as it is (not padded).
    set_allow_sha1(true);
    t.sign_init(s, Some(SignMechanism::RsaPkcsRaw), 1)
        .expect("init");
    assert!(matches!(
        t.sign(s, &sha1_di, Some(256)),
        Ok(Output::Done(_))
    ));
    assert_eq!(
        fake.last(),
        Some(SignRequest::RsaPkcs1DigestInfo {
            digest_info: sha1_di.clone()
        })
    );
    assert_eq!(ecdsa_input(EcCurve::P384, &[9; 20]), Ok(vec![9; 20]));
    // Still no other length.
    assert_eq!(
        ecdsa_input(EcCurve::P384, &[9; 19]),
        Err(CKR_DATA_LEN_RANGE)
    );

    // And off again.
    set_allow_sha1(false);
    t.sign_init(s, Some(SignMechanism::RsaPkcsRaw), 1)
        .expect("init");
    assert_eq!(t.sign(s, &sha1_di, Some(256)), Err(CKR_DATA_INVALID));
}
