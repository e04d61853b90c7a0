//! STORE for the `ks` scheme. `ks:` lists one NAME per KeyServer key
//! (`ks:key1`, with a description) so a person can tell the keys apart and a
//! caller can open each one; `ks:<keyid>` yields the key's private-key
//! reference, its public key and its certificate, filtered by the caller's
//! expected type. A caller that asks `ks:` for keys, public keys or
//! certificates (`OSSL_STORE_expect`, `storeutl -keys`/`-certs`) gets those
//! objects of every key directly: a name cannot satisfy that expectation.
//! Searches by alias (the key id) and by name (the certificate subject) narrow
//! either to the keys that match.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use ks_common::error::sanitize_server_text;
use ks_common::{ErrorKind, KeyEntry, PublicKey};

use crate::core::{guard, PResult, ProvCtx, ProvError, Reason};
use crate::dispatch::DISPATCH_END;
use crate::entry;
use crate::ffi::*;
use crate::key::{KeyKind, KeyRef, Remote};
use crate::params::{self, describe, ParamBuilder, ParamTable, END};
use x509_cert::der::Decode;
use x509_cert::name::Name;

/// What a `ks:` URI names.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// `ks:` — every key.
    All,
    /// `ks:<keyid>`.
    Key(String),
}

/// Parses a `ks:` URI. Key ids are `[A-Za-z0-9._-]+`, up to 128 characters.
pub fn parse_uri(uri: &str) -> PResult<Target> {
    let malformed = |why: &str| {
        ProvError::new(
            Reason::BadUri,
            format!("malformed URI {uri:?}: {why}; use ks: to list every key or ks:<keyid>, e.g. ks:key1"),
        )
    };
    let (scheme, rest) = uri.split_once(':').ok_or_else(|| malformed("no scheme"))?;
    if !scheme.eq_ignore_ascii_case("ks") {
        return Err(malformed("the scheme is not ks"));
    }
    if rest.is_empty() {
        return Ok(Target::All);
    }
    if rest.len() > 128 {
        return Err(malformed("the key id is too long"));
    }
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(malformed(
            "a key id has only letters, digits, '.', '_' and '-'",
        ));
    }
    Ok(Target::Key(rest.to_string()))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Object {
    /// `ks:<keyid>` as a NAME the caller may open (listing only).
    Name,
    PrivateKey,
    PublicKey,
    Certificate,
}

struct StoreCtx {
    prov: Arc<ProvCtx>,
    keys: Vec<Arc<Remote>>,
    /// Opened as `ks:` (every key) rather than `ks:<keyid>`.
    listing: bool,
    expect: u32,
    /// Search by alias: only this key id.
    alias: Option<String>,
    /// Search by name: only keys whose certificate subject is this (see [`name_key`]).
    subject: Option<String>,
    next: usize,
    failed: bool,
}

/// A subject in the form searches compare: rendered from the DER (so a
/// PrintableString and a UTF8String with the same text are equal), case and
/// runs of white space ignored, as OpenSSL's canonical name comparison does.
fn name_key(rendered: &str) -> String {
    rendered
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

const NAMES: [Object; 1] = [Object::Name];
const OBJECTS: [Object; 3] = [Object::PrivateKey, Object::PublicKey, Object::Certificate];

/// What the store yields per key: a listing without an object-type
/// expectation yields names, anything else the key's objects of that type.
/// `expect` cannot change once loading started (OpenSSL refuses it), so this
/// is stable over a store's life.
fn per_key(listing: bool, expect: u32) -> &'static [Object] {
    if listing && matches!(expect, 0 | OSSL_STORE_INFO_NAME) {
        &NAMES
    } else {
        &OBJECTS
    }
}

fn wanted(expect: u32, o: Object) -> bool {
    match expect {
        0 => true,
        OSSL_STORE_INFO_NAME => o == Object::Name,
        OSSL_STORE_INFO_PKEY => o == Object::PrivateKey,
        OSSL_STORE_INFO_PUBKEY => o == Object::PublicKey,
        OSSL_STORE_INFO_CERT => o == Object::Certificate,
        _ => false,
    }
}

impl StoreCtx {
    /// Whether a key passes the search (if any).
    fn selected(&self, entry: &KeyEntry) -> bool {
        self.alias.as_deref().is_none_or(|a| a == entry.keyid)
            && self
                .subject
                .as_deref()
                .is_none_or(|s| s == name_key(&entry.subject_string()))
    }

    /// Every (key index, object) the store yields, in order.
    fn plan(&self) -> impl Iterator<Item = (usize, Object)> + '_ {
        let objects = per_key(self.listing, self.expect);
        (0..self.keys.len())
            .flat_map(move |k| objects.iter().map(move |&o| (k, o)))
            .filter(|&(_, o)| wanted(self.expect, o))
    }

    /// The next (key, object) to emit, counting `self.next` over the plan.
    fn advance(&mut self) -> Option<(Arc<Remote>, Object)> {
        let (k, o) = self.plan().nth(self.next)?;
        self.next += 1;
        Some((Arc::clone(&self.keys[k]), o))
    }

    fn at_eof(&self) -> bool {
        self.failed || self.plan().nth(self.next).is_none()
    }
}

/// The NAME entry's description: type and size, certificate subject and the
/// server's key info, made safe for a terminal (a server's text may carry
/// escape sequences) and kept on one line, as storeutl prints it under the name.
fn key_description(entry: &KeyEntry) -> String {
    let size = match &entry.public_key {
        PublicKey::Rsa { .. } => format!("RSA {} bits", entry.public_key.bits()),
        PublicKey::Ec { curve, .. } => format!("EC {}", curve.name()),
    };
    let mut parts = vec![size];
    let subject = sanitize_server_text(&entry.subject_string(), 200);
    if !subject.is_empty() {
        parts.push(format!("subject {subject}"));
    }
    let info = sanitize_server_text(&entry.keyinfo, 200);
    if !info.is_empty() {
        parts.push(format!("info \"{info}\""));
    }
    parts.join(", ")
}

fn open(prov: Arc<ProvCtx>, uri: &str) -> PResult<StoreCtx> {
    let target = parse_uri(uri)?;
    let signer = prov.signer()?;
    let listing = target == Target::All;
    let keys: Vec<Arc<Remote>> = match target {
        Target::All => signer
            .keys()?
            .iter()
            .map(|e| {
                Arc::new(Remote {
                    prov: Arc::clone(&prov),
                    entry: Arc::new(e.clone()),
                })
            })
            .collect(),
        Target::Key(id) => vec![Arc::new(Remote {
            prov: Arc::clone(&prov),
            entry: Arc::new(signer.key(&id)?),
        })],
    };
    Ok(StoreCtx {
        prov,
        keys,
        listing,
        expect: 0,
        alias: None,
        subject: None,
        next: 0,
        failed: false,
    })
}

unsafe extern "C" fn store_open(provctx: *mut c_void, uri: *const c_char) -> *mut c_void {
    if provctx.is_null() || uri.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: provctx is the Arc<ProvCtx> pointer from our init; we take a
    // new strong count for the store context.
    let prov = unsafe {
        Arc::increment_strong_count(provctx as *const ProvCtx);
        Arc::from_raw(provctx as *const ProvCtx)
    };
    let p2 = Arc::clone(&prov);
    guard(Some(&p2), "ks_store_open", ptr::null_mut(), || {
        // SAFETY: OpenSSL passes a NUL-terminated URI.
        let uri = unsafe { CStr::from_ptr(uri) }
            .to_string_lossy()
            .into_owned();
        match open(Arc::clone(&prov), &uri) {
            Ok(ctx) => Box::into_raw(Box::new(ctx)) as *mut c_void,
            Err(e) => {
                prov.raise("ks_store_open", &e);
                ptr::null_mut()
            }
        }
    })
}

/// # Safety
/// `ctx` must be null or made by `store_open`.
unsafe fn storectx<'a>(ctx: *mut c_void) -> Option<&'a mut StoreCtx> {
    // SAFETY: forwarded contract.
    unsafe { (ctx as *mut StoreCtx).as_mut() }
}

unsafe extern "C" fn store_load(
    ctx: *mut c_void,
    object_cb: OSSL_CALLBACK,
    object_cbarg: *mut c_void,
    _pw_cb: OSSL_PASSPHRASE_CALLBACK,
    _pw_cbarg: *mut c_void,
) -> c_int {
    // SAFETY: OpenSSL passes our store context.
    let Some(s) = (unsafe { storectx(ctx) }) else {
        return 0;
    };
    let prov = Arc::clone(&s.prov);
    guard(Some(&prov), "ks_store_load", 0, || {
        let Some(cb) = object_cb else { return 0 };
        let Some((remote, object)) = s.advance() else {
            return 0;
        };
        let entry = &remote.entry;
        let kind = KeyKind::of(&entry.public_key);
        let desc = if entry.keyinfo.is_empty() {
            entry.keyid.clone()
        } else {
            format!("{}: {}", entry.keyid, entry.keyinfo)
        };
        let keyref;
        let mut b = match object {
            // OpenSSL reads a NAME's data as a UTF-8 string (store_result.c).
            Object::Name => ParamBuilder::new()
                .int(OSSL_OBJECT_PARAM_TYPE, OSSL_OBJECT_NAME as i32)
                .utf8(OSSL_OBJECT_PARAM_DATA, &format!("ks:{}", entry.keyid))
                .utf8(OSSL_OBJECT_PARAM_DESC, &key_description(entry)),
            Object::PrivateKey | Object::PublicKey => {
                keyref = KeyRef::new(&remote, object == Object::PrivateKey);
                ParamBuilder::new()
                    .int(OSSL_OBJECT_PARAM_TYPE, OSSL_OBJECT_PKEY as i32)
                    .utf8(OSSL_OBJECT_PARAM_DATA_TYPE, kind.name())
                    .octets(OSSL_OBJECT_PARAM_REFERENCE, keyref.as_bytes())
                    .utf8(OSSL_OBJECT_PARAM_DESC, &desc)
            }
            Object::Certificate => ParamBuilder::new()
                .int(OSSL_OBJECT_PARAM_TYPE, OSSL_OBJECT_CERT as i32)
                .octets(OSSL_OBJECT_PARAM_DATA, &entry.certificate_der)
                .utf8(OSSL_OBJECT_PARAM_DESC, &desc),
        };
        let arr = b.build();
        // SAFETY: `arr` is terminated and outlives the callback; `remote`
        // (which the reference points to) is alive until we return.
        let r = unsafe { cb(arr.as_ptr(), object_cbarg) };
        if r == 0 {
            s.failed = true;
        }
        r
    })
}

unsafe extern "C" fn store_eof(ctx: *mut c_void) -> c_int {
    // SAFETY: OpenSSL passes our store context.
    match unsafe { storectx(ctx) } {
        Some(s) => guard(None, "ks_store_eof", 1, || c_int::from(s.at_eof())),
        None => 1,
    }
}

unsafe extern "C" fn store_close(ctx: *mut c_void) -> c_int {
    guard(None, "ks_store_close", 0, || {
        if !ctx.is_null() {
            // SAFETY: made by Box::into_raw in store_open; closed once.
            drop(unsafe { Box::from_raw(ctx as *mut StoreCtx) });
        }
        1
    })
}

/// Applies `OSSL_STORE_expect` and `OSSL_STORE_find` (before the first load).
/// A bad value changes nothing.
///
/// # Safety
/// `params` is null or an `OSSL_PARAM` array terminated as OpenSSL's are.
unsafe fn set_params(s: &mut StoreCtx, params: *const OSSL_PARAM) -> PResult<()> {
    let bad = |what: &str| ProvError::new(ErrorKind::InvalidInput, what.to_string());
    // Parameters we do not use (properties, ...) are accepted and ignored.
    // SAFETY: forwarded contract (the same for the look-ups below).
    let expect = match unsafe { params::locate(params, OSSL_STORE_PARAM_EXPECT) } {
        None => s.expect,
        Some(p) => match p.get_i64() {
            Some(v) if (0..=i64::from(OSSL_STORE_INFO_CRL)).contains(&v) => v as u32,
            _ => return Err(bad("the expected object type is not one OpenSSL defines")),
        },
    };
    // SAFETY: as above.
    let alias = match unsafe { params::locate(params, OSSL_STORE_PARAM_ALIAS) } {
        None => s.alias.clone(),
        Some(p) => Some(
            p.get_str()
                .ok_or_else(|| bad("the alias to search for is not a UTF-8 string"))?,
        ),
    };
    // SAFETY: as above.
    let subject = match unsafe { params::locate(params, OSSL_STORE_PARAM_SUBJECT) } {
        None => s.subject.clone(),
        Some(p) => {
            let name = p
                .get_octets()
                .and_then(|der| Name::from_der(&der).ok())
                .ok_or_else(|| bad("the subject to search for is not a DER X.509 name"))?;
            Some(name_key(&name.to_string()))
        }
    };
    s.expect = expect;
    s.alias = alias;
    s.subject = subject;
    // A search comes before the first load (OpenSSL refuses it after), so
    // narrowing the keys here is narrowing what the store yields.
    let keys = std::mem::take(&mut s.keys);
    s.keys = keys.into_iter().filter(|k| s.selected(&k.entry)).collect();
    Ok(())
}

unsafe extern "C" fn store_set_ctx_params(ctx: *mut c_void, params: *const OSSL_PARAM) -> c_int {
    // SAFETY: OpenSSL passes our store context.
    let Some(s) = (unsafe { storectx(ctx) }) else {
        return 0;
    };
    let prov = Arc::clone(&s.prov);
    guard(Some(&prov), "ks_store_set_ctx_params", 0, || {
        // SAFETY: OpenSSL passes a terminated array (or null).
        match unsafe { set_params(s, params) } {
            Ok(()) => 1,
            Err(e) => {
                prov.raise("ks_store_set_ctx_params", &e);
                0
            }
        }
    })
}

// SUBJECT and ALIAS here are what OSSL_STORE_supports_search() looks for.
static STORE_SETTABLE: ParamTable<4> = ParamTable([
    describe(OSSL_STORE_PARAM_EXPECT, OSSL_PARAM_INTEGER),
    describe(OSSL_STORE_PARAM_SUBJECT, OSSL_PARAM_OCTET_STRING),
    describe(OSSL_STORE_PARAM_ALIAS, OSSL_PARAM_UTF8_STRING),
    END,
]);

unsafe extern "C" fn store_settable_ctx_params(_provctx: *mut c_void) -> *const OSSL_PARAM {
    STORE_SETTABLE.as_ptr()
}

/// The `ks` store's dispatch table.
pub static KS_STORE: [OSSL_DISPATCH; 7] = [
    entry!(OSSL_FUNC_STORE_OPEN, OSSL_FUNC_store_open_fn, store_open),
    entry!(OSSL_FUNC_STORE_LOAD, OSSL_FUNC_store_load_fn, store_load),
    entry!(OSSL_FUNC_STORE_EOF, OSSL_FUNC_store_eof_fn, store_eof),
    entry!(OSSL_FUNC_STORE_CLOSE, OSSL_FUNC_store_close_fn, store_close),
    entry!(
        OSSL_FUNC_STORE_SET_CTX_PARAMS,
        OSSL_FUNC_store_set_ctx_params_fn,
        store_set_ctx_params
    ),
    entry!(
        OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
        OSSL_FUNC_store_settable_ctx_params_fn,
        store_settable_ctx_params
    ),
    DISPATCH_END,
];

#[cfg(test)]
mod tests {
    use super::*;
    use ks_common::signer::fake::FakeSigner;
    use ks_common::EcCurve;

    fn rsa(bits: usize) -> PublicKey {
        PublicKey::Rsa {
            n: vec![0x80; bits / 8],
            e: vec![1, 0, 1],
        }
    }

    fn ec(curve: EcCurve) -> PublicKey {
        PublicKey::Ec {
            curve,
            point: vec![],
        }
    }

    fn store(uri: &str, expect: u32) -> StoreCtx {
        let keys = vec![
            crate::key::test_entry("key1", rsa(2048)),
            crate::key::test_entry("key2", ec(EcCurve::P256)),
            crate::key::test_entry("key3", rsa(3072)),
        ];
        let prov = Arc::new(ProvCtx::detached_with(Arc::new(FakeSigner::new(keys))));
        let mut s = open(prov, uri).expect("opens");
        s.expect = expect;
        s
    }

    /// Everything the store yields, as (keyid, object), checking eof on the way.
    fn drain(s: &mut StoreCtx) -> Vec<(String, Object)> {
        let mut out = Vec::new();
        while !s.at_eof() {
            let (remote, o) = s.advance().expect("not at eof, so an object");
            out.push((remote.entry.keyid.clone(), o));
        }
        assert!(s.advance().is_none(), "nothing after eof");
        out
    }

    fn pairs(list: &[(&str, Object)]) -> Vec<(String, Object)> {
        list.iter().map(|(k, o)| (k.to_string(), *o)).collect()
    }

    #[test]
    fn listing_yields_one_name_per_key() {
        let want = pairs(&[
            ("key1", Object::Name),
            ("key2", Object::Name),
            ("key3", Object::Name),
        ]);
        assert_eq!(drain(&mut store("ks:", 0)), want);
        assert_eq!(drain(&mut store("ks:", OSSL_STORE_INFO_NAME)), want);
    }

    #[test]
    fn listing_with_an_object_expectation_yields_those_objects() {
        assert_eq!(
            drain(&mut store("ks:", OSSL_STORE_INFO_CERT)),
            pairs(&[
                ("key1", Object::Certificate),
                ("key2", Object::Certificate),
                ("key3", Object::Certificate),
            ])
        );
        assert_eq!(
            drain(&mut store("ks:", OSSL_STORE_INFO_PKEY)).len(),
            3,
            "one private key each"
        );
        assert!(drain(&mut store("ks:", OSSL_STORE_INFO_CRL)).is_empty());
    }

    #[test]
    fn one_key_yields_its_objects_and_never_a_name() {
        assert_eq!(
            drain(&mut store("ks:key2", 0)),
            pairs(&[
                ("key2", Object::PrivateKey),
                ("key2", Object::PublicKey),
                ("key2", Object::Certificate),
            ])
        );
        assert_eq!(
            drain(&mut store("ks:key2", OSSL_STORE_INFO_PUBKEY)),
            pairs(&[("key2", Object::PublicKey)])
        );
        assert!(drain(&mut store("ks:key2", OSSL_STORE_INFO_NAME)).is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_at_open_naming_the_known_ones() {
        let prov = Arc::new(ProvCtx::detached_with(Arc::new(FakeSigner::new(vec![
            crate::key::test_entry("key1", rsa(2048)),
        ]))));
        let e = open(prov, "ks:key9").err().expect("no such key");
        assert!(
            e.message.contains("key9") && e.message.contains("key1"),
            "{}",
            e.message
        );
    }

    fn subject_der(rfc4514: &str) -> Vec<u8> {
        use std::str::FromStr;
        use x509_cert::der::Encode;
        Name::from_str(rfc4514)
            .and_then(|n| n.to_der())
            .expect("a test name")
    }

    /// `ks:` over key1..key3, key1 and key3 with certificate subjects.
    fn store_with_subjects() -> StoreCtx {
        let mut s = store("ks:", 0);
        for (i, subject) in [(0, "CN=key1,O=Example Org"), (2, "CN=key3,O=Example Org")] {
            let mut e = (*s.keys[i].entry).clone();
            e.subject_der = subject_der(subject);
            s.keys[i] = Arc::new(Remote {
                prov: Arc::clone(&s.prov),
                entry: Arc::new(e),
            });
        }
        s
    }

    fn ids(s: &mut StoreCtx) -> Vec<String> {
        drain(s).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn searches_by_alias_and_by_subject_narrow_the_keys() {
        let mut s = store_with_subjects();
        let mut b = ParamBuilder::new().utf8(OSSL_STORE_PARAM_ALIAS, "key2");
        let p = b.build();
        // SAFETY: a terminated array that outlives the call.
        unsafe { set_params(&mut s, p.as_ptr()) }.expect("alias");
        assert_eq!(drain(&mut s), pairs(&[("key2", Object::Name)]));

        // Case and white space aside, the subject must be the certificate's.
        let mut s = store_with_subjects();
        let der = subject_der("CN=KEY3,O=example  org");
        let mut b = ParamBuilder::new()
            .octets(OSSL_STORE_PARAM_SUBJECT, &der)
            .int(OSSL_STORE_PARAM_EXPECT, OSSL_STORE_INFO_CERT as i32);
        let p = b.build();
        // SAFETY: as above.
        unsafe { set_params(&mut s, p.as_ptr()) }.expect("subject");
        assert_eq!(drain(&mut s), pairs(&[("key3", Object::Certificate)]));

        let mut s = store_with_subjects();
        let der = subject_der("CN=key9,O=Example Org");
        let mut b = ParamBuilder::new().octets(OSSL_STORE_PARAM_SUBJECT, &der);
        let p = b.build();
        // SAFETY: as above.
        unsafe { set_params(&mut s, p.as_ptr()) }.expect("subject");
        assert!(ids(&mut s).is_empty());
    }

    #[test]
    fn a_bad_search_or_expectation_is_refused_and_changes_nothing() {
        let mut s = store_with_subjects();
        let mut b = ParamBuilder::new().utf8(OSSL_STORE_PARAM_ALIAS, "key1");
        let p = b.build();
        // SAFETY: a terminated array that outlives the call.
        unsafe { set_params(&mut s, p.as_ptr()) }.expect("alias");
        for bad in [
            ParamBuilder::new()
                .utf8(OSSL_STORE_PARAM_ALIAS, "key3")
                .octets(OSSL_STORE_PARAM_SUBJECT, b"not DER"),
            ParamBuilder::new()
                .octets(OSSL_STORE_PARAM_SUBJECT, &subject_der("CN=key3"))
                .int(OSSL_STORE_PARAM_EXPECT, 99),
            ParamBuilder::new().int(OSSL_STORE_PARAM_ALIAS, 1),
        ] {
            let mut bad = bad;
            let p = bad.build();
            // SAFETY: as above.
            let e = unsafe { set_params(&mut s, p.as_ptr()) }.expect_err("refused");
            assert_eq!(e.reason, Reason::Kind(ErrorKind::InvalidInput));
        }
        assert_eq!(
            (s.expect, s.alias.as_deref(), s.subject.as_deref()),
            (0, Some("key1"), None)
        );
        assert_eq!(ids(&mut s), ["key1"]);
    }

    #[test]
    fn descriptions_say_type_size_subject_and_info_on_one_safe_line() {
        let mut e = crate::key::test_entry("key4", ec(EcCurve::P384));
        assert_eq!(key_description(&e), "EC P-384");
        e.keyinfo = "HSM slot 2\n\x1b[31mred\u{202e}".into();
        let d = key_description(&e);
        assert_eq!(d, "EC P-384, info \"HSM slot 2 [31mred\"");
        let e = crate::key::test_entry("key6", rsa(4096));
        assert_eq!(key_description(&e), "RSA 4096 bits");
    }

    #[test]
    fn uris() {
        assert_eq!(parse_uri("ks:").ok(), Some(Target::All));
        assert_eq!(parse_uri("ks:key1").ok(), Some(Target::Key("key1".into())));
        assert_eq!(
            parse_uri("KS:key-2.a_b").ok(),
            Some(Target::Key("key-2.a_b".into()))
        );
        for bad in [
            "ks:/etc/passwd",
            "ks:a b",
            "file:key1",
            "key1",
            "ks:%00",
            "ks://key1",
        ] {
            let e = parse_uri(bad).expect_err(bad);
            assert_eq!(e.reason, Reason::BadUri);
            assert!(!e.message.contains('\n'));
        }
    }
}
