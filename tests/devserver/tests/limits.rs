//! Failed credential checks are rate-limited (issue 13 item 5): a brute
//! force on the token endpoint gets 429 `rate_limited` with `Retry-After`
//! after a few tries, even for the right secret; after the window the right
//! secret works again; successes never count; spraying many client ids hits
//! the total limit; bad limits in the config are a start-up error.
//! (The web login shares this limiter: see `web.rs`.)

mod support;

use std::process::Command;
use std::time::Duration;

use ks_devserver::client::HttpResponse;
use ks_devserver::harness::DevServer;
use support::*;

fn limits(per_client: u32, total: u32, window_secs: u64) -> String {
    format!(
        "[credential_limits]\nfailures_per_client = {per_client}\nfailures_total = {total}\nwindow_secs = {window_secs}\n"
    )
}

fn retry_after(r: &HttpResponse) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {:?}", r.headers))
}

#[test]
fn brute_force_is_stopped_and_the_right_secret_works_after_the_window() {
    let s = DevServer::builder().config_toml(limits(3, 100, 2)).start();
    // 50 guesses: only the first 3 are even compared.
    let mut answers = Vec::new();
    for i in 0..50 {
        answers.push(
            s.token_request("orderer-client", &format!("guess-{i}"))
                .status,
        );
    }
    assert_eq!(&answers[..3], &[401, 401, 401]);
    assert!(answers[3..].iter().all(|&st| st == 429), "{answers:?}");
    // While refused, the right secret is refused too (a brute force cannot
    // tell a hit from a miss), with the §7 body and Retry-After.
    let r = s.token_request("orderer-client", "orderer-client-secret");
    assert_error(&r, 429, "rate_limited");
    let wait = retry_after(&r);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("orderer-client")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Another client id is not locked out by these failures.
    assert_eq!(
        s.token_request("adminclient", "adminclient-secret").status,
        200
    );
    // Honouring Retry-After (the server's own figure, not a guess), the right
    // secret works.
    let mut r = r;
    for _ in 0..5 {
        if r.status != 429 {
            break;
        }
        std::thread::sleep(Duration::from_secs(retry_after(&r)));
        r = s.token_request("orderer-client", "orderer-client-secret");
    }
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Every refusal is in the audit log.
    let log = s.api_request("GET", "/api/dev/audit", Some(&s.token("adminclient")), None);
    let log = log.json();
    let entries = log.as_array().expect("audit array");
    let limited = entries
        .iter()
        .filter(|e| e["action"] == "token" && e["outcome"] == "rate_limited")
        .count();
    assert!(limited >= 48, "{limited} rate_limited entries");
}

#[test]
fn successes_never_count() {
    let s = DevServer::builder().config_toml(limits(2, 2, 60)).start();
    for _ in 0..30 {
        assert_eq!(
            s.token_request("orderer-client", "orderer-client-secret")
                .status,
            200
        );
    }
    // One typo is still just a 401, and the next right secret still works.
    assert_eq!(s.token_request("orderer-client", "typo").status, 401);
    assert_eq!(
        s.token_request("orderer-client", "orderer-client-secret")
            .status,
        200
    );
}

#[test]
fn spraying_many_client_ids_hits_the_total_limit() {
    let s = DevServer::builder().config_toml(limits(5, 4, 60)).start();
    for i in 0..4 {
        assert_eq!(s.token_request(&format!("user{i}"), "x").status, 401);
    }
    // Unreadable credentials are checked (and refused) like the rest.
    let url = format!("{}/oauth2/token", s.auth_url());
    let r = s
        .http()
        .request(
            "POST",
            &url,
            &[
                ("Authorization", "Basic !!!not-base64"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"grant_type=client_credentials",
        )
        .unwrap();
    assert_error(&r, 429, "rate_limited");
    let r = s.token_request("adminclient", "adminclient-secret");
    assert_error(&r, 429, "rate_limited");
    assert!(r.json()["message"].as_str().unwrap().contains("in total"));
    assert!((1..=60).contains(&retry_after(&r)));
}

#[test]
fn default_limits_stop_a_brute_force_quickly() {
    let s = DevServer::start();
    let statuses: Vec<u16> = (0..20)
        .map(|i| s.token_request("adminclient", &format!("guess-{i}")).status)
        .collect();
    let tried = statuses.iter().filter(|&&st| st == 401).count();
    assert!(tried <= 5, "{tried} secrets compared: {statuses:?}");
    assert_eq!(statuses[19], 429);
}

#[test]
fn bad_limits_are_a_start_up_error() {
    let bin = env!("CARGO_BIN_EXE_ks-devserver");
    for (toml, needle) in [
        (limits(0, 10, 60), "failures_per_client"),
        (limits(5, 0, 60), "failures_total"),
        (limits(5, 10, 0), "window_secs"),
        (
            "[credential_limits]\nfailures = 3\n".to_string(),
            "failures",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("limits.toml");
        std::fs::write(&cfg, &toml).unwrap();
        let out = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&cfg)
            .args([
                "--api-listen",
                "127.0.0.1:0",
                "--auth-listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{toml}: {err}");
    }
}
