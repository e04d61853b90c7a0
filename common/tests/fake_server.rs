//! A fake KeyServer (plain HTTP on loopback, which the client allows only there) that answers
//! with canned, deliberately wrong or broken replies: a wrong signature must be caught by local
//! verification, malformed and oversized replies must be clean errors.
//!
//! The fake is a server, not a mock of our code: the client runs unchanged over real sockets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use ks_common::hash::{self, HashAlg};
use ks_common::{Client, Config, EcdsaFormat, ErrorKind, Settings, SignRequest};

const RSA_CERT: &str = include_str!("data/rsa2048.pem");
const P256_CERT: &str = include_str!("data/p256.pem");
const RSA_SIG: &[u8] = include_bytes!("data/rsa2048-pkcs1-sha256.sig");
const P256_SIG_DER: &[u8] = include_bytes!("data/p256-sha256.der.sig");
const MSG: &[u8] = include_bytes!("data/msg.txt");

/// What the fake answers, switchable per test step.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Mode {
    /// Canned fixture signatures (valid only for `MSG`).
    #[default]
    Normal,
    /// The key list is garbage.
    MalformedKeys,
    /// The key list is larger than the client accepts.
    HugeKeys,
    /// The sign reply names another key.
    OtherKeyid,
    /// The sign reply's result is not hex.
    NotHex,
    /// The first sign order gets a 503 (after "processing" it), later ones succeed.
    Fail5xxOnce,
    /// The first sign order gets a 429 with `Retry-After: 1`, later ones succeed.
    RateLimitOnce,
    /// The first sign order's connection is closed after the request was read.
    DropOnce,
}

struct Fake {
    url: String,
    mode: Arc<Mutex<Mode>>,
    state: Arc<Mutex<State>>,
}

/// What the fake has seen, and whether it claims the project's extensions.
#[derive(Default)]
struct State {
    sign_orders: u32,
    extensions: bool,
}

fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some((path, body))
}

fn respond(stream: &mut TcpStream, status: u16, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The client may close early (oversized replies); ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn handle(mut stream: TcpStream, mode: Mode, state: &Mutex<State>) {
    let Some((path, body)) = read_request(&mut stream) else {
        return;
    };
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match path.as_str() {
        "/api/keys" => {
            let body = match mode {
                Mode::MalformedKeys => b"<html>maintenance</html>".to_vec(),
                Mode::HugeKeys => {
                    let mut v = b"[".to_vec();
                    v.extend(std::iter::repeat_n(b' ', 5 * 1024 * 1024));
                    v.push(b']');
                    v
                }
                _ if st.extensions => serde_json::json!([
                    {"keyid": "key1", "certificate": RSA_CERT, "approvers": 0, "algorithm": "RSA-2048"},
                    {"keyid": "key2", "certificate": P256_CERT, "approvers": 0, "algorithm": "EC-P256"},
                ])
                .to_string()
                .into_bytes(),
                _ => serde_json::json!([
                    {"keyid": "key1", "keyinfo": "fake RSA", "certificate": RSA_CERT},
                    {"keyid": "key2", "keyinfo": "fake EC", "certificate": P256_CERT},
                ])
                .to_string()
                .into_bytes(),
            };
            respond(&mut stream, 200, &body);
        }
        "/api/signorders" => {
            st.sign_orders += 1;
            let first = st.sign_orders == 1;
            match mode {
                Mode::Fail5xxOnce if first => {
                    return respond(&mut stream, 503, b"Service Unavailable");
                }
                Mode::RateLimitOnce if first => {
                    let head = "HTTP/1.1 429 X\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    let _ = stream.write_all(head.as_bytes());
                    return;
                }
                Mode::DropOnce if first => return,
                _ => {}
            }
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let keyid = req["keyid"].as_str().unwrap_or("").to_string();
            let result = if keyid == "key1" {
                hex::encode(RSA_SIG)
            } else {
                let rs =
                    ks_common::sign::ecdsa_der_to_p1363(ks_common::EcCurve::P256, P256_SIG_DER)
                        .unwrap_or_default();
                hex::encode(rs)
            };
            let reply = match mode {
                Mode::OtherKeyid => serde_json::json!({"keyid": "key9", "result": result}),
                Mode::NotHex => serde_json::json!({"keyid": keyid, "result": "zz"}),
                _ => {
                    serde_json::json!({"keyid": keyid, "signatureformat": req["signatureformat"], "result": result})
                }
            };
            respond(&mut stream, 201, reply.to_string().as_bytes());
        }
        _ => respond(&mut stream, 404, br#"{"error":"not_found"}"#),
    }
}

fn start_fake() -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mode = Arc::new(Mutex::new(Mode::Normal));
    let state = Arc::new(Mutex::new(State::default()));
    let (m, s) = (mode.clone(), state.clone());
    // Serves until the test process exits; each connection is answered and closed.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mode = *m.lock().unwrap_or_else(|p| p.into_inner());
            handle(stream, mode, &s);
        }
    });
    Fake { url, mode, state }
}

fn client(fake: &Fake) -> Client {
    let s: Settings = [
        ("KSC_API_SERVER", fake.url.as_str()),
        ("KSC_ID_TOKEN", "fake.token.value"),
        ("KSC_OPERATION_ID", "1"),
        ("KSC_HTTP_CLIENT_TIMEOUT", "5s"),
        // Each step changes what the fake claims to support: every client must ask it afresh.
        ("KSC_CACHE", "off"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Client::new(Config::resolve(&s, &Settings::new()).expect("config"))
}

fn set(fake: &Fake, mode: Mode) {
    *fake.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
}

#[test]
fn wrong_signatures_are_caught_by_local_verification() {
    let fake = start_fake();
    let c = client(&fake);
    let good_rsa = SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, MSG),
    };
    // The canned signature is right for MSG: the path works end to end.
    let sig = c
        .sign("key1", &good_rsa)
        .expect("valid canned RSA signature");
    assert_eq!(sig, RSA_SIG);
    let good_ec = SignRequest::Ecdsa {
        digest: hash::digest(HashAlg::Sha256, MSG),
        format: EcdsaFormat::Der,
    };
    assert_eq!(
        c.sign("key2", &good_ec).expect("valid canned EC signature"),
        P256_SIG_DER
    );

    // For any other digest the server's answer is wrong and must never be handed out.
    for (key, req) in [
        (
            "key1",
            SignRequest::RsaPkcs1 {
                hash: HashAlg::Sha256,
                digest: hash::digest(HashAlg::Sha256, b"something else"),
            },
        ),
        (
            "key2",
            SignRequest::Ecdsa {
                digest: hash::digest(HashAlg::Sha256, b"something else"),
                format: EcdsaFormat::P1363,
            },
        ),
    ] {
        let e = c.sign(key, &req).expect_err("wrong signature accepted");
        assert_eq!(e.kind(), ErrorKind::VerificationFailed, "{e}");
        assert_eq!(e.keyid(), Some(key));
        assert_eq!(e.operation(), Some("1"));
        assert!(e.to_string().contains("discarded"), "{e}");
    }

    set(&fake, Mode::OtherKeyid);
    let e = c
        .sign("key1", &good_rsa)
        .expect_err("reply for another key");
    assert_eq!(e.kind(), ErrorKind::VerificationFailed, "{e}");
    set(&fake, Mode::NotHex);
    let e = c.sign("key1", &good_rsa).expect_err("not hex");
    assert_eq!(e.kind(), ErrorKind::BadResponse, "{e}");
}

#[test]
fn malformed_and_oversized_key_lists_are_bad_responses() {
    let fake = start_fake();
    set(&fake, Mode::MalformedKeys);
    let e = client(&fake).keys().expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::BadResponse, "{e}");
    set(&fake, Mode::HugeKeys);
    let e = client(&fake).keys().expect_err("oversized");
    assert_eq!(e.kind(), ErrorKind::BadResponse, "{e}");
    assert!(e.to_string().contains("larger than"), "{e}");
    // A failed fetch is not cached: the same client recovers.
    set(&fake, Mode::Normal);
    let c = client(&fake);
    set(&fake, Mode::MalformedKeys);
    assert!(c.keys().is_err());
    set(&fake, Mode::Normal);
    assert_eq!(c.keys().expect("recovered").len(), 2);
}

fn reset(fake: &Fake, mode: Mode, extensions: bool) {
    set(fake, mode);
    let mut st = fake.state.lock().unwrap_or_else(|p| p.into_inner());
    st.sign_orders = 0;
    st.extensions = extensions;
}

fn sign_orders(fake: &Fake) -> u32 {
    fake.state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .sign_orders
}

#[test]
fn sign_orders_are_retried_only_when_safe() {
    let fake = start_fake();
    let good = SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, MSG),
    };
    // A server without the extensions (no requestid): a 503 or a connection dropped after
    // the request was sent may have spent a use, so the order is not repeated.
    for mode in [Mode::Fail5xxOnce, Mode::DropOnce] {
        reset(&fake, mode, false);
        let e = client(&fake).sign("key1", &good).expect_err("not retried");
        assert_eq!(e.kind(), ErrorKind::Network, "{mode:?}: {e}");
        assert_eq!(sign_orders(&fake), 1, "{mode:?}: sent once");
    }
    // 429 means "not processed": repeated after Retry-After even without requestid.
    reset(&fake, Mode::RateLimitOnce, false);
    let start = std::time::Instant::now();
    client(&fake)
        .sign("key1", &good)
        .expect("retried after 429");
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(sign_orders(&fake), 2);
    // A server with the extensions deduplicates by requestid: the same order is repeated.
    for mode in [Mode::Fail5xxOnce, Mode::DropOnce] {
        reset(&fake, mode, true);
        client(&fake)
            .sign("key1", &good)
            .expect("retried with requestid");
        assert_eq!(sign_orders(&fake), 2, "{mode:?}: sent twice");
    }
}

#[test]
fn requestid_is_fresh_per_signature_and_kept_across_retries() {
    // Checked on the wire by a fake that records the requestids it receives.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let mut n = 0;
        for mut stream in listener.incoming().flatten() {
            let Some((path, body)) = read_request(&mut stream) else {
                continue;
            };
            if path == "/api/keys" {
                let keys =
                    serde_json::json!([{"keyid": "key1", "certificate": RSA_CERT, "approvers": 0}]);
                respond(&mut stream, 200, keys.to_string().as_bytes());
                continue;
            }
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            s2.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(req["requestid"].as_str().unwrap_or("").to_string());
            n += 1;
            // Every other order fails once with a 503 (first attempt of each signature).
            if n % 2 == 1 {
                respond(&mut stream, 503, b"");
            } else {
                let reply = serde_json::json!({"keyid": "key1", "result": hex::encode(RSA_SIG), "requestid": req["requestid"]});
                respond(&mut stream, 201, reply.to_string().as_bytes());
            }
        }
    });
    let fake = Fake {
        url,
        mode: Arc::default(),
        state: Arc::default(),
    };
    let c = client(&fake);
    let good = SignRequest::RsaPkcs1 {
        hash: HashAlg::Sha256,
        digest: hash::digest(HashAlg::Sha256, MSG),
    };
    c.sign("key1", &good).expect("first");
    c.sign("key1", &good).expect("second");
    let ids = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(ids.len(), 4, "{ids:?}");
    assert_eq!(ids[0], ids[1], "a retry reuses the requestid");
    assert_eq!(ids[2], ids[3], "a retry reuses the requestid");
    assert_ne!(ids[0], ids[2], "each signature has its own requestid");
    assert!(uuid_like(&ids[0]), "{}", ids[0]);
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}
