//! The one transport-agnostic error enum.
//!
//! Policy (after crates.io's `util/errors.rs`): every variant has a stable snake_case
//! `code` from the contract and a message written for the user. Internal details
//! (store errors, process output) travel in `Internal::context`, are logged, and are
//! never sent to clients. The HTTP layer maps variants to status codes in exactly one
//! place (`marina-api/src/error.rs`); subsystems keep narrow error enums and convert
//! explicitly into this one.

/// Marina's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input or a field that does not validate (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// No credentials or unknown credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Known credentials without the needed scope (403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist in the caller's tenant (404).
    #[error("{kind} {id:?} was not found")]
    NotFound { kind: &'static str, id: String },
    /// Name taken, wrong state, operation already running (409).
    #[error("{0}")]
    Conflict(String),
    /// The body is not `application/json` (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The hosts cannot fit the request (409).
    #[error("{0}")]
    CapacityExceeded(String),
    /// The tenant's quota does not allow it (409).
    #[error("{0}")]
    QuotaExceeded(String),
    /// Too many requests from this token or address (429).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The request body is larger than the limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The client was too slow sending its request (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// A dependency (the store, a node) is unavailable for now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure (500); `context` is for logs only.
    #[error("internal error: {context}")]
    Internal { context: String },
}

/// Result with Marina's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The contract's stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "invalid_request",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound { .. } => "not_found",
            Error::Conflict(_) => "conflict",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::CapacityExceeded(_) => "capacity_exceeded",
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::RequestTimeout(_) => "request_timeout",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable(_) => "unavailable",
            Error::Internal { .. } => "internal",
        }
    }

    /// The message shown to users (internal context is hidden).
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal { .. } => "an internal error occurred; see the server log".into(),
            other => other.to_string(),
        }
    }

    /// Shorthand for an internal error with context.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Error::Internal {
            context: context.to_string(),
        }
    }

    /// Shorthand for a not-found error.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound { kind, id: id.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_context_is_not_public() {
        let e = Error::internal("sqlite: disk I/O error at /secret/path");
        assert_eq!(e.code(), "internal");
        assert!(!e.public_message().contains("/secret/path"));
        assert_eq!(
            Error::not_found("cluster", "cl_x").public_message(),
            "cluster \"cl_x\" was not found"
        );
    }
}
