//! A store wrapper that injects faults into the memory store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};
use corral_store::{Claim, PodRecord, PoolMember, Store, StoreError, Versioned};
use corral_testkit::MemoryStore;

/// Switches shared with the test.
#[derive(Debug, Default)]
pub struct Faults {
    /// Every call fails as unavailable.
    pub down: AtomicBool,
    /// The next `put_desired` loses a race: another writer changes the description
    /// (to "racer") first, so the write meets a version conflict.
    pub race_next_write: AtomicBool,
}

pub struct FaultStore {
    inner: Arc<MemoryStore>,
    faults: Arc<Faults>,
}

impl FaultStore {
    /// For [`super::Gateway::start_with`].
    pub fn wrap(faults: Arc<Faults>) -> impl FnOnce(Arc<MemoryStore>) -> Arc<dyn Store> {
        move |inner| Arc::new(Self { inner, faults })
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.faults.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("injected outage".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for FaultStore {
    async fn create_pod(&self, d: &Desired, o: &Observed, shard: u32) -> Result<(), StoreError> {
        self.check()?;
        self.inner.create_pod(d, o, shard).await
    }
    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        self.check()?;
        self.inner.get_pod(key).await
    }
    async fn put_desired(&self, d: &Desired, expected: u64) -> Result<u64, StoreError> {
        self.check()?;
        if self.faults.race_next_write.swap(false, Ordering::SeqCst) {
            let mut racer = d.clone();
            if let Some(current) = self.inner.get_pod(&d.key()).await? {
                racer = current.desired.value;
            }
            racer.spec.description = "racer".into();
            self.inner.put_desired(&racer, expected).await?;
        }
        self.inner.put_desired(d, expected).await
    }
    async fn put_observed(&self, key: &PodKey, o: &Observed, expected: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.put_observed(key, o, expected).await
    }
    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.purge_pod(key, shard).await
    }
    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
        self.check()?;
        self.inner.list_tenant(tenant).await
    }
    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError> {
        self.check()?;
        self.inner.list_shard(shard).await
    }
    async fn append_action_log(&self, key: &PodKey, e: &ActionLogEntry) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_action_log(key, e).await
    }
    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
        self.check()?;
        self.inner.action_log(key).await
    }
    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_output(key, instance, bytes).await
    }
    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
        self.check()?;
        self.inner.output(key).await
    }
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.acquire_lease(name, holder, ttl_ms).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.release_lease(name, holder).await
    }
    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
        self.check()?;
        self.inner.heartbeat(group, member, now).await
    }
    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.inner.live_members(group, since).await
    }
    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.leave(group, member).await
    }
    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.put_doc(kind, name, json, expected).await
    }
    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        self.check()?;
        self.inner.get_doc(kind, name).await
    }
    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        self.check()?;
        self.inner.list_docs(kind).await
    }
    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_doc(kind, name).await
    }
    async fn pool_reserve(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.pool_reserve(pool, member, template_version, cap, now).await
    }
    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.pool_ready(pool, member, now).await
    }
    async fn pool_claim(
        &self,
        pool: &str,
        claimant: &str,
        cold_member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<Claim, StoreError> {
        self.check()?;
        self.inner.pool_claim(pool, claimant, cold_member, template_version, cap, now).await
    }
    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.pool_withdraw(pool, member).await
    }
    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.pool_release(pool, member).await
    }
    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.pool_touch(pool, member, now).await
    }
    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        self.check()?;
        self.inner.pool_members(pool).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }
}
