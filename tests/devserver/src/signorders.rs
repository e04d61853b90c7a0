//! Sign orders (API.md §6): input validation per key type and the signature.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::keyring::KeyEntry;
use crate::keys::{parse_digest_info, HashAlg, PrivateKey};
use crate::util::decode_hex;

/// Minimum description length (the real server refuses shorter ones).
pub const MIN_DESCRIPTION: usize = 8;
/// Longest hex input accepted (a DigestInfo of SHA-512 is 83 bytes).
pub const MAX_INPUT_HEX: usize = 512;
/// Longest requestid.
pub const MAX_REQUESTID: usize = 128;

/// The body of `POST /api/signorders`. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct SignOrderRequest {
    /// Operation id.
    pub operationid: String,
    /// Key id.
    pub keyid: String,
    /// Hex input.
    pub inputdata: String,
    /// Must be `hex`.
    pub inputformat: String,
    /// `digestinfo` | `none` | `pss`.
    pub inputpadding: String,
    /// `asn1` | `p1363`.
    pub signatureformat: String,
    /// At least 8 characters.
    pub description: String,
    /// PSS only.
    #[serde(default)]
    pub hashalgorithm: Option<String>,
    /// PSS only.
    #[serde(default)]
    pub saltlength: Option<u64>,
    /// Idempotency key (Extension).
    #[serde(default)]
    pub requestid: Option<String>,
}

/// A validated signing job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// RSA PKCS#1 v1.5 over a DigestInfo.
    Pkcs1(Vec<u8>),
    /// RSA-PSS.
    Pss(HashAlg, usize, Vec<u8>),
    /// ECDSA; `true` for DER output.
    Ecdsa(Vec<u8>, bool),
}

impl SignOrderRequest {
    /// Checks what does not depend on the key.
    pub fn validate_basic(&self) -> ApiResult<()> {
        if self.operationid.is_empty() || self.operationid.len() > 128 {
            return Err(ApiError::invalid("operationid must be 1 to 128 characters"));
        }
        if self.keyid.is_empty() || self.keyid.len() > 128 {
            return Err(ApiError::invalid("keyid must be 1 to 128 characters"));
        }
        if self.inputformat != "hex" {
            return Err(ApiError::invalid(format!(
                "inputformat {:?} is not supported; use \"hex\"",
                self.inputformat
            )));
        }
        let n = self.description.chars().count();
        if n < MIN_DESCRIPTION {
            return Err(ApiError::invalid(format!(
                "description must be at least {MIN_DESCRIPTION} characters (got {n})"
            )));
        }
        if n > crate::operations::MAX_DESCRIPTION {
            return Err(ApiError::invalid("description is too long"));
        }
        crate::operations::check_display_text("description", &self.description)?;
        if self.inputdata.len() > MAX_INPUT_HEX {
            return Err(ApiError::invalid(format!(
                "inputdata is too long ({} hex digits, at most {MAX_INPUT_HEX})",
                self.inputdata.len()
            )));
        }
        decode_hex("inputdata", &self.inputdata).map_err(ApiError::invalid)?;
        if let Some(r) = &self.requestid {
            if r.is_empty() || r.len() > MAX_REQUESTID {
                return Err(ApiError::invalid(format!(
                    "requestid must be 1 to {MAX_REQUESTID} characters"
                )));
            }
        }
        Ok(())
    }

    /// Checks the input against the key type and returns the job.
    pub fn job_for(&self, key: &KeyEntry, allow_sha1: bool) -> ApiResult<Job> {
        let data = decode_hex("inputdata", &self.inputdata).map_err(ApiError::invalid)?;
        let alg = key.spec.algorithm;
        let keyid = &key.spec.id;
        match (alg.is_rsa(), self.inputpadding.as_str()) {
            (true, "digestinfo") => {
                if self.signatureformat != "asn1" {
                    return Err(ApiError::invalid(format!(
                        "signatureformat {:?} is not valid for RSA key {keyid}; use \"asn1\"",
                        self.signatureformat
                    )));
                }
                if let Err(e) = parse_digest_info(&data) {
                    if !(allow_sha1 && is_sha1_digest_info(&data)) {
                        return Err(ApiError::invalid(if is_sha1_digest_info(&data) {
                            "inputdata is a SHA-1 DigestInfo, which this server does not sign (config allow_sha1 = true for legacy pipelines)".to_string()
                        } else {
                            e
                        }));
                    }
                }
                Ok(Job::Pkcs1(data))
            }
            (true, "pss") => {
                if self.signatureformat != "asn1" {
                    return Err(ApiError::invalid(format!(
                        "signatureformat {:?} is not valid for RSA key {keyid}; use \"asn1\"",
                        self.signatureformat
                    )));
                }
                let hash = self
                    .hashalgorithm
                    .as_deref()
                    .and_then(HashAlg::parse)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "inputpadding \"pss\" needs hashalgorithm \"sha256\", \"sha384\" or \"sha512\"",
                        )
                    })?;
                if data.len() != hash.output_len() {
                    return Err(ApiError::invalid(format!(
                        "inputdata is {} bytes but a {hash:?} digest is {}",
                        data.len(),
                        hash.output_len()
                    )));
                }
                let salt = self
                    .saltlength
                    .ok_or_else(|| ApiError::invalid("inputpadding \"pss\" needs saltlength"))?;
                let max = key.key.max_pss_salt(hash).unwrap_or(0);
                if salt as usize > max || salt > u64::from(u32::MAX) {
                    return Err(ApiError::invalid(format!(
                        "saltlength {salt} is too large for key {keyid} with {hash:?} (at most {max})"
                    )));
                }
                Ok(Job::Pss(hash, salt as usize, data))
            }
            (false, "none") => {
                if data.len() == 20 && !allow_sha1 {
                    return Err(ApiError::invalid(
                        "inputdata is 20 bytes (a SHA-1 hash), which this server does not sign (config allow_sha1 = true for legacy pipelines)",
                    ));
                }
                // 20 bytes got here only under allow_sha1 (refused above otherwise).
                if !matches!(data.len(), 20 | 32 | 48 | 64) {
                    return Err(ApiError::invalid(format!(
                        "inputdata is {} bytes; an ECDSA input must be a SHA-256, SHA-384 or SHA-512 hash (32, 48 or 64 bytes)",
                        data.len()
                    )));
                }
                match self.signatureformat.as_str() {
                    "p1363" => Ok(Job::Ecdsa(data, false)),
                    "asn1" => Ok(Job::Ecdsa(data, true)),
                    other => Err(ApiError::invalid(format!(
                        "signatureformat {other:?} is not valid for EC key {keyid}; use \"p1363\" or \"asn1\""
                    ))),
                }
            }
            (true, other) => Err(ApiError::invalid(format!(
                "inputpadding {other:?} is not valid for RSA key {keyid}; use \"digestinfo\" or \"pss\""
            ))),
            (false, other) => Err(ApiError::invalid(format!(
                "inputpadding {other:?} is not valid for EC key {keyid}; use \"none\""
            ))),
        }
    }

    /// A fingerprint of everything that determines the result, so a reused
    /// requestid with a different request is detected.
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{:?}|{:?}",
            self.operationid,
            self.keyid,
            self.inputdata.to_ascii_lowercase(),
            self.inputpadding,
            self.signatureformat,
            self.hashalgorithm,
            self.saltlength
        )
    }

    /// The 201 body.
    pub fn response(&self, signature: &[u8]) -> Value {
        json!({
            "keyid": self.keyid,
            "inputdata": self.inputdata,
            "signatureformat": self.signatureformat,
            "result": hex::encode(signature),
            "operationid": self.operationid,
            "requestid": self.requestid,
        })
    }
}

/// Runs a job (CPU-bound: call from a blocking thread).
pub fn execute(job: &Job, key: &PrivateKey) -> ApiResult<Vec<u8>> {
    let r = match job {
        Job::Pkcs1(di) => key.sign_pkcs1_digest_info(di),
        Job::Pss(hash, salt, digest) => key.sign_pss(*hash, *salt, digest),
        Job::Ecdsa(digest, der) => key
            .sign_ecdsa(digest)
            .map(|(raw, d)| if *der { d } else { raw }),
    };
    r.map_err(ApiError::internal)
}

/// The DER DigestInfo prefix of SHA-1 (RFC 8017 9.2 note 1).
const SHA1_DIGEST_INFO_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// Whether `data` is exactly a DER DigestInfo of a SHA-1 hash.
fn is_sha1_digest_info(data: &[u8]) -> bool {
    data.len() == SHA1_DIGEST_INFO_PREFIX.len() + 20 && data.starts_with(&SHA1_DIGEST_INFO_PREFIX)
}
