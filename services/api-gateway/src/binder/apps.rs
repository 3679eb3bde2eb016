//! `/api/applications`: claiming an instance of a template, and reading claimed ones.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use corral_model::pool::{AppTemplate, member_id, member_pod, pool_id, pool_owner};
use corral_model::shard::shard_of;
use corral_model::{PodKey, PodStatus};
use corral_store::{Claim, ClaimOutcome, ClaimRequest, MemberState, PodRecord, StoreError};
use serde_json::{Value, json};

use super::cache::PoolDocs;
use super::templates::ensure_pool;
use super::{Binder, load_pool, load_template, location};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::kick::kick;
use crate::service::now_ms;

fn new_member_id() -> String {
    member_id(&uuid::Uuid::new_v4().simple().to_string())
}

/// Whether the pod runs and answers, so its location can be handed out.
fn ready(rec: &PodRecord) -> bool {
    let (d, o) = (&rec.desired.value, &rec.observed.value);
    !d.deleted && o.status == PodStatus::Available && o.observed_generation == d.generation
}

fn app_json(st: &AppState, id: &str, ready: bool) -> Value {
    if ready { json!({ "id": id, "location": location(st, id) }) } else { json!({ "id": id }) }
}

/// Claims retried after finding the cached documents outdated, before giving up.
const STALE_RETRIES: usize = 4;

/// The template and pool of `template`, from the cache or the store (creating the pool the
/// template lacks).
async fn pool_docs(st: &AppState, binder: &Binder, caller: &Caller, template: &str) -> Result<Arc<PoolDocs>, ApiError> {
    let key = pool_id(&caller.tenant, template);
    if let Some(docs) = binder.docs.get(&key) {
        return Ok(docs);
    }
    let tpl = load_template(st, caller, template).await?;
    let pool = match load_pool(st, caller, template).await? {
        Some(p) => p,
        None => {
            ensure_pool(st, &tpl.value).await?;
            load_pool(st, caller, template).await?.ok_or_else(|| ApiError::unavailable("pool vanished; try again"))?
        }
    };
    let docs = Arc::new(PoolDocs { template: tpl, pool });
    binder.docs.put(&key, Arc::clone(&docs));
    Ok(docs)
}

/// `POST /api/applications/{template}`: one atomic claim; see the module docs of `binder`.
pub(super) async fn launch(
    State(st): State<AppState>,
    Extension(binder): Extension<Arc<Binder>>,
    caller: Caller,
    Path(template): Path<String>,
) -> Result<Response, ApiError> {
    let pool_key = pool_id(&caller.tenant, &template);
    let owner = pool_owner(&template);
    let cold = new_member_id();
    for _ in 0..STALE_RETRIES {
        let docs = pool_docs(&st, &binder, &caller, &template).await?;
        let req = ClaimRequest {
            tenant: &caller.tenant,
            pool: &pool_key,
            template_version: docs.template.version,
            pool_version: docs.pool.version,
            cap: docs.pool.value.cap,
            pool_owner: &owner,
            claimant: &caller.user,
            cold_member: &cold,
            now: now_ms(),
        };
        match st.store().pool_claim_instance(&req).await? {
            ClaimOutcome::Stale => binder.docs.forget(&pool_key),
            ClaimOutcome::Claimed { claim, owner_set } => {
                tracing::info!(pool = pool_key, user = caller.user, ?claim, "application claimed");
                return answer(&st, &binder, &caller, &docs, claim, owner_set).await;
            }
        }
    }
    Err(ApiError::unavailable("the template or its pool keeps changing; try again"))
}

/// The answer to a claim, once the store has made it.
async fn answer(
    st: &AppState,
    binder: &Arc<Binder>,
    caller: &Caller,
    docs: &PoolDocs,
    claim: Claim,
    owner_set: bool,
) -> Result<Response, ApiError> {
    let (tpl, pool) = (&docs.template.value, &docs.pool.value);
    let pool_key = pool_id(&caller.tenant, &pool.template);
    let body = match claim {
        Claim::Ready(id) => {
            // The store checked readiness with the claim unless it left the owner to us.
            let ready = owner_set || set_owner(st, caller, &id).await?.as_ref().is_some_and(ready);
            binder.hints.claimed(st, &caller.tenant, &pool_key);
            app_json(st, &id, ready)
        }
        Claim::Warming(id) => {
            if !owner_set {
                set_owner(st, caller, &id).await?;
            }
            binder.hints.claimed(st, &caller.tenant, &pool_key);
            app_json(st, &id, false)
        }
        Claim::Cold(id) => {
            create_pod(st, caller, tpl, &pool_key, &id).await?;
            app_json(st, &id, false)
        }
        Claim::Full if pool.when_full == corral_model::pool::WhenFull::ColdSpawn => {
            // Outside the pool and its cap: an ordinary pod owned by the caller.
            let id = new_member_id();
            create_pod(st, caller, tpl, "", &id).await?;
            app_json(st, &id, false)
        }
        Claim::Full => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("pool '{}' is empty and at its cap of {}; retry later", pool.template, pool.cap),
            )
            .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(pool.retry_after_s));
            return Ok(resp);
        }
    };
    Ok(Json(body).into_response())
}

/// Makes the claimant the owner of a claimed member's pod, when the store could not do it
/// with the claim (the pool-manager repairs this should we die before it is done).
async fn set_owner(st: &AppState, caller: &Caller, id: &str) -> Result<Option<PodRecord>, ApiError> {
    let key = PodKey::new(&caller.tenant, id);
    for _ in 0..8 {
        let Some(mut rec) = st.store().get_pod(&key).await? else { return Ok(None) };
        if rec.desired.value.owner == caller.user {
            return Ok(Some(rec));
        }
        let mut next = rec.desired.value.clone();
        next.owner.clone_from(&caller.user);
        match st.store().put_desired(&next, rec.desired.version).await {
            Ok(version) => {
                rec.desired = corral_store::Versioned { version, value: next };
                return Ok(Some(rec));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(format!("instance '{id}' is being changed concurrently")))
}

/// Starts a cold instance owned by the caller.
async fn create_pod(st: &AppState, caller: &Caller, tpl: &AppTemplate, pool: &str, id: &str) -> Result<(), ApiError> {
    let (desired, observed) = member_pod(tpl, pool, id, &caller.user, now_ms());
    let key = desired.key();
    let shard = shard_of(&key.tenant, &key.pod_id, st.config().spawner.shards);
    match st.store().create_pod(&desired, &observed, shard).await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    kick(st, &key, desired.generation, None).await;
    Ok(())
}

/// `GET /api/applications/{template}/{id}`: the caller's instance, with `location` once ready.
pub(super) async fn get_app(
    State(st): State<AppState>,
    caller: Caller,
    Path((template, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let rec = st.store().get_pod(&PodKey::new(&caller.tenant, &id)).await?;
    let pool = pool_id(&caller.tenant, &template);
    let rec = rec
        .filter(|r| r.desired.value.owner == caller.user && !r.desired.value.deleted)
        .filter(|r| {
            r.desired
                .value
                .spec
                .environment_variables
                .get(corral_model::pool::POOL_LABEL_ENV)
                .is_none_or(|p| *p == pool || p.is_empty())
        })
        .ok_or_else(|| ApiError::not_found(format!("application '{id}' not found")))?;
    Ok(Json(app_json(&st, &id, ready(&rec))))
}

/// `GET /api/applications/{template}`: the caller's claimed instances (every claimed one
/// for an admin).
pub(super) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    Path(template): Path<String>,
) -> Result<Json<Value>, ApiError> {
    load_template(&st, &caller, &template).await?;
    let admin = caller.admin;
    let pool = pool_id(&caller.tenant, &template);
    let mut out = Vec::new();
    for m in st.store().pool_members(&pool).await? {
        if m.state != MemberState::Claimed || !(admin || m.claimant.as_deref() == Some(caller.user.as_str())) {
            continue;
        }
        let rec = st.store().get_pod(&PodKey::new(&caller.tenant, &m.id)).await?;
        out.push(app_json(&st, &m.id, rec.as_ref().is_some_and(ready)));
    }
    Ok(Json(Value::Array(out)))
}
