//! Support for the browser suites (`tests/web_*.rs`): Debian's headless
//! Chromium driven through chromedriver with a minimal W3C WebDriver client
//! (HTTP/1.1 + JSON over a loopback socket), the approvers' page of the dev
//! KeyServer, the `ksc` binary, and test artefacts.
//!
//! Chromium trusts exactly the dev server's TLS key: the harness verifies
//! the server certificate against the dev CA and hands its SPKI hash to
//! `--ignore-certificate-errors-spki-list` (no blanket
//! `--ignore-certificate-errors`). Each [`Browser`] has its own chromedriver
//! on an ephemeral port, its own profile directory, and kills its process
//! group when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ks_devserver::harness::DevServer;
use serde_json::{json, Value};

/// How long one wait for the page may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Finds `tool` on PATH or fails naming the Debian packages.
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{tool}` is not installed; the browser tests need Debian's headless Chromium: \
             `apt-get install -y chromium chromium-driver` (or run scripts/deps.sh test)"
        )
    })
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    // target/<profile>/deps/<test>
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// The real `ksc` binary next to the test executable (`target/<profile>/ksc`).
pub fn ksc_binary() -> PathBuf {
    let p = profile_dir().join("ksc");
    assert!(
        p.is_file(),
        "{} is not built; run `cargo build -p ks-cli` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// `<target dir>/test-artefacts/`, created if missing.
pub fn artefact_dir() -> PathBuf {
    let target = profile_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .to_path_buf();
    let dir = target.join("test-artefacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Checks `bytes` is a non-empty PNG image of some size.
pub fn assert_png(bytes: &[u8]) {
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG screenshot ({} bytes)",
        bytes.len()
    );
    let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert!(w > 100 && h > 100, "screenshot is {w}x{h}");
}

/// Polls `f` until it returns `Some`, failing with `what` after `timeout`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 exchange with chromedriver.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("connect chromedriver: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(90)))
        .map_err(|e| e.to_string())?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    tcp.write_all(head.as_bytes())
        .and_then(|_| tcp.write_all(payload.as_bytes()))
        .map_err(|e| format!("send to chromedriver: {e}"))?;
    // chromedriver may keep the connection open: read exactly one response.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (status, body) = loop {
        if let Some(done) = complete_response(&raw)? {
            break done;
        }
        let n = tcp
            .read(&mut buf)
            .map_err(|e| format!("read from chromedriver: {e}"))?;
        if n == 0 {
            return Err("chromedriver closed the connection mid-response".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("chromedriver answered {status} with non-JSON ({e})"))?;
    Ok((status, v))
}

/// `Some((status, body))` once `raw` holds a whole response.
fn complete_response(raw: &[u8]) -> Result<Option<(u16, Vec<u8>)>, String> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let body = &raw[end + 4..];
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Ok(dechunk(body).map(|b| (status, b)));
    }
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or("chromedriver sent neither Content-Length nor chunks")?;
    Ok((body.len() >= len).then(|| (status, body[..len].to_vec())))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A headless Chromium session pointed at one dev KeyServer.
pub struct Browser {
    driver: Option<Child>,
    port: u16,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("port", &self.port)
            .field("base", &self.base)
            .finish()
    }
}

impl Browser {
    /// Starts chromedriver (ephemeral port) and a fresh headless Chromium
    /// that trusts `server`'s TLS key only.
    pub fn start(server: &DevServer) -> Browser {
        let chromium = require_tool("chromium");
        let chromedriver = require_tool("chromedriver");
        let profile = tempfile::Builder::new()
            .prefix("ks-web-chromium-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temporary profile dir: {e}"));
        let mut driver = Command::new(&chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: Drop ends chromedriver and every
            // Chromium process it started, by that group id.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));
        let stdout = driver.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // "ChromeDriver was started successfully on port 34247."
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(p) = port.parse::<u16>() {
                        let _ = tx.send(p);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(WAIT) {
            Ok(p) if p != 0 => p,
            other => {
                kill_group(&mut driver);
                panic!("chromedriver did not report its port ({other:?})");
            }
        };
        let mut b = Browser {
            driver: Some(driver),
            port,
            session: String::new(),
            base: server.api_url().to_string(),
            _profile: profile,
        };
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", b._profile.path().display()),
            // Trust the dev server's key, verified against the dev CA by the harness.
            format!(
                "--ignore-certificate-errors-spki-list={}",
                server.tls_spki_pin()
            ),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": 30_000},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let r = http(port, "POST", "/session", Some(&caps));
        match r {
            Ok((200, v)) => {
                b.session = v["value"]["sessionId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no sessionId in {v}"))
                    .to_string();
            }
            other => panic!("chromedriver could not start Chromium: {other:?}"),
        }
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let full = format!("/session/{}{path}", self.session);
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        let (status, v) = http(self.port, method, &full, body.as_ref())?;
        if status == 200 {
            Ok(v["value"].clone())
        } else {
            Err(format!(
                "{method} {path}: {status} {} {}",
                v["value"]["error"].as_str().unwrap_or(""),
                v["value"]["message"].as_str().unwrap_or("")
            ))
        }
    }

    fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {e}\npage: {}", self.url()))
    }

    /// Opens `path` (e.g. `/ui/`) on the dev server.
    pub fn open(&self, path: &str) {
        self.must(
            "POST",
            "/url",
            Some(json!({"url": format!("{}{path}", self.base)})),
        );
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The current path (after the origin).
    pub fn path(&self) -> String {
        let u = self.url();
        u.strip_prefix(&self.base).unwrap_or(&u).to_string()
    }

    /// The element matching `css` now, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v[ELEMENT].as_str().map(str::to_string)
    }

    /// Polls `f` (bounded); on timeout fails with the page's URL and text.
    fn wait_page<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() >= deadline {
                let body = self
                    .find("body")
                    .map(|e| self.text_of(&e))
                    .unwrap_or_default();
                panic!(
                    "timed out after {WAIT:?} waiting for {what}; the browser is at {} showing:\n{body}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for an element matching `css`.
    pub fn wait_for(&self, css: &str) -> String {
        self.wait_page(&format!("`{css}`"), || self.find(css))
    }

    /// Waits (bounded) until nothing matches `css`.
    pub fn wait_gone(&self, css: &str) {
        self.wait_page(&format!("`{css}` to disappear"), || {
            self.find(css).is_none().then_some(())
        })
    }

    /// Waits (bounded) until the text of `css` contains `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait_page(&format!("`{css}` to contain {needle:?}"), || {
            let t = self.find(css).map(|e| self.text_of(&e))?;
            t.contains(needle).then_some(t)
        })
    }

    /// Waits (bounded) for the browser to be at `path`.
    pub fn wait_path(&self, path: &str) {
        self.wait_page(&format!("the browser to reach {path}"), || {
            (self.path() == path).then_some(())
        })
    }

    fn text_of(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The visible text of the element matching `css` (waits for it).
    pub fn text(&self, css: &str) -> String {
        let e = self.wait_for(css);
        self.text_of(&e)
    }

    /// Clicks the element matching `css` (waits for it).
    pub fn click(&self, css: &str) {
        let e = self.wait_for(css);
        self.must("POST", &format!("/element/{e}/click"), None);
    }

    /// Types `text` into the field matching `css` (clears it first).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.wait_for(css);
        self.must("POST", &format!("/element/{e}/clear"), None);
        self.must(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    /// The page's HTML now.
    pub fn source(&self) -> String {
        self.must("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs synchronous JavaScript in the page.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Logs in on the page as a demo user (password `<user>-secret`) and
    /// waits for the operations list.
    pub fn login(&self, user: &str) {
        self.open("/ui/login");
        self.fill("#username", user);
        self.fill("#password", &format!("{user}-secret"));
        self.click("#login");
        self.wait_path("/ui/");
        let who = self.text("#whoami");
        assert_eq!(who, user, "logged in as someone else");
    }

    /// Logs out through the page's button.
    pub fn logout(&self) {
        self.click("#logout");
        self.wait_path("/ui/login?loggedout=1");
    }

    /// Saves a PNG screenshot as `<target>/test-artefacts/<name>.png`,
    /// checks it and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.must("GET", "/screenshot", None);
        let png = B64
            .decode(b64.as_str().unwrap_or(""))
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"));
        assert_png(&png);
        let path = artefact_dir().join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        let back = std::fs::read(&path).unwrap_or_default();
        assert_png(&back);
        path
    }
}

fn kill_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: killpg(2) on the process group we created for this child
    // (process_group(0) makes its pid the group id); no memory is involved.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Lets chromedriver close Chromium cleanly; bounded by the socket timeout.
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        if let Some(mut d) = self.driver.take() {
            kill_group(&mut d);
        }
    }
}
