//! HTTP adapters: document bodies in YAML or JSON by `Content-Type`, answers in JSON or YAML
//! by `Accept`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use corral_model::FieldError;
use corral_model::sesstpl::{DOCUMENT, Format, SessionTemplate, parse};
use serde_json::json;

use super::start::{StartBody, start_from_template};
use super::store::{self, View};
use crate::AppState;
use crate::envelope::parse_json;
use crate::error::ApiError;
use crate::service::Ctx;

const YAML: &str = "application/yaml";

/// Does the response carry a YAML document (to be kept out of the JSON envelope)?
pub fn is_yaml_response(resp: &Response) -> bool {
    resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) == Some(YAML)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// YAML when any listed media type is a YAML one, JSON otherwise.
fn wants(headers: &HeaderMap) -> Format {
    let accept = header_text(headers, header::ACCEPT);
    if accept.split(',').any(|m| Format::from_content_type(m) == Format::Yaml) { Format::Yaml } else { Format::Json }
}

fn body_document(headers: &HeaderMap, body: &Bytes) -> Result<SessionTemplate, ApiError> {
    let format = Format::from_content_type(header_text(headers, header::CONTENT_TYPE));
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("session template", vec![FieldError::new(DOCUMENT, "is not UTF-8 text")]))?;
    parse(text, format).map_err(|problems| ApiError::invalid("session template", problems))
}

fn rendered(t: &SessionTemplate) -> Result<String, ApiError> {
    t.render(Format::Yaml).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn yaml_response(status: StatusCode, text: String) -> Response {
    let mut resp = (status, text).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(YAML));
    resp
}

fn one(headers: &HeaderMap, status: StatusCode, view: &View) -> Result<Response, ApiError> {
    match wants(headers) {
        Format::Yaml => Ok(yaml_response(status, rendered(&view.template)?)),
        Format::Json => Ok((status, Json(view)).into_response()),
    }
}

/// A YAML sequence of the documents: each block-style document indented under `- `.
fn yaml_list(views: &[View]) -> Result<String, ApiError> {
    if views.is_empty() {
        return Ok("[]\n".to_string());
    }
    let mut out = String::new();
    for v in views {
        let text = rendered(&v.template)?;
        let body = text.strip_prefix("---\n").unwrap_or(&text);
        for (i, line) in body.lines().enumerate() {
            let lead = if i == 0 {
                "- "
            } else if line.is_empty() {
                ""
            } else {
                "  "
            };
            out.push_str(lead);
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

pub async fn create(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = body_document(&headers, &body)?;
    let view = store::create(&st, &ctx, t).await?;
    one(&headers, StatusCode::CREATED, &view)
}

pub async fn list(State(st): State<AppState>, ctx: Ctx, headers: HeaderMap) -> Result<Response, ApiError> {
    let views = store::list(&st, &ctx).await?;
    match wants(&headers) {
        Format::Yaml => Ok(yaml_response(StatusCode::OK, yaml_list(&views)?)),
        Format::Json => Ok(Json(views).into_response()),
    }
}

pub async fn get_one(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let loaded = store::get(&st, &ctx, &id).await?;
    one(&headers, StatusCode::OK, &loaded.view)
}

pub async fn replace(
    State(st): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = body_document(&headers, &body)?;
    let view = store::replace(&st, &ctx, &id, t).await?;
    one(&headers, StatusCode::OK, &view)
}

pub async fn delete(State(st): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Result<Response, ApiError> {
    store::delete(&st, &ctx, &id).await?;
    Ok(Json(json!({ "id": id, "deleted": true })).into_response())
}

pub async fn start(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // An empty body starts the template as it is.
    let req: StartBody =
        if body.iter().all(u8::is_ascii_whitespace) { StartBody::default() } else { parse_json(&body)? };
    let started = start_from_template(&st, &ctx, &id, req).await?;
    Ok((StatusCode::CREATED, Json(started)).into_response())
}
