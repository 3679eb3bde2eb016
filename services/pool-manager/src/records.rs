//! The pod records of pool members, kept between passes and re-read only when their
//! versions change: a pass reads every member's versions (a few bytes each, one round trip)
//! and decodes only the records that changed, so frequent passes over large pools stay cheap.

use std::collections::HashMap;
use std::sync::Arc;

use corral_model::PodKey;
use corral_store::{PodRecord, Store, StoreError};

/// Cached records, per pool.
#[derive(Debug, Default)]
pub struct RecordCache {
    pools: HashMap<String, HashMap<PodKey, Arc<PodRecord>>>,
}

impl RecordCache {
    /// The current records of `keys` (members of `pool`), in order; `None` for a pod that
    /// does not exist. Records of the pool's former members are forgotten.
    pub async fn read(
        &mut self,
        store: &dyn Store,
        pool: &str,
        keys: &[PodKey],
    ) -> Result<Vec<Option<Arc<PodRecord>>>, StoreError> {
        let versions = store.pod_versions(keys).await?;
        let mut old = self.pools.remove(pool).unwrap_or_default();
        let mut fresh = HashMap::with_capacity(keys.len());
        let mut stale = Vec::new();
        for (key, version) in keys.iter().zip(&versions) {
            let Some((dv, ov)) = *version else { continue };
            match old.remove(key) {
                Some(r) if r.desired.version == dv && r.observed.version == ov => {
                    fresh.insert(key.clone(), r);
                }
                _ => stale.push(key.clone()),
            }
        }
        if !stale.is_empty() {
            let records = store.get_pods(&stale).await?;
            for (key, record) in stale.into_iter().zip(records) {
                // Purged since its versions were read: it stays missing.
                if let Some(record) = record {
                    fresh.insert(key, Arc::new(record));
                }
            }
        }
        let out = keys.iter().map(|k| fresh.get(k).cloned()).collect();
        self.pools.insert(pool.to_owned(), fresh);
        Ok(out)
    }

    /// Forgets every pool not in `live`.
    pub fn retain_pools(&mut self, live: &[String]) {
        self.pools.retain(|pool, _| live.contains(pool));
    }
}
