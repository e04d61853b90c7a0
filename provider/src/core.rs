//! The provider context: what the core gave us at init, the configuration
//! taken from openssl.cnf, the lazily created KeyServer client, and the one
//! way errors reach OpenSSL's error stack.

use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use ks_common::{Error, ErrorKind, Settings, Signer};

use crate::ffi::{
    OSSL_FUNC_core_get_params_fn, OSSL_FUNC_core_new_error_fn, OSSL_FUNC_core_set_error_debug_fn,
    OSSL_FUNC_core_vset_error_fn, OSSL_CORE_HANDLE, OSSL_DISPATCH, OSSL_FUNC_CORE_GET_PARAMS,
    OSSL_FUNC_CORE_NEW_ERROR, OSSL_FUNC_CORE_SET_ERROR_DEBUG, OSSL_FUNC_CORE_VSET_ERROR,
    OSSL_PARAM, OSSL_PARAM_UTF8_PTR,
};

extern "C" {
    fn ks_shim_raise_error(
        new_error: OSSL_FUNC_core_new_error_fn,
        set_debug: OSSL_FUNC_core_set_error_debug_fn,
        vset: OSSL_FUNC_core_vset_error_fn,
        handle: *const OSSL_CORE_HANDLE,
        reason: u32,
        file: *const c_char,
        line: c_int,
        func: *const c_char,
        message: *const c_char,
    );
}

/// Why a provider call failed: one of the core's [`ErrorKind`]s (the one error vocabulary of
/// all crates), or one of the two reasons only the provider has. The codes put on OpenSSL's
/// error stack (with strings from `get_reason_strings`) start at 100 to stay clear of OpenSSL's
/// library-independent reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A core error kind.
    Kind(ErrorKind),
    /// A `ks:` URI that cannot be parsed.
    BadUri,
    /// The caller's output buffer is too small.
    BufferTooSmall,
}

impl From<ErrorKind> for Reason {
    fn from(kind: ErrorKind) -> Reason {
        Reason::Kind(kind)
    }
}

impl Reason {
    /// The reason code on OpenSSL's error stack (stable: 100 and up, in this order).
    pub const fn code(self) -> u32 {
        match self {
            Reason::Kind(kind) => match kind {
                ErrorKind::Config => 100,
                ErrorKind::Network => 101,
                ErrorKind::Auth => 102,
                ErrorKind::Forbidden => 103,
                ErrorKind::NotFound => 104,
                ErrorKind::Pending => 105,
                ErrorKind::Rejected => 106,
                ErrorKind::Expired => 107,
                ErrorKind::Exhausted => 108,
                ErrorKind::RateLimited => 109,
                ErrorKind::InvalidInput => 110,
                ErrorKind::BadResponse => 111,
                ErrorKind::VerificationFailed => 112,
                ErrorKind::Unsupported => 113,
                ErrorKind::Internal => 114,
            },
            Reason::BadUri => 115,
            Reason::BufferTooSmall => 116,
        }
    }
}

/// (reason, text) pairs for `OSSL_FUNC_PROVIDER_GET_REASON_STRINGS`.
pub const REASON_STRINGS: &[(Reason, &[u8])] = &[
    (
        Reason::Kind(ErrorKind::Config),
        b"keyserver configuration error\0",
    ),
    (Reason::Kind(ErrorKind::Network), b"KeyServer unreachable\0"),
    (
        Reason::Kind(ErrorKind::Auth),
        b"KeyServer authentication failed\0",
    ),
    (
        Reason::Kind(ErrorKind::Forbidden),
        b"not allowed by KeyServer\0",
    ),
    (
        Reason::Kind(ErrorKind::NotFound),
        b"not found on KeyServer\0",
    ),
    (
        Reason::Kind(ErrorKind::Pending),
        b"operation pending approval\0",
    ),
    (Reason::Kind(ErrorKind::Rejected), b"operation rejected\0"),
    (Reason::Kind(ErrorKind::Expired), b"expired\0"),
    (Reason::Kind(ErrorKind::Exhausted), b"key usage exhausted\0"),
    (
        Reason::Kind(ErrorKind::RateLimited),
        b"rate limited by KeyServer\0",
    ),
    (Reason::Kind(ErrorKind::InvalidInput), b"invalid input\0"),
    (
        Reason::Kind(ErrorKind::BadResponse),
        b"bad response from KeyServer\0",
    ),
    (
        Reason::Kind(ErrorKind::VerificationFailed),
        b"signature verification failed\0",
    ),
    (Reason::Kind(ErrorKind::Unsupported), b"unsupported\0"),
    (
        Reason::Kind(ErrorKind::Internal),
        b"internal error in keyserver provider\0",
    ),
    (Reason::BadUri, b"malformed ks: URI\0"),
    (Reason::BufferTooSmall, b"output buffer too small\0"),
];

/// An error of this provider: a reason code and one sentence for a person.
#[derive(Debug)]
pub struct ProvError {
    /// The reason code.
    pub reason: Reason,
    /// What went wrong and what to do, on one line.
    pub message: String,
}

impl ProvError {
    /// A new error.
    pub fn new(reason: impl Into<Reason>, message: impl Into<String>) -> ProvError {
        ProvError {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for ProvError {
    fn from(e: Error) -> ProvError {
        ProvError::new(e.kind(), e.to_string())
    }
}

/// Result type of the provider's internal functions.
pub type PResult<T> = Result<T, ProvError>;

/// Provider parameters read from the openssl.cnf section, and the `KSC_*`
/// setting each one feeds (the environment still wins, see `Config::load`).
pub const CONFIG_PARAMS: &[(&[u8], &str)] = &[
    (b"api_server\0", "KSC_API_SERVER"),
    (b"auth_server\0", "KSC_AUTH_SERVER"),
    (b"ca_file\0", "KSC_CA_FILE"),
    (b"operation_id\0", "KSC_OPERATION_ID"),
    (b"operation_description\0", "KSC_OPERATION_DESCRIPTION"),
    (b"http_client_timeout\0", "KSC_HTTP_CLIENT_TIMEOUT"),
    (b"approval_timeout\0", "KSC_APPROVAL_TIMEOUT"),
    (b"deadline\0", "KSC_DEADLINE"),
    (b"signing_ca_file\0", "KSC_SIGNING_CA_FILE"),
    (b"key_pins\0", "KSC_KEY_PINS"),
    (b"client_id\0", "KSC_CLIENT_ID"),
    (b"config\0", "KSC_CONFIG"),
    (b"log\0", "KSC_LOG"),
];

/// The error functions the core offered.
#[derive(Clone, Copy)]
struct ErrorFns {
    new_error: OSSL_FUNC_core_new_error_fn,
    set_debug: OSSL_FUNC_core_set_error_debug_fn,
    vset: OSSL_FUNC_core_vset_error_fn,
}

/// One provider instance (one per library context that loads us).
pub struct ProvCtx {
    handle: *const OSSL_CORE_HANDLE,
    errors: ErrorFns,
    settings: Settings,
    signer: Mutex<Option<Arc<dyn Signer>>>,
}

// SAFETY: `handle` is an opaque token the core keeps valid for the provider's
// lifetime and accepts from any thread; everything else is Send + Sync.
unsafe impl Send for ProvCtx {}
// SAFETY: as above; the mutable state is behind a Mutex.
unsafe impl Sync for ProvCtx {}

impl ProvCtx {
    /// Builds the context from the core's dispatch table: keeps the error
    /// functions and reads our parameters from the config section. No I/O.
    ///
    /// # Safety
    /// `handle` and `in_` must be what the core passed to `OSSL_provider_init`.
    pub unsafe fn from_core(handle: *const OSSL_CORE_HANDLE, in_: *const OSSL_DISPATCH) -> ProvCtx {
        let mut errors = ErrorFns {
            new_error: None,
            set_debug: None,
            vset: None,
        };
        let mut get_params: OSSL_FUNC_core_get_params_fn = None;
        let mut d = in_;
        // SAFETY: the core's table is terminated by function_id 0 and each
        // entry's function has the type its id documents.
        unsafe {
            while !d.is_null() && (*d).function_id != 0 {
                let f = (*d).function;
                type Generic = Option<unsafe extern "C" fn()>;
                match (*d).function_id as u32 {
                    OSSL_FUNC_CORE_NEW_ERROR => {
                        errors.new_error =
                            std::mem::transmute::<Generic, OSSL_FUNC_core_new_error_fn>(f)
                    }
                    OSSL_FUNC_CORE_SET_ERROR_DEBUG => {
                        errors.set_debug =
                            std::mem::transmute::<Generic, OSSL_FUNC_core_set_error_debug_fn>(f)
                    }
                    OSSL_FUNC_CORE_VSET_ERROR => {
                        errors.vset =
                            std::mem::transmute::<Generic, OSSL_FUNC_core_vset_error_fn>(f)
                    }
                    OSSL_FUNC_CORE_GET_PARAMS => {
                        get_params = std::mem::transmute::<Generic, OSSL_FUNC_core_get_params_fn>(f)
                    }
                    _ => {}
                }
                d = d.add(1);
            }
        }
        let mut settings = Settings::new();
        if let Some(get) = get_params {
            let mut values: Vec<*const c_char> = vec![std::ptr::null(); CONFIG_PARAMS.len()];
            let mut req: Vec<OSSL_PARAM> = CONFIG_PARAMS
                .iter()
                .zip(values.iter_mut())
                .map(|((name, _), slot)| OSSL_PARAM {
                    key: name.as_ptr() as *const c_char,
                    data_type: OSSL_PARAM_UTF8_PTR,
                    data: slot as *mut *const c_char as *mut std::ffi::c_void,
                    data_size: 0,
                    return_size: usize::MAX,
                })
                .collect();
            req.push(crate::params::END);
            // SAFETY: `req` is terminated and its slots outlive the call; the
            // core fills UTF8_PTR entries with pointers into its config data.
            let ok = unsafe { get(handle, req.as_mut_ptr()) };
            if ok == 1 {
                for ((_, env), v) in CONFIG_PARAMS.iter().zip(values.iter()) {
                    if v.is_null() {
                        continue;
                    }
                    // SAFETY: the core set a NUL-terminated string it owns.
                    let s = unsafe { std::ffi::CStr::from_ptr(*v) }.to_string_lossy();
                    settings.insert((*env).to_string(), s.into_owned());
                }
            }
        }
        ProvCtx {
            handle,
            errors,
            settings,
            signer: Mutex::new(None),
        }
    }

    /// A context with no core behind it (unit tests).
    #[cfg(test)]
    pub fn detached(settings: Settings) -> ProvCtx {
        ProvCtx {
            handle: std::ptr::null(),
            errors: ErrorFns {
                new_error: None,
                set_debug: None,
                vset: None,
            },
            settings,
            signer: Mutex::new(None),
        }
    }

    /// A context with no core behind it that signs through `signer` (unit tests).
    #[cfg(test)]
    pub fn detached_with(signer: Arc<dyn Signer>) -> ProvCtx {
        let ctx = ProvCtx::detached(Settings::new());
        if let Ok(mut slot) = ctx.signer.lock() {
            *slot = Some(signer);
        }
        ctx
    }

    /// The settings taken from openssl.cnf.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The KeyServer signer, created on first use (never in provider init) by
    /// [`ks_common::signer::connect`] with the openssl.cnf settings.
    pub fn signer(&self) -> PResult<Arc<dyn Signer>> {
        let mut slot = self.signer.lock().map_err(|_| {
            ProvError::new(ErrorKind::Internal, "keyserver provider state is poisoned")
        })?;
        if let Some(c) = slot.as_ref() {
            return Ok(Arc::clone(c));
        }
        let signer = ks_common::signer::connect(&self.settings)?;
        *slot = Some(Arc::clone(&signer));
        Ok(signer)
    }

    /// Puts `err` on OpenSSL's error stack, naming the provider function.
    pub fn raise(&self, func: &str, err: &ProvError) {
        log::debug!("{func}: {}", err.message);
        let Some(_) = self.errors.vset else { return };
        let msg = CString::new(err.message.replace(['\n', '\r', '\0'], " ")).unwrap_or_default();
        let func = CString::new(func).unwrap_or_default();
        // SAFETY: the function pointers came from the core with these
        // signatures; all strings are NUL-terminated and outlive the call.
        unsafe {
            ks_shim_raise_error(
                self.errors.new_error,
                self.errors.set_debug,
                self.errors.vset,
                self.handle,
                err.reason.code(),
                c"keyserver".as_ptr(),
                0,
                func.as_ptr(),
                msg.as_ptr(),
            )
        };
    }
}

/// Runs `f` so that no panic crosses into C: a panic becomes `fallback`
/// (and an Internal error on the stack when a context is at hand).
pub fn guard<T>(prov: Option<&ProvCtx>, func: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            if let Some(p) = prov {
                p.raise(
                    func,
                    &ProvError::new(
                        Reason::Kind(ErrorKind::Internal),
                        format!(
                            "internal error in {func}; please report it with KSC_LOG=debug output"
                        ),
                    ),
                );
            }
            fallback
        }
    }
}

/// Converts a `PResult<c_int>`-style outcome to OpenSSL's 1/0, raising the error.
pub fn report<T>(prov: &ProvCtx, func: &str, r: PResult<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            prov.raise(func, &e);
            None
        }
    }
}
