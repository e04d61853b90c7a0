//! `ksc doctor`: every effective setting with its source, then the checks a signing run depends
//! on, in the order they can fail (configuration, DNS, TCP, TLS, authentication, key catalog,
//! operation), each with what it found and, on failure, the fix.
//!
//! Doctor spends nothing: it only reads (token, key list, operation status), never creates an
//! operation and never signs. A check whose prerequisite failed is skipped with the reason, so
//! the first FAIL is the one to fix.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use ks_common::config::{
    is_secret, Source, KSC_API_SERVER, KSC_AUTH_SERVER, KSC_CA_FILE, KSC_CLIENT_ID,
    KSC_CLIENT_SECRET, KSC_CONFIG, KSC_ID_TOKEN, KSC_KEY_PINS, KSC_OPERATION_ID,
    KSC_SIGNING_CA_FILE,
};
use ks_common::duration::format_duration;
use ks_common::error::{sanitize_server_text, Error, ErrorKind};
use ks_common::http::{join_url, CallDeadline, Http, Request, RetryPolicy};
use ks_common::operation::OperationState;
use ks_common::token::{identity_notice, Identity};
use ks_common::{Client, Config, Settings};

/// A check's outcome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Ok,
    Fail,
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One check's line of the report.
struct Check {
    name: &'static str,
    /// The setting whose server this check is about (`KSC_API_SERVER`, `KSC_AUTH_SERVER`).
    server: Option<&'static str>,
    status: Status,
    detail: String,
    fix: Option<String>,
}

/// The checks so far; after a failure the dependent checks are skipped with its name.
#[derive(Default)]
struct Checks {
    list: Vec<Check>,
    blocked_by: Option<String>,
}

impl Checks {
    /// Runs `f` unless an earlier check failed; records its outcome.
    fn run(
        &mut self,
        name: &'static str,
        server: Option<&'static str>,
        f: impl FnOnce() -> Outcome,
    ) {
        let (status, detail, fix) = match &self.blocked_by {
            Some(reason) => (Status::Skip, reason.clone(), None),
            None => match f() {
                Outcome::Ok(d) => (Status::Ok, d, None),
                Outcome::Skip(d) => (Status::Skip, d, None),
                Outcome::Fail(d, fix) => {
                    let label = match server {
                        Some(s) => format!("the {name} check of {s} failed"),
                        None => format!("the {name} check failed"),
                    };
                    self.blocked_by = Some(label);
                    (Status::Fail, d, Some(fix))
                }
            },
        };
        // Every text passes the redaction of URL credentials, whatever produced it.
        self.list.push(Check {
            name,
            server,
            status,
            detail: ks_common::redact::userinfo(&detail),
            fix: fix.map(|f| ks_common::redact::userinfo(&f)),
        });
    }

    /// Records the checks that cannot run at all after a failure, with its name.
    fn skip_rest(&mut self, names: &[&'static str]) {
        let reason = self.blocked_by.clone().unwrap_or_default();
        for &name in names {
            self.list.push(Check {
                name,
                server: None,
                status: Status::Skip,
                detail: reason.clone(),
                fix: None,
            });
        }
    }

    fn failed(&self) -> usize {
        self.list
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count()
    }
}

/// What one check found.
enum Outcome {
    Ok(String),
    Skip(String),
    /// What failed, and the fix in one sentence.
    Fail(String, String),
}

/// One line of the settings listing, secrets already masked.
struct SettingLine {
    name: &'static str,
    /// Shown value (masked for secrets), `None` when unset.
    value: Option<String>,
    secret: bool,
    source: &'static str,
    /// The flag (`--api-server`) or the config file path behind the source.
    origin: Option<String>,
    /// A JWT's non-secret claims (iss, sub, aud, exp).
    claims: Option<Value>,
}

/// `ksc doctor`: prints the report on stdout; exit 0 when every check passed, 1 otherwise.
///
/// `settings` holds the environment with the command-line flags already in it (as every ksc
/// command resolves them); `flags` says which variables a flag set, and by which flag.
pub(crate) fn run(
    settings: &Settings,
    flags: &[(&'static str, &'static str)],
    json_out: bool,
) -> ExitCode {
    let listing = settings_listing(settings, flags);
    let mut checks = Checks::default();
    let config = check_config(&mut checks, settings);
    if let Some(config) = config {
        ks_common::logging::init(&config);
        check_network(&mut checks, &config);
    } else {
        checks.skip_rest(&["dns", "tcp", "tls", "auth", "keys", "operation"]);
    }
    let failed = checks.failed();
    if json_out {
        print_json(&listing, &checks, failed);
    } else {
        print_text(&listing, &checks, failed);
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn settings_listing(
    settings: &Settings,
    flags: &[(&'static str, &'static str)],
) -> Vec<SettingLine> {
    let none = Settings::new();
    // An unreadable config file still lets the rest be listed (the config check says why).
    let effective = Config::effective_settings(&none, settings).or_else(|_| {
        let mut without = settings.clone();
        let path = without.remove(KSC_CONFIG);
        Config::effective_settings(&none, &without).map(|mut list| {
            if let Some(e) = list.iter_mut().find(|e| e.name == KSC_CONFIG) {
                e.value = path;
                e.source = Source::Env;
            }
            list
        })
    });
    let Ok(effective) = effective else {
        return Vec::new();
    };
    effective
        .into_iter()
        .map(|e| {
            let flag = flags.iter().find(|(v, _)| *v == e.name).map(|(_, f)| *f);
            let (source, origin) = match (&e.source, flag) {
                (Source::Env, Some(f)) => ("flag", Some(f.to_string())),
                (Source::Env, None) => ("env", None),
                (Source::File(p), _) => ("file", Some(p.display().to_string())),
                (Source::Override, _) => ("override", None),
                (Source::Default, _) => ("default", None),
            };
            let secret = is_secret(e.name);
            let (value, claims) = match (&e.value, secret) {
                (None, _) => (None, None),
                (Some(v), true) => {
                    let (text, claims) = mask(v.trim());
                    (Some(text), claims)
                }
                (Some(v), false) => (Some(ks_common::redact::userinfo(v)), None),
            };
            SettingLine {
                name: e.name,
                value,
                secret,
                source,
                origin,
                claims,
            }
        })
        .collect()
}

/// A secret as it may be shown: its length, and for a JWT its non-secret claims. Never the
/// value itself, nor a part of it.
fn mask(secret: &str) -> (String, Option<Value>) {
    let n = secret.chars().count();
    let Some(claims) = crate::jwt_claims(secret) else {
        return (format!("set, {n} chars"), None);
    };
    let text_claim = |k: &str| -> Option<String> {
        match claims.get(k)? {
            Value::String(s) => Some(sanitize_server_text(s, 80)),
            Value::Array(a) => Some(sanitize_server_text(
                &a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                80,
            )),
            _ => None,
        }
    };
    let exp = claims.get("exp").and_then(|v| v.as_u64());
    let mut parts = vec![format!("set, {n} chars, JWT")];
    for k in ["iss", "sub", "aud"] {
        if let Some(v) = text_claim(k) {
            parts.push(format!("{k}={v}"));
        }
    }
    if let Some(exp) = exp {
        parts.push(format!("exp={}", when(exp)));
    }
    let shown = json!({
        "iss": text_claim("iss"),
        "sub": text_claim("sub"),
        "aud": text_claim("aud"),
        "exp": exp,
    });
    (parts.join(" "), Some(shown))
}

/// `2026-11-30 03:55 UTC (in 55m0s)` or `(... ago)`.
fn when(unix: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(unix);
    let (y, m, d) = ks_common::date::ymd(t).unwrap_or((1970, 1, 1));
    let hm = unix % 86_400;
    let rel = match t.duration_since(SystemTime::now()) {
        Ok(left) => format!("in {}", format_duration(round_secs(left))),
        Err(e) => format!("expired {} ago", format_duration(round_secs(e.duration()))),
    };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC ({rel})",
        hm / 3600,
        (hm % 3600) / 60
    )
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// The configuration parses (and names an API server); returns it for the other checks.
fn check_config(checks: &mut Checks, settings: &Settings) -> Option<Config> {
    let mut out = None;
    checks.run("config", None, || {
        match Config::resolve(&Settings::new(), settings) {
            Err(e) => Outcome::Fail(e.message().to_string(), e.remedy().to_string()),
            Ok(c) if c.api_server.is_none() => Outcome::Fail(
                format!("{KSC_API_SERVER} is not set"),
                format!("export {KSC_API_SERVER}=https://keyserver.example:8200 (or pass --api-server URL)"),
            ),
            Ok(c) => {
                let file = match &c.config_file {
                    Some(p) => format!("config file {}", p.display()),
                    None => format!("no config file ({KSC_CONFIG} not set)"),
                };
                out = Some(c);
                Outcome::Ok(format!("every setting is valid; {file}"))
            }
        }
    });
    out
}

/// A server the checks reach: the setting naming it and its URL.
struct Target {
    setting: &'static str,
    base: String,
    host: String,
    port: u16,
    https: bool,
}

fn target(setting: &'static str, base: &str) -> Option<Target> {
    let url = join_url(base, &[]).ok()?;
    Some(Target {
        setting,
        base: base.to_string(),
        // An IPv6 literal comes bracketed; the resolver wants it bare.
        host: url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: url.port_or_known_default()?,
        https: url.scheme() == "https",
    })
}

fn check_network(checks: &mut Checks, config: &Config) {
    // Doctor looks at the server, not at a token or catalog some earlier run left behind.
    let mut config = config.clone();
    config.cache = false;
    let api = config.api_server.clone().unwrap_or_default();
    let mut targets: Vec<Target> = target(KSC_API_SERVER, &api).into_iter().collect();
    // The auth server is contacted only when the identity in use logs in with client
    // credentials (KSC_ID_TOKEN_SOURCE and the auto order decide, as for a real call).
    let logs_in = Identity::of(&config) == Identity::Client;
    if let (true, Some(auth)) = (logs_in, &config.auth_server) {
        if let Some(t) = target(KSC_AUTH_SERVER, auth) {
            let same_as_api = targets
                .first()
                .is_some_and(|api| (t.host.as_str(), t.port) == (api.host.as_str(), api.port));
            if !same_as_api {
                targets.push(t);
            }
        }
    }
    for t in &targets {
        let mut addrs = Vec::new();
        checks.run("dns", Some(t.setting), || check_dns(t, &config, &mut addrs));
        checks.run("tcp", Some(t.setting), || check_tcp(t, &config, &addrs));
        checks.run("tls", Some(t.setting), || check_tls(t, &config));
    }
    let client = Client::new(config);
    let mut catalog = None;
    checks.run("auth", None, || check_auth(&client, &mut catalog));
    checks.run("keys", None, || check_keys(&client, catalog));
    // The operation check depends on auth, not on the catalog's trust verdict.
    if checks.list.last().is_some_and(|c| c.status == Status::Fail) {
        checks.blocked_by = None;
    }
    checks.run("operation", None, || check_operation(&client));
}

/// Runs `f` on a thread of its own and gives up after `limit`: `getaddrinfo` has no timeout.
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

fn check_dns(t: &Target, config: &Config, addrs: &mut Vec<SocketAddr>) -> Outcome {
    if let Ok(ip) = t.host.parse::<IpAddr>() {
        addrs.push(SocketAddr::new(ip, t.port));
        return Outcome::Ok(format!("{} is an IP address (no lookup needed)", t.host));
    }
    let limit = config.http_timeout.min(config.deadline);
    let (host, port) = (t.host.clone(), t.port);
    match bounded(limit, move || {
        (host.as_str(), port)
            .to_socket_addrs()
            .map(|a| a.collect::<Vec<_>>())
    }) {
        None => Outcome::Fail(
            format!(
                "resolving {} took longer than {}",
                t.host,
                format_duration(limit)
            ),
            "check the machine's DNS servers (/etc/resolv.conf), or raise KSC_HTTP_CLIENT_TIMEOUT"
                .into(),
        ),
        Some(Err(e)) => Outcome::Fail(
            format!("cannot resolve {}: {e}", t.host),
            format!(
                "check the host name in {} ({}) and the machine's DNS",
                t.setting, t.base
            ),
        ),
        Some(Ok(found)) if found.is_empty() => Outcome::Fail(
            format!("{} resolves to no address", t.host),
            format!("check the host name in {} and the DNS records", t.setting),
        ),
        Some(Ok(found)) => {
            let list: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
            *addrs = found;
            Outcome::Ok(format!("{} resolves to {}", t.host, list.join(", ")))
        }
    }
}

fn check_tcp(t: &Target, config: &Config, addrs: &[SocketAddr]) -> Outcome {
    let start = Instant::now();
    let mut errors = Vec::new();
    for addr in addrs {
        let left = config.deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            errors.push(format!("{addr}: not tried (KSC_DEADLINE reached)"));
            break;
        }
        match TcpStream::connect_timeout(addr, config.http_timeout.min(left)) {
            Ok(_) => return Outcome::Ok(format!("connected to {addr}")),
            Err(e) => errors.push(format!("{addr}: {e}")),
        }
    }
    Outcome::Fail(
        format!("cannot connect: {}", errors.join("; ")),
        format!(
            "check that the server of {} is running and listening on port {}, and that no firewall blocks it",
            t.setting, t.port
        ),
    )
}

fn check_tls(t: &Target, config: &Config) -> Outcome {
    if !t.https {
        return Outcome::Skip(format!(
            "{} uses plain http (loopback only): no TLS",
            t.setting
        ));
    }
    let path: &[&str] = if t.setting == KSC_API_SERVER {
        &["api", "keys"]
    } else {
        &[]
    };
    let url = match join_url(&t.base, path) {
        Ok(u) => u,
        Err(e) => return Outcome::Fail(e.message().to_string(), e.remedy().to_string()),
    };
    let http = Http::new(config);
    let _deadline = CallDeadline::start(config.deadline);
    // No token: the handshake is what is checked; any HTTP answer proves it.
    let req = Request {
        method: Default::default(), // GET
        url,
        authorization: None,
        body: None,
    };
    let result = http.execute(&req, RetryPolicy::Idempotent);
    let ca_file = config
        .ca_file
        .as_ref()
        .map(|p| format!("{KSC_CA_FILE} {}", p.display()));
    match result {
        Ok(resp) => {
            let anchors = match (ca_file, http.system_roots_used()) {
                (Some(f), false) => f,
                (Some(f), true) => format!("the system roots ({f} alone did not verify it)"),
                (None, _) => format!("the system roots ({KSC_CA_FILE} not set)"),
            };
            Outcome::Ok(format!(
                "{}:{} presented a certificate verified by {anchors} (HTTP {} without a token)",
                t.host, t.port, resp.status
            ))
        }
        Err(e) if e.kind() == ErrorKind::Config => {
            Outcome::Fail(e.message().to_string(), e.remedy().to_string())
        }
        Err(e) => {
            let anchors = match (ca_file, config.system_roots) {
                (Some(f), true) => format!("{f} or the system roots"),
                (Some(f), false) => format!("{f} (system roots off)"),
                (None, _) => format!("the system roots ({KSC_CA_FILE} not set)"),
            };
            let (what, fix) = explain_tls(e.message(), &anchors, t, e.remedy());
            Outcome::Fail(format!("{what}: {}", e.message()), fix)
        }
    }
}

/// What a failed handshake means, and its fix, from the error text (rustls's certificate
/// error names: UnknownIssuer, expired / not valid yet, not valid for name).
fn explain_tls(text: &str, anchors: &str, t: &Target, remedy: &str) -> (String, String) {
    let low = text.to_ascii_lowercase();
    if low.contains("unknownissuer") || low.contains("unknown issuer") {
        (
            format!("the server's certificate is not issued by a CA in {anchors}"),
            format!("point {KSC_CA_FILE} at the PEM CA certificate that issued the server's certificate (for the dev KeyServer: its ca.pem)"),
        )
    } else if low.contains("not valid for name") || low.contains("notvalidforname") {
        (
            format!("the server's certificate does not name the host {}", t.host),
            format!(
                "use in {} the host name the certificate was issued for, or have the certificate reissued with {} in its subjectAltName",
                t.setting, t.host
            ),
        )
    } else if low.contains("expired")
        || low.contains("not valid yet")
        || low.contains("notvalidyet")
    {
        (
            "the server's certificate is outside its validity period (expired, or not yet valid)"
                .to_string(),
            "have the server's certificate renewed, or correct this machine's clock if it is wrong"
                .to_string(),
        )
    } else if low.contains("certificate") || low.contains("tls") {
        (
            "the TLS handshake failed".to_string(),
            format!(
                "check that {} is this server's HTTPS URL and that {KSC_CA_FILE} trusts it",
                t.setting
            ),
        )
    } else {
        (
            "no HTTPS answer".to_string(),
            format!(
                "check that {} is this server's HTTPS URL; {remedy}",
                t.setting
            ),
        )
    }
}

/// Authentication: a token is at hand (given or obtained) and the API server accepts it (by
/// listing the keys, which the catalog check then reports).
fn check_auth(client: &Client, catalog: &mut Option<Result<usize, Error>>) -> Outcome {
    let config = client.config();
    let identity = Identity::of(config);
    let mut how = identity.describe(config);
    // Which identity wins and why, when more than one is set (the same line `ksc` prints).
    if let Some(notice) = identity_notice(config) {
        how.push_str(&format!("; {notice}"));
    }
    if let (Identity::Token, Some(t)) = (&identity, &config.id_token) {
        if let Some(exp) = ks_common::token::jwt_expiry(t) {
            if exp <= SystemTime::now() {
                let unix = exp
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                return Outcome::Fail(
                    format!("{KSC_ID_TOKEN} has expired (exp {})", when(unix)),
                    format!("fetch a new token (export {KSC_ID_TOKEN}=$(ksc token)) or log in with client credentials instead"),
                );
            }
        }
    }
    let token = match client.token() {
        Ok(t) => t,
        Err(e) => {
            let refused = identity == Identity::Client
                && matches!(e.kind(), ErrorKind::Auth | ErrorKind::Forbidden)
                && matches!(e.http_status(), Some(400 | 401 | 403));
            let fix = if refused {
                format!(
                    "check {KSC_CLIENT_ID} and {KSC_CLIENT_SECRET} (the auth server refused them)"
                )
            } else {
                e.remedy().to_string()
            };
            return Outcome::Fail(format!("no token from {how}: {}", e.message()), fix);
        }
    };
    let expiry = match ks_common::token::jwt_expiry(&token) {
        Some(exp) => format!(
            ", expires {}",
            when(
                exp.duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            )
        ),
        None => String::new(),
    };
    match client.keys() {
        Ok(keys) => {
            *catalog = Some(Ok(keys.len()));
            Outcome::Ok(format!("token from {how}{expiry}; accepted by the API server"))
        }
        Err(e) if e.kind() == ErrorKind::Auth => Outcome::Fail(
            format!(
                "the API server refused the token from {how} (HTTP 401: expired, wrongly signed, or from an issuer or audience it does not trust): {}",
                e.message()
            ),
            e.remedy().to_string(),
        ),
        Err(e) if e.kind() == ErrorKind::Forbidden => Outcome::Fail(
            format!(
                "the API server accepted the token from {how} but this identity may not list keys (HTTP 403): {}",
                e.message()
            ),
            "use an identity whose role allows listing keys and signing (ask the KeyServer administrator)".to_string(),
        ),
        Err(e) => {
            *catalog = Some(Err(e));
            Outcome::Ok(format!("token from {how}{expiry} (not yet confirmed by the API server)"))
        }
    }
}

fn check_keys(client: &Client, catalog: Option<Result<usize, Error>>) -> Outcome {
    if let Some(Err(e)) = catalog {
        return Outcome::Fail(
            format!("cannot list the keys: {}", e.message()),
            e.remedy().to_string(),
        );
    }
    let (keys, untrusted) = match (client.keys(), client.untrusted_keys()) {
        (Ok(k), Ok(u)) => (k, u),
        (Err(e), _) | (_, Err(e)) => {
            return Outcome::Fail(
                format!("cannot list the keys: {}", e.message()),
                e.remedy().to_string(),
            )
        }
    };
    let names: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "{} ({})",
                k.keyid,
                k.algorithm
                    .clone()
                    .unwrap_or_else(|| k.public_key.algorithm_name())
            )
        })
        .collect();
    let config = client.config();
    let trust = match (&config.signing_ca_file, config.key_pins.is_empty()) {
        (Some(p), true) => Some(format!("{KSC_SIGNING_CA_FILE} {}", p.display())),
        (Some(p), false) => Some(format!(
            "{KSC_SIGNING_CA_FILE} {} and {KSC_KEY_PINS}",
            p.display()
        )),
        (None, false) => Some(KSC_KEY_PINS.to_string()),
        (None, true) => None,
    };
    let refused: Vec<String> = untrusted
        .iter()
        .map(|u| format!("{}: {}", u.entry.keyid, u.reason))
        .collect();
    let pinned_refused = untrusted
        .iter()
        .any(|u| config.key_pins.iter().any(|(k, _)| *k == u.entry.keyid));
    if keys.is_empty() && untrusted.is_empty() {
        return Outcome::Fail(
            "the server lists no key for this identity".into(),
            "ask the KeyServer administrator for sign rights on the keys you need".into(),
        );
    }
    if let Some(trust) = &trust {
        if keys.is_empty() || pinned_refused {
            return Outcome::Fail(
                format!(
                    "{} listed, refused by {trust}: {}",
                    untrusted.len() + keys.len(),
                    refused.join("; ")
                ),
                format!("point {KSC_SIGNING_CA_FILE} at the CA that issues the KeyServer's signing certificates and check {KSC_KEY_PINS} against `ksc cert KEY`; if they are right, the server is not the one you trust"),
            );
        }
    }
    let mut detail = format!("{} key(s): {}", keys.len(), names.join(", "));
    match (&trust, refused.is_empty()) {
        (Some(t), true) => detail.push_str(&format!("; every one trusted by {t}")),
        (Some(t), false) => detail.push_str(&format!(
            "; trusted by {t}; not trusted (never used): {}",
            refused.join("; ")
        )),
        (None, _) => detail.push_str(&format!(
            "; no {KSC_SIGNING_CA_FILE} or {KSC_KEY_PINS}: the keys are taken as the server lists them"
        )),
    }
    Outcome::Ok(detail)
}

fn check_operation(client: &Client) -> Outcome {
    let Some(id) = client.config().operation_id.clone() else {
        return Outcome::Skip(format!("{KSC_OPERATION_ID} is not set"));
    };
    let new_op = "create a new operation (eval \"$(ksc operation create --key KEY=COUNT --valid 30m --description ... --export)\") and have it approved".to_string();
    let st = match client.operation(&id) {
        Ok(st) => st,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Outcome::Fail(
                format!("operation {id} ({KSC_OPERATION_ID}): the server has no such operation"),
                format!("check {KSC_OPERATION_ID}, or {new_op}"),
            )
        }
        Err(e) => return Outcome::Fail(e.message().to_string(), e.remedy().to_string()),
    };
    let keys: Vec<String> = st
        .keys
        .iter()
        .map(|k| {
            let uses = match (k.usage_count, k.max_usage) {
                (Some(u), Some(m)) => format!("{} of {m} uses left", m.saturating_sub(u)),
                (None, Some(m)) => format!("{m} uses"),
                _ => "uses unknown".into(),
            };
            match k.approvals_text() {
                Some(a) => format!("{} {uses}, {a}", k.keyid),
                None => format!("{} {uses}", k.keyid),
            }
        })
        .collect();
    let left = st.expires_in();
    let expired = st.state == OperationState::Expired || left == Some(Duration::ZERO);
    let expiry = match left {
        Some(l) if !l.is_zero() => format!("; expires in {}", format_duration(round_secs(l))),
        _ => String::new(),
    };
    let mut summary = format!("operation {id}: {}; {}{expiry}", st.state, keys.join("; "));
    // The dev KeyServer lets only the creator (or an admin) sign under an operation; say so
    // before a signature is refused with a 403.
    if let (Some(creator), Ok(token)) = (&st.created_by, client.token()) {
        let me = crate::identities(&token);
        if !me.is_empty() && !me.contains(creator) {
            summary.push_str(&format!(
                "; created by {creator}, not by this identity ({}): a server that lets only the creator sign will refuse it",
                me[0]
            ));
        }
    }
    if expired {
        return Outcome::Fail(
            format!(
                "operation {id}: expired (its validity has ended); {}",
                keys.join("; ")
            ),
            new_op,
        );
    }
    match st.state {
        OperationState::Rejected => Outcome::Fail(
            format!("{summary}; rejected by {}", st.rejected_by.join(", ")),
            new_op,
        ),
        OperationState::Exhausted => Outcome::Fail(
            format!("{summary}: every permitted use is spent"),
            format!("{new_op}, with more uses (--key KEY=COUNT)"),
        ),
        OperationState::Pending => Outcome::Ok(format!(
            "{summary}; signing waits for approval (ksc operation wait)"
        )),
        _ => Outcome::Ok(summary),
    }
}

fn print_text(listing: &[SettingLine], checks: &Checks, failed: usize) {
    outln!("Settings (command-line flag > environment > config file > default):");
    let width = listing.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in listing {
        let value = s.value.as_deref().unwrap_or("(not set)");
        let source = match &s.origin {
            Some(o) => format!("{} {o}", s.source),
            None => s.source.to_string(),
        };
        outln!("  {:<width$}  {value}  [{source}]", s.name);
    }
    outln!();
    outln!("Checks:");
    for c in &checks.list {
        let name = match c.server {
            Some(s) => format!("{} {s}", c.name),
            None => c.name.to_string(),
        };
        outln!("  {:<4}  {name}: {}", c.status.word(), c.detail);
        if let Some(f) = &c.fix {
            outln!("        fix: {f}");
        }
    }
    outln!();
    if failed == 0 {
        outln!("All checks passed.");
    } else {
        outln!("{failed} check(s) failed: fix the first one, then run ksc doctor again.");
    }
}

fn print_json(listing: &[SettingLine], checks: &Checks, failed: usize) {
    let settings: Vec<Value> = listing
        .iter()
        .map(|s| {
            let mut v = json!({
                "name": s.name,
                "value": s.value,
                "set": s.value.is_some() && s.source != "default",
                "secret": s.secret,
                "source": s.source,
            });
            match (s.source, &s.origin) {
                ("flag", Some(o)) => v["flag"] = json!(o),
                ("file", Some(o)) => v["file"] = json!(o),
                _ => {}
            }
            if let Some(c) = &s.claims {
                v["jwt"] = c.clone();
            }
            v
        })
        .collect();
    let list: Vec<Value> = checks
        .list
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "server": c.server,
                "status": c.status.word().to_ascii_lowercase(),
                "ok": c.status == Status::Ok,
                "skipped": c.status == Status::Skip,
                "detail": c.detail,
                "fix": c.fix,
            })
        })
        .collect();
    outln!(
        "{}",
        json!({ "ok": failed == 0, "failed": failed, "settings": settings, "checks": list })
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Target {
        target(KSC_API_SERVER, "https://ks.example:8200").expect("target")
    }

    #[test]
    fn tls_failures_are_explained() {
        let t = api();
        let cases = [
            ("invalid peer certificate: UnknownIssuer", "not issued by a CA in X", "point KSC_CA_FILE"),
            (
                "invalid peer certificate: certificate expired: verification time 1800000000 (UNIX), but certificate is not valid after 1700000000 (100000000 seconds ago)",
                "outside its validity period",
                "renewed",
            ),
            (
                "invalid peer certificate: certificate not valid for name \"ks.example\"; certificate is only valid for localhost",
                "does not name the host ks.example",
                "subjectAltName",
            ),
            ("invalid peer certificate: NotValidYet", "outside its validity period", "clock"),
            ("connection reset by peer", "no HTTPS answer", "HTTPS URL; retry"),
        ];
        for (text, what, fix) in cases {
            let (w, f) = explain_tls(text, "X", &t, "retry");
            assert!(w.contains(what), "{text}: {w}");
            assert!(f.contains(fix), "{text}: {f}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let (text, claims) = mask("hunter2-hunter2");
        assert_eq!(text, "set, 15 chars");
        assert!(claims.is_none());
        use base64::Engine as _;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(&json!({"alg": "RS256"})),
            b64(
                &json!({"iss": "https://ci.example", "sub": "repo:x", "aud": ["ks", "other"], "exp": 1, "secret": "zzz"})
            )
        );
        let (text, claims) = mask(&jwt);
        assert!(
            text.contains(
                "iss=https://ci.example sub=repo:x aud=ks,other exp=1970-01-01 00:00 UTC (expired "
            ),
            "{text}"
        );
        assert!(
            !text.contains("zzz") && !text.contains("c2lnbmF0dXJl"),
            "{text}"
        );
        assert_eq!(claims.expect("claims")["exp"], 1);
    }

    #[test]
    fn targets_take_the_port_and_a_bare_ipv6_host() {
        let t = target(KSC_API_SERVER, "https://[::1]:8443/base").expect("target");
        assert_eq!((t.host.as_str(), t.port, t.https), ("::1", 8443, true));
        let t = target(KSC_AUTH_SERVER, "https://auth.example").expect("target");
        assert_eq!(t.port, 443);
    }
}
