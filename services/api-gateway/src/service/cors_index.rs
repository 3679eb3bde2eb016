//! Which tenants have a pod of a given id that accepts cross-origin requests. Browsers send
//! CORS preflights without credentials, so the proxy cannot learn the tenant from a token;
//! this small index (written only for pods with `cors_allow_origins`) lets it answer them.

use std::collections::BTreeSet;

use corral_model::PodKey;
use corral_store::StoreError;

use crate::AppState;

/// Document kind: one per pod id, holding the tenants that have such a pod.
pub const CORS_INDEX_KIND: &str = "pod_cors_index";

/// Records `key` in the index (idempotent). Stale entries are harmless: readers check the
/// pod itself.
pub async fn note(st: &AppState, key: &PodKey) -> Result<(), StoreError> {
    for _ in 0..8 {
        let doc = st.store().get_doc(CORS_INDEX_KIND, &key.pod_id).await?;
        let (version, mut tenants): (u64, BTreeSet<String>) = match doc {
            Some(d) => (d.version, serde_json::from_str(&d.value).unwrap_or_default()),
            None => (0, BTreeSet::new()),
        };
        if !tenants.insert(key.tenant.clone()) {
            return Ok(());
        }
        let json = serde_json::to_string(&tenants).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match st.store().put_doc(CORS_INDEX_KIND, &key.pod_id, &json, version).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict { key: key.pod_id.clone(), expected: 0, found: 0 })
}

/// The tenants recorded for `pod_id`.
pub async fn tenants(st: &AppState, pod_id: &str) -> Result<Vec<String>, StoreError> {
    let doc = st.store().get_doc(CORS_INDEX_KIND, pod_id).await?;
    Ok(doc
        .map(|d| serde_json::from_str::<BTreeSet<String>>(&d.value).unwrap_or_default().into_iter().collect())
        .unwrap_or_default())
}

/// Does the pod's default networking accept cross-origin requests?
pub fn wants_cors(spec: &corral_model::PodSpec) -> bool {
    spec.networking.get("default").is_some_and(|n| !n.cors_allow_origins.is_empty())
}
