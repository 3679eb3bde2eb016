//! [`MemoryStore`]: an in-memory [`Store`] with the same semantics as the Redis store (it
//! passes the same contract suite), for unit tests of services.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};
use corral_store::pool_book::{PodCheck, PoolBook, hand_over};
use corral_store::{
    ACTION_LOG_CAP, Claim, ClaimOutcome, ClaimRequest, OUTPUT_CAP_BYTES, PodRecord, PoolMember, Store, StoreError,
    Versioned,
};

/// An in-memory [`Store`]. Every method takes a std mutex for a few map operations and never
/// holds it across an await. Lease expiry uses the monotonic clock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Ordered by (tenant, pod id), which makes a tenant's pods a contiguous range.
    pods: BTreeMap<PodKey, Pod>,
    shards: BTreeMap<u32, BTreeSet<PodKey>>,
    leases: HashMap<String, Lease>,
    groups: HashMap<String, HashMap<String, Millis>>,
    /// `(kind, name)` → document.
    docs: BTreeMap<(String, String), Versioned<String>>,
    pools: HashMap<String, PoolBook>,
}

#[derive(Debug)]
struct Pod {
    desired: Versioned<Desired>,
    observed: Versioned<Observed>,
    shard: u32,
    actions: VecDeque<ActionLogEntry>,
    output_instance: u64,
    output: VecDeque<u8>,
}

#[derive(Debug)]
struct Lease {
    holder: String,
    expires: Instant,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another test thread must not cascade into every later call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` on the pool's book, dropping the book once it has no members.
    fn with_pool<R>(&self, pool: &str, op: impl FnOnce(&mut PoolBook) -> R) -> R {
        let mut inner = self.lock();
        let book = inner.pools.entry(pool.to_owned()).or_default();
        let out = op(book);
        if book.is_empty() {
            inner.pools.remove(pool);
        }
        out
    }
}

impl Pod {
    fn record(&self) -> PodRecord {
        PodRecord { desired: self.desired.clone(), observed: self.observed.clone() }
    }
}

/// Compare-and-set of one versioned record.
fn cas<T>(slot: &mut Versioned<T>, value: T, expected: u64, name: String) -> Result<u64, StoreError> {
    if slot.version != expected {
        return Err(StoreError::Conflict { key: name, expected, found: slot.version });
    }
    *slot = Versioned { version: expected + 1, value };
    Ok(slot.version)
}

impl Pod {
    fn log(&mut self, entries: &[ActionLogEntry]) {
        self.actions.extend(entries.iter().cloned());
        let excess = self.actions.len().saturating_sub(ACTION_LOG_CAP);
        self.actions.drain(..excess);
    }
}

#[async_trait]
impl Store for MemoryStore {
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
        let mut inner = self.lock();
        if inner.pods.contains_key(&key) {
            return Err(StoreError::AlreadyExists(key));
        }
        inner.shards.entry(shard).or_default().insert(key.clone());
        let mut pod = Pod {
            desired: Versioned { version: 1, value: desired.clone() },
            observed: Versioned { version: 1, value: observed.clone() },
            shard,
            actions: VecDeque::new(),
            output_instance: 0,
            output: VecDeque::new(),
        };
        pod.log(entries);
        inner.pods.insert(key, pod);
        Ok(())
    }

    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        Ok(self.lock().pods.get(key).map(Pod::record))
    }

    async fn get_pods(&self, keys: &[PodKey]) -> Result<Vec<Option<PodRecord>>, StoreError> {
        let inner = self.lock();
        Ok(keys.iter().map(|key| inner.pods.get(key).map(Pod::record)).collect())
    }

    async fn pod_versions(&self, keys: &[PodKey]) -> Result<Vec<Option<(u64, u64)>>, StoreError> {
        let inner = self.lock();
        Ok(keys.iter().map(|key| inner.pods.get(key).map(|pod| (pod.desired.version, pod.observed.version))).collect())
    }

    async fn put_desired(&self, desired: &Desired, expected: u64) -> Result<u64, StoreError> {
        let key = desired.key();
        let mut inner = self.lock();
        let pod = inner.pods.get_mut(&key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        cas(&mut pod.desired, desired.clone(), expected, format!("{key}/desired"))
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
        let mut inner = self.lock();
        let pod = inner.pods.get_mut(key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        let version = cas(&mut pod.observed, observed.clone(), expected, format!("{key}/observed"))?;
        pod.log(entries);
        Ok(version)
    }

    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let removed = inner.pods.remove(key);
        // Like the Redis store, also clean the shard recorded at creation.
        let recorded = removed.as_ref().map(|pod| pod.shard);
        for s in std::iter::once(shard).chain(recorded) {
            if let Some(members) = inner.shards.get_mut(&s) {
                members.remove(key);
                if members.is_empty() {
                    inner.shards.remove(&s);
                }
            }
        }
        Ok(removed.is_some())
    }

    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
        let inner = self.lock();
        let pods = inner
            .pods
            .range(PodKey::new(tenant, "")..)
            .take_while(|(key, _)| key.tenant == tenant)
            .map(|(_, pod)| pod.record())
            .collect();
        Ok(pods)
    }

    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError> {
        Ok(self.lock().shards.get(&shard).map(|keys| keys.iter().cloned().collect()).unwrap_or_default())
    }

    async fn append_action_log(&self, key: &PodKey, entry: &ActionLogEntry) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let pod = inner.pods.get_mut(key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        pod.log(std::slice::from_ref(entry));
        Ok(())
    }

    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
        Ok(self.lock().pods.get(key).map(|pod| pod.actions.iter().cloned().collect()).unwrap_or_default())
    }

    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let pod = inner.pods.get_mut(key).ok_or_else(|| StoreError::NotFound(key.clone()))?;
        if instance < pod.output_instance {
            return Ok(());
        }
        if instance > pod.output_instance {
            pod.output_instance = instance;
            pod.output.clear();
        }
        pod.output.extend(&bytes[bytes.len().saturating_sub(OUTPUT_CAP_BYTES)..]);
        let excess = pod.output.len().saturating_sub(OUTPUT_CAP_BYTES);
        pod.output.drain(..excess);
        Ok(())
    }

    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
        let inner = self.lock();
        Ok(inner
            .pods
            .get(key)
            .map(|pod| (pod.output_instance, pod.output.iter().copied().collect()))
            .unwrap_or_default())
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let now = Instant::now();
        let expires = now + Duration::from_millis(ttl_ms.max(1));
        let mut inner = self.lock();
        match inner.leases.get_mut(name) {
            Some(lease) if lease.expires > now && lease.holder != holder => Ok(false),
            Some(lease) => {
                holder.clone_into(&mut lease.holder);
                lease.expires = expires;
                Ok(true)
            }
            None => {
                inner.leases.insert(name.to_owned(), Lease { holder: holder.to_owned(), expires });
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.leases.get(name).is_some_and(|lease| lease.holder == holder) {
            inner.leases.remove(name);
        }
        Ok(())
    }

    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
        self.lock().groups.entry(group.to_owned()).or_default().insert(member.to_owned(), now);
        Ok(())
    }

    /// Sorted by member name, like the Redis store.
    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let mut members: Vec<String> = inner
            .groups
            .get(group)
            .map(|members| members.iter().filter(|(_, at)| **at >= since).map(|(m, _)| m.clone()).collect())
            .unwrap_or_default();
        members.sort();
        Ok(members)
    }

    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(members) = inner.groups.get_mut(group) {
            members.remove(member);
            if members.is_empty() {
                inner.groups.remove(group);
            }
        }
        Ok(())
    }

    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let slot = (kind.to_owned(), name.to_owned());
        let found = inner.docs.get(&slot).map_or(0, |d| d.version);
        if found != expected {
            return Err(StoreError::Conflict { key: format!("{kind}/{name}"), expected, found });
        }
        inner.docs.insert(slot, Versioned { version: expected + 1, value: json.to_owned() });
        Ok(expected + 1)
    }

    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        Ok(self.lock().docs.get(&(kind.to_owned(), name.to_owned())).cloned())
    }

    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .docs
            .range((kind.to_owned(), String::new())..)
            .take_while(|((k, _), _)| k == kind)
            .map(|((_, name), doc)| (name.clone(), doc.clone()))
            .collect())
    }

    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock().docs.remove(&(kind.to_owned(), name.to_owned())).is_some())
    }

    async fn pool_reserve(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        Ok(self.with_pool(pool, |book| book.reserve(member, template_version, cap, now)))
    }

    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        Ok(self.with_pool(pool, |book| book.ready(member, now)))
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
        Ok(self.with_pool(pool, |book| book.claim(claimant, cold_member, template_version, cap, now)))
    }

    async fn pool_claim_instance(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let version = |kind: &str| inner.docs.get(&(kind.to_owned(), req.pool.to_owned())).map(|d| d.version);
        if version(TEMPLATE_KIND) != Some(req.template_version) || version(POOL_KIND) != Some(req.pool_version) {
            return Ok(ClaimOutcome::Stale);
        }
        let pods = &mut inner.pods;
        let book = inner.pools.entry(req.pool.to_owned()).or_default();
        let claim = book.claim_instance(req.claimant, req.cold_member, req.template_version, req.cap, req.now, |id| {
            pods.get(&PodKey::new(req.tenant, id))
                .map_or(PodCheck::Missing, |p| PodCheck::of_state(&p.desired.value, &p.observed.value))
        });
        if book.is_empty() {
            inner.pools.remove(req.pool);
        }
        let owner_set = match &claim {
            Claim::Ready(id) | Claim::Warming(id) => pods.get_mut(&PodKey::new(req.tenant, id)).is_some_and(|pod| {
                let mut next = pod.desired.value.clone();
                let (set, changed) = hand_over(&mut next, req.pool_owner, req.claimant);
                if changed {
                    pod.desired = Versioned { version: pod.desired.version + 1, value: next };
                }
                set
            }),
            Claim::Cold(_) | Claim::Full => false,
        };
        Ok(ClaimOutcome::Claimed { claim, owner_set })
    }

    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        Ok(self.with_pool(pool, |book| book.withdraw(member)))
    }

    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        Ok(self.with_pool(pool, |book| book.release(member)))
    }

    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        Ok(self.with_pool(pool, |book| book.touch(member, now)))
    }

    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        Ok(self.lock().pools.get(pool).map(PoolBook::members).unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
