//! keyserver.so inside this process: OSSL_PROVIDER_load from the modules
//! directory, the `ks:` key loaded once through OSSL_STORE, then
//! EVP_DigestSign(SHA-256) in a loop (one EVP_MD_CTX per thread).

use std::ffi::{c_char, c_int, c_ulong, c_void, CString};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use serde_json::{json, Value};

/// OSSL_STORE_INFO_PKEY from <openssl/store.h>.
const OSSL_STORE_INFO_PKEY: c_int = 4;

// The system libcrypto (libssl-dev); these are stable OpenSSL 3 entry points.
#[link(name = "crypto")]
extern "C" {
    fn OSSL_PROVIDER_set_default_search_path(libctx: *mut c_void, path: *const c_char) -> c_int;
    fn OSSL_PROVIDER_load(libctx: *mut c_void, name: *const c_char) -> *mut c_void;
    fn OSSL_STORE_open(
        uri: *const c_char,
        ui_method: *const c_void,
        ui_data: *mut c_void,
        post_process: *const c_void,
        post_process_data: *mut c_void,
    ) -> *mut c_void;
    fn OSSL_STORE_load(ctx: *mut c_void) -> *mut c_void;
    fn OSSL_STORE_eof(ctx: *mut c_void) -> c_int;
    fn OSSL_STORE_close(ctx: *mut c_void) -> c_int;
    fn OSSL_STORE_INFO_get_type(info: *const c_void) -> c_int;
    fn OSSL_STORE_INFO_get1_PKEY(info: *const c_void) -> *mut c_void;
    fn OSSL_STORE_INFO_free(info: *mut c_void);
    fn EVP_PKEY_free(pkey: *mut c_void);
    fn EVP_MD_CTX_new() -> *mut c_void;
    fn EVP_MD_CTX_free(ctx: *mut c_void);
    fn EVP_DigestSignInit_ex(
        ctx: *mut c_void,
        pctx: *mut *mut c_void,
        mdname: *const c_char,
        libctx: *mut c_void,
        props: *const c_char,
        pkey: *mut c_void,
        params: *const c_void,
    ) -> c_int;
    fn EVP_DigestSign(
        ctx: *mut c_void,
        sig: *mut u8,
        siglen: *mut usize,
        tbs: *const u8,
        tbslen: usize,
    ) -> c_int;
    fn ERR_get_error() -> c_ulong;
    fn ERR_error_string_n(e: c_ulong, buf: *mut c_char, len: usize);
}

/// OpenSSL's error queue as text (emptied).
fn openssl_errors() -> String {
    let mut out = Vec::new();
    loop {
        // SAFETY: no preconditions; pops this thread's error queue.
        let e = unsafe { ERR_get_error() };
        if e == 0 {
            break;
        }
        let mut buf = [0 as c_char; 256];
        // SAFETY: buf is writable for its full length, which is passed.
        unsafe { ERR_error_string_n(e, buf.as_mut_ptr(), buf.len()) };
        // SAFETY: ERR_error_string_n NUL-terminates within len.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        out.push(s.to_string_lossy().into_owned());
    }
    out.join("; ")
}

fn cstr(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// A loaded private key reference (an EVP_PKEY*), shared read-only by threads.
struct Pkey(*mut c_void);
// SAFETY: an EVP_PKEY is reference-counted and safe to use from several
// threads for signing (OpenSSL 3 documents keys as shareable read-only).
unsafe impl Send for Pkey {}
// SAFETY: see above; no thread mutates it.
unsafe impl Sync for Pkey {}

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: we own one reference from OSSL_STORE_INFO_get1_PKEY.
        unsafe { EVP_PKEY_free(self.0) };
    }
}

/// Loads `keyserver` (from `modules_dir`) and `default`.
pub fn load_providers(modules_dir: &Path) -> Result<(), String> {
    let dir = cstr(&modules_dir.to_string_lossy())?;
    // SAFETY: NULL is the default library context; dir is a valid C string.
    if unsafe { OSSL_PROVIDER_set_default_search_path(std::ptr::null_mut(), dir.as_ptr()) } != 1 {
        return Err(format!(
            "set the provider search path: {}",
            openssl_errors()
        ));
    }
    for name in ["keyserver", "default"] {
        let n = cstr(name)?;
        // SAFETY: default library context; n is a valid C string. The
        // provider stays loaded for the life of the process.
        if unsafe { OSSL_PROVIDER_load(std::ptr::null_mut(), n.as_ptr()) }.is_null() {
            return Err(format!("load provider {name}: {}", openssl_errors()));
        }
    }
    Ok(())
}

fn load_private_key(uri: &str) -> Result<Pkey, String> {
    let u = cstr(uri)?;
    // SAFETY: a valid C string, no UI and no post-processing.
    let store = unsafe {
        OSSL_STORE_open(
            u.as_ptr(),
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null_mut(),
        )
    };
    if store.is_null() {
        return Err(format!("OSSL_STORE_open({uri}): {}", openssl_errors()));
    }
    let mut key = None;
    // SAFETY: store is an open OSSL_STORE_CTX until the close below.
    while key.is_none() && unsafe { OSSL_STORE_eof(store) } == 0 {
        // SAFETY: as above.
        let info = unsafe { OSSL_STORE_load(store) };
        if info.is_null() {
            continue;
        }
        // SAFETY: info is a valid OSSL_STORE_INFO we free right after.
        unsafe {
            if OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY {
                let k = OSSL_STORE_INFO_get1_PKEY(info);
                if !k.is_null() {
                    key = Some(Pkey(k));
                }
            }
            OSSL_STORE_INFO_free(info);
        }
    }
    // SAFETY: closes the store opened above.
    unsafe { OSSL_STORE_close(store) };
    key.ok_or_else(|| format!("{uri} yields no private key: {}", openssl_errors()))
}

fn sign_once(ctx: *mut c_void, key: &Pkey, msg: &[u8], sig: &mut [u8]) -> Result<(), String> {
    let md = c"SHA256";
    let mut len = sig.len();
    // SAFETY: ctx is a live EVP_MD_CTX owned by this thread, key a live
    // EVP_PKEY, sig writable for len bytes, msg readable for its length.
    let ok = unsafe {
        EVP_DigestSignInit_ex(
            ctx,
            std::ptr::null_mut(),
            md.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null(),
            key.0,
            std::ptr::null(),
        ) == 1
            && EVP_DigestSign(ctx, sig.as_mut_ptr(), &mut len, msg.as_ptr(), msg.len()) == 1
    };
    if ok && len > 0 {
        Ok(())
    } else {
        Err(format!("EVP_DigestSign: {}", openssl_errors()))
    }
}

/// Loads the providers, the key once, then `count` signatures over `threads`
/// threads (one EVP_MD_CTX each, one warm-up signature each).
pub fn batch(
    modules_dir: &Path,
    keyid: &str,
    count: usize,
    threads: usize,
) -> Result<Value, String> {
    load_providers(modules_dir)?;
    let key = Arc::new(load_private_key(&format!("ks:{keyid}"))?);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let msg = crate::bench_message();
    let mut handles = Vec::new();
    for t in 0..threads {
        let share = count / threads + usize::from(t < count % threads);
        let key = key.clone();
        let barrier = barrier.clone();
        let msg = msg.clone();
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            // SAFETY: allocates a context this thread owns and frees below.
            let ctx = unsafe { EVP_MD_CTX_new() };
            let mut sig = vec![0u8; 1024];
            let warm = if ctx.is_null() {
                Err("EVP_MD_CTX_new failed".to_string())
            } else {
                sign_once(ctx, &key, &msg, &mut sig)
            };
            barrier.wait();
            let mut result = warm;
            for _ in 0..share {
                if result.is_err() {
                    break;
                }
                result = sign_once(ctx, &key, &msg, &mut sig);
            }
            // SAFETY: frees this thread's context (NULL is accepted).
            unsafe { EVP_MD_CTX_free(ctx) };
            result
        }));
    }
    barrier.wait();
    let started = Instant::now();
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some("a signing thread panicked".into()),
        }
    }
    let elapsed = started.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(json!({
        "signatures": count,
        "threads": threads,
        "seconds": elapsed.as_secs_f64(),
        "per_second": count as f64 / elapsed.as_secs_f64(),
    }))
}

/// Loads the providers and the key, then `count` EVP_DigestSign calls on one
/// context after `warmup`, with the RSS sampled (see [`crate::rss::track`]).
pub fn memory(
    modules_dir: &Path,
    keyid: &str,
    count: usize,
    warmup: usize,
) -> Result<Value, String> {
    load_providers(modules_dir)?;
    let key = load_private_key(&format!("ks:{keyid}"))?;
    let msg = crate::bench_message();
    let mut sig = vec![0u8; 1024];
    // SAFETY: allocates a context this function owns and frees below.
    let ctx = unsafe { EVP_MD_CTX_new() };
    if ctx.is_null() {
        return Err("EVP_MD_CTX_new failed".into());
    }
    let result = crate::rss::track(count, warmup, || sign_once(ctx, &key, &msg, &mut sig));
    // SAFETY: frees the context allocated above, no longer used.
    unsafe { EVP_MD_CTX_free(ctx) };
    result
}
