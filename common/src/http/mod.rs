//! The HTTPS transport: reqwest + rustls (ring), driven without background threads, fork-aware,
//! with bounded bodies and only-safe retries.
//!
//! Why this shape:
//! - The library is loaded into foreign processes (openssl, pkcs11-tool, Java...). A
//!   current-thread tokio runtime owned by the client and driven by `block_on` from the calling
//!   thread means no thread of ours ever runs after a call returns, so `C_Finalize`, `dlclose` and
//!   exit cannot race with our code. Many threads may `block_on` the same current-thread runtime
//!   at once; tokio hands the driver between them.
//! - DNS uses a resolver that runs `getaddrinfo` inline instead of tokio's blocking pool (which
//!   would start threads).
//! - After `fork()` the child must not touch the parent's sockets or runtime: the pid is recorded
//!   and a child builds fresh ones, leaking (never dropping) the parent's, because dropping would
//!   shut down connections the parent still uses.
//! - Time is bounded per library call, not per attempt: a [`CallDeadline`] opened by each public
//!   [`Client`](crate::Client) method (`KSC_DEADLINE`) covers every request the call makes (token,
//!   key list, sign order). Retries go on while it allows and no attempt, backoff or `Retry-After`
//!   wait runs past it; `KSC_HTTP_CLIENT_TIMEOUT` still bounds each single attempt. A thread-local
//!   carries it so the token and catalog code under a call need no extra parameter.

use std::io::Read as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Method;

use crate::config::{Config, KSC_DEADLINE, KSC_HTTP_CLIENT_TIMEOUT};
use crate::duration::format_duration;
use crate::error::{Error, ErrorKind, Result};

mod retry;
mod tls;

use retry::{backoff, classify};
pub use retry::{parse_retry_after, CallDeadline};
use tls::tls_config;
pub use tls::{system_root_certs_from, Trust};

/// Largest response body accepted; KeyServer replies are a few KiB (the key list grows with the
/// number of certificates). A larger one is a broken or hostile server.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Which failures a request may be retried after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Repeating it has no extra effect (GET, token, a sign order with a server-side requestid):
    /// retry connect errors, broken connections, timeouts, 5xx and 429.
    Idempotent,
    /// Repeating it could act twice (create operation, sign order on a server without requestid):
    /// retry only when the request provably never reached the server (connect/TLS failure, 429).
    NotSentOnly,
}

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: reqwest::Url,
    /// `Authorization` header value (never logged).
    pub authorization: Option<String>,
    /// Body and its content type.
    pub body: Option<(Vec<u8>, &'static str)>,
}

/// A received response (body already read and bounded).
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Parsed `Retry-After`.
    pub retry_after: Option<Duration>,
}

/// One failed attempt: was the request possibly seen by the server?
struct Failure {
    error: Error,
    maybe_sent: bool,
    retryable: bool,
    /// The TCP connection was actively refused: nothing listens at the address (yet).
    refused: bool,
}

/// How long connections refused in a row are retried before the call fails, within the call's
/// deadline. A restarting server or a Kubernetes service between replicas refuses for seconds;
/// a wrong port or a stopped server refuses for ever, and should not cost every call (and every
/// process of a fan-out) the whole `KSC_DEADLINE`. Nothing was sent, so retrying is always safe.
pub const REFUSED_BUDGET: Duration = Duration::from_secs(10);

/// The error once refusals outlast [`REFUSED_BUDGET`]: nothing listens at the URL's address.
fn refused_error(req: &Request, attempts: u32, refusing_for: Duration) -> Error {
    let host = req.url.host_str().unwrap_or("?");
    let port = req
        .url
        .port_or_known_default()
        .map_or_else(String::new, |p| format!(":{p}"));
    Error::new(
        ErrorKind::Network,
        format!(
            "{} {}: nothing is listening at {host}{port}: the connection was refused {attempts} time(s) over {}",
            req.method,
            req.url.path(),
            format_duration(refusing_for)
        ),
    )
    .with_remedy(format!(
        "check the host and port of the server URL ({}, or {} for the token endpoint) and that the server is running",
        crate::config::KSC_API_SERVER,
        crate::config::KSC_AUTH_SERVER
    ))
}

struct Engine {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// The lazily created, fork-aware HTTP engine.
pub struct Http {
    timeout: Duration,
    deadline: Duration,
    trust: Trust,
    engine: Mutex<Option<Arc<Engine>>>,
}

impl Http {
    /// No I/O: the runtime and connections are created on the first request.
    pub fn new(config: &Config) -> Http {
        Http {
            timeout: config.http_timeout,
            deadline: config.deadline,
            trust: Trust {
                ca_file: config.ca_file.clone(),
                system_roots: config.system_roots,
                system_roots_used: Arc::default(),
            },
            engine: Mutex::new(None),
        }
    }

    /// True once this client had to consult the system trust store (no `KSC_CA_FILE`, or a
    /// server certificate that does not chain to it).
    pub fn system_roots_used(&self) -> bool {
        self.trust
            .system_roots_used
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn engine(&self) -> Result<Arc<Engine>> {
        let pid = std::process::id();
        if let Some(e) = self.engine_slot()?.as_ref().filter(|e| e.pid == pid) {
            return Ok(e.clone());
        }
        // Built without the lock held: the build reads the trust store (the slowest step of a
        // short process), and a child forked meanwhile would wait forever for a lock held by a
        // thread it does not have. Two first callers may both build; one engine is kept and the
        // other, never used, is dropped.
        let built = Arc::new(self.build_engine(pid)?);
        let mut guard = self.engine_slot()?;
        if let Some(e) = guard.as_ref().filter(|e| e.pid == pid) {
            return Ok(e.clone());
        }
        // Forked child: the parent's runtime and sockets are not ours. Leak them: dropping
        // would close file descriptors shared with the parent and join threads that do not
        // exist in this process.
        if let Some(old) = guard.take() {
            log::debug!("fork detected (pid {} -> {pid}): new HTTP client", old.pid);
            std::mem::forget(old);
        }
        *guard = Some(built.clone());
        Ok(built)
    }

    fn engine_slot(&self) -> Result<std::sync::MutexGuard<'_, Option<Arc<Engine>>>> {
        self.engine
            .lock()
            .map_err(|_| Error::internal("HTTP engine lock poisoned"))
    }

    fn build_engine(&self, pid: u32) -> Result<Engine> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::internal(format!("cannot create the I/O runtime: {e}")))?;
        let tls = tls_config(&self.trust)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(InlineResolver))
            .user_agent(concat!("ks-common/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("cannot create the HTTPS client: {e}")))?;
        Ok(Engine {
            pid,
            runtime,
            client,
        })
    }

    /// Sends `req`, retrying per `policy` with exponential backoff and `Retry-After` for as long
    /// as the call's deadline ([`CallDeadline`], else `KSC_DEADLINE` from now) allows; refused
    /// connections only for [`REFUSED_BUDGET`]. Returns
    /// the last response for any HTTP status (the caller maps error statuses), or a
    /// [`ErrorKind::Network`] error; a `Retry-After` longer than the time left is a
    /// [`ErrorKind::RateLimited`] error at once (waiting could not end in time).
    pub fn execute(&self, req: &Request, policy: RetryPolicy) -> Result<Response> {
        let deadline = CallDeadline::current()
            .or_else(|| Instant::now().checked_add(self.deadline))
            .unwrap_or_else(|| Instant::now() + self.timeout);
        let mut attempt = 0u32;
        // When the current run of refused connections began (see REFUSED_BUDGET).
        let mut refused_since: Option<Instant> = None;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.deadline_error(req, attempt - 1, None));
            }
            let started = Instant::now();
            let outcome = self.send_once(req, self.timeout.min(left));
            match &outcome {
                Err(f) if f.refused => {
                    let since = *refused_since.get_or_insert(started);
                    if since.elapsed() >= REFUSED_BUDGET {
                        return Err(refused_error(req, attempt, since.elapsed()));
                    }
                }
                _ => refused_since = None,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let delay = match &outcome {
                Ok(resp) => {
                    let retry_status = resp.status == 429
                        || (policy == RetryPolicy::Idempotent
                            && matches!(resp.status, 500 | 502 | 503 | 504));
                    if !retry_status {
                        return outcome.map_err(|f| f.error);
                    }
                    match resp.retry_after {
                        Some(ra) if ra > left => {
                            return Err(Error::new(
                                ErrorKind::RateLimited,
                                format!(
                                    "the server answered HTTP {} and asks to retry in {}, but only {} of the call's {KSC_DEADLINE} ({}) is left",
                                    resp.status,
                                    format_duration(ra),
                                    format_duration(left),
                                    format_duration(self.deadline)
                                ),
                            )
                            .with_server(resp.status, None, None)
                            .with_remedy(format!(
                                "retry later, or raise {KSC_DEADLINE} above the server's Retry-After"
                            )));
                        }
                        Some(ra) => ra,
                        None => backoff(attempt),
                    }
                }
                Err(f) => {
                    let may_retry =
                        f.retryable && (policy == RetryPolicy::Idempotent || !f.maybe_sent);
                    if !may_retry {
                        return outcome.map_err(|f| f.error);
                    }
                    backoff(attempt)
                }
            };
            if delay >= left {
                // No attempt could start before the deadline: report the last failure now
                // instead of sleeping into it.
                return match outcome {
                    Ok(resp) => Ok(resp),
                    Err(f) => Err(self.deadline_error(req, attempt, Some(f.error))),
                };
            }
            match &outcome {
                Ok(r) => log::info!(
                    "{} {}: HTTP {}, retrying in {:?} (attempt {attempt}, {} left)",
                    req.method,
                    req.url.path(),
                    r.status,
                    delay,
                    format_duration(left)
                ),
                Err(f) => log::info!(
                    "{} {}: {}, retrying in {:?} (attempt {attempt}, {} left)",
                    req.method,
                    req.url.path(),
                    f.error.message(),
                    delay,
                    format_duration(left)
                ),
            }
            // Sleep outside the runtime: other threads keep driving it meanwhile.
            std::thread::sleep(delay);
        }
    }

    /// The call ran out of time; `last` is the failure of the last attempt, if one was made.
    fn deadline_error(&self, req: &Request, attempts: u32, last: Option<Error>) -> Error {
        let mut message = format!(
            "{} {}: no answer within the call's {KSC_DEADLINE} ({}) after {attempts} attempt(s)",
            req.method,
            req.url.path(),
            format_duration(self.deadline)
        );
        if let Some(e) = &last {
            message.push_str(&format!("; last: {}", e.message()));
        }
        // The last failure's advice says what to check (the URL, the CA file...); without one,
        // name both time settings.
        let remedy = match &last {
            Some(e) => format!("{}; or raise {KSC_DEADLINE}", e.remedy()),
            None => format!(
                "check the server and the network, or raise {KSC_DEADLINE} (whole call) or {KSC_HTTP_CLIENT_TIMEOUT} (each attempt)"
            ),
        };
        let kind = last.as_ref().map_or(ErrorKind::Network, |e| e.kind());
        Error::new(kind, message).with_remedy(remedy)
    }

    fn send_once(
        &self,
        req: &Request,
        attempt_timeout: Duration,
    ) -> std::result::Result<Response, Failure> {
        let engine = self.engine().map_err(|error| Failure {
            error,
            maybe_sent: false,
            retryable: false,
            refused: false,
        })?;
        // KeyServer authenticates with the bearer token; userinfo in a server URL would make
        // reqwest send it as Basic credentials instead (and put the password on the wire).
        let mut url = req.url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = url.set_password(None);
            let _ = url.set_username("");
        }
        let mut builder = engine.client.request(req.method.clone(), url);
        if let Some(auth) = &req.authorization {
            // Marked sensitive so that no HTTP-layer debug output can print the bearer token
            // (KeyServer's, or GitHub's request token); a value that is not a valid header is
            // refused, never sent half-formed.
            let mut value = reqwest::header::HeaderValue::from_str(auth).map_err(|_| Failure {
                error: Error::new(
                    ErrorKind::Auth,
                    "the bearer token contains characters not allowed in an HTTP header",
                ),
                maybe_sent: false,
                retryable: false,
                refused: false,
            })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some((body, ctype)) = &req.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, *ctype)
                .body(body.clone());
        }
        builder = builder
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(attempt_timeout);
        let fut = async move {
            let resp = builder.send().await.map_err(classify)?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = read_bounded(resp).await?;
            Ok(Response {
                status,
                body,
                retry_after,
            })
        };
        // reqwest's timeout covers connect, headers and body; the outer one is the guarantee
        // that nothing (a slow TLS handshake, a trickling body) outlives the attempt.
        let bounded = async move {
            match tokio::time::timeout(attempt_timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    error: Error::new(
                        ErrorKind::Network,
                        format!(
                            "the server did not answer in time ({} for this attempt)",
                            format_duration(attempt_timeout)
                        ),
                    )
                    .with_remedy(format!("retry, or raise {KSC_HTTP_CLIENT_TIMEOUT}")),
                    maybe_sent: true,
                    retryable: true,
                    refused: false,
                }),
            }
        };
        block_on(&engine.runtime, bounded)
    }
}

/// Runs `fut` on the client's runtime from the calling thread. If the caller is itself inside
/// a tokio runtime (an async host), nesting `block_on` would panic, so the call moves to a
/// scoped thread that ends before this returns.
fn block_on<F: std::future::Future + Send>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(|| rt.block_on(fut)).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    } else {
        rt.block_on(fut)
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> std::result::Result<Vec<u8>, Failure> {
    if let Some(len) = resp.content_length() {
        if len > MAX_BODY as u64 {
            return Err(too_large());
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large() -> Failure {
    Failure {
        error: Error::bad_response(format!(
            "the server's reply is larger than {} MiB",
            MAX_BODY / (1024 * 1024)
        )),
        maybe_sent: true,
        retryable: false,
        refused: false,
    }
}
/// Resolves host names with the system resolver on the calling thread (see the module docs).
struct InlineResolver;

impl Resolve for InlineResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = (host.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Joins a base URL (`https://host:8200` or `https://host/prefix/`) and path segments, each
/// percent-encoded (an operation id can never escape its segment).
pub fn join_url(base: &str, segments: &[&str]) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(base)
        .map_err(|e| Error::new(ErrorKind::Config, format!("{base:?} is not a URL: {e}")))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| Error::new(ErrorKind::Config, format!("{base:?} cannot be a base URL")))?;
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
    }
    Ok(url)
}

/// Reads a file fully but refuses more than `max` bytes (used by `ksc` for inputs).
pub fn read_file_bounded(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::retry::{BACKOFF_BASE, BACKOFF_MAX};
    use super::*;
    use crate::config::KSC_CA_FILE;

    #[test]
    fn url_joining() {
        let u = join_url("https://ks:8200", &["api", "keys"]).unwrap();
        assert_eq!(u.as_str(), "https://ks:8200/api/keys");
        let u = join_url("https://ks:8200/", &["api", "keys"]).unwrap();
        assert_eq!(u.as_str(), "https://ks:8200/api/keys");
        let u = join_url("https://ks/prefix/", &["api", "operations", "4 2/../x?y"]).unwrap();
        assert_eq!(
            u.as_str(),
            "https://ks/prefix/api/operations/4%202%2F..%2Fx%3Fy"
        );
        let u = join_url("https://ks/prefix", &["api"]).unwrap();
        assert_eq!(u.as_str(), "https://ks/prefix/api");
        assert!(join_url("not a url", &["api"]).is_err());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= BACKOFF_BASE && backoff(1) < BACKOFF_BASE * 2);
        assert!(backoff(3) >= BACKOFF_BASE * 4);
        assert!(backoff(30) <= BACKOFF_MAX + BACKOFF_MAX / 4);
    }

    fn trust(ca: Option<&std::path::Path>) -> Trust {
        Trust {
            ca_file: ca.map(|p| p.to_path_buf()),
            system_roots: true,
            system_roots_used: Arc::default(),
        }
    }

    #[test]
    fn bad_ca_file_is_config_error() {
        let e = tls_config(&trust(Some(std::path::Path::new("/nonexistent/ca.pem")))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains(KSC_CA_FILE));
        let dir = std::env::temp_dir().join(format!("ks-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "nothing here").unwrap();
        let e = tls_config(&trust(Some(&f))).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn system_store_read_once_bundle_before_directory() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");
        let pem = |n: &str| std::fs::read_to_string(format!("{data}{n}.pem")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("ca-certificates.crt");
        std::fs::write(&bundle, pem("rsa2048") + &pem("p256")).unwrap();
        // The directory repeats the bundle one certificate per file (as /etc/ssl/certs does)
        // and has one more: reading it too would parse the bundle's certificates twice.
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        for n in ["rsa2048", "p256", "p384"] {
            std::fs::write(certs.join(format!("{n}.pem")), pem(n)).unwrap();
        }
        let dirs = vec![certs.clone()];
        assert_eq!(system_root_certs_from(Some(&bundle), &dirs).len(), 2);
        // No bundle (or an empty one): the directory, each certificate once.
        assert_eq!(system_root_certs_from(None, &dirs).len(), 3);
        let missing = dir.path().join("missing.crt");
        assert_eq!(system_root_certs_from(Some(&missing), &dirs).len(), 3);
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(
            system_root_certs_from(Some(&empty), &[certs.clone(), certs]).len(),
            3
        );
    }

    #[test]
    fn no_trust_anchors_is_config_error() {
        let t = Trust {
            ca_file: None,
            system_roots: false,
            system_roots_used: Arc::default(),
        };
        let e = tls_config(&t).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!t
            .system_roots_used
            .load(std::sync::atomic::Ordering::Relaxed));
    }

    /// One call to a loopback port nobody listens on (a listener bound, then dropped), with
    /// this call deadline; returns the error and the port.
    fn call_closed_port(deadline: Duration, policy: RetryPolicy) -> (Error, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = Config {
            http_timeout: Duration::from_secs(2),
            ca_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rsa2048.pem").into()),
            deadline,
            ..Config::default()
        };
        let req = Request {
            method: Method::GET,
            url: join_url(&format!("https://127.0.0.1:{port}"), &["api", "keys"]).unwrap(),
            authorization: None,
            body: None,
        };
        (Http::new(&cfg).execute(&req, policy).unwrap_err(), port)
    }

    #[test]
    fn connection_refused_is_network_error_without_threads() {
        // Refused connections are retried within the deadline: keep it short.
        let (e, _) = call_closed_port(Duration::from_secs(1), RetryPolicy::NotSentOnly);
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }

    #[test]
    fn refusals_stop_after_their_budget_not_the_whole_deadline() {
        // Far longer than the refusal budget: the budget must end the call.
        let (e, port) = call_closed_port(REFUSED_BUDGET * 30, RetryPolicy::Idempotent);
        let text = e.to_string();
        assert_eq!(e.kind(), ErrorKind::Network);
        assert!(
            text.contains(&format!("nothing is listening at 127.0.0.1:{port}")),
            "{text}"
        );
        // Retried before giving up, and not reported as the deadline running out.
        assert!(!text.contains("refused 1 time(s)"), "{text}");
        assert!(!text.contains("no answer within"), "{text}");
        assert!(e.remedy().contains("KSC_API_SERVER"), "{e:?}");
    }
}
