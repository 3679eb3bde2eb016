//! The one error type every service function returns, and how it maps to HTTP.

use axum::http::StatusCode;
use corral_model::FieldError;
use corral_store::StoreError;

/// A failed request: the HTTP status it answers with, a message for humans and, for
/// validation failures, every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub problems: Vec<FieldError>,
}

impl ApiError {
    /// An error with a status and message and no field problems.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), problems: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// The pod does not exist for this caller. Used for other users' and other tenants'
    /// pods too, so the answer never reveals that a pod exists.
    pub fn pod_not_found(pod_id: &str) -> Self {
        Self::not_found(format!("pod '{pod_id}' not found"))
    }

    /// A 400 listing every validation problem, both readable in the message and
    /// structured in `problems`.
    pub fn invalid(what: &str, problems: Vec<FieldError>) -> Self {
        let n = problems.len();
        let noun = if n == 1 { "problem" } else { "problems" };
        let joined = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        Self { status: StatusCode::BAD_REQUEST, message: format!("{what} is invalid: {n} {noun}: {joined}"), problems }
    }

    /// Whether retrying the same request later may succeed (the store or bus was down).
    pub fn is_transient(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound(_) => Self::not_found(e.to_string()),
            StoreError::AlreadyExists(_) | StoreError::Conflict { .. } => Self::conflict(e.to_string()),
            StoreError::Unavailable(_) => Self::unavailable(e.to_string()),
            StoreError::Corrupt(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}
