//! The digest policy and this process's SHA-1 opt-in: SHA-256/384/512 are always signed, SHA-1
//! only after the process opted in through `KSC_ALLOW_SHA1` (environment only). Kept apart from
//! [`crate::hash`] so the hash table stays a leaf module.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::KSC_ALLOW_SHA1;
use crate::error::{Error, Result};
use crate::hash::HashAlg;

/// Whether this process opted in to SHA-1 (`KSC_ALLOW_SHA1`, read by
/// `signer::connect` through [`allow_sha1_from_env`]). Off until then.
static ALLOW_SHA1: AtomicBool = AtomicBool::new(false);

/// Sets this process's SHA-1 opt-in (done once by `signer::connect`).
pub fn set_allow_sha1(allow: bool) {
    if allow && !ALLOW_SHA1.swap(true, Ordering::Relaxed) {
        log::warn!(
            "{}=1: SHA-1 digests will be signed in this process (legacy opt-in; SHA-1 is not collision resistant)",
            KSC_ALLOW_SHA1
        );
    } else if !allow {
        ALLOW_SHA1.store(false, Ordering::Relaxed);
    }
}

/// Whether this process signs SHA-1 digests.
pub fn sha1_allowed() -> bool {
    ALLOW_SHA1.load(Ordering::Relaxed)
}

/// Reads `KSC_ALLOW_SHA1` from the environment: only the environment, so the opt-in is a
/// decision of one process (one pipeline step), never of a shared config file. `1`/`true`/`yes`
/// opt in, unset/empty/`0`/`false`/`no` do not, anything else is a configuration error.
pub fn allow_sha1_from_env() -> Result<bool> {
    let var = KSC_ALLOW_SHA1;
    match std::env::var(var) {
        Err(std::env::VarError::NotPresent) => Ok(false),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(var, "is not valid UTF-8")),
        Ok(v) => parse_allow_sha1(&v)
            .ok_or_else(|| Error::config(var, format!("{v:?} is not 1/true/yes or 0/false/no"))),
    }
}

fn parse_allow_sha1(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "" | "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// The digest policy, with the opt-in given: SHA-256/384/512 always, SHA-1 only when
/// `allow_sha1`. The refusal says what to do.
pub fn check_policy(hash: HashAlg, allow_sha1: bool) -> Result<()> {
    if hash == HashAlg::Sha1 && !allow_sha1 {
        return Err(Error::invalid_input(format!(
            "SHA-1 digests are refused by the digest policy (SHA-256/384/512 are signed); a legacy pipeline can opt in with {}=1",
            KSC_ALLOW_SHA1
        )));
    }
    Ok(())
}

/// [`check_policy`] with this process's opt-in ([`sha1_allowed`]); a SHA-1 digest let through
/// is logged at warn, each time.
pub fn check_allowed(hash: HashAlg) -> Result<()> {
    let allow = sha1_allowed();
    check_policy(hash, allow)?;
    if hash == HashAlg::Sha1 {
        log::warn!(
            "signing a SHA-1 digest ({}=1 legacy opt-in)",
            KSC_ALLOW_SHA1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_policy() {
        for h in HashAlg::ALL {
            assert!(check_policy(h, false).is_ok());
        }
        let refused = check_policy(HashAlg::Sha1, false).unwrap_err();
        assert_eq!(refused.kind(), crate::ErrorKind::InvalidInput);
        assert!(refused.message().contains("KSC_ALLOW_SHA1=1"), "{refused}");
        assert!(check_policy(HashAlg::Sha1, true).is_ok());
        assert_eq!(parse_allow_sha1("1"), Some(true));
        assert_eq!(parse_allow_sha1(" YES "), Some(true));
        assert_eq!(parse_allow_sha1(""), Some(false));
        assert_eq!(parse_allow_sha1("no"), Some(false));
        assert_eq!(parse_allow_sha1("sometimes"), None);
    }
}
