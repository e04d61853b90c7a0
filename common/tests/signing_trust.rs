//! `KSC_SIGNING_CA_FILE` / `KSC_KEY_PINS`: a server cannot pass off a foreign key.
//!
//! Against the dev KeyServer (whose keys are issued by the signing-ca.pem it writes) and against a
//! hostile loopback server written here that lists `key1` with an unrelated self-signed
//! certificate and signs with that certificate's key (canned signatures over `MSG`): a server,
//! not a mock of our code, which runs unchanged over real sockets.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ks_common::hash::{self, HashAlg};
use ks_common::{Client, ErrorKind, PublicKey, SignRequest};
use ks_devserver::harness::DevServer;
use sha2::Digest as _;

const FOREIGN_CERT: &str = include_str!("data/rsa2048.pem");
const FOREIGN_SIG: &[u8] = include_bytes!("data/rsa2048-pkcs1-sha256.sig");
const MSG: &[u8] = include_bytes!("data/msg.txt");

fn request_for(key: &PublicKey, msg: &[u8]) -> SignRequest {
    let digest = hash::digest(HashAlg::Sha256, msg);
    match key {
        PublicKey::Rsa { .. } => SignRequest::RsaPkcs1 {
            hash: HashAlg::Sha256,
            digest,
        },
        PublicKey::Ec { .. } => SignRequest::Ecdsa {
            digest,
            format: ks_common::EcdsaFormat::Der,
        },
    }
}

/// The hostile server: key list with the foreign certificate, valid signatures by its key.
fn hostile() -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sign_orders = Arc::new(AtomicU32::new(0));
    let counter = sign_orders.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let reply = if path == "/api/keys" {
                serde_json::json!([{"keyid": "key1", "keyinfo": "substituted", "certificate": FOREIGN_CERT}])
            } else {
                counter.fetch_add(1, Ordering::SeqCst);
                serde_json::json!({"keyid": "key1", "result": hex::encode(FOREIGN_SIG)})
            }
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, sign_orders)
}

fn hostile_settings(url: &str) -> Vec<(String, String)> {
    vec![
        ("KSC_API_SERVER".into(), url.to_string()),
        ("KSC_ID_TOKEN".into(), "header.payload.signature".into()),
        ("KSC_OPERATION_ID".into(), "1".into()),
    ]
}

#[test]
fn substituted_key_is_refused_only_with_the_setting() {
    let srv = DevServer::start();
    let signing_ca = srv.signing_ca_file().display().to_string();
    let (url, sign_orders) = hostile();

    // Without the setting the substitution works: the signature matches the certificate the
    // same server sent (the risk the README states).
    let open = support::client(&hostile_settings(&url));
    let sig = open.sign(
        "key1",
        &request_for(&open.key("key1").unwrap().public_key, MSG),
    );
    assert!(sig.is_ok(), "{sig:?}");
    assert_eq!(sign_orders.load(Ordering::SeqCst), 1);

    // With the dev server's signing CA the foreign key is not offered, and nothing is sent.
    let guarded = support::client(&support::with(
        hostile_settings(&url),
        "KSC_SIGNING_CA_FILE",
        &signing_ca,
    ));
    assert!(guarded.keys().unwrap().is_empty());
    let untrusted = guarded.untrusted_keys().unwrap();
    assert_eq!(untrusted.len(), 1);
    assert!(
        untrusted[0]
            .reason
            .contains("not issued by a CA in KSC_SIGNING_CA_FILE (issuer: CN=key1)"),
        "{}",
        untrusted[0].reason
    );
    let digest = hash::digest(HashAlg::Sha256, MSG);
    let e = guarded
        .sign(
            "key1",
            &SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::VerificationFailed, "{e}");
    assert!(e.to_string().contains("key key1"), "{e}");
    assert!(e.to_string().contains("not trusted"), "{e}");
    assert_eq!(sign_orders.load(Ordering::SeqCst), 1, "no sign order sent");

    // A pin of another public key refuses it the same way; the right pin accepts it.
    let foreign = open.key("key1").unwrap();
    let right = hex::encode(sha2::Sha256::digest(&foreign.spki_der));
    for (pin, trusted) in [(right.as_str(), true), (&*"ab".repeat(32), false)] {
        let c = support::client(&support::with(
            hostile_settings(&url),
            "KSC_KEY_PINS",
            &format!("key1=sha256:{pin}"),
        ));
        assert_eq!(c.key("key1").is_ok(), trusted, "pin {pin}");
    }
}

#[test]
fn dev_server_keys_chain_to_its_signing_ca() {
    let srv = DevServer::start();
    let op = srv.create_operation("orderer-client", &[("key1", 1)], 120_000);
    let base = support::with(
        support::user_settings(&srv, "orderer-client"),
        "KSC_OPERATION_ID",
        &op,
    );
    let trusted = support::with(
        base.clone(),
        "KSC_SIGNING_CA_FILE",
        &srv.signing_ca_file().display().to_string(),
    );
    let client: Client = support::client(&trusted);
    let all = support::client(&base).keys().unwrap();
    assert_eq!(
        client.keys().unwrap().len(),
        all.len(),
        "every dev key is trusted"
    );
    assert!(client.untrusted_keys().unwrap().is_empty());
    let key = client.key("key1").unwrap();
    client
        .sign("key1", &request_for(&key.public_key, b"firmware"))
        .expect("a trusted key signs");

    // The TLS CA is not the signing CA: every key is refused, with the issuer named.
    let wrong = support::with(
        base,
        "KSC_SIGNING_CA_FILE",
        &srv.ca_file().display().to_string(),
    );
    let client = support::client(&wrong);
    assert!(client.keys().unwrap().is_empty());
    let untrusted = client.untrusted_keys().unwrap();
    assert_eq!(untrusted.len(), all.len());
    assert!(
        untrusted[0].reason.contains("ks-devserver signing CA"),
        "{}",
        untrusted[0].reason
    );
}
