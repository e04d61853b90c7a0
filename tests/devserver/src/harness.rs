//! Test support: start a dev KeyServer in a temporary data directory on
//! ephemeral loopback ports, talk to it, restart it, kill it.
//!
//! ```no_run
//! use ks_devserver::harness::DevServer;
//! let server = DevServer::start();
//! let token = server.token("orderer-client");
//! let op = server.create_operation("orderer-client", &[("key1", 1), ("key4", 1)], 60_000);
//! server.approve("approver-key4", &op);
//! let env = server.client_env(&token, &op); // KSC_API_SERVER, KSC_CA_FILE, ...
//! # drop(env);
//! ```
//!
//! The binary is found through `KS_DEVSERVER_BIN`, else next to the test
//! executable (`target/<profile>/ks-devserver`). Harness requests carry the
//! fault-exemption header, so fault knobs only affect the client under test.
//! Failures panic with a clear message: this is test support.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::client::{HttpResponse, HttpsClient};
use crate::faults::NO_FAULT_HEADER;

/// How long a (first, key-generating) start may take.
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// How many long polls (about 20 s each) [`DevServer::wait_until_held`] makes
/// before declaring the test hung: a generous harness guard, not a timing check.
const HOLD_GUARD_POLLS: u32 = 30;

/// Options for [`DevServer`]; see [`DevServer::builder`].
#[derive(Debug, Clone, Default)]
pub struct DevServerBuilder {
    token_lifetime: Option<Duration>,
    fault_5xx: Option<f64>,
    fault_429: Option<f64>,
    fault_drop: Option<f64>,
    fault_latency: Option<Duration>,
    hold_keys: bool,
    extra_args: Vec<String>,
    config_toml: Option<String>,
}

fn go_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

impl DevServerBuilder {
    /// Lifetime of issued tokens (at least 1s).
    pub fn token_lifetime(mut self, d: Duration) -> Self {
        self.token_lifetime = Some(d);
        self
    }
    /// Fraction of requests answered 503.
    pub fn fault_5xx(mut self, f: f64) -> Self {
        self.fault_5xx = Some(f);
        self
    }
    /// Fraction of requests answered 429 with `Retry-After`.
    pub fn fault_429(mut self, f: f64) -> Self {
        self.fault_429 = Some(f);
        self
    }
    /// Fraction of connections dropped without an answer.
    pub fn fault_drop(mut self, f: f64) -> Self {
        self.fault_drop = Some(f);
        self
    }
    /// Latency added to every request.
    pub fn fault_latency(mut self, d: Duration) -> Self {
        self.fault_latency = Some(d);
        self
    }
    /// Holds every client `GET /api/keys` until [`DevServer::release_held`]
    /// (see [`DevServer::wait_until_held`]).
    pub fn hold_keys(mut self) -> Self {
        self.hold_keys = true;
        self
    }
    /// More command-line arguments.
    pub fn extra_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }
    /// A TOML configuration (written into the data directory, passed as `--config`).
    pub fn config_toml(mut self, toml: impl Into<String>) -> Self {
        self.config_toml = Some(toml.into());
        self
    }

    /// Starts the server and waits until both listeners are up.
    pub fn start(self) -> DevServer {
        let bin = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("ks-devserver-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary data dir: {e}"));
        let data = dir.path().join("data");
        let mut args: Vec<String> = vec!["--data-dir".into(), data.display().to_string()];
        if let Some(d) = self.token_lifetime {
            args.extend(["--token-lifetime".into(), go_duration(d)]);
        }
        if let Some(f) = self.fault_5xx {
            args.extend(["--fault-5xx".into(), f.to_string()]);
        }
        if let Some(f) = self.fault_429 {
            args.extend(["--fault-429".into(), f.to_string()]);
        }
        if let Some(f) = self.fault_drop {
            args.extend(["--fault-drop".into(), f.to_string()]);
        }
        if let Some(d) = self.fault_latency {
            args.extend(["--fault-latency".into(), go_duration(d)]);
        }
        if self.hold_keys {
            args.push("--fault-hold-keys".into());
        }
        if let Some(cache) = std::env::var_os("KS_DEVSERVER_KEY_CACHE") {
            args.extend([
                "--key-cache".into(),
                PathBuf::from(cache).display().to_string(),
            ]);
        }
        if let Some(toml) = &self.config_toml {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, toml)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            args.extend(["--config".into(), path.display().to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        let mut server = DevServer {
            bin,
            dir,
            base_args: args,
            child: None,
            auth_url: String::new(),
            api_url: String::new(),
            ca_file: PathBuf::new(),
            signing_ca_file: PathBuf::new(),
            client: None,
        };
        server.spawn("127.0.0.1:0", "127.0.0.1:0");
        server
    }
}

/// A running dev KeyServer; dropping it kills the server and removes its data.
pub struct DevServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    base_args: Vec<String>,
    child: Option<Child>,
    auth_url: String,
    api_url: String,
    ca_file: PathBuf,
    signing_ca_file: PathBuf,
    client: Option<HttpsClient>,
}

impl std::fmt::Debug for DevServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevServer")
            .field("auth_url", &self.auth_url)
            .field("api_url", &self.api_url)
            .field("data_dir", &self.data_dir())
            .finish()
    }
}

fn find_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KS_DEVSERVER_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "KS_DEVSERVER_BIN={} does not exist; run `cargo build -p ks-devserver`",
            p.display()
        );
        return p;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    // target/<profile>/deps/<test> → target/<profile>/ks-devserver
    let mut candidates = Vec::new();
    if let Some(deps) = exe.parent() {
        candidates.push(deps.join("ks-devserver"));
        if let Some(profile) = deps.parent() {
            candidates.push(profile.join("ks-devserver"));
        }
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the ks-devserver binary is not built (looked at {:?}); run `cargo build -p ks-devserver` \
                 or set KS_DEVSERVER_BIN",
                candidates
            )
        })
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

impl DevServer {
    /// Starts a server with default options.
    pub fn start() -> DevServer {
        DevServer::builder().start()
    }

    /// Options for a server.
    pub fn builder() -> DevServerBuilder {
        DevServerBuilder::default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self, auth: &str, api: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot open server log: {e}"));
        let ready = self.dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(&self.bin)
            .args(&self.base_args)
            .args(["--auth-listen", auth, "--api-listen", api])
            .arg("--ready-file")
            .arg(&ready)
            .arg("--watch-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "ks-devserver did not become ready ({other:?}, exit {status:?}); its log:\n{}",
                    tail(&self.log_path())
                );
            }
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("malformed ready line {line:?}"))
        };
        self.auth_url = field("auth");
        self.api_url = field("api");
        let doc: Value = std::fs::read(&ready)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| panic!("ready file {} missing or invalid", ready.display()));
        self.ca_file = PathBuf::from(doc["ca_file"].as_str().expect("ca_file in ready file"));
        self.signing_ca_file = PathBuf::from(
            doc["signing_ca_file"]
                .as_str()
                .expect("signing_ca_file in ready file"),
        );
        assert_eq!(doc["api_url"].as_str(), Some(self.api_url.as_str()));
        self.client = Some(
            HttpsClient::new(&self.ca_file).unwrap_or_else(|e| panic!("dev CA unusable: {e}")),
        );
        self.child = Some(child);
    }

    /// `https://127.0.0.1:PORT` of the API server.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }
    /// `https://127.0.0.1:PORT` of the auth server.
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }
    /// The TLS CA (for `KSC_CA_FILE`, `curl --cacert`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    /// The CA that issued the key certificates.
    pub fn signing_ca_file(&self) -> &Path {
        &self.signing_ca_file
    }
    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        // The server canonicalises it; the ready file's CA path is inside it.
        self.ca_file.parent().unwrap_or(self.dir.path())
    }
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }
    /// The server's stderr log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
    /// The HTTPS client trusting the dev CA.
    pub fn http(&self) -> &HttpsClient {
        self.client.as_ref().expect("server started")
    }

    /// A raw request to the API server (`path` like `/api/keys`), exempt from faults.
    pub fn api_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![(NO_FAULT_HEADER, "1"), ("Accept", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let body_bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let url = format!("{}{path}", self.api_url);
        self.http()
            .request(method, &url, &headers, &body_bytes)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// Client-credentials token request with an explicit secret.
    pub fn token_request(&self, user: &str, secret: &str) -> HttpResponse {
        let basic = format!("Basic {}", B64.encode(format!("{user}:{secret}")));
        let url = format!("{}/oauth2/token", self.auth_url);
        self.http()
            .request(
                "POST",
                &url,
                &[
                    (NO_FAULT_HEADER, "1"),
                    ("Authorization", &basic),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                ],
                b"grant_type=client_credentials",
            )
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
    }

    /// A token for a demo user (default secret `<user>-secret`).
    pub fn token(&self, user: &str) -> String {
        let r = self.token_request(user, &format!("{user}-secret"));
        assert_eq!(
            r.status,
            200,
            "token for {user}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token for {user}"))
            .to_string()
    }

    /// Creates an operation as `user`; returns its id.
    pub fn create_operation(&self, user: &str, keys: &[(&str, u32)], validms: u64) -> String {
        let token = self.token(user);
        let restrictions: Vec<Value> = keys
            .iter()
            .map(|(k, n)| json!({"keyid": k, "maxusagecount": n}))
            .collect();
        let body = json!({
            "validms": validms,
            "description": "Operation created by the ks-devserver test harness",
            "new-keyusagerestrictions": restrictions,
        });
        let r = self.api_request("POST", "/api/operations", Some(&token), Some(&body));
        assert!(
            r.status == 200 || r.status == 201,
            "create operation as {user}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        r.json()["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {:?}", r.json()))
            .to_string()
    }

    fn decide(&self, user: &str, op_id: &str, what: &str) -> Value {
        let token = self.token(user);
        let r = self.api_request(
            "POST",
            &format!("/api/operations/{op_id}/{what}"),
            Some(&token),
            None,
        );
        assert_eq!(
            r.status,
            200,
            "{what} {op_id} as {user}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Approves as `user`; returns the status document.
    pub fn approve(&self, user: &str, op_id: &str) -> Value {
        self.decide(user, op_id, "approve")
    }

    /// Rejects as `user`; returns the status document.
    pub fn reject(&self, user: &str, op_id: &str) -> Value {
        self.decide(user, op_id, "reject")
    }

    /// The operation's status document (read as `adminclient`).
    pub fn operation(&self, op_id: &str) -> Value {
        let token = self.token("adminclient");
        let r = self.api_request(
            "GET",
            &format!("/api/operations/{op_id}"),
            Some(&token),
            None,
        );
        assert_eq!(
            r.status,
            200,
            "status of {op_id}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// The environment a client needs: KSC_API_SERVER, KSC_CA_FILE,
    /// KSC_ID_TOKEN, KSC_OPERATION_ID.
    pub fn client_env(&self, token: &str, op_id: &str) -> Vec<(String, String)> {
        vec![
            ("KSC_API_SERVER".into(), self.api_url.clone()),
            ("KSC_CA_FILE".into(), self.ca_file.display().to_string()),
            ("KSC_ID_TOKEN".into(), token.to_string()),
            ("KSC_OPERATION_ID".into(), op_id.to_string()),
        ]
    }

    /// The approvers' web page: `https://127.0.0.1:PORT/ui/`.
    pub fn ui_url(&self) -> String {
        format!("{}/ui/", self.api_url)
    }

    /// base64(SHA-256(SubjectPublicKeyInfo)) of the certificate the API
    /// listener presents now (it is verified against the dev CA first):
    /// what Chromium's `--ignore-certificate-errors-spki-list` takes, so a
    /// browser trusts exactly this server and nothing else. The server key
    /// changes at every start; ask again after a restart.
    pub fn tls_spki_pin(&self) -> String {
        use der::{Decode, Encode};
        use sha2::Digest;
        let der = self
            .http()
            .server_certificate(&self.api_url)
            .unwrap_or_else(|e| panic!("server certificate: {e}"));
        let cert = x509_cert::Certificate::from_der(&der)
            .unwrap_or_else(|e| panic!("server certificate: {e}"));
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap_or_else(|e| panic!("server SPKI: {e}"));
        B64.encode(sha2::Sha256::digest(&spki))
    }

    /// `GET /api/dev/stats`.
    pub fn stats(&self) -> Value {
        let r = self.api_request("GET", "/api/dev/stats", None, None);
        assert_eq!(r.status, 200, "stats");
        r.json()
    }

    /// Blocks until the server holds a client's `GET /api/keys` (a server
    /// built with [`DevServerBuilder::hold_keys`]); returns how many it holds.
    /// The server answers the moment one arrives; a client that never asks is
    /// reported after `HOLD_GUARD_POLLS` polls, a guard against a hung test.
    pub fn wait_until_held(&self) -> u64 {
        let mut asked = 0;
        loop {
            // Each call is a long poll that the server answers on the event.
            let r = self.api_request("GET", "/api/dev/gate/held", None, None);
            assert_eq!(
                r.status,
                200,
                "the hold gate: {}",
                String::from_utf8_lossy(&r.body)
            );
            let held = r.json()["held"].as_u64().unwrap_or(0);
            if held > 0 {
                return held;
            }
            asked += 1;
            assert!(
                asked < HOLD_GUARD_POLLS,
                "no client request reached the hold gate in {asked} long polls of the server \
                 (harness guard against a hung test); server log:\n{}",
                tail(&self.log_path())
            );
        }
    }

    /// Releases the requests the hold gate holds, and opens it for good;
    /// returns how many it held.
    pub fn release_held(&self) -> u64 {
        let r = self.api_request("POST", "/api/dev/gate/release", None, None);
        assert_eq!(
            r.status,
            200,
            "the hold gate: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["held"].as_u64().unwrap_or(0)
    }

    fn ports(&self) -> (String, String) {
        let hostport = |u: &str| u.trim_start_matches("https://").to_string();
        (hostport(&self.auth_url), hostport(&self.api_url))
    }

    fn respawn_same_ports(&mut self) {
        let (auth, api) = self.ports();
        self.spawn(&auth, &api);
    }

    /// Stops the server gracefully (SIGTERM) and starts it again on the same
    /// ports with the same data directory.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) with a pid we own and a valid signal number has
            // no memory-safety preconditions.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let _ = child.wait();
        }
        self.respawn_same_ports();
    }

    /// Kills the server with SIGKILL (no chance to clean up) and starts it
    /// again on the same ports with the same data directory.
    pub fn kill9_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
        self.respawn_same_ports();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stand-in CI token issuer for tests (a GitLab instance, GitHub Actions):
/// a fresh P-256 key, its JWKS for the server's `[[issuers]]` configuration,
/// and ES256 tokens with any claims.
pub struct TestIssuer {
    key: p256::ecdsa::SigningKey,
    kid: String,
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// A new issuer with a random key.
    pub fn new() -> TestIssuer {
        TestIssuer {
            key: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
            kid: crate::util::random_hex(8),
        }
    }

    /// Writes the JWKS document (the public key) to `path`.
    pub fn write_jwks(&self, path: &Path) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as URL;
        let point = self.key.verifying_key().to_encoded_point(false);
        let coord = |c: Option<&p256::FieldBytes>| c.map(|v| URL.encode(v));
        let doc = json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": self.kid, "x": coord(point.x()), "y": coord(point.y())}]});
        std::fs::write(path, doc.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A signed token with `claims` (give `iss`, `aud`, `sub`, `exp` yourself).
    pub fn token(&self, claims: &Value) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as URL;
        use ecdsa::signature::Signer;
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL.encode(header.to_string()),
            URL.encode(claims.to_string())
        );
        let sig: p256::ecdsa::Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL.encode(sig.to_bytes()))
    }
}
