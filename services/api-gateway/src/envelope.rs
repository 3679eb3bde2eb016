//! The Tapis response envelope `{result, status, message, metadata, version}` on every
//! response, errors included, with `Content-Type: application/json` exactly: tapipy only
//! parses a body whose content type is exactly that (a `; charset=utf-8` suffix breaks it).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Reported in every envelope's `version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest non-JSON body read back when wrapping a framework response in the envelope.
const MAX_WRAPPED_BYTES: usize = 64 * 1024;

/// What a successful service call produced. `ok: false` is a Tapis "error" envelope sent
/// with HTTP 200 (an update that changed nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Value,
    pub message: String,
    pub ok: bool,
}

impl Outcome {
    pub fn success(result: Value, message: impl Into<String>) -> Self {
        Self { result, message: message.into(), ok: true }
    }
}

/// Serialises an envelope with the exact JSON content type.
pub fn envelope_response(status: StatusCode, result: Value, ok: bool, message: &str, metadata: Value) -> Response {
    let body = json!({
        "result": result,
        "status": if ok { "success" } else { "error" },
        "message": message,
        "metadata": metadata,
        "version": VERSION,
    });
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

impl IntoResponse for Outcome {
    fn into_response(self) -> Response {
        envelope_response(StatusCode::OK, self.result, self.ok, &self.message, json!({}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let metadata = if self.problems.is_empty() { json!({}) } else { json!({ "problems": self.problems }) };
        envelope_response(self.status, Value::Null, false, &self.message, metadata)
    }
}

/// Maps axum's JSON body rejections to enveloped errors. Wrong types and unknown fields
/// are 400 (as in Tapis), not axum's 422; the serde message names the field.
pub fn json_rejection(rej: &JsonRejection) -> ApiError {
    let status = match rej {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
        other => other.status(),
    };
    let detail = rej.body_text();
    let message = match rej {
        // Drop axum's generic lead-in; keep serde's message with the field path.
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            let serde_part = detail.split_once(": ").map_or(detail.as_str(), |(_, rest)| rest);
            format!("invalid request body: {serde_part}")
        }
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with 'Content-Type: application/json'".to_string()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            format!("request body is larger than the {MAX_BODY_BYTES} bytes allowed")
        }
        _ => detail,
    };
    ApiError::new(status, message)
}

/// Parses a JSON document exactly as the HTTP body extractor does (same messages), for
/// bodies that arrive another way (bus requests).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    axum::Json::<T>::from_bytes(bytes).map(|axum::Json(v)| v).map_err(|r| json_rejection(&r))
}

/// A JSON request body whose rejections come back in the envelope.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state).await.map(|axum::Json(v)| JsonBody(v)).map_err(|r| json_rejection(&r))
    }
}

/// Unknown route.
pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found("no such route")
}

/// Known route, unsupported method.
pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

/// Last line of defence: any response that is not JSON (a rejection from an extractor
/// this crate does not wrap, a framework default) is rewritten into the envelope with
/// the same status and headers; JSON responses get the exact content type.
pub async fn ensure_envelope(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let (mut parts, body) = resp.into_parts();
    if is_json {
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Response::from_parts(parts, body);
    }
    let text = axum::body::to_bytes(body, MAX_WRAPPED_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message =
        if text.is_empty() { parts.status.canonical_reason().unwrap_or("error").to_ascii_lowercase() } else { text };
    let ok = parts.status.is_success();
    let wrapped = envelope_response(parts.status, Value::Null, ok, &message, json!({}));
    let (_, wrapped_body) = wrapped.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, wrapped_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response) -> Value {
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_WRAPPED_BYTES).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn plain_framework_responses_are_wrapped_with_status_and_headers_kept() {
        let mut plain = (StatusCode::BAD_REQUEST, "Invalid URL: bad segment").into_response();
        plain.headers_mut().insert("allow", HeaderValue::from_static("GET"));
        let resp = ensure_envelope(plain).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(resp.headers()["allow"], "GET");
        let body = body_json(resp).await;
        assert_eq!(body["status"], "error");
        assert_eq!(body["message"], "Invalid URL: bad segment");
        assert_eq!(body["version"], VERSION);

        let empty = ensure_envelope(StatusCode::METHOD_NOT_ALLOWED.into_response()).await;
        assert_eq!(body_json(empty).await["message"], "method not allowed");
    }

    #[tokio::test]
    async fn json_content_type_loses_any_charset_suffix() {
        let mut resp = (StatusCode::OK, "{}").into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        let resp = ensure_envelope(resp).await;
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_json(resp).await, json!({}), "JSON bodies pass through untouched");
    }
}
