//! No password from a server URL (`https://user:PW@host`) reaches a log line or an error, at
//! the most verbose log level, on the success path and on every failure path a URL can take.
//!
//! One test in its own binary: the logger is installed once per process.

mod support;

use ks_common::{ErrorKind, Settings};
use ks_devserver::harness::DevServer;

const PW: &str = "Pw-Do-Not-Leak-7f3a";

/// `https://127.0.0.1:PORT` → `https://alice:PW@127.0.0.1:PORT`.
fn with_password(url: &str) -> String {
    url.replacen("://", &format!("://alice:{PW}@"), 1)
}

#[test]
fn url_password_never_logged_nor_in_errors() {
    let srv = DevServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("ks.log");
    let base = support::user_settings(&srv, "orderer-client");
    let settings = support::with(
        support::with(base, "KSC_API_SERVER", &with_password(srv.api_url())),
        "KSC_LOG",
        &format!("debug:{}", log_file.display()),
    );
    let client = support::client(&settings);
    ks_common::logging::init(client.config());
    assert!(!format!("{:?}", client.config()).contains(PW));

    // Success path: every request is logged at debug with its URL.
    let keys = client.keys().expect("key list through a URL with userinfo");
    assert!(!keys.is_empty());
    // A server error reply.
    let e = client.operation("999999").unwrap_err();
    let mut errors = vec![e];

    // Transport failures: nobody listens on the port (the reqwest error names the URL).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = support::with(
        settings.clone(),
        "KSC_API_SERVER",
        &format!("https://bob:{PW}@127.0.0.1:{port}"),
    );
    let dead = support::with(dead, "KSC_ID_TOKEN", "x.y.z");
    // Refused connections are retried until the call's deadline: keep it short.
    let dead = support::with(dead, "KSC_DEADLINE", "2s");
    let e = support::client(&dead).keys().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    errors.push(e);

    // Configuration errors echo the value they refuse.
    for bad in [
        format!("ftp://carol:{PW}@127.0.0.1/"),
        format!("http://carol:{PW}@192.0.2.1/"),
        format!("https://carol:{PW}@127.0.0.1/?q=1"),
    ] {
        let s: Settings = support::with(settings.clone(), "KSC_API_SERVER", &bad)
            .into_iter()
            .collect();
        let e = ks_common::Config::resolve(&s, &Settings::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        errors.push(e);
    }

    for e in &errors {
        let display = e.to_string();
        let debug = format!("{e:?}");
        assert!(!display.contains(PW), "password in error: {display}");
        assert!(!debug.contains(PW), "password in error debug: {debug}");
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(s) = cur {
            assert!(!s.to_string().contains(PW), "password in cause: {s}");
            cur = s.source();
        }
    }
    log::logger().flush();
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("GET https://***@127.0.0.1"),
        "debug log names the request URL, redacted:\n{log}"
    );
    assert!(!log.contains(PW), "password in the log:\n{log}");
}
