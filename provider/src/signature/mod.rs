//! SIGNATURE for RSA (PKCS#1 v1.5 and PSS) and ECDSA: the message is hashed
//! here (SHA-256/384/512, no other provider needed), the digest is signed on
//! KeyServer, and verification is local.
//!
//! Three jobs, three files: this one holds the operation context ([`SigCtx`]) and what it does
//! (init, sign, verify, AlgorithmIdentifier); `ctx_params` translates OSSL_PARAMs into the context's
//! words (digest, padding, salt, MGF1) and back; `dispatch` is the C ABI (the `extern "C"`
//! functions and the two dispatch tables). The signing policy itself is `ks_common::intent`.

use std::ffi::{c_char, c_uchar, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use ks_common::hash::Hasher;
use ks_common::intent::{self, Padding, Salt, SignIntent};
use ks_common::{EcdsaFormat, Error, ErrorKind, HashAlg, PublicKey, SignRequest};

use crate::algid;
use crate::core::{PResult, ProvCtx, ProvError, Reason};
use crate::ffi::*;
use crate::key::{KeyData, KeyKind};

mod ctx_params;
mod dispatch;

pub use dispatch::{ECDSA_SIGNATURE, RSA_SIGNATURE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    None,
    Sign,
    Verify,
    DigestSign,
    DigestVerify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pad {
    Pkcs1,
    Pss,
}

/// One signature operation (`void *ctx` for OpenSSL).
#[derive(Clone)]
pub struct SigCtx {
    prov: Arc<ProvCtx>,
    key: Option<KeyData>,
    op: Op,
    hash: Option<HashAlg>,
    hasher: Option<Hasher>,
    pad: Pad,
    salt: Salt,
    mgf1: Option<HashAlg>,
}

fn hash_from_name(name: &str) -> PResult<HashAlg> {
    HashAlg::from_name_or_oid(name).ok_or_else(|| {
        ProvError::new(
            ErrorKind::Unsupported,
            format!("digest {name} is not supported by KeyServer signing; use SHA-256, SHA-384 or SHA-512"),
        )
    })
}

/// An intent check's error as the provider reports it: its kind, and its message without the
/// general remedy (the message already says what to change).
fn intent_error(e: Error) -> ProvError {
    ProvError::new(e.kind(), e.message())
}

impl SigCtx {
    fn key(&self) -> PResult<&KeyData> {
        self.key.as_ref().ok_or_else(|| {
            ProvError::new(ErrorKind::Internal, "signature operation used before init")
        })
    }

    fn public(&self) -> PResult<&PublicKey> {
        self.key()?.public.as_ref().ok_or_else(|| {
            ProvError::new(
                ErrorKind::InvalidInput,
                "the key has no public part to work with",
            )
        })
    }

    fn init(&mut self, op: Op, provkey: *mut c_void, params: *const OSSL_PARAM) -> PResult<()> {
        if !provkey.is_null() {
            // SAFETY: OpenSSL passes keydata of our keymgmt (same provider).
            let k = unsafe { &*(provkey as *const KeyData) };
            self.key = Some(k.clone());
        }
        let kind = self.key()?.kind;
        self.op = op;
        self.hash = None;
        self.hasher = None;
        self.pad = if kind == KeyKind::RsaPss {
            Pad::Pss
        } else {
            Pad::Pkcs1
        };
        self.salt = Salt::AutoDigestMax;
        self.mgf1 = None;
        if matches!(op, Op::Sign | Op::DigestSign) && self.key()?.remote.is_none() {
            return Err(ProvError::new(
                ErrorKind::InvalidInput,
                "this is a public key; signing needs a ks: private key reference such as ks:key1",
            ));
        }
        // SAFETY: params is null or a terminated array from OpenSSL.
        unsafe { self.set_params(params) }
    }

    fn digest_init(
        &mut self,
        op: Op,
        mdname: *const c_char,
        provkey: *mut c_void,
        params: *const OSSL_PARAM,
    ) -> PResult<()> {
        self.init(op, provkey, params)?;
        let hash = if mdname.is_null() {
            HashAlg::Sha256
        } else {
            // SAFETY: OpenSSL passes a NUL-terminated name.
            let name = unsafe { CStr::from_ptr(mdname) }.to_string_lossy();
            if name.is_empty() {
                HashAlg::Sha256
            } else {
                hash_from_name(&name)?
            }
        };
        self.hash = Some(hash);
        self.hasher = Some(Hasher::new(hash));
        Ok(())
    }

    fn effective_hash(&self) -> HashAlg {
        self.hash.unwrap_or(HashAlg::Sha256)
    }

    /// The caller's words (digest, padding, salt, MGF1) as a signing intent; every check is
    /// in [`ks_common::intent`].
    fn intent<'a>(&self, digest: &'a [u8]) -> SignIntent<'a> {
        SignIntent {
            hash: self.hash,
            input: digest,
            padding: match self.pad {
                Pad::Pkcs1 => Padding::Pkcs1,
                Pad::Pss => Padding::Pss {
                    salt: self.salt,
                    mgf1: self.mgf1,
                },
            },
            format: EcdsaFormat::Der,
        }
    }

    /// The sign requests (more than one only when verifying with an unknown
    /// PSS salt length) for a digest.
    fn requests(&self, digest: &[u8], verifying: bool) -> PResult<Vec<SignRequest>> {
        let public = self.public()?;
        self.intent(digest)
            .requests(public, verifying)
            .map_err(intent_error)
    }

    fn max_size(&self) -> PResult<usize> {
        Ok(self.key()?.max_size())
    }

    /// Signs `digest` on KeyServer into `sig` (or reports the size).
    ///
    /// # Safety
    /// `sig` null or writable for `sigsize` bytes; `siglen` writable.
    unsafe fn sign_digest(
        &self,
        sig: *mut c_uchar,
        siglen: *mut usize,
        sigsize: usize,
        digest: &[u8],
    ) -> PResult<()> {
        if siglen.is_null() {
            return Err(ProvError::new(
                ErrorKind::Internal,
                "no signature length pointer",
            ));
        }
        let max = self.max_size()?;
        if sig.is_null() {
            // SAFETY: siglen checked non-null.
            unsafe { *siglen = max };
            return Ok(());
        }
        let key = self.key()?;
        let remote = key.remote.as_ref().ok_or_else(|| {
            ProvError::new(
                ErrorKind::InvalidInput,
                "this is a public key; signing needs a ks: private key reference",
            )
        })?;
        let request = self.requests(digest, false)?.remove(0);
        let signer = remote.prov.signer()?;
        let signature = signer.sign(&remote.entry.keyid, &request)?;
        if signature.len() > sigsize {
            return Err(ProvError::new(
                Reason::BufferTooSmall,
                format!(
                    "signature of {} bytes does not fit the {sigsize}-byte buffer",
                    signature.len()
                ),
            ));
        }
        // SAFETY: sig is writable for sigsize >= len bytes; siglen non-null.
        unsafe {
            ptr::copy_nonoverlapping(signature.as_ptr(), sig, signature.len());
            *siglen = signature.len();
        }
        Ok(())
    }

    fn verify_digest(&self, signature: &[u8], digest: &[u8]) -> PResult<bool> {
        let public = self.public()?;
        for req in self.requests(digest, true)? {
            if ks_common::verify::verify(public, &req, signature).is_ok() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn algorithm_id(&self) -> PResult<Vec<u8>> {
        let h = self.effective_hash();
        Ok(match self.public()? {
            PublicKey::Ec { .. } => algid::ecdsa(h),
            PublicKey::Rsa { .. } if self.pad == Pad::Pkcs1 => algid::rsa_pkcs1(h),
            PublicKey::Rsa { .. } => {
                let salt = intent::pss_salts(self.salt, h, self.public()?.bits(), false)
                    .map_err(intent_error)?[0];
                algid::rsa_pss(h, salt)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(public: PublicKey) -> SigCtx {
        SigCtx {
            prov: Arc::new(ProvCtx::detached(Default::default())),
            key: Some(KeyData {
                kind: KeyKind::of(&public),
                public: Some(public),
                remote: None,
            }),
            op: Op::Sign,
            hash: None,
            hasher: None,
            pad: Pad::Pkcs1,
            salt: Salt::AutoDigestMax,
            mgf1: None,
        }
    }

    fn rsa2048() -> PublicKey {
        PublicKey::Rsa {
            n: vec![0xc5; 256],
            e: vec![1, 0, 1],
        }
    }

    /// A `ks:` key reference whose provider signs through the fake signer the pkcs11 tests use,
    /// with this key in its catalog.
    fn remote_ctx(public: PublicKey) -> (SigCtx, Arc<ks_common::signer::fake::FakeSigner>) {
        let entry = crate::key::test_entry("key1", public.clone());
        let signer = Arc::new(ks_common::signer::fake::FakeSigner::new(
            vec![entry.clone()],
        ));
        let prov = Arc::new(ProvCtx::detached_with(Arc::clone(&signer) as _));
        let mut c = ctx(public);
        c.prov = Arc::clone(&prov);
        if let Some(k) = c.key.as_mut() {
            k.remote = Some(Arc::new(crate::key::Remote {
                prov,
                entry: Arc::new(entry),
            }));
        }
        (c, signer)
    }

    #[test]
    fn signs_through_the_shared_fake_signer() {
        let (mut c, fake) = remote_ctx(rsa2048());
        c.pad = Pad::Pss;
        let mut sig = vec![0u8; 256];
        let mut len = 0usize;
        // SAFETY: `sig` is writable for its length and `len` is a local.
        unsafe { c.sign_digest(sig.as_mut_ptr(), &mut len, sig.len(), &[3; 32]) }
            .expect("signed through the fake");
        assert_eq!((len, fake.sign_calls()), (256, 1));
        assert_eq!(
            fake.last(),
            Some(SignRequest::RsaPss {
                hash: HashAlg::Sha256,
                salt_len: 32,
                digest: vec![3; 32]
            })
        );
        // A size query signs nothing.
        // SAFETY: null output asks for the size; `len` is a local.
        unsafe { c.sign_digest(ptr::null_mut(), &mut len, 0, &[3; 32]) }.expect("size");
        assert_eq!((len, fake.sign_calls()), (256, 1));
    }

    #[test]
    fn pkcs1_infers_the_hash_or_takes_a_digest_info() {
        let c = ctx(rsa2048());
        let r = c.requests(&[7; 48], false).expect("sha384-sized input");
        assert_eq!(
            r,
            vec![SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha384,
                digest: vec![7; 48]
            }]
        );
        let di = ks_common::hash::digest_info(HashAlg::Sha256, &[1; 32]).expect("digest info");
        let r = c.requests(&di, false).expect("a DigestInfo");
        assert_eq!(r, vec![SignRequest::RsaPkcs1DigestInfo { digest_info: di }]);
        let e = c.requests(&[0; 20], false).expect_err("SHA-1 sized");
        assert_eq!(e.reason, Reason::Kind(ErrorKind::InvalidInput));
    }

    #[test]
    fn pss_salt_lengths() {
        let mut c = ctx(rsa2048());
        c.pad = Pad::Pss;
        c.hash = Some(HashAlg::Sha256);
        let salt = |c: &SigCtx| match c.requests(&[0; 32], false).expect("pss")[0] {
            SignRequest::RsaPss { salt_len, .. } => salt_len,
            _ => unreachable!("a PSS request"),
        };
        c.salt = Salt::Digest;
        assert_eq!(salt(&c), 32);
        c.salt = Salt::Max;
        assert_eq!(salt(&c), 256 - 32 - 2);
        c.salt = Salt::Auto;
        assert_eq!(salt(&c), 256 - 32 - 2);
        c.salt = Salt::Len(20);
        assert_eq!(salt(&c), 20);
        c.salt = Salt::Len(500);
        assert_eq!(
            c.requests(&[0; 32], false).expect_err("too long").reason,
            Reason::Kind(ErrorKind::InvalidInput)
        );
        c.salt = Salt::Digest;
        c.mgf1 = Some(HashAlg::Sha512);
        assert_eq!(
            c.requests(&[0; 32], false).expect_err("mgf1").reason,
            Reason::Kind(ErrorKind::Unsupported)
        );
        // Verifying with "auto" tries the digest length and the maximum.
        c.mgf1 = None;
        c.salt = Salt::Auto;
        assert_eq!(c.requests(&[0; 32], true).expect("pss").len(), 2);
    }

    #[test]
    fn ecdsa_is_der_and_wrong_lengths_are_refused() {
        let mut c = ctx(PublicKey::Ec {
            curve: ks_common::EcCurve::P256,
            point: vec![4; 65],
        });
        let r = c.requests(&[9; 32], false).expect("ecdsa");
        assert_eq!(
            r,
            vec![SignRequest::Ecdsa {
                digest: vec![9; 32],
                format: EcdsaFormat::Der
            }]
        );
        c.hash = Some(HashAlg::Sha384);
        assert_eq!(
            c.requests(&[9; 32], false).expect_err("mismatch").reason,
            Reason::Kind(ErrorKind::InvalidInput)
        );
        assert_eq!(
            c.algorithm_id().expect("algid"),
            algid::ecdsa(HashAlg::Sha384)
        );
        assert_eq!(c.max_size().expect("size"), 72);
    }

    #[test]
    fn public_keys_cannot_sign_and_size_queries_stay_local() {
        let mut c = ctx(rsa2048());
        let mut len = 0usize;
        // SAFETY: a null signature buffer asks for the size only; `len` is writable.
        unsafe { c.sign_digest(ptr::null_mut(), &mut len, 0, &[0; 32]) }.expect("size query");
        assert_eq!(len, 256);
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its length.
        let e = unsafe { c.sign_digest(buf.as_mut_ptr(), &mut len, buf.len(), &[0; 32]) }
            .expect_err("no private half");
        assert_eq!(e.reason, Reason::Kind(ErrorKind::InvalidInput));
        let e = c
            .init(Op::Sign, ptr::null_mut(), ptr::null())
            .expect_err("public key");
        assert!(e.message.contains("ks:"), "{}", e.message);
    }
}
