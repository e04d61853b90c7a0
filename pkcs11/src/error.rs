//! Results carrying a `CK_RV`, and the one mapping from `ks_common` errors.

use cryptoki_sys::*;
use ks_common::error::{Error, ErrorKind};

/// A PKCS#11 return value other than `CKR_OK`.
pub type Rv = CK_RV;

/// The result type of every core function: `Err` carries the `CK_RV` to return.
pub type Result<T> = std::result::Result<T, Rv>;

/// The `CK_RV` closest to a KeyServer error kind.
pub fn rv_for_kind(kind: ErrorKind) -> Rv {
    match kind {
        ErrorKind::Config => CKR_GENERAL_ERROR,
        ErrorKind::Network | ErrorKind::RateLimited | ErrorKind::BadResponse => CKR_DEVICE_ERROR,
        ErrorKind::VerificationFailed => CKR_DEVICE_ERROR,
        ErrorKind::Auth => CKR_USER_NOT_LOGGED_IN,
        ErrorKind::Forbidden => CKR_KEY_FUNCTION_NOT_PERMITTED,
        ErrorKind::NotFound => CKR_KEY_HANDLE_INVALID,
        ErrorKind::Pending | ErrorKind::Rejected | ErrorKind::Expired | ErrorKind::Exhausted => {
            CKR_FUNCTION_REJECTED
        }
        ErrorKind::InvalidInput => CKR_DATA_INVALID,
        ErrorKind::Unsupported => CKR_MECHANISM_INVALID,
        ErrorKind::Internal => CKR_GENERAL_ERROR,
    }
}

/// Maps a KeyServer error to its `CK_RV`, logging the human reason (which names
/// the key, the operation and what to do) since a `CK_RV` cannot carry it.
pub fn from_common(what: &str, err: &Error) -> Rv {
    let rv = rv_for_kind(err.kind());
    if log::max_level() == log::LevelFilter::Off {
        // No logger yet (e.g. the configuration itself is broken): the reason must
        // still reach the user, on stderr.
        eprintln!("libpkcs11ks: {what}: {err} ({})", rv_name(rv));
    } else {
        log::error!("libpkcs11ks: {what}: {err} ({})", rv_name(rv));
    }
    rv
}

/// A short symbolic name for the codes this module returns (for log lines).
pub fn rv_name(rv: Rv) -> &'static str {
    match rv {
        CKR_OK => "CKR_OK",
        CKR_GENERAL_ERROR => "CKR_GENERAL_ERROR",
        CKR_DEVICE_ERROR => "CKR_DEVICE_ERROR",
        CKR_USER_NOT_LOGGED_IN => "CKR_USER_NOT_LOGGED_IN",
        CKR_KEY_FUNCTION_NOT_PERMITTED => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        CKR_KEY_HANDLE_INVALID => "CKR_KEY_HANDLE_INVALID",
        CKR_FUNCTION_REJECTED => "CKR_FUNCTION_REJECTED",
        CKR_DATA_INVALID => "CKR_DATA_INVALID",
        CKR_MECHANISM_INVALID => "CKR_MECHANISM_INVALID",
        _ => "CKR_*",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_problems_are_rejections() {
        for kind in [
            ErrorKind::Pending,
            ErrorKind::Rejected,
            ErrorKind::Expired,
            ErrorKind::Exhausted,
        ] {
            assert_eq!(rv_for_kind(kind), CKR_FUNCTION_REJECTED);
        }
        assert_eq!(rv_for_kind(ErrorKind::Network), CKR_DEVICE_ERROR);
        assert_eq!(rv_for_kind(ErrorKind::Auth), CKR_USER_NOT_LOGGED_IN);
        assert_eq!(
            rv_for_kind(ErrorKind::Forbidden),
            CKR_KEY_FUNCTION_NOT_PERMITTED
        );
    }
}
