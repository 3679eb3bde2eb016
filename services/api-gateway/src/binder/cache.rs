//! The template and pool documents of the pools this gateway hands instances out of, kept
//! between claims so a claim is one store round trip. An entry is only ever a guess: every
//! claim checks the versions it was read at atomically with the claim, and a changed
//! document makes the claim `Stale` (nothing claimed) and the entry reloaded. So gateway
//! replicas never act on outdated documents, whoever changed them, and no TTL is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use corral_model::pool::{AppTemplate, PoolConfig};
use corral_store::Versioned;

/// Most pools remembered; past it the cache starts over (entries are cheap to reload).
const MAX_ENTRIES: usize = 1024;

/// A template and its pool with the versions they were read at.
#[derive(Debug)]
pub(super) struct PoolDocs {
    pub template: Versioned<AppTemplate>,
    pub pool: Versioned<PoolConfig>,
}

/// Pool id → its documents.
#[derive(Debug, Default)]
pub(super) struct DocCache {
    entries: Mutex<HashMap<String, Arc<PoolDocs>>>,
}

impl DocCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<PoolDocs>>> {
        // Only plain map operations happen under the lock: a panic cannot leave it torn.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get(&self, pool: &str) -> Option<Arc<PoolDocs>> {
        self.lock().get(pool).cloned()
    }

    pub(super) fn put(&self, pool: &str, docs: Arc<PoolDocs>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(pool) {
            entries.clear();
        }
        entries.insert(pool.to_owned(), docs);
    }

    /// Drops the pool's entry (its documents changed).
    pub(super) fn forget(&self, pool: &str) {
        self.lock().remove(pool);
    }
}

#[cfg(test)]
mod tests {
    use corral_model::PodSpec;
    use corral_model::pool::WhenFull;

    use super::*;

    fn docs(version: u64) -> Arc<PoolDocs> {
        let template = AppTemplate {
            name: "web".into(),
            tenant: "acme".into(),
            spec: PodSpec::default(),
            cull_timeout_s: 0,
            max_age_s: 0,
            services: serde_json::Value::Null,
            limits: serde_json::Value::Null,
            command: None,
            image_name: "img".into(),
            created: 0,
            modified: 0,
        };
        let pool = PoolConfig {
            tenant: "acme".into(),
            template: "web".into(),
            size: 1,
            cap: 2,
            when_full: WhenFull::Reject,
            retry_after_s: 1,
            deleted: false,
        };
        Arc::new(PoolDocs {
            template: Versioned { version, value: template },
            pool: Versioned { version, value: pool },
        })
    }

    #[test]
    fn entries_are_replaced_forgotten_and_bounded() {
        let cache = DocCache::default();
        assert!(cache.get("acme/web").is_none());
        cache.put("acme/web", docs(1));
        cache.put("acme/web", docs(2));
        assert_eq!(cache.get("acme/web").map(|d| d.template.version), Some(2));
        cache.forget("acme/web");
        assert!(cache.get("acme/web").is_none());
        for i in 0..=MAX_ENTRIES {
            cache.put(&format!("acme/p{i}"), docs(1));
        }
        assert!(cache.lock().len() <= MAX_ENTRIES, "never grows past the bound");
        assert!(cache.get(&format!("acme/p{MAX_ENTRIES}")).is_some(), "the newest entry is kept");
    }
}
