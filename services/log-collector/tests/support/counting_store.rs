//! A [`Store`] that counts output writes and reads, and otherwise delegates to [`MemoryStore`].

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};
use corral_store::{Claim, PodRecord, PoolMember, Store, StoreError, Versioned};
use corral_testkit::MemoryStore;

#[derive(Default)]
pub struct CountingStore {
    inner: MemoryStore,
    appends: AtomicUsize,
    output_reads: AtomicUsize,
}

impl CountingStore {
    /// Calls of `append_output` so far.
    pub fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }

    /// Calls of `output` so far (reads through [`CountingStore::uncounted`] excluded).
    pub fn output_reads(&self) -> usize {
        self.output_reads.load(Ordering::SeqCst)
    }

    /// The store underneath, for a test's own reads that must not be counted.
    pub fn uncounted(&self) -> &MemoryStore {
        &self.inner
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn create_pod(&self, desired: &Desired, observed: &Observed, shard: u32) -> Result<(), StoreError> {
        self.inner.create_pod(desired, observed, shard).await
    }
    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        self.inner.get_pod(key).await
    }
    async fn put_desired(&self, desired: &Desired, expected: u64) -> Result<u64, StoreError> {
        self.inner.put_desired(desired, expected).await
    }
    async fn put_observed(&self, key: &PodKey, observed: &Observed, expected: u64) -> Result<u64, StoreError> {
        self.inner.put_observed(key, observed, expected).await
    }
    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
        self.inner.purge_pod(key, shard).await
    }
    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
        self.inner.list_tenant(tenant).await
    }
    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError> {
        self.inner.list_shard(shard).await
    }
    async fn append_action_log(&self, key: &PodKey, entry: &ActionLogEntry) -> Result<(), StoreError> {
        self.inner.append_action_log(key, entry).await
    }
    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
        self.inner.action_log(key).await
    }
    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append_output(key, instance, bytes).await
    }
    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
        self.output_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.output(key).await
    }
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        self.inner.acquire_lease(name, holder, ttl_ms).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }
    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
        self.inner.heartbeat(group, member, now).await
    }
    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
        self.inner.live_members(group, since).await
    }
    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError> {
        self.inner.leave(group, member).await
    }
    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        self.inner.put_doc(kind, name, json, expected).await
    }
    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        self.inner.get_doc(kind, name).await
    }
    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        self.inner.list_docs(kind).await
    }
    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
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
        self.inner.pool_reserve(pool, member, template_version, cap, now).await
    }
    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
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
        self.inner.pool_claim(pool, claimant, cold_member, template_version, cap, now).await
    }
    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.inner.pool_withdraw(pool, member).await
    }
    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.inner.pool_release(pool, member).await
    }
    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        self.inner.pool_touch(pool, member, now).await
    }
    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        self.inner.pool_members(pool).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
