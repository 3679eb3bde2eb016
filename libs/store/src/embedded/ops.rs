//! [`Store`] operations of [`EmbeddedStore`]: each is one redb transaction on the blocking
//! pool. Arguments are encoded (or copied) on the caller's side so the transaction only
//! touches the file.

use async_trait::async_trait;
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};

use super::codec::encode;
use super::tables::{DESIRED, OBSERVED};
use super::{EmbeddedStore, coord, logs, pods, pools};
use crate::{Claim, ClaimOutcome, ClaimRequest, OUTPUT_CAP_BYTES, PodRecord, PoolMember, Store, StoreError, Versioned};

fn encode_entries(entries: &[ActionLogEntry]) -> Result<Vec<String>, StoreError> {
    entries.iter().map(|e| encode("action-log entry", e)).collect()
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn create_pod(&self, desired: &Desired, observed: &Observed, shard: u32) -> Result<(), StoreError> {
        self.create_pod_logged(desired, observed, shard, &[]).await
    }

    async fn create_pod_logged(
        &self,
        desired: &Desired,
        observed: &Observed,
        shard: u32,
        entries: &[ActionLogEntry],
    ) -> Result<(), StoreError> {
        let key = desired.key();
        let d = encode("desired state", desired)?;
        let o = encode("observed state", observed)?;
        let entries = encode_entries(entries)?;
        self.write("create_pod", move |txn| {
            pods::create(txn, &key, &d, &o, shard)?;
            logs::append_actions_after_write(txn, &key, &entries)
        })
        .await
    }

    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        let key = key.clone();
        self.read("get_pod", move |txn| pods::get(txn, &key)).await
    }

    async fn get_pods(&self, keys: &[PodKey]) -> Result<Vec<Option<PodRecord>>, StoreError> {
        let keys = keys.to_vec();
        self.read("get_pods", move |txn| keys.iter().map(|key| pods::get(txn, key)).collect()).await
    }

    async fn pod_versions(&self, keys: &[PodKey]) -> Result<Vec<Option<(u64, u64)>>, StoreError> {
        let keys = keys.to_vec();
        self.read("pod_versions", move |txn| keys.iter().map(|key| pods::versions(txn, key)).collect()).await
    }

    async fn put_desired(&self, desired: &Desired, expected: u64) -> Result<u64, StoreError> {
        let key = desired.key();
        let json = encode("desired state", desired)?;
        self.write("put_desired", move |txn| pods::put_versioned(txn, DESIRED, "desired", &key, &json, expected)).await
    }

    async fn put_observed(&self, key: &PodKey, observed: &Observed, expected: u64) -> Result<u64, StoreError> {
        self.put_observed_logged(key, observed, expected, &[]).await
    }

    async fn put_observed_logged(
        &self,
        key: &PodKey,
        observed: &Observed,
        expected: u64,
        entries: &[ActionLogEntry],
    ) -> Result<u64, StoreError> {
        let key = key.clone();
        let json = encode("observed state", observed)?;
        let entries = encode_entries(entries)?;
        self.write("put_observed", move |txn| {
            let version = pods::put_versioned(txn, OBSERVED, "observed", &key, &json, expected)?;
            logs::append_actions_after_write(txn, &key, &entries)?;
            Ok(version)
        })
        .await
    }

    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write("purge_pod", move |txn| pods::purge(txn, &key, shard)).await
    }

    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
        let tenant = tenant.to_owned();
        self.read("list_tenant", move |txn| pods::list_tenant(txn, &tenant)).await
    }

    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError> {
        self.read("list_shard", move |txn| pods::list_shard(txn, shard)).await
    }

    async fn append_action_log(&self, key: &PodKey, entry: &ActionLogEntry) -> Result<(), StoreError> {
        let key = key.clone();
        let json = encode("action-log entry", entry)?;
        self.write("append_action_log", move |txn| logs::append_action(txn, &key, &json)).await
    }

    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
        let key = key.clone();
        self.read("action_log", move |txn| logs::action_log(txn, &key)).await
    }

    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let key = key.clone();
        let tail = bytes[bytes.len().saturating_sub(OUTPUT_CAP_BYTES)..].to_vec();
        self.write("append_output", move |txn| logs::append_output(txn, &key, instance, &tail)).await
    }

    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
        let key = key.clone();
        self.read("output", move |txn| logs::output(txn, &key)).await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write("acquire_lease", move |txn| coord::acquire_lease(txn, &name, &holder, ttl_ms)).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write("release_lease", move |txn| coord::release_lease(txn, &name, &holder)).await
    }

    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
        let (group, member) = (group.to_owned(), member.to_owned());
        self.write("heartbeat", move |txn| coord::heartbeat(txn, &group, &member, now)).await
    }

    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
        let group = group.to_owned();
        self.read("live_members", move |txn| coord::live_members(txn, &group, since)).await
    }

    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError> {
        let (group, member) = (group.to_owned(), member.to_owned());
        self.write("leave", move |txn| coord::leave(txn, &group, &member)).await
    }

    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        let (kind, name, json) = (kind.to_owned(), name.to_owned(), json.to_owned());
        self.write("put_doc", move |txn| pools::put_doc(txn, &kind, &name, &json, expected)).await
    }

    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.read("get_doc", move |txn| pools::get_doc(txn, &kind, &name)).await
    }

    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        let kind = kind.to_owned();
        self.read("list_docs", move |txn| pools::list_docs(txn, &kind)).await
    }

    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        let (kind, name) = (kind.to_owned(), name.to_owned());
        self.write("delete_doc", move |txn| pools::delete_doc(txn, &kind, &name)).await
    }

    async fn pool_reserve(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let (pool, member) = (pool.to_owned(), member.to_owned());
        self.write("pool_reserve", move |txn| {
            pools::with_book(txn, &pool, |b| b.reserve(&member, template_version, cap, now))
        })
        .await
    }

    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        let (pool, member) = (pool.to_owned(), member.to_owned());
        self.write("pool_ready", move |txn| pools::with_book(txn, &pool, |b| b.ready(&member, now))).await
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
        let (pool, claimant, cold) = (pool.to_owned(), claimant.to_owned(), cold_member.to_owned());
        self.write("pool_claim", move |txn| {
            pools::with_book(txn, &pool, |b| b.claim(&claimant, &cold, template_version, cap, now))
        })
        .await
    }

    async fn pool_claim_instance(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let req = pools::OwnedClaim::from(req);
        self.write("pool_claim_instance", move |txn| pools::claim_instance(txn, &req)).await
    }

    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        let (pool, member) = (pool.to_owned(), member.to_owned());
        self.write("pool_withdraw", move |txn| pools::with_book(txn, &pool, |b| b.withdraw(&member))).await
    }

    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        let (pool, member) = (pool.to_owned(), member.to_owned());
        self.write("pool_release", move |txn| pools::with_book(txn, &pool, |b| b.release(&member))).await
    }

    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        let (pool, member) = (pool.to_owned(), member.to_owned());
        self.write("pool_touch", move |txn| pools::with_book(txn, &pool, |b| b.touch(&member, now))).await
    }

    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        let pool = pool.to_owned();
        self.read("pool_members", move |txn| pools::members(txn, &pool)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read("ping", |_| Ok(())).await
    }
}
