//! The API error type and its JSON body (API.md §7).
//!
//! Every refusal the server produces goes through [`ApiError`], so the status
//! code, the machine-readable code and the human sentence always agree and a
//! malformed request can never turn into a 500.

use std::fmt;

/// A refusal with its HTTP status, §7 code and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (4xx for anything the caller did, 5xx only for faults).
    pub status: u16,
    /// The §7 code, e.g. `invalid_request`.
    pub code: &'static str,
    /// One sentence for a person.
    pub message: String,
    /// Seconds for a `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }
    /// 403 `key_not_in_operation`.
    pub fn key_not_in_operation(message: impl Into<String>) -> Self {
        Self::new(403, "key_not_in_operation", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }
    /// 405 for a known path with the wrong method (still `invalid_request`).
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "invalid_request", message)
    }
    /// 409 with one of the operation-state codes.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }
    /// 429 `rate_limited` with `Retry-After`.
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "rate_limited",
            "too many requests (injected fault); retry later",
        );
        e.retry_after = Some(retry_after);
        e
    }
    /// 429 `rate_limited` for too many failed credential checks.
    pub fn throttled(retry_after: u64, message: impl Into<String>) -> Self {
        let mut e = Self::new(429, "rate_limited", message);
        e.retry_after = Some(retry_after);
        e
    }
    /// 503 for an injected server fault.
    pub fn injected_5xx() -> Self {
        Self::new(
            503,
            "unavailable",
            "the server is unavailable (injected fault)",
        )
    }
    /// 500: only for genuine server-side failures (disk, database), never input.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal_error", message)
    }

    /// The JSON body `{"error": code, "message": sentence}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.code, "message": self.message})
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
