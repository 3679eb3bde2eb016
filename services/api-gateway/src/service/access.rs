//! Who may do what to a pod: its permissions (kept beside the pod record in a small
//! "pod meta" document, only for pods whose permissions or definition need one), tenant
//! admins, and the checks every pod route makes.

use std::collections::BTreeMap;

use corral_model::access::{Level, Permissions, effective_level};
use corral_model::{Millis, PodKey};
use corral_store::{PodRecord, StoreError, Versioned};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::AppState;
use crate::error::ApiError;

/// Document kind of [`PodMeta`].
pub const POD_META_KIND: &str = "pod_meta";

/// What a pod has beyond its desired/observed records: its permissions and, for pods made
/// from templates, the definition as the user wrote it and where each field came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodMeta {
    /// The pod this document belongs to: a document left by an earlier pod of the same id
    /// (deleted, then created again) does not match and is ignored.
    pub creation_ts: Millis,
    #[serde(default)]
    pub permissions: Permissions,
    /// The pod's own fields, as submitted (for templated pods).
    #[serde(default)]
    pub layer: Option<serde_json::Value>,
    /// Field path → the layer that set it (for templated pods).
    #[serde(default)]
    pub provenance: BTreeMap<String, String>,
}

/// The document name of a pod's meta.
pub fn meta_name(key: &PodKey) -> String {
    format!("{}/{}", key.tenant, key.pod_id)
}

/// A pod as one caller sees it: the record, its meta (with the document version, 0 when
/// none is stored) and the caller's level on it.
pub struct PodAccess {
    pub rec: PodRecord,
    pub meta: Versioned<PodMeta>,
    pub level: Level,
}

/// Reads a pod's meta; a missing or stale document reads as the default (owner is ADMIN),
/// carrying the stored version so a write replaces it.
pub async fn load_meta(st: &AppState, rec: &PodRecord) -> Result<Versioned<PodMeta>, ApiError> {
    let d = &rec.desired.value;
    let doc = st.store().get_doc(POD_META_KIND, &meta_name(&d.key())).await?;
    let fresh = || PodMeta { creation_ts: d.creation_ts, ..PodMeta::default() };
    let Some(doc) = doc else { return Ok(Versioned { version: 0, value: fresh() }) };
    let meta: PodMeta = serde_json::from_str(&doc.value)
        .map_err(|e| ApiError::from(StoreError::Corrupt(format!("stored pod meta is unreadable: {e}"))))?;
    let value = if meta.creation_ts == d.creation_ts { meta } else { fresh() };
    Ok(Versioned { version: doc.version, value })
}

/// Stores `meta` if the document is still at `expected`.
pub async fn put_meta(st: &AppState, key: &PodKey, meta: &PodMeta, expected: u64) -> Result<u64, ApiError> {
    let json =
        serde_json::to_string(meta).map_err(|e| ApiError::bad_request(format!("cannot encode pod meta: {e}")))?;
    Ok(st.store().put_doc(POD_META_KIND, &meta_name(key), &json, expected).await?)
}

/// The pod if the caller holds at least `need` on it. A pod the caller may not even read
/// (another user's without a grant, another tenant's, a deleted one) is the same 404 as a
/// missing one; a visible pod with too low a level is a 403 naming both levels.
pub async fn load_pod(st: &AppState, ctx: &Ctx, pod_id: &str, need: Level) -> Result<PodAccess, ApiError> {
    let rec = st.store().get_pod(&ctx.key(pod_id)).await?;
    let rec = rec
        .filter(|r| !r.desired.value.deleted && r.desired.value.tenant == ctx.caller.tenant)
        .ok_or_else(|| ApiError::pod_not_found(pod_id))?;
    let meta = load_meta(st, &rec).await?;
    let level = effective_level(&meta.value.permissions, &rec.desired.value.owner, &ctx.caller.user, ctx.caller.admin)
        .ok_or_else(|| ApiError::pod_not_found(pod_id))?;
    if level < need {
        return Err(forbidden("pod", pod_id, level, need));
    }
    Ok(PodAccess { rec, meta, level })
}

/// The 403 for an object the caller sees but may not act on this way.
pub fn forbidden(what: &str, id: &str, held: Level, need: Level) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        format!("you hold {held} on {what} '{id}'; this operation needs {need}"),
    )
}

/// Every pod of the caller's tenant they may read, with their level.
pub async fn readable_pods(st: &AppState, ctx: &Ctx) -> Result<Vec<(PodRecord, Level)>, ApiError> {
    let tenant = &ctx.caller.tenant;
    let all = st.store().list_tenant(tenant).await?;
    let prefix = format!("{tenant}/");
    let metas: BTreeMap<String, PodMeta> = st
        .store()
        .list_docs(POD_META_KIND)
        .await?
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .filter_map(|(name, doc)| serde_json::from_str(&doc.value).ok().map(|m| (name, m)))
        .collect();
    let default = Permissions::default();
    Ok(all
        .into_iter()
        .filter(|r| !r.desired.value.deleted)
        .filter_map(|r| {
            let d = &r.desired.value;
            let perms = metas
                .get(&meta_name(&d.key()))
                .filter(|m| m.creation_ts == d.creation_ts)
                .map_or(&default, |m| &m.permissions);
            let level = effective_level(perms, &d.owner, &ctx.caller.user, ctx.caller.admin)?;
            Some((r, level))
        })
        .collect())
}
