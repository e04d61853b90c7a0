//! The per-user cache and the trust store against the real dev KeyServer: a second client
//! ("process") signs with one request, the cache holds no secret and only private files, bad
//! entries are ignored and replaced, a stale certificate or an unknown key refreshes the catalog
//! instead of failing (and never yields a wrong signature), and the system trust store is not
//! read when `KSC_CA_FILE` verifies the server.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ks_common::hash::{self, HashAlg};
use ks_common::http::{join_url, Http, Request, RetryPolicy};
use ks_common::{Config, SignRequest};
use ks_devserver::harness::DevServer;
use support::{client, user_settings, with};

const USER: &str = "orderer-client";

fn pkcs1(data: &[u8]) -> SignRequest {
    SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, data),
    }
}

fn counter(srv: &DevServer, name: &str) -> u64 {
    let v = srv.stats();
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("stats has no {name}: {v}"))
}

/// Requests the server handled while `f` ran (the stats request itself is not counted).
fn requests_during<T>(srv: &DevServer, f: impl FnOnce() -> T) -> (u64, T) {
    let before = counter(srv, "requests");
    let out = f();
    let after = counter(srv, "requests");
    (after - before - 1, out)
}

fn settings(srv: &DevServer, op: &str, cache: &Path) -> Vec<(String, String)> {
    let s = with(user_settings(srv, USER), "KSC_OPERATION_ID", op);
    with(s, "KSC_CACHE", &cache.display().to_string())
}

fn entries(cache: &Path, kind: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(&format!(".{kind}.json")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn second_process_signs_with_one_request_and_the_cache_holds_no_secret() {
    let srv = DevServer::start();
    let op = srv.create_operation(USER, &[("key1", 10)], 300_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let s = settings(&srv, &op, &cache);

    let (first, sig) = requests_during(&srv, || client(&s).sign("key1", &pkcs1(b"one")));
    sig.expect("first signature");
    assert_eq!(first, 3, "token + key list + sign order");
    let tokens = counter(&srv, "tokens");
    let (second, sig) = requests_during(&srv, || client(&s).sign("key1", &pkcs1(b"two")));
    sig.expect("second signature");
    assert_eq!(second, 1, "the sign order only");
    assert_eq!(counter(&srv, "tokens"), tokens, "no new token");

    // Private directory and files; the client secret appears nowhere.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains(&format!("{USER}-secret")),
            "secret in {}",
            f.display()
        );
    }

    // Off switch: every process asks again.
    let off = with(s.clone(), "KSC_CACHE", "off");
    let (n, sig) = requests_during(&srv, || client(&off).sign("key1", &pkcs1(b"three")));
    sig.expect("signature without cache");
    assert_eq!(n, 3);

    // Another secret never picks up the cached token.
    let wrong = with(s.clone(), "KSC_CLIENT_SECRET", "not-the-secret");
    let e = client(&wrong).token().expect_err("wrong secret");
    assert_eq!(e.kind(), ks_common::ErrorKind::Auth);
}

#[test]
fn bad_cache_entries_are_ignored_and_replaced() {
    let srv = DevServer::start();
    let op = srv.create_operation(USER, &[("key1", 10)], 300_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let s = settings(&srv, &op, &cache);
    client(&s).sign("key1", &pkcs1(b"warm")).expect("warm-up");
    let [catalog] = &entries(&cache, "catalog")[..] else {
        panic!("one catalog entry")
    };
    let [token] = &entries(&cache, "token")[..] else {
        panic!("one token entry")
    };

    // Corrupt catalog, token file readable by others: both ignored, both replaced.
    std::fs::write(catalog, b"{not json").unwrap();
    std::fs::set_permissions(token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (n, sig) = requests_during(&srv, || client(&s).sign("key1", &pkcs1(b"a")));
    sig.expect("signature despite bad cache");
    assert_eq!(n, 3, "token and catalog fetched again");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(token), 0o600);
    serde_json::from_slice::<serde_json::Value>(&std::fs::read(catalog).unwrap())
        .expect("catalog entry rewritten");
    let (n, _) = requests_during(&srv, || client(&s).sign("key1", &pkcs1(b"b")).unwrap());
    assert_eq!(n, 1);

    // A cached token the server refuses (its signature altered) costs one 401 and one new
    // token, and is replaced.
    let mut entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(token).unwrap()).unwrap();
    let good = entry["token"].as_str().unwrap().to_string();
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    entry["token"] = format!("{head}.{flipped}{}", &sig[1..]).into();
    std::fs::write(token, serde_json::to_vec(&entry).unwrap()).unwrap();
    client(&s)
        .sign("key1", &pkcs1(b"c"))
        .expect("signature after a refused cached token");
    let now: serde_json::Value = serde_json::from_slice(&std::fs::read(token).unwrap()).unwrap();
    assert_ne!(now["token"], entry["token"], "refused token replaced");
}

#[test]
fn stale_certificate_or_unknown_key_refreshes_and_never_returns_a_wrong_signature() {
    let srv = DevServer::start();
    let op = srv.create_operation(USER, &[("key1", 10), ("key5", 10)], 300_000);
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let s = settings(&srv, &op, &cache);
    let reference = client(&s).key("key1").expect("key1");
    client(&s).sign("key1", &pkcs1(b"warm")).expect("warm-up");
    let [catalog] = &entries(&cache, "catalog")[..] else {
        panic!("one catalog entry")
    };
    let original = std::fs::read(catalog).unwrap();
    let mut entry: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let mut keys: serde_json::Value =
        serde_json::from_str(entry["body"].as_str().unwrap()).unwrap();
    if keys.is_object() {
        keys = keys["keys"].take();
    }
    let list = keys.as_array_mut().expect("key list");

    // key1's certificate replaced by another RSA certificate in the cache.
    let other_rsa = include_str!("data/rsa2048.pem");
    for k in list.iter_mut() {
        if k["keyid"] == "key1" {
            k["certificate"] = other_rsa.into();
        }
    }
    list.retain(|k| k["keyid"] != "key5");
    entry["body"] = keys.to_string().into();
    std::fs::write(catalog, serde_json::to_vec(&entry).unwrap()).unwrap();

    let (n, sig) = requests_during(&srv, || {
        let c = client(&s);
        let sig = c
            .sign("key1", &pkcs1(b"stale"))
            .expect("signature after refresh");
        // The signature verifies with the server's real certificate.
        ks_common::verify::verify(&reference.public_key, &pkcs1(b"stale"), &sig)
            .expect("verifies with the real key");
        assert_eq!(c.key("key1").unwrap().public_key, reference.public_key);
        sig
    });
    assert!(!sig.is_empty());
    assert_eq!(
        n, 2,
        "the sign order and one fresh key list; no second sign order"
    );
    assert_eq!(counter(&srv, "signorders"), 2, "one use per signature");

    // Unknown key in a cached catalog: refreshed at once.
    std::fs::write(catalog, serde_json::to_vec(&entry).unwrap()).unwrap();
    let (n, key) = requests_during(&srv, || client(&s).key("key5"));
    key.expect("key5 after refresh");
    assert_eq!(n, 1, "one key list");
    let e = client(&s).key("no-such-key").expect_err("unknown key");
    assert_eq!(e.kind(), ks_common::ErrorKind::NotFound);
}

#[test]
fn system_roots_are_not_read_when_the_ca_file_verifies_the_server() {
    let srv = DevServer::start();
    let base = Config {
        api_server: Some(srv.api_url().to_string()),
        ca_file: Some(srv.ca_file().to_path_buf()),
        ..Config::default()
    };
    let get_keys = |http: &Http| {
        let req = Request {
            method: reqwest::Method::GET,
            url: join_url(srv.api_url(), &["api", "keys"]).unwrap(),
            authorization: None,
            body: None,
        };
        http.execute(&req, RetryPolicy::NotSentOnly)
    };
    let http = Http::new(&base);
    let resp = get_keys(&http).expect("TLS with the CA file");
    assert_eq!(resp.status, 401, "reached the API without a token");
    assert!(!http.system_roots_used(), "system store not read");

    // A CA file that does not issue the server's certificate: the system store is consulted
    // (and does not trust the dev CA either), so the handshake fails as a certificate error.
    let wrong = Config {
        ca_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/p256.pem").into()),
        ..base.clone()
    };
    let http = Http::new(&wrong);
    let e = get_keys(&http).expect_err("untrusted server");
    assert!(e.to_string().contains("certificate"), "{e}");
    assert!(http.system_roots_used(), "fell back to the system store");
    let only_ca = Config {
        system_roots: false,
        ..wrong
    };
    let http = Http::new(&only_ca);
    get_keys(&http).expect_err("untrusted server");
    assert!(!http.system_roots_used(), "KSC_SYSTEM_ROOTS=false");
}

#[test]
fn many_threads_first_use_one_token_one_key_list() {
    const THREADS: u64 = 16;
    let srv = DevServer::start();
    let op = srv.create_operation(USER, &[("key1", THREADS as u32)], 300_000);
    let s = with(
        with(user_settings(&srv, USER), "KSC_OPERATION_ID", &op),
        "KSC_CACHE",
        "off",
    );
    let c = std::sync::Arc::new(client(&s));
    let tokens = counter(&srv, "tokens");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS as usize));
    let (n, ()) = requests_during(&srv, || {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (c, barrier) = (c.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    c.sign("key1", &pkcs1(format!("t{i}").as_bytes()))
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker").expect("signature");
        }
    });
    assert_eq!(
        counter(&srv, "tokens") - tokens,
        1,
        "one token for all threads"
    );
    assert_eq!(
        n,
        THREADS + 2,
        "one token, one key list, one sign order per thread"
    );
}
