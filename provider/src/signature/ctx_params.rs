//! OSSL_PARAM translation for the signature context: what OpenSSL sets (digest, pad-mode,
//! saltlen, mgf1-digest) becomes the context's words, and what it asks for is answered.

use std::ffi::c_void;

use ks_common::hash::Hasher;
use ks_common::intent::Salt;
use ks_common::ErrorKind;

use super::{hash_from_name, Op, Pad, SigCtx};
use crate::core::{PResult, ProvError};
use crate::ffi::*;
use crate::key::KeyKind;
use crate::params::{self, describe, ParamTable, END};

impl SigCtx {
    /// # Safety
    /// `params` must be null or a terminated OSSL_PARAM array.
    pub(super) unsafe fn set_params(&mut self, params: *const OSSL_PARAM) -> PResult<()> {
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

    /// # Safety
    /// `params` must be a terminated OSSL_PARAM array.
    pub(super) unsafe fn get_params(&self, params: *mut OSSL_PARAM) -> PResult<()> {
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

pub(super) unsafe extern "C" fn rsa_gettable(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    RSA_GETTABLE.as_ptr()
}
pub(super) unsafe extern "C" fn rsa_settable(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    RSA_SETTABLE.as_ptr()
}
pub(super) unsafe extern "C" fn ec_gettable(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    EC_GETTABLE.as_ptr()
}
pub(super) unsafe extern "C" fn ec_settable(
    _ctx: *mut c_void,
    _provctx: *mut c_void,
) -> *const OSSL_PARAM {
    EC_SETTABLE.as_ptr()
}
