//! A stand-in for GitHub Actions' OIDC token service (what the runner's
//! `ACTIONS_ID_TOKEN_REQUEST_URL` points at): plain HTTP on loopback, it checks
//! the bearer request token and the `audience` parameter and answers
//! `{"value": JWT}` with a JWT signed by a [`TestIssuer`] that the dev
//! KeyServer trusts. It plays GitHub, not our code: the client under test
//! talks to it exactly as to GitHub.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ks_devserver::harness::{DevServer, TestIssuer};
use serde_json::{json, Value};

/// GitHub's issuer, as the dev KeyServer is configured to trust it here.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The audience the dev KeyServer requires of GitHub's tokens here.
pub const AUDIENCE: &str = "keyserver-e2e";
/// The repository whose tokens get `orderer-client`'s rights.
pub const REPOSITORY: &str = "acme/firmware";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The dev KeyServer trusting `issuer` as GitHub: audience [`AUDIENCE`],
/// tokens of [`REPOSITORY`] mapped to `orderer-client`.
pub fn server_trusting(issuer: &TestIssuer, dir: &std::path::Path) -> DevServer {
    server_trusting_audience(issuer, dir, AUDIENCE)
}

/// [`server_trusting`] with another audience (a CI example's).
pub fn server_trusting_audience(
    issuer: &TestIssuer,
    dir: &std::path::Path,
    audience: &str,
) -> DevServer {
    let jwks = dir.join("github-jwks.json");
    issuer.write_jwks(&jwks);
    DevServer::builder()
        .config_toml(format!(
            r#"
[[issuers]]
issuer = "{GITHUB_ISSUER}"
audience = "{audience}"
jwks_file = "{}"
[[issuers.map]]
claims = {{ repository = "{REPOSITORY}" }}
user = "orderer-client"
"#,
            jwks.display()
        ))
        .start()
}

/// Claims of a GitHub Actions token for [`REPOSITORY`] (add `aud`, `exp`).
pub fn job_claims() -> Value {
    json!({
        "iss": GITHUB_ISSUER,
        "sub": format!("repo:{REPOSITORY}:ref:refs/heads/main"),
        "repository": REPOSITORY,
        "ref": "refs/heads/main",
        "run_id": "4242",
        "actor": "octocat",
    })
}

/// How long [`GithubTokenService::wait_for_hits`] waits for a client that has
/// stopped asking: generous, as the machine may be loaded.
pub const HIT_GUARD: Duration = Duration::from_secs(300);

struct Shared {
    issuer: TestIssuer,
    request_token: String,
    lifetime_secs: u64,
    /// Tokens issued so far; the handler signals `hit` after each.
    hits: Mutex<u64>,
    hit: Condvar,
    refused: AtomicU64,
    issued: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// The running stand-in; stops when dropped.
pub struct GithubTokenService {
    shared: Arc<Shared>,
    port: u16,
}

impl GithubTokenService {
    /// Serves tokens signed by `issuer`, valid `lifetime_secs`, to callers
    /// presenting `request_token`.
    pub fn start(issuer: TestIssuer, request_token: &str, lifetime_secs: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token service");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            issuer,
            request_token: request_token.to_string(),
            lifetime_secs,
            hits: Mutex::new(0),
            hit: Condvar::new(),
            refused: AtomicU64::new(0),
            issued: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(&s, conn);
                }
            }
        });
        GithubTokenService { shared, port }
    }

    /// What the runner puts in `ACTIONS_ID_TOKEN_REQUEST_URL`.
    pub fn request_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0",
            self.port
        )
    }

    /// Tokens issued so far.
    pub fn hits(&self) -> u64 {
        self.shared
            .hits
            .lock()
            .map(|h| *h)
            .unwrap_or_else(|e| *e.into_inner())
    }

    /// Blocks until `n` tokens in all have been issued: it wakes on each
    /// issue, so it returns the moment the `n`-th is. A client that stops
    /// asking is reported after [`HIT_GUARD`] (a guard against a hung test,
    /// not a timing check) as `Err(tokens issued by then)`, for the caller to
    /// say what its client was doing.
    pub fn wait_for_hits(&self, n: u64) -> Result<(), u64> {
        let hits = self.shared.hits.lock().unwrap_or_else(|e| e.into_inner());
        let (hits, _) = self
            .shared
            .hit
            .wait_timeout_while(hits, HIT_GUARD, |h| *h < n)
            .unwrap_or_else(|e| e.into_inner());
        if *hits >= n {
            Ok(())
        } else {
            Err(*hits)
        }
    }

    /// Requests refused (wrong request token, no audience).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every token issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.shared
            .issued
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }
}

impl Drop for GithubTokenService {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn respond(mut conn: &TcpStream, status: &str, body: &Value) {
    let body = body.to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

fn serve(s: &Shared, conn: TcpStream) {
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let param = |name: &str| {
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.replace("%3A", ":").replace("%2F", "/"))
        })
    };
    let expected = format!("bearer {}", s.request_token);
    if !request_line.starts_with("GET ")
        || authorization.map(|a| a.to_ascii_lowercase()) != Some(expected.to_ascii_lowercase())
    {
        s.refused.fetch_add(1, Ordering::SeqCst);
        return respond(
            &conn,
            "401 Unauthorized",
            &json!({"message": "Bad credentials"}),
        );
    }
    let (Some(audience), Some("2.0")) = (param("audience"), param("api-version").as_deref()) else {
        s.refused.fetch_add(1, Ordering::SeqCst);
        return respond(
            &conn,
            "400 Bad Request",
            &json!({"message": "api-version=2.0 and audience are required"}),
        );
    };
    let mut claims = job_claims();
    let now = now();
    claims["aud"] = json!(audience);
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + s.lifetime_secs);
    let mut hits = s.hits.lock().unwrap_or_else(|e| e.into_inner());
    claims["jti"] = json!(format!("jti-{}", *hits));
    let token = s.issuer.token(&claims);
    if let Ok(mut v) = s.issued.lock() {
        v.push(token.clone());
    }
    *hits += 1;
    drop(hits);
    s.hit.notify_all();
    respond(&conn, "200 OK", &json!({"count": 1, "value": token}));
}
