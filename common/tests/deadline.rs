//! Every library call that talks to KeyServer ends by its deadline (`KSC_DEADLINE`), whatever
//! the server does: accept and never answer, rate-limit forever with a long `Retry-After`, or
//! fail many times before it answers (retries go on while the deadline allows).
//!
//! The servers are small loopback HTTP servers written here (plain http is allowed to loopback):
//! servers, not mocks of our code, which runs unchanged over real sockets.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ks_common::{ErrorKind, OperationSpec};

const P256_CERT: &str = include_str!("data/p256.pem");

/// How the server treats each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads nothing, answers nothing, keeps the connection open.
    Silent,
    /// `429` with `Retry-After: 30`, forever.
    RateLimited,
    /// `503` with `Retry-After: 0` for the first `n` requests, then the key list.
    FailFirst(u32),
}

struct Server {
    url: String,
    requests: Arc<AtomicU32>,
}

fn read_head(stream: &TcpStream) {
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => return,
            Ok(_) => {}
        }
    }
}

fn serve(behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU32::new(0));
    let counter = requests.clone();
    // Held so silent connections stay open (a close would be an answer of sorts).
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let held = held.clone();
            std::thread::spawn(move || match behaviour {
                Behaviour::Silent => held.lock().unwrap().push(stream),
                Behaviour::RateLimited => {
                    read_head(&stream);
                    let _ = stream.write_all(
                        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                Behaviour::FailFirst(k) => {
                    read_head(&stream);
                    let reply = if n <= k {
                        "HTTP/1.1 503 Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                    } else {
                        let body = serde_json::json!([{"keyid": "key2", "certificate": P256_CERT}])
                            .to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    let _ = stream.write_all(reply.as_bytes());
                }
            });
        }
    });
    Server { url, requests }
}

fn settings(url: &str, deadline: &str, attempt: &str) -> Vec<(String, String)> {
    vec![
        ("KSC_API_SERVER".into(), url.to_string()),
        ("KSC_ID_TOKEN".into(), "header.payload.signature".into()),
        ("KSC_OPERATION_ID".into(), "7".into()),
        ("KSC_DEADLINE".into(), deadline.into()),
        ("KSC_HTTP_CLIENT_TIMEOUT".into(), attempt.into()),
    ]
}

/// Runs `call` and returns its error and how long it took.
fn timed<T: std::fmt::Debug>(
    call: impl FnOnce() -> ks_common::Result<T>,
) -> (ks_common::Error, Duration) {
    let start = Instant::now();
    let r = call();
    (r.expect_err("the call must fail"), start.elapsed())
}

// The bound asserted is the library's contract (deadline + 1 s), not a performance figure: the
// per-attempt timeout (10 s) is far longer than the deadline, so only the deadline logic can
// end these calls in time.
#[test]
fn silent_server_every_call_ends_by_its_deadline() {
    let srv = serve(Behaviour::Silent);
    let deadline = Duration::from_secs(2);
    let bound = deadline + Duration::from_secs(1);
    let client = support::client(&settings(&srv.url, "2s", "10s"));
    let spec = OperationSpec {
        valid: Duration::from_secs(600),
        description: "deadline test".into(),
        keys: vec![("key1".into(), 1)],
    };
    let results = [
        ("keys", timed(|| client.keys())),
        ("operation", timed(|| client.operation("7"))),
        ("approve", timed(|| client.approve("7"))),
        ("create_operation", timed(|| client.create_operation(&spec))),
        (
            "sign",
            timed(|| {
                let digest = ks_common::hash::digest(ks_common::HashAlg::Sha256, b"x");
                client.sign(
                    "key1",
                    &ks_common::SignRequest::RsaPkcs1 {
                        hash: ks_common::HashAlg::Sha256,
                        digest,
                    },
                )
            }),
        ),
    ];
    for (name, (e, took)) in results {
        assert!(took <= bound, "{name} took {took:?}, past {bound:?}: {e}");
        assert_eq!(e.kind(), ErrorKind::Network, "{name}: {e}");
        assert!(
            e.to_string().contains("did not answer in time")
                || e.to_string().contains("KSC_DEADLINE"),
            "{name}: {e}"
        );
    }

    // The token fetch (client credentials) is bounded the same way.
    let mut s = settings(&srv.url, "2s", "10s");
    s.retain(|(k, _)| k != "KSC_ID_TOKEN");
    s.push(("KSC_AUTH_SERVER".into(), srv.url.clone()));
    s.push(("KSC_CLIENT_ID".into(), "ci".into()));
    s.push(("KSC_CLIENT_SECRET".into(), "ci-secret".into()));
    let client = support::client(&s);
    let (e, took) = timed(|| client.token());
    assert!(took <= bound, "token took {took:?}: {e}");
    let (e, took) = timed(|| client.keys());
    assert!(took <= bound, "keys with a token fetch took {took:?}: {e}");
}

#[test]
fn short_attempts_are_retried_until_the_deadline_then_it_says_so() {
    let srv = serve(Behaviour::Silent);
    let client = support::client(&settings(&srv.url, "3s", "400ms"));
    let (e, took) = timed(|| client.keys());
    assert!(took <= Duration::from_secs(4), "took {took:?}: {e}");
    assert!(
        srv.requests.load(Ordering::SeqCst) >= 2,
        "a timed-out GET is retried while the deadline allows"
    );
    let text = e.to_string();
    assert!(text.contains("KSC_DEADLINE (3s)"), "{text}");
    assert!(text.contains("KSC_HTTP_CLIENT_TIMEOUT"), "{text}");
}

#[test]
fn retry_after_longer_than_the_time_left_fails_at_once() {
    let srv = serve(Behaviour::RateLimited);
    let client = support::client(&settings(&srv.url, "10s", "5s"));
    let (e, took) = timed(|| client.keys());
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    let text = e.to_string();
    assert!(text.contains("asks to retry in 30s"), "{text}");
    assert!(text.contains("KSC_DEADLINE"), "{text}");
    assert_eq!(srv.requests.load(Ordering::SeqCst), 1, "no second attempt");
    // "At once": nowhere near the 30 s asked for nor the 10 s deadline.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn retries_are_bounded_by_time_not_by_a_count() {
    // More failures than any fixed attempt count this client ever had (6), all inside the
    // deadline: the call succeeds.
    let srv = serve(Behaviour::FailFirst(12));
    let client = support::client(&settings(&srv.url, "60s", "5s"));
    let keys = client
        .keys()
        .expect("the server answers before the deadline");
    assert_eq!(keys[0].keyid, "key2");
    assert_eq!(srv.requests.load(Ordering::SeqCst), 13);
}
