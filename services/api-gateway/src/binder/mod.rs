//! The Binder API ("API for on-demand environments") under `/api`: templates, applications
//! and pools of pre-warmed instances. Same tokens as the rest of the API; responses are
//! plain JSON as in the Binder design (errors still come in the Tapis envelope).
//!
//! - `POST /api/templates` (admin), `GET /api/templates/{name}`, `GET /api/templates/{name}/status`
//! - `POST /api/applications/{template}`, `GET /api/applications/{template}[/{id}]`
//! - `POST|GET|DELETE /api/pools/{template}` (admin for POST/DELETE), `GET /api/pools/` (admin)
//!
//! # Admins
//! Operator endpoints need an admin of the caller's tenant (`auth.admin_users` /
//! `CORRAL_ADMIN_USERS`, or the admin role in the token).
//!
//! # Locations
//! An instance's `location` is `/user/{id}/`, served by the pod proxy; when `http.public_url`
//! (`CORRAL_PUBLIC_URL`) is set, it is prefixed to make a full URL.
//!
//! # Claims
//! `POST /api/applications/{template}` is one atomic store operation
//! ([`corral_store::Store::pool_claim_instance`]), and no broker round trip: a ready member
//! if there is one (answered with `location`), else a warming member, else a cold instance
//! below the pool's cap (answered without `location` until ready), else 429 with
//! `Retry-After`, or a cold instance outside the pool if the pool says `when-full:
//! cold_spawn`. The same operation makes the claimant the owner of the pod. The template and
//! pool documents come from a cache ([`cache`]) that the claim validates; the pool-manager
//! hears of the claim afterwards ([`hints`]).

mod apps;
mod cache;
mod hints;
mod pools;
mod templates;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND, pool_id};
use corral_store::Versioned;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// State of the Binder routes of one gateway.
#[derive(Debug, Default)]
pub(crate) struct Binder {
    docs: cache::DocCache,
    hints: Arc<hints::ClaimHints>,
}

/// The Binder routes, to be merged into the gateway's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/templates", post(templates::register))
        .route("/api/templates/{name}", get(templates::get_template))
        .route("/api/templates/{name}/status", get(templates::status))
        .route("/api/applications/{template}", post(apps::launch).get(apps::list))
        .route("/api/applications/{template}/{id}", get(apps::get_app))
        .route("/api/pools/", get(pools::list))
        .route("/api/pools", get(pools::list))
        .route("/api/pools/{template}", post(pools::upsert).get(pools::get_pool).delete(pools::delete))
        .layer(Extension(Arc::new(Binder::default())))
}

/// Refuses callers that are not admins of their tenant.
fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "this operation needs a tenant admin (see auth.admin_users / CORRAL_ADMIN_USERS)",
        ))
    }
}

/// Where instance `id` is served.
pub fn location(st: &AppState, id: &str) -> String {
    let path = format!("/user/{id}/");
    match st.config().public_url() {
        Some(base) => format!("{base}{path}"),
        None => path,
    }
}

/// The caller's template `name`, with its version.
async fn load_template(st: &AppState, caller: &Caller, name: &str) -> Result<Versioned<AppTemplate>, ApiError> {
    let doc = st
        .store()
        .get_doc(TEMPLATE_KIND, &pool_id(&caller.tenant, name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("template '{name}' not found")))?;
    let value = serde_json::from_str(&doc.value).map_err(|e| ApiError::from(corrupt("template", e)))?;
    Ok(Versioned { version: doc.version, value })
}

/// The pool of the caller's template `name`, if there is one (deleted pools included).
async fn load_pool(st: &AppState, caller: &Caller, name: &str) -> Result<Option<Versioned<PoolConfig>>, ApiError> {
    let Some(doc) = st.store().get_doc(POOL_KIND, &pool_id(&caller.tenant, name)).await? else { return Ok(None) };
    let value = serde_json::from_str(&doc.value).map_err(|e| ApiError::from(corrupt("pool", e)))?;
    Ok(Some(Versioned { version: doc.version, value }))
}

fn corrupt(what: &str, e: serde_json::Error) -> corral_store::StoreError {
    corral_store::StoreError::Corrupt(format!("stored {what} is unreadable: {e}"))
}
