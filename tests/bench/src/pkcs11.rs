//! libpkcs11ks.so driven by a Rust PKCS#11 application (the `cryptoki` crate):
//! batches (one session per thread) and the cold start.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use serde_json::{json, Value};

fn err(what: &str) -> impl Fn(cryptoki::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn private_key(session: &Session, keyid: &str) -> Result<ObjectHandle, String> {
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(keyid.as_bytes().to_vec()),
        ])
        .map_err(err("C_FindObjects"))?;
    found
        .first()
        .copied()
        .ok_or_else(|| format!("no private key labelled {keyid} on the token"))
}

/// The mechanism and input the module gets for one SHA-256 signature: the
/// same sign order the floor sends.
fn mechanism_and_input(rsa: bool, digest: &[u8]) -> (Mechanism<'static>, Vec<u8>) {
    if rsa {
        (Mechanism::RsaPkcs, crate::digest_info_sha256(digest))
    } else {
        (Mechanism::Ecdsa, digest.to_vec())
    }
}

fn open(module: &Path) -> Result<(Pkcs11, Slot), String> {
    let p = Pkcs11::new(module).map_err(err("loading the module"))?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err("C_Initialize"))?;
    let slot = *p
        .get_slots_with_token()
        .map_err(err("C_GetSlotList"))?
        .first()
        .ok_or("no slot with a token")?;
    Ok((p, slot))
}

/// `count` signatures split over `threads` threads with one session each,
/// after one warm-up signature per session. Returns the batch figures.
pub fn batch(
    module: &Path,
    keyid: &str,
    rsa: bool,
    count: usize,
    threads: usize,
) -> Result<Value, String> {
    let (p, slot) = open(module)?;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let share = count / threads + usize::from(t < count % threads);
        let p = p.clone();
        let barrier = barrier.clone();
        let keyid = keyid.to_string();
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            let (mech, input) = mechanism_and_input(rsa, &crate::bench_digest());
            let prepared = (|| {
                let session = p.open_ro_session(slot).map_err(err("C_OpenSession"))?;
                let key = private_key(&session, &keyid)?;
                session
                    .sign(&mech, key, &input)
                    .map_err(err("warm-up C_Sign"))?;
                Ok::<_, String>((session, key))
            })();
            barrier.wait();
            let (session, key) = prepared?;
            for _ in 0..share {
                session.sign(&mech, key, &input).map_err(err("C_Sign"))?;
            }
            Ok(())
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

/// A fresh process's first signature: dlopen (+ C_GetInterface), C_Initialize,
/// then slot, session, key lookup and one signature (the key list and the sign
/// order go over the network here).
pub fn cold(module: &Path, keyid: &str, rsa: bool) -> Result<Value, String> {
    let digest = crate::bench_digest();
    let (mech, input) = mechanism_and_input(rsa, &digest);
    let t0 = Instant::now();
    let p = Pkcs11::new(module).map_err(err("loading the module"))?;
    let t_loaded = t0.elapsed();
    let i0 = Instant::now();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(err("C_Initialize"))?;
    let init = i0.elapsed();
    let slot = *p
        .get_slots_with_token()
        .map_err(err("C_GetSlotList"))?
        .first()
        .ok_or("no slot with a token")?;
    let session = p.open_ro_session(slot).map_err(err("C_OpenSession"))?;
    let key = private_key(&session, keyid)?;
    let t_key = t0.elapsed();
    session.sign(&mech, key, &input).map_err(err("C_Sign"))?;
    let first = t0.elapsed();
    Ok(json!({
        "dlopen_ms": crate::measure::ms(t_loaded),
        "c_initialize_ms": crate::measure::ms(init),
        "key_found_ms": crate::measure::ms(t_key),
        "first_signature_ms": crate::measure::ms(first),
    }))
}

/// `count` signatures on one session after `warmup`, with the RSS sampled
/// (see [`crate::rss::track`]).
pub fn memory(
    module: &Path,
    keyid: &str,
    rsa: bool,
    count: usize,
    warmup: usize,
) -> Result<Value, String> {
    let (p, slot) = open(module)?;
    let session = p.open_ro_session(slot).map_err(err("C_OpenSession"))?;
    let key = private_key(&session, keyid)?;
    let (mech, input) = mechanism_and_input(rsa, &crate::bench_digest());
    crate::rss::track(count, warmup, || {
        session
            .sign(&mech, key, &input)
            .map(|_| ())
            .map_err(err("C_Sign"))
    })
}
