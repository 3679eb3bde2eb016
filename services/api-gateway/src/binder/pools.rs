//! `/api/pools`: create, resize, read, list and delete pools.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use corral_model::pool::{POOL_KIND, PoolConfig, WhenFull, pool_id};
use corral_store::{MemberState, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Binder, corrupt, load_pool, load_template, require_admin};
use crate::AppState;
use crate::auth::Caller;
use crate::envelope::JsonBody;
use crate::error::ApiError;

/// The pool body: Binder's `size`, plus Corral's cap and full-pool behaviour.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(super) struct PoolBody {
    size: u32,
    cap: Option<u32>,
    when_full: Option<WhenFull>,
    retry_after: Option<u32>,
}

/// Counts of one pool as the Binder API shows them (plus Corral's extras).
async fn render(st: &AppState, cfg: &PoolConfig) -> Result<Value, ApiError> {
    let members = st.store().pool_members(&pool_id(&cfg.tenant, &cfg.template)).await?;
    let n = |s| members.iter().filter(|m| m.state == s).count();
    Ok(json!({
        "name": cfg.template,
        "running": members.len(),
        "available": n(MemberState::Available),
        "warming": n(MemberState::Warming),
        "claimed": n(MemberState::Claimed),
        "size": if cfg.deleted { 0 } else { cfg.size },
        "cap": cfg.cap,
        "when-full": cfg.when_full,
        "deleted": cfg.deleted,
    }))
}

/// `POST /api/pools/{template}` (admin): creates or resizes the pool.
pub(super) async fn upsert(
    State(st): State<AppState>,
    Extension(binder): Extension<Arc<Binder>>,
    caller: Caller,
    Path(template): Path<String>,
    JsonBody(body): JsonBody<PoolBody>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    load_template(&st, &caller, &template).await?;
    let cap = body.cap.unwrap_or_else(|| body.size.saturating_mul(2).max(1));
    if cap < body.size {
        return Err(ApiError::bad_request(format!("cap ({cap}) must be at least size ({})", body.size)));
    }
    let id = pool_id(&caller.tenant, &template);
    for _ in 0..8 {
        let old = load_pool(&st, &caller, &template).await?;
        let cfg = PoolConfig {
            tenant: caller.tenant.clone(),
            template: template.clone(),
            size: body.size,
            cap,
            when_full: body.when_full.or(old.as_ref().map(|o| o.value.when_full)).unwrap_or_default(),
            retry_after_s: body.retry_after.or(old.as_ref().map(|o| o.value.retry_after_s)).unwrap_or(5),
            deleted: false,
        };
        let json = serde_json::to_string(&cfg).map_err(|e| ApiError::bad_request(e.to_string()))?;
        match st.store().put_doc(POOL_KIND, &id, &json, old.map_or(0, |o| o.version)).await {
            Ok(_) => {
                // Claims here would find it stale anyway; this saves them the retry.
                binder.docs.forget(&id);
                return Ok(Json(render(&st, &cfg).await?));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("pool is being changed concurrently; try again"))
}

/// `GET /api/pools/{template}` → `{running, available, size, ...}`.
pub(super) async fn get_pool(
    State(st): State<AppState>,
    caller: Caller,
    Path(template): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pool = load_pool(&st, &caller, &template).await?;
    let pool =
        pool.filter(|p| !p.value.deleted).ok_or_else(|| ApiError::not_found(format!("pool '{template}' not found")))?;
    Ok(Json(render(&st, &pool.value).await?))
}

/// `GET /api/pools/` (admin): every pool of the caller's tenant.
pub(super) async fn list(State(st): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let prefix = pool_id(&caller.tenant, "");
    let mut out = Vec::new();
    for (name, doc) in st.store().list_docs(POOL_KIND).await? {
        if !name.starts_with(&prefix) {
            continue;
        }
        let cfg: PoolConfig = serde_json::from_str(&doc.value).map_err(|e| ApiError::from(corrupt("pool", e)))?;
        if !cfg.deleted {
            out.push(render(&st, &cfg).await?);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `DELETE /api/pools/{template}` (admin): marks the pool deleted; the pool-manager drains
/// its idle instances and leaves claimed ones to their users (and the culler).
pub(super) async fn delete(
    State(st): State<AppState>,
    Extension(binder): Extension<Arc<Binder>>,
    caller: Caller,
    Path(template): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let id = pool_id(&caller.tenant, &template);
    for _ in 0..8 {
        let Some(old) = load_pool(&st, &caller, &template).await?.filter(|p| !p.value.deleted) else {
            return Err(ApiError::not_found(format!("pool '{template}' not found")));
        };
        let cfg = PoolConfig { deleted: true, size: 0, ..old.value };
        let json = serde_json::to_string(&cfg).map_err(|e| ApiError::bad_request(e.to_string()))?;
        match st.store().put_doc(POOL_KIND, &id, &json, old.version).await {
            Ok(_) => {
                binder.docs.forget(&id);
                return Ok(Json(render(&st, &cfg).await?));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("pool is being changed concurrently; try again"))
}
