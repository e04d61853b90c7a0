//! One error type for everything that talks to KeyServer.
//!
//! Callers (the PKCS#11 module, the provider, `ksc`) act on [`ErrorKind`]; people read the
//! [`Display`](std::fmt::Display) form, which is one sentence naming the key, the operation and
//! what to do about it.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A setting is missing or invalid (the message names the variable).
    Config,
    /// The server could not be reached, or the connection broke or timed out.
    Network,
    /// The token is missing, malformed, expired or refused (HTTP 401), or login failed.
    Auth,
    /// The caller's role does not allow this, or the key is not part of the operation (HTTP 403).
    Forbidden,
    /// The key or the operation does not exist (HTTP 404).
    NotFound,
    /// The operation still waits for approval.
    Pending,
    /// The operation was rejected by an approver.
    Rejected,
    /// The operation's validity window is over.
    Expired,
    /// Every permitted use of the key in this operation has been spent.
    Exhausted,
    /// The server asks us to slow down (HTTP 429) and retries did not help.
    RateLimited,
    /// The caller's input is wrong (bad digest length, unsupported combination, HTTP 400).
    InvalidInput,
    /// The server answered something we cannot understand (malformed, oversized, wrong type).
    BadResponse,
    /// A signature did not verify with the certificate's public key.
    VerificationFailed,
    /// The request needs something this key, or the server, does not support.
    Unsupported,
    /// A bug or an impossible state inside this library.
    Internal,
}

impl ErrorKind {
    /// A short lowercase name, stable for scripts (`ksc --json` prints it).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Network => "network",
            ErrorKind::Auth => "auth",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Pending => "pending",
            ErrorKind::Rejected => "rejected",
            ErrorKind::Expired => "expired",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::VerificationFailed => "verification_failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }

    /// What to do when the error was created without a more specific remedy.
    fn default_remedy(self) -> &'static str {
        match self {
            ErrorKind::Config => "fix the setting in the environment or the KSC_CONFIG file",
            ErrorKind::Network => {
                "check KSC_API_SERVER/KSC_AUTH_SERVER, the network and KSC_CA_FILE, then retry"
            }
            ErrorKind::Auth => {
                "set a valid KSC_ID_TOKEN, or KSC_AUTH_SERVER with KSC_CLIENT_ID and KSC_CLIENT_SECRET"
            }
            ErrorKind::Forbidden => "use an identity whose role allows this",
            ErrorKind::NotFound => "check the key id or KSC_OPERATION_ID",
            ErrorKind::Pending => {
                "have an approver approve the operation, or set KSC_APPROVAL_TIMEOUT (e.g. 5m) to wait"
            }
            ErrorKind::Rejected => "create a new operation (ksc operation create) and have it approved",
            ErrorKind::Expired => {
                "the next one needs a longer validity (ksc operation create --valid 30m ...); approve and sign inside it"
            }
            ErrorKind::Exhausted => {
                "the next operation needs more uses of this key (ksc operation create --key KEY=COUNT)"
            }
            ErrorKind::RateLimited => "retry later",
            ErrorKind::InvalidInput => "check the input (digest length, mechanism, key type)",
            ErrorKind::BadResponse => {
                "check that KSC_API_SERVER points at a KeyServer; set KSC_LOG=debug for details"
            }
            ErrorKind::VerificationFailed => {
                "do not use this signature; the server signed with a different key or the reply was altered"
            }
            ErrorKind::Unsupported => "use a supported key type, mechanism or server version",
            ErrorKind::Internal => "please report this as a bug with KSC_LOG=debug output",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of every fallible function in this crate (boxed: `Result`s stay one word wide).
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    keyid: Option<String>,
    operation: Option<String>,
    remedy: Option<String>,
    http_status: Option<u16>,
    server_code: Option<String>,
    server_detail: Option<String>,
    retry_after: Option<std::time::Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error of `kind`; `message` says what failed, without key/operation (added by
    /// [`with_key`](Self::with_key) / [`with_operation`](Self::with_operation)).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                // A URL with a password may reach a message through any path (a reqwest error,
                // a setting echoed back); no error text ever carries it.
                message: crate::redact::userinfo(&message.into()),
                keyid: None,
                operation: None,
                remedy: None,
                http_status: None,
                server_code: None,
                server_detail: None,
                retry_after: None,
                source: None,
            }),
        }
    }

    /// Shorthand for a [`ErrorKind::Config`] error naming `variable`.
    pub fn config(variable: &str, problem: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Config, format!("{variable}: {problem}"))
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::BadResponse`].
    pub fn bad_response(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadResponse, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// Names the key the error is about (kept if one is already set).
    pub fn with_key(mut self, keyid: impl Into<String>) -> Error {
        if self.inner.keyid.is_none() {
            self.inner.keyid = Some(keyid.into());
        }
        self
    }

    /// Names the operation the error is about (kept if one is already set).
    pub fn with_operation(mut self, operation: impl Into<String>) -> Error {
        if self.inner.operation.is_none() {
            self.inner.operation = Some(operation.into());
        }
        self
    }

    /// Replaces the default "what to do" advice of the kind.
    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Error {
        self.inner.remedy = Some(remedy.into());
        self
    }

    /// Attaches the underlying cause (shown by `source()`, not in `Display`).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Records what the server said: HTTP status, its error code and its (sanitised) text.
    pub fn with_server(
        mut self,
        status: u16,
        code: Option<String>,
        detail: Option<String>,
    ) -> Error {
        self.inner.http_status = Some(status);
        self.inner.server_code = code;
        self.inner.server_detail = detail;
        self
    }

    /// Records the server's `Retry-After` hint.
    pub(crate) fn with_retry_after(mut self, d: Option<std::time::Duration>) -> Error {
        self.inner.retry_after = d;
        self
    }

    /// The kind a caller acts on.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The key the error is about, if any.
    pub fn keyid(&self) -> Option<&str> {
        self.inner.keyid.as_deref()
    }

    /// The operation the error is about, if any.
    pub fn operation(&self) -> Option<&str> {
        self.inner.operation.as_deref()
    }

    /// The message without context, server detail or remedy.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// True when the error carries advice of its own rather than its kind's default.
    pub fn has_own_remedy(&self) -> bool {
        self.inner.remedy.is_some()
    }

    /// The advice shown at the end of the sentence.
    pub fn remedy(&self) -> &str {
        self.inner
            .remedy
            .as_deref()
            .unwrap_or_else(|| self.inner.kind.default_remedy())
    }

    /// The HTTP status of the server reply that caused the error, if any.
    pub fn http_status(&self) -> Option<u16> {
        self.inner.http_status
    }

    /// The server's error code (`"usage_exhausted"`, ...), if it sent one.
    pub fn server_code(&self) -> Option<&str> {
        self.inner.server_code.as_deref()
    }

    /// The server's `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.inner.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.inner.keyid, &self.inner.operation) {
            (Some(k), Some(o)) => write!(f, "key {k}, operation {o}: ")?,
            (Some(k), None) => write!(f, "key {k}: ")?,
            (None, Some(o)) => write!(f, "operation {o}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.inner.message)?;
        match (
            &self.inner.server_code,
            &self.inner.server_detail,
            self.inner.http_status,
        ) {
            (_, Some(d), Some(s)) if !d.is_empty() => write!(f, " (server said HTTP {s}: {d})")?,
            (Some(c), _, Some(s)) => write!(f, " (server said HTTP {s}: {c})")?,
            _ => {}
        }
        write!(f, "; {}", self.remedy())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug shows the same sentence plus the kind: `unwrap()` in tests prints something useful.
        write!(f, "Error({}): {}", self.inner.kind, self)?;
        if let Some(s) = &self.inner.source {
            write!(f, " [cause: {}]", crate::redact::userinfo(&s.to_string()))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|b| &**b as &(dyn std::error::Error + 'static))
    }
}

/// Makes server-provided text safe to show: no control characters or escape sequences, collapsed
/// whitespace, bounded length (a hostile or broken server must not flood a terminal or a log).
pub fn sanitize_server_text(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut count = 0usize;
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        // Bidi overrides and other invisible formatting characters can disguise text.
        if matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            continue;
        }
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        if count == max_chars {
            out.push('…');
            return out.trim_end().to_string();
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// Longest server text shown in a message.
pub const MAX_SERVER_TEXT: usize = 300;

/// Maps an HTTP error reply (API.md §7) to an [`Error`]: the status and the server's `error`
/// code pick the kind; its `message` (or, for servers without the JSON body, the body text) is
/// shown trimmed and sanitised. Key and operation are added by the caller.
pub fn from_server_reply(
    status: u16,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
) -> Error {
    let text = String::from_utf8_lossy(body);
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| {
        json.as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(|s| s.to_string())
    };
    let code = field("error");
    let detail = field("message")
        .or_else(|| field("error_description"))
        .or_else(|| code.clone())
        .unwrap_or_else(|| text.into_owned());
    let detail = sanitize_server_text(&detail, MAX_SERVER_TEXT);
    let lower = format!("{} {}", code.as_deref().unwrap_or(""), detail).to_ascii_lowercase();
    // Known extension codes first; for a server without them, words in the text.
    let by_words = || {
        if lower.contains("reject") {
            Some(ErrorKind::Rejected)
        } else if lower.contains("expire") {
            Some(ErrorKind::Expired)
        } else if lower.contains("exhaust") || lower.contains("usage") {
            Some(ErrorKind::Exhausted)
        } else if [
            "pending",
            "not approved",
            "not been approved",
            "awaiting approval",
        ]
        .iter()
        .any(|w| lower.contains(w))
        {
            Some(ErrorKind::Pending)
        } else {
            None
        }
    };
    let (kind, message) = match (status, code.as_deref()) {
        (_, Some("operation_pending")) => (ErrorKind::Pending, "the operation is not approved yet"),
        (_, Some("operation_rejected")) => (ErrorKind::Rejected, "the operation was rejected"),
        (_, Some("operation_expired")) => (ErrorKind::Expired, "the operation has expired"),
        (_, Some("usage_exhausted")) => (
            ErrorKind::Exhausted,
            "every permitted use of the key in this operation is spent",
        ),
        (_, Some("key_not_in_operation")) => (
            ErrorKind::Forbidden,
            "the key is not part of this operation",
        ),
        // A known code always wins over guessing from the words: "may not approve or
        // reject" in a 403's message must not read as a rejected operation.
        (_, Some("forbidden")) => (ErrorKind::Forbidden, "the server does not allow this"),
        (_, Some("unauthorized")) => (ErrorKind::Auth, "the server refused the token"),
        (_, Some("not_found")) => (ErrorKind::NotFound, "the server does not know it"),
        (_, Some("invalid_request")) => (
            ErrorKind::InvalidInput,
            "the server refused the request as invalid",
        ),
        (_, Some("rate_limited")) | (429, _) => (
            ErrorKind::RateLimited,
            "the server is rate limiting requests",
        ),
        (400, _) => (
            ErrorKind::InvalidInput,
            "the server refused the request as invalid",
        ),
        (401, _) => (ErrorKind::Auth, "the server refused the token"),
        (403, _) | (409, _) => match by_words() {
            Some(ErrorKind::Pending) => (ErrorKind::Pending, "the operation is not approved yet"),
            Some(ErrorKind::Rejected) => (ErrorKind::Rejected, "the operation was rejected"),
            Some(ErrorKind::Expired) => (ErrorKind::Expired, "the operation has expired"),
            Some(ErrorKind::Exhausted) => (
                ErrorKind::Exhausted,
                "every permitted use of the key in this operation is spent",
            ),
            _ if status == 403 => (ErrorKind::Forbidden, "the server does not allow this"),
            _ => (ErrorKind::BadResponse, "the server reported a conflict"),
        },
        (404, _) => (ErrorKind::NotFound, "the server does not know it"),
        (500..=599, _) => (ErrorKind::Network, "the server failed"),
        _ => (
            ErrorKind::BadResponse,
            "the server sent an unexpected reply",
        ),
    };
    let remedy = match (status, code.as_deref()) {
        (_, Some("key_not_in_operation")) => Some(
            "sign under an operation that includes this key (ksc operation create --key KEY=COUNT)",
        ),
        // A 404 for the endpoint itself (not for a key or an operation) means a wrong base URL.
        (404, _) if detail.contains("no such endpoint") => Some(
            "check KSC_API_SERVER: it is the server's base URL, without /api (e.g. https://keyserver.example:8200)",
        ),
        // The server answered, so TLS and the network are fine: no point in checking KSC_CA_FILE.
        (500..=599, _) => Some(
            "the KeyServer itself failed; retry later, and if it persists tell its administrator (KSC_LOG=debug shows the reply)",
        ),
        _ => None,
    };
    let e = Error::new(kind, message)
        .with_server(status, code, Some(detail))
        .with_retry_after(retry_after);
    match remedy {
        Some(r) => e.with_remedy(r),
        None => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_key_operation_and_remedy() {
        let e = Error::new(ErrorKind::Exhausted, "no uses left")
            .with_key("key1")
            .with_operation("42")
            .with_server(
                409,
                Some("usage_exhausted".into()),
                Some("key1 used 1 of 1".into()),
            );
        let s = e.to_string();
        assert!(s.starts_with("key key1, operation 42: no uses left"), "{s}");
        assert!(s.contains("HTTP 409: key1 used 1 of 1"), "{s}");
        assert!(s.contains("--key KEY=COUNT"), "{s}");
        assert_eq!(e.kind(), ErrorKind::Exhausted);
        assert_eq!(e.keyid(), Some("key1"));
        assert_eq!(e.operation(), Some("42"));
        assert_eq!(e.server_code(), Some("usage_exhausted"));
    }

    #[test]
    fn wording_of_issue_15() {
        let reply = |status: u16, code: &str, msg: &str| {
            let body = serde_json::json!({"error": code, "message": msg}).to_string();
            from_server_reply(status, body.as_bytes(), None).to_string()
        };
        // Expired: "create a new operation" once, and the flag's name, not the API's.
        let s = reply(
            403,
            "operation_expired",
            "operation 7 expired at 2026-11-30T00:00:00Z; create a new operation",
        );
        assert_eq!(s.matches("create a new operation").count(), 1, "{s}");
        assert!(!s.contains("validms") && s.contains("--valid"), "{s}");
        // Key not in the operation: no advice about roles.
        let s = reply(
            403,
            "key_not_in_operation",
            "key key9 is not part of operation 7",
        );
        assert!(s.contains("the key is not part of this operation"), "{s}");
        assert!(!s.contains("role") && s.contains("--key"), "{s}");
        // A 404 for the endpoint is about the base URL, not the key id.
        let s = reply(404, "not_found", "no such endpoint /api/api/keys");
        assert!(
            s.contains("KSC_API_SERVER") && s.contains("without /api"),
            "{s}"
        );
        assert!(!s.contains("key id"), "{s}");
        // A 5xx reached the server: TLS trust is not the problem.
        let s = reply(503, "unavailable", "maintenance");
        assert!(
            !s.contains("KSC_CA_FILE") && s.contains("retry later"),
            "{s}"
        );
    }

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static + std::error::Error>() {}
        check::<Error>();
    }

    #[test]
    fn sanitize_strips_controls_and_bounds_length() {
        assert_eq!(
            sanitize_server_text("a\x1b[31mred\n\n  b\u{202e}c", 100),
            "a [31mred bc"
        );
        let long = "x".repeat(1000);
        let s = sanitize_server_text(&long, 10);
        assert_eq!(s.chars().count(), 11);
        assert!(s.ends_with('…'));
        assert_eq!(sanitize_server_text("  \t ", 10), "");
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn status_and_code_mapping() {
        let cases: &[(u16, &str, ErrorKind)] = &[
            (
                409,
                r#"{"error":"operation_pending","message":"waiting"}"#,
                ErrorKind::Pending,
            ),
            (
                409,
                r#"{"error":"operation_rejected","message":"no"}"#,
                ErrorKind::Rejected,
            ),
            (
                409,
                r#"{"error":"operation_expired","message":"late"}"#,
                ErrorKind::Expired,
            ),
            (
                409,
                r#"{"error":"usage_exhausted","message":"spent"}"#,
                ErrorKind::Exhausted,
            ),
            (
                403,
                r#"{"error":"key_not_in_operation","message":"x"}"#,
                ErrorKind::Forbidden,
            ),
            (
                403,
                r#"{"error":"forbidden","message":"role"}"#,
                ErrorKind::Forbidden,
            ),
            (
                400,
                r#"{"error":"invalid_request","message":"bad hex"}"#,
                ErrorKind::InvalidInput,
            ),
            (401, r#"{"error":"unauthorized"}"#, ErrorKind::Auth),
            (404, r#"{"error":"not_found"}"#, ErrorKind::NotFound),
            (429, r#"{"error":"rate_limited"}"#, ErrorKind::RateLimited),
            (503, "Service Unavailable", ErrorKind::Network),
            (418, "teapot", ErrorKind::BadResponse),
            // A server without the extension codes: words decide.
            (403, "Operation has not been approved", ErrorKind::Pending),
            (409, "operation expired", ErrorKind::Expired),
            (409, "max usage count reached", ErrorKind::Exhausted),
            (403, "rejected by approver", ErrorKind::Rejected),
            // A known code is not second-guessed by the words of its message.
            (
                403,
                r#"{"error":"forbidden","message":"approver-key1 may not approve or reject operation 3"}"#,
                ErrorKind::Forbidden,
            ),
        ];
        for (status, body, kind) in cases {
            let e = from_server_reply(*status, body.as_bytes(), None);
            assert_eq!(e.kind(), *kind, "{status} {body}");
            assert_eq!(e.http_status(), Some(*status));
        }
    }

    #[test]
    fn server_text_is_sanitised_and_bounded() {
        let body = format!("<html>\x1b[2J{}</html>", "A".repeat(10_000));
        let e = from_server_reply(500, body.as_bytes(), None);
        let s = e.to_string();
        assert!(!s.contains('\x1b'));
        assert!(s.len() < 1000, "{}", s.len());
        let e = from_server_reply(429, b"{}", Some(std::time::Duration::from_secs(2)));
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(2)));
        let e = from_server_reply(400, &[0xff, 0xfe, b'x'], None);
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
