//! Handlers of the secrets routes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use corral_model::FieldError;
use corral_model::user_secret::{
    Owner, SecretInfo, SecretsKey, USER_SECRET_KIND, UserSecret, check_name, check_value, crypto, doc_name, doc_prefix,
};
use corral_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::now_ms;
use crate::view::iso;

/// Attempts at a compare-and-set replace before giving up with 409.
const PUT_ATTEMPTS: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
    #[serde(default)]
    username: Option<String>,
}

/// The body, or a 400 that never quotes it: serde's messages may repeat a wrongly typed
/// value, and that value may be the secret.
fn parse_body(body: &Bytes) -> Result<PutBody, ApiError> {
    // Through a Value: serde would also take a struct from a JSON array.
    let parsed = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .and_then(|v| serde_json::from_value::<PutBody>(v).ok());
    parsed.ok_or_else(|| {
        ApiError::invalid(
            "secret",
            vec![FieldError::new(
                "body",
                "must be a JSON object {\"value\": string, \"username\": string (optional)} and nothing else",
            )],
        )
    })
}

fn checked_name(name: &str) -> Result<(), ApiError> {
    check_name(name).map_err(|m| ApiError::invalid("secret name", vec![FieldError::new("name", m)]))
}

fn view(info: &SecretInfo) -> Value {
    json!({
        "name": info.name,
        "username": info.username,
        "created_at": iso(info.created),
        "updated_at": iso(info.updated),
    })
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("secret '{name}' not found"))
}

fn internal(what: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, what.to_string())
}

fn secrets_key(st: &AppState) -> Result<SecretsKey, ApiError> {
    // The configuration was checked at load; the error text never holds the key anyway.
    st.config().secrets_key().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn decode(text: &str) -> Result<UserSecret, ApiError> {
    // The parse error is dropped: it could quote the stored document.
    serde_json::from_str(text)
        .map_err(|_| ApiError::from(StoreError::Corrupt("a stored secret is unreadable".to_string())))
}

async fn load(st: &AppState, caller: &Caller, name: &str) -> Result<Option<(u64, UserSecret)>, ApiError> {
    let doc = st.store().get_doc(USER_SECRET_KIND, &doc_name(&caller.tenant, &caller.user, name)).await?;
    doc.map(|d| decode(&d.value).map(|s| (d.version, s))).transpose()
}

pub(super) async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    checked_name(&name)?;
    let body = parse_body(&body)?;
    let problems = check_value(&body.value, body.username.as_deref());
    if !problems.is_empty() {
        return Err(ApiError::invalid("secret", problems));
    }
    let secrets_key = secrets_key(&st)?;
    let owner = Owner { tenant: &caller.tenant, user: &caller.user, name: &name };
    let key = doc_name(&caller.tenant, &caller.user, &name);
    for _ in 0..PUT_ATTEMPTS {
        let old = load(&st, &caller, &name).await?;
        let now = now_ms();
        let (expected, created) = old.as_ref().map_or((0, now), |(v, s)| (*v, s.created));
        // A fresh nonce per write, retries included: one never seals two texts.
        let sealed = crypto::seal(&secrets_key, owner, &body.value, crypto::random_nonce())
            .map_err(|_| internal("the secret cannot be encrypted"))?;
        let secret = UserSecret {
            name: name.clone(),
            username: body.username.clone(),
            sealed: Some(sealed),
            created,
            updated: now,
        };
        let text = serde_json::to_string(&secret).map_err(|_| internal("encoding the secret failed"))?;
        match st.store().put_doc(USER_SECRET_KIND, &key, &text, expected).await {
            Ok(_) => {
                tracing::info!(tenant = %caller.tenant, user = %caller.user, secret = %name, "secret stored");
                let status = if old.is_some() { StatusCode::OK } else { StatusCode::CREATED };
                return Ok((status, Json(view(&secret.info()))).into_response());
            }
            // Someone else wrote it in between: read again and retry.
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("secret '{name}' keeps changing; try again")))
}

pub(super) async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let prefix = doc_prefix(&caller.tenant, &caller.user);
    let docs = st.store().list_docs(USER_SECRET_KIND).await?;
    let mut out = Vec::new();
    for (doc, v) in docs {
        // Names have no '/': a longer rest belongs to another user whose id extends this one.
        if doc.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')) {
            out.push(view(&decode(&v.value)?.info()));
        }
    }
    Ok(Json(Value::Array(out)))
}

pub(super) async fn get_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    checked_name(&name)?;
    let (_, secret) = load(&st, &caller, &name).await?.ok_or_else(|| not_found(&name))?;
    Ok(Json(view(&secret.info())))
}

pub(super) async fn delete(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    checked_name(&name)?;
    if !st.store().delete_doc(USER_SECRET_KIND, &doc_name(&caller.tenant, &caller.user, &name)).await? {
        return Err(not_found(&name));
    }
    tracing::info!(tenant = %caller.tenant, user = %caller.user, secret = %name, "secret deleted");
    Ok(Json(json!({ "name": name, "deleted": true })))
}
