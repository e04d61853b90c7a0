//! SIGNATURE for RSA (PKCS#1 v1.5 and PSS) and ECDSA: the message is hashed
//! here (SHA-256/384/512, no other provider needed), the digest is signed on
//! KeyServer, and verification is local.

use std::ffi::{c_char, c_int, c_uchar, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use ks_common::hash::Hasher;
use ks_common::intent::{self, Padding, Salt, SignIntent};
use ks_common::{EcdsaFormat, Error, ErrorKind, HashAlg, PublicKey, SignRequest};

use crate::algid;
use crate::core::{guard, report, PResult, ProvCtx, ProvError, Reason};
use crate::dispatch::DISPATCH_END;
use crate::entry;
use crate::ffi::*;
use crate::key::{KeyData, KeyKind};
use crate::params::{self, describe, ParamTable, END};

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
        self.key
            .as_ref()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "signature operation used before init"))
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

    /// # Safety
    /// `params` must be null or a terminated OSSL_PARAM array.
    unsafe fn set_params(&mut self, params: *const OSSL_PARAM) -> PResult<()> {
        let is_rsa = !matches!(self.key()?.kind, KeyKind::Ec);
        // SAFETY: forwarded contract.
        for p in unsafe { params::iter(params) } {
            let bad = |what: &str| {
                ProvError::new(
                    ErrorKind::InvalidInput,
                    format!("invalid value for signature parameter {what}"),
                )
            };
            match p.key() {
                "digest" => {
                    let name = p.get_str().ok_or_else(|| bad("digest"))?;
                    let h = hash_from_name(&name)?;
                    self.hash = Some(h);
                    if matches!(self.op, Op::DigestSign | Op::DigestVerify) {
                        self.hasher = Some(Hasher::new(h));
                    }
                }
                "pad-mode" if is_rsa => {
                    self.pad = match (p.get_str(), p.get_i64()) {
                        (Some(s), _) if s == "pkcs1" => Pad::Pkcs1,
                        (Some(s), _) if s == "pss" => Pad::Pss,
                        (_, Some(v)) if v == i64::from(RSA_PKCS1_PADDING) => Pad::Pkcs1,
                        (_, Some(v)) if v == i64::from(RSA_PKCS1_PSS_PADDING) => Pad::Pss,
                        _ => {
                            return Err(ProvError::new(
                                ErrorKind::Unsupported,
                                "KeyServer RSA keys sign with pkcs1 or pss padding only",
                            ))
                        }
                    };
                }
                "saltlen" if is_rsa => {
                    let s = p.get_str();
                    self.salt = match s.as_deref() {
                        Some("digest") => Salt::Digest,
                        Some("max") => Salt::Max,
                        Some("auto") => Salt::Auto,
                        Some("auto-digestmax") => Salt::AutoDigestMax,
                        _ => match p.get_i64().ok_or_else(|| bad("saltlen"))? {
                            -1 => Salt::Digest,
                            -2 => Salt::Auto,
                            -3 => Salt::Max,
                            -4 => Salt::AutoDigestMax,
                            n if n >= 0 => Salt::Len(n as usize),
                            _ => return Err(bad("saltlen")),
                        },
                    };
                }
                "mgf1-digest" if is_rsa => {
                    let name = p.get_str().ok_or_else(|| bad("mgf1-digest"))?;
                    self.mgf1 = Some(hash_from_name(&name)?);
                }
                // Anything else (properties, digest-size, ...) does not change
                // what KeyServer does.
                _ => {}
            }
        }
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

    /// # Safety
    /// `params` must be a terminated OSSL_PARAM array.
    unsafe fn get_params(&self, params: *mut OSSL_PARAM) -> PResult<()> {
        // SAFETY: forwarded contract.
        for p in unsafe { params::iter(params) } {
            let ok = match p.key() {
                "algorithm-id" => p.set_octets(&self.algorithm_id()?),
                "digest" => p.set_str(self.effective_hash().facts().openssl_name),
                "digest-size" => p.set_i64(self.effective_hash().output_len() as i64),
                "pad-mode" if p.data_type() == OSSL_PARAM_UTF8_STRING => {
                    p.set_str(if self.pad == Pad::Pss { "pss" } else { "pkcs1" })
                }
                "pad-mode" => p.set_i64(i64::from(if self.pad == Pad::Pss {
                    RSA_PKCS1_PSS_PADDING
                } else {
                    RSA_PKCS1_PADDING
                })),
                "saltlen" => {
                    let (name, num) = match self.salt {
                        Salt::Digest => ("digest".to_string(), -1),
                        Salt::Auto => ("auto".to_string(), -2),
                        Salt::Max => ("max".to_string(), -3),
                        Salt::AutoDigestMax => ("auto-digestmax".to_string(), -4),
                        Salt::Len(n) => (n.to_string(), n as i64),
                    };
                    if p.data_type() == OSSL_PARAM_UTF8_STRING {
                        p.set_str(&name)
                    } else {
                        p.set_i64(num)
                    }
                }
                "mgf1-digest" => p.set_str(
                    self.mgf1
                        .unwrap_or(self.effective_hash())
                        .facts()
                        .openssl_name,
                ),
                _ => true,
            };
            if !ok {
                return Err(ProvError::new(
                    ErrorKind::InvalidInput,
                    format!("cannot return signature parameter {}", p.key()),
                ));
            }
        }
        Ok(())
    }
}

/// Borrows OpenSSL's ctx pointer.
///
/// # Safety
/// `ctx` must be null or a pointer made by `sig_newctx`/`sig_dupctx`.
unsafe fn sigctx<'a>(ctx: *mut c_void) -> Option<&'a mut SigCtx> {
    // SAFETY: forwarded contract.
    unsafe { (ctx as *mut SigCtx).as_mut() }
}

/// Runs `f` on the context, raising any error; 1 on success, 0 otherwise.
fn with_ctx(ctx: *mut c_void, func: &str, f: impl FnOnce(&mut SigCtx) -> PResult<c_int>) -> c_int {
    // SAFETY: OpenSSL passes our ctx.
    let Some(c) = (unsafe { sigctx(ctx) }) else {
        return 0;
    };
    let prov = Arc::clone(&c.prov);
    guard(Some(&prov), func, 0, || {
        let r = f(c);
        report(&prov, func, r).unwrap_or(0)
    })
}

unsafe extern "C" fn sig_newctx(provctx: *mut c_void, _propq: *const c_char) -> *mut c_void {
    guard(None, "signature_newctx", ptr::null_mut(), || {
        if provctx.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: provctx is the Arc<ProvCtx> pointer we returned from init;
        // take a new strong count for this ctx.
        let prov = unsafe {
            Arc::increment_strong_count(provctx as *const ProvCtx);
            Arc::from_raw(provctx as *const ProvCtx)
        };
        Box::into_raw(Box::new(SigCtx {
            prov,
            key: None,
            op: Op::None,
            hash: None,
            hasher: None,
            pad: Pad::Pkcs1,
            salt: Salt::AutoDigestMax,
            mgf1: None,
        })) as *mut c_void
    })
}

unsafe extern "C" fn sig_freectx(ctx: *mut c_void) {
    guard(None, "signature_freectx", (), || {
        if !ctx.is_null() {
            // SAFETY: made by Box::into_raw here; OpenSSL frees it once.
            drop(unsafe { Box::from_raw(ctx as *mut SigCtx) });
        }
    })
}

unsafe extern "C" fn sig_dupctx(ctx: *mut c_void) -> *mut c_void {
    guard(None, "signature_dupctx", ptr::null_mut(), || {
        // SAFETY: OpenSSL passes our ctx.
        match unsafe { sigctx(ctx) } {
            Some(c) => Box::into_raw(Box::new(c.clone())) as *mut c_void,
            None => ptr::null_mut(),
        }
    })
}

unsafe extern "C" fn sig_sign_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_sign_init", |c| {
        c.init(Op::Sign, provkey, params).map(|_| 1)
    })
}

unsafe extern "C" fn sig_verify_init(
    ctx: *mut c_void,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_verify_init", |c| {
        c.init(Op::Verify, provkey, params).map(|_| 1)
    })
}

/// # Safety
/// `p` null (then `len` is 0) or readable for `len` bytes.
unsafe fn bytes<'a>(p: *const c_uchar, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: forwarded contract.
        unsafe { std::slice::from_raw_parts(p, len) }
    }
}

unsafe extern "C" fn sig_sign(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    with_ctx(ctx, "signature_sign", |c| {
        // SAFETY: OpenSSL's buffers, as documented for OSSL_FUNC_signature_sign.
        unsafe { c.sign_digest(sig, siglen, sigsize, bytes(tbs, tbslen)) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_verify(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
    tbs: *const c_uchar,
    tbslen: usize,
) -> c_int {
    with_ctx(ctx, "signature_verify", |c| {
        // SAFETY: OpenSSL's buffers, as documented.
        let (s, t) = unsafe { (bytes(sig, siglen), bytes(tbs, tbslen)) };
        Ok(c_int::from(c.verify_digest(s, t)?))
    })
}

unsafe extern "C" fn sig_digest_sign_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_digest_sign_init", |c| {
        c.digest_init(Op::DigestSign, mdname, provkey, params)
            .map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_verify_init(
    ctx: *mut c_void,
    mdname: *const c_char,
    provkey: *mut c_void,
    params: *const OSSL_PARAM,
) -> c_int {
    with_ctx(ctx, "signature_digest_verify_init", |c| {
        c.digest_init(Op::DigestVerify, mdname, provkey, params)
            .map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_update(
    ctx: *mut c_void,
    data: *const c_uchar,
    len: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_update", |c| {
        let h = c
            .hasher
            .as_mut()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "digest update before digest init"))?;
        // SAFETY: OpenSSL's buffer of len bytes.
        h.update(unsafe { bytes(data, len) });
        Ok(1)
    })
}

unsafe extern "C" fn sig_digest_sign_final(
    ctx: *mut c_void,
    sig: *mut c_uchar,
    siglen: *mut usize,
    sigsize: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_sign_final", |c| {
        let digest = c
            .hasher
            .clone()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "digest final before digest init"))?
            .finalize();
        // SAFETY: OpenSSL's buffers, as documented.
        unsafe { c.sign_digest(sig, siglen, sigsize, &digest) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_digest_verify_final(
    ctx: *mut c_void,
    sig: *const c_uchar,
    siglen: usize,
) -> c_int {
    with_ctx(ctx, "signature_digest_verify_final", |c| {
        let digest = c
            .hasher
            .clone()
            .ok_or_else(|| ProvError::new(ErrorKind::Internal, "digest final before digest init"))?
            .finalize();
        // SAFETY: OpenSSL's buffer.
        Ok(c_int::from(
            c.verify_digest(unsafe { bytes(sig, siglen) }, &digest)?,
        ))
    })
}

unsafe extern "C" fn sig_get_ctx_params(ctx: *mut c_void, params: *mut OSSL_PARAM) -> c_int {
    with_ctx(ctx, "signature_get_ctx_params", |c| {
        // SAFETY: OpenSSL's terminated array.
        unsafe { c.get_params(params) }.map(|_| 1)
    })
}

unsafe extern "C" fn sig_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    with_ctx(ctx, "signature_set_ctx_params", |c| {
        if c.key.is_none() {
            return Ok(1);
        }
        // SAFETY: OpenSSL's terminated array.
        unsafe { c.set_params(params) }.map(|_| 1)
    })
}

static RSA_GETTABLE: ParamTable<7> = ParamTable([
    describe(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, OSSL_PARAM_OCTET_STRING),
    describe(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(
        OSSL_SIGNATURE_PARAM_DIGEST_SIZE,
        OSSL_PARAM_UNSIGNED_INTEGER,
    ),
    describe(OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    END,
]);
static RSA_SETTABLE: ParamTable<8> = ParamTable([
    describe(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_PROPERTIES, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_PAD_MODE, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, OSSL_PARAM_UTF8_STRING),
    describe(
        OSSL_SIGNATURE_PARAM_DIGEST_SIZE,
        OSSL_PARAM_UNSIGNED_INTEGER,
    ),
    END,
]);
static EC_GETTABLE: ParamTable<4> = ParamTable([
    describe(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, OSSL_PARAM_OCTET_STRING),
    describe(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(
        OSSL_SIGNATURE_PARAM_DIGEST_SIZE,
        OSSL_PARAM_UNSIGNED_INTEGER,
    ),
    END,
]);
static EC_SETTABLE: ParamTable<4> = ParamTable([
    describe(OSSL_SIGNATURE_PARAM_DIGEST, OSSL_PARAM_UTF8_STRING),
    describe(OSSL_SIGNATURE_PARAM_PROPERTIES, OSSL_PARAM_UTF8_STRING),
    describe(
        OSSL_SIGNATURE_PARAM_DIGEST_SIZE,
        OSSL_PARAM_UNSIGNED_INTEGER,
    ),
    END,
]);

unsafe extern "C" fn rsa_gettable(_ctx: *mut c_void, _provctx: *mut c_void) -> *const OSSL_PARAM {
    RSA_GETTABLE.as_ptr()
}
unsafe extern "C" fn rsa_settable(_ctx: *mut c_void, _provctx: *mut c_void) -> *const OSSL_PARAM {
    RSA_SETTABLE.as_ptr()
}
unsafe extern "C" fn ec_gettable(_ctx: *mut c_void, _provctx: *mut c_void) -> *const OSSL_PARAM {
    EC_GETTABLE.as_ptr()
}
unsafe extern "C" fn ec_settable(_ctx: *mut c_void, _provctx: *mut c_void) -> *const OSSL_PARAM {
    EC_SETTABLE.as_ptr()
}

macro_rules! signature_table {
    ($name:ident, $gettable:ident, $settable:ident) => {
        /// The dispatch table of one signature algorithm.
        pub static $name: [OSSL_DISPATCH; 18] = [
            entry!(
                OSSL_FUNC_SIGNATURE_NEWCTX,
                OSSL_FUNC_signature_newctx_fn,
                sig_newctx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_FREECTX,
                OSSL_FUNC_signature_freectx_fn,
                sig_freectx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DUPCTX,
                OSSL_FUNC_signature_dupctx_fn,
                sig_dupctx
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SIGN_INIT,
                OSSL_FUNC_signature_sign_init_fn,
                sig_sign_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SIGN,
                OSSL_FUNC_signature_sign_fn,
                sig_sign
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_VERIFY_INIT,
                OSSL_FUNC_signature_verify_init_fn,
                sig_verify_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_VERIFY,
                OSSL_FUNC_signature_verify_fn,
                sig_verify
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
                OSSL_FUNC_signature_digest_sign_init_fn,
                sig_digest_sign_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,
                OSSL_FUNC_signature_digest_sign_update_fn,
                sig_digest_update
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,
                OSSL_FUNC_signature_digest_sign_final_fn,
                sig_digest_sign_final
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,
                OSSL_FUNC_signature_digest_verify_init_fn,
                sig_digest_verify_init
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,
                OSSL_FUNC_signature_digest_verify_update_fn,
                sig_digest_update
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,
                OSSL_FUNC_signature_digest_verify_final_fn,
                sig_digest_verify_final
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,
                OSSL_FUNC_signature_get_ctx_params_fn,
                sig_get_ctx_params
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_gettable_ctx_params_fn,
                $gettable
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
                OSSL_FUNC_signature_set_ctx_params_fn,
                sig_set_ctx_params
            ),
            entry!(
                OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
                OSSL_FUNC_signature_settable_ctx_params_fn,
                $settable
            ),
            DISPATCH_END,
        ];
    };
}

signature_table!(RSA_SIGNATURE, rsa_gettable, rsa_settable);
signature_table!(ECDSA_SIGNATURE, ec_gettable, ec_settable);

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
        let entry = ks_common::KeyEntry {
            keyid: "key1".into(),
            keyinfo: String::new(),
            certificate_der: Vec::new(),
            spki_der: Vec::new(),
            public_key: public.clone(),
            subject_der: Vec::new(),
            issuer_der: Vec::new(),
            serial_der: Vec::new(),
            not_before: std::time::SystemTime::UNIX_EPOCH,
            not_after: std::time::SystemTime::UNIX_EPOCH,
            approvers: None,
            algorithm: None,
        };
        let signer = Arc::new(ks_common::signer::fake::FakeSigner::new(vec![entry.clone()]));
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
