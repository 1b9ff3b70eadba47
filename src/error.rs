//! The one error type every handler returns, and how each variant maps to an HTTP status.
//!
//! Client errors carry a stable machine `code` and a message that names the offending field.
//! Server errors (`Storage`, `Internal`) keep their detail for the log only: the client sees a
//! generic message, so no binding names, SQL or stack traces leak out.

use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed or invalid input; `code` names the kind (e.g. `invalid_json`, `invalid_field`).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key without the scope the route needs; the body names `scope`.
    #[error("this key lacks the scope {scope}")]
    Forbidden { scope: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request would make more R2 and D1 operations than one request may
    /// (`SUBREQUEST_BUDGET`, the Workers plan's subrequest limit): refused before the platform
    /// cuts the request off half way. The client asks for less (a smaller batch or page).
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// The deployment is missing a secret or binding: refuse rather than run open.
    #[error("{0}")]
    NotConfigured(String),
    /// Stored bytes do not hash to what the index says: never served.
    #[error("{0}")]
    Integrity(String),
    /// R2 or D1 failed; the caller should retry (Omi does on 5xx).
    #[error("storage failure: {0}")]
    Storage(String),
    /// A D1 batch that references an object hit the GC fence (`gc_fence`): the GC is deleting,
    /// or has just deleted, that object. The store re-writes and retries; when it cannot, the
    /// client gets a 503 to retry shortly.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A change would take an app past one of its quotas (`files::lifecycle`): 413 for bytes
    /// (a smaller upload may fit), 409 for files and versions (the app's state must change
    /// first). The body names the quota, its limit and the usage before and after.
    #[error("{message}")]
    QuotaExceeded { quota: &'static str, limit: u64, current: u64, requested: u64, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest { code, message: message.into() }
    }

    /// A field that failed validation; the message always names the field.
    pub fn invalid_field(field: &str, why: impl std::fmt::Display) -> Self {
        Error::BadRequest { code: "invalid_field", message: format!("{field}: {why}") }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden { .. } => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Conflict(_) => 409,
            Error::PreconditionFailed(_) => 412,
            Error::PayloadTooLarge(_) | Error::OverBudget(_) => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::TooManyRequests { .. } => 429,
            Error::Integrity(_) | Error::Internal(_) => 500,
            Error::Storage(_) => 502,
            Error::NotConfigured(_) | Error::Fenced(_) => 503,
            Error::QuotaExceeded { quota, .. } => {
                if *quota == "bytes" {
                    413
                } else {
                    409
                }
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. } => code,
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed(_) => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::OverBudget(_) => "over_budget",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::TooManyRequests { .. } => "rate_limited",
            Error::NotConfigured(_) => "not_configured",
            Error::Integrity(_) => "integrity_error",
            Error::Storage(_) => "storage_error",
            Error::Fenced(_) => "storage_busy",
            Error::Internal(_) => "internal_error",
            Error::QuotaExceeded { .. } => "quota_exceeded",
        }
    }

    /// Whether the detail must stay in the log rather than go to the client.
    pub fn is_server_side(&self) -> bool {
        matches!(self, Error::Storage(_) | Error::Internal(_) | Error::Integrity(_) | Error::Fenced(_))
    }

    /// The `{"error":{"code","message"}}` body sent to the client.
    pub fn body(&self) -> serde_json::Value {
        let message = match self {
            Error::Storage(_) => "storage is temporarily unavailable; retry the request".to_string(),
            Error::Internal(_) => "internal error".to_string(),
            Error::Integrity(_) => "stored content failed its integrity check".to_string(),
            Error::Fenced(_) => "storage is busy collecting garbage this object depends on; retry in a moment".to_string(),
            Error::QuotaExceeded { quota, limit, current, requested, message } => {
                return json!({ "error": {
                    "code": self.code(), "message": message, "quota": quota, "limit": limit, "current": current, "requested": requested,
                }});
            }
            other => other.to_string(),
        };
        match self {
            Error::Forbidden { scope } => json!({ "error": { "code": self.code(), "message": message, "scope": scope } }),
            _ => json!({ "error": { "code": self.code(), "message": message } }),
        }
    }
}

impl From<worker::Error> for Error {
    fn from(e: worker::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}

impl From<Error> for worker::Error {
    fn from(e: Error) -> Self {
        worker::Error::RustError(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_detail() {
        let e = Error::Storage("D1_ERROR: no such table: secret_things".into());
        let body = e.body().to_string();
        assert!(!body.contains("secret_things"));
        assert_eq!(e.status(), 502);
        assert_eq!(e.body()["error"]["code"], "storage_error");
    }

    #[test]
    fn quota_errors_name_the_quota() {
        let e = Error::QuotaExceeded { quota: "versions", limit: 3, current: 3, requested: 4, message: "m".into() };
        assert_eq!((e.status(), e.code()), (409, "quota_exceeded"));
        assert_eq!(e.body()["error"]["quota"], "versions");
        assert_eq!(e.body()["error"]["limit"], 3);
        let e = Error::QuotaExceeded { quota: "bytes", limit: 1, current: 0, requested: 2, message: "m".into() };
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn a_refusal_names_the_missing_scope() {
        let e = Error::Forbidden { scope: "omi:read:bob".into() };
        assert_eq!(e.status(), 403);
        assert_eq!(e.body()["error"]["scope"], "omi:read:bob");
        assert_eq!(e.body()["error"]["message"], "this key lacks the scope omi:read:bob");
    }

    #[test]
    fn client_errors_name_the_field() {
        let e = Error::invalid_field("uid", "must be 1-128 characters");
        assert_eq!(e.status(), 400);
        assert_eq!(e.body()["error"]["message"], "uid: must be 1-128 characters");
    }
}
