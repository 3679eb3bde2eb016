//! The store: the source of truth for pods. One trait ([`Store`]) with two implementations
//! that pass the same contract suite: Redis ([`redis::RedisStore`]) for distributed
//! deployments and an embedded, durable redb file ([`embedded::EmbeddedStore`]) for
//! `corral dev`. (redb rather than SQLite: pure Rust, no C build, and its ordered tuple-keyed
//! tables map directly onto the tenant and shard indexes.)
//!
//! Records are versioned. Desired state is written by the gateway, observed state only by
//! the pod's actor; each write is compare-and-set on the record's version, so a stale writer
//! gets [`StoreError::Conflict`] instead of overwriting newer data.

pub mod embedded;
pub mod pool_book;
mod pools;
pub mod redis;

pub use pools::{Claim, ClaimOutcome, ClaimRequest, MemberState, PoolMember};

use async_trait::async_trait;
use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};

/// Most action-log entries kept per pod (oldest dropped first).
pub const ACTION_LOG_CAP: usize = 1000;
/// Most container output bytes kept per pod (oldest dropped first).
pub const OUTPUT_CAP_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("pod {0} already exists")]
    AlreadyExists(PodKey),
    #[error("pod {0} not found")]
    NotFound(PodKey),
    #[error("version conflict on {key}: expected {expected}, found {found}")]
    Conflict { key: String, expected: u64, found: u64 },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// A record and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

/// Desired and observed state of one pod, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    pub desired: Versioned<Desired>,
    pub observed: Versioned<Observed>,
}

/// Semantics beyond the signatures (enforced by the shared contract suite):
/// - appending to the action log or output of a pod that does not exist is `NotFound`, so a
///   late write after a purge leaves nothing behind;
/// - reading the action log or output of a missing pod gives an empty log / `(0, [])`;
/// - `list_shard` and `live_members` return sorted results;
/// - `purge_pod` removes the pod from the shard it was created in, whatever shard is passed;
/// - a lease TTL of 0 counts as 1 ms.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates the pod (desired and observed at version 1) and adds it to the tenant and
    /// shard indexes, atomically. Fails with `AlreadyExists` if the pod id is taken in the
    /// tenant (including a pod that is still being deleted).
    async fn create_pod(&self, desired: &Desired, observed: &Observed, shard: u32) -> Result<(), StoreError>;

    /// As [`Store::create_pod`], and starts the pod's action log with `entries`, in the same
    /// atomic write: a refused create appends nothing.
    ///
    /// Every store in this crate (and the test store) does this in one round trip; the
    /// default, for wrappers that only delegate, makes two calls and is not atomic.
    async fn create_pod_logged(
        &self,
        desired: &Desired,
        observed: &Observed,
        shard: u32,
        entries: &[ActionLogEntry],
    ) -> Result<(), StoreError> {
        self.create_pod(desired, observed, shard).await?;
        let key = desired.key();
        for entry in entries {
            self.append_action_log(&key, entry).await?;
        }
        Ok(())
    }

    /// Both records of one pod, read consistently.
    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError>;

    /// The records of many pods, in the order of `keys` (`None` for a pod that does not
    /// exist). Each record is read consistently; the set as a whole is not a snapshot.
    /// Stores read them in few round trips, which is what periodic resyncs over whole shards
    /// need. The default, for wrappers that only delegate, reads one by one.
    async fn get_pods(&self, keys: &[PodKey]) -> Result<Vec<Option<PodRecord>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get_pod(key).await?);
        }
        Ok(out)
    }

    /// The current versions (desired, observed) of many pods, in the order of `keys`
    /// (`None` for a pod that does not exist): a few bytes per pod, so a periodic resync
    /// re-reads (with [`Store::get_pods`]) only the pods that changed since its last pass.
    /// The default, for wrappers that only delegate, reads the whole records.
    async fn pod_versions(&self, keys: &[PodKey]) -> Result<Vec<Option<(u64, u64)>>, StoreError> {
        let records = self.get_pods(keys).await?;
        Ok(records.into_iter().map(|r| r.map(|r| (r.desired.version, r.observed.version))).collect())
    }

    /// Replaces desired state if its version is still `expected`; returns the new version.
    async fn put_desired(&self, desired: &Desired, expected: u64) -> Result<u64, StoreError>;

    /// Replaces observed state if its version is still `expected`; returns the new version.
    async fn put_observed(&self, key: &PodKey, observed: &Observed, expected: u64) -> Result<u64, StoreError>;

    /// As [`Store::put_observed`], and appends `entries` to the action log (capped at
    /// [`ACTION_LOG_CAP`]) in the same atomic write: on `Conflict` or `NotFound` nothing is
    /// appended, and a reader never sees the new state without its log lines. The actor
    /// records a transition and its reasons with one store round trip this way.
    ///
    /// Every store in this crate (and the test store) does this in one round trip; the
    /// default, for wrappers that only delegate, makes several calls and is not atomic.
    async fn put_observed_logged(
        &self,
        key: &PodKey,
        observed: &Observed,
        expected: u64,
        entries: &[ActionLogEntry],
    ) -> Result<u64, StoreError> {
        let version = self.put_observed(key, observed, expected).await?;
        for entry in entries {
            self.append_action_log(key, entry).await?;
        }
        Ok(version)
    }

    /// Removes every record of the pod (desired, observed, indexes, action log, output).
    /// Returns whether it existed.
    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError>;

    /// Every pod of a tenant, ordered by pod id.
    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError>;

    /// Keys of every pod in a shard.
    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError>;

    /// Appends to the pod's action log (capped at [`ACTION_LOG_CAP`]).
    async fn append_action_log(&self, key: &PodKey, entry: &ActionLogEntry) -> Result<(), StoreError>;

    /// The action log, oldest first.
    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError>;

    /// Appends container output of instance `instance`. Output of an older instance is
    /// ignored; output of a newer instance replaces what was kept. Keeps at most
    /// [`OUTPUT_CAP_BYTES`], dropping the oldest bytes.
    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError>;

    /// Container output kept for the pod's latest instance, and that instance number.
    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError>;

    /// Takes or renews a lease: succeeds if the lease is free, expired, or already held by
    /// `holder`. Leases fence shard ownership between spawners.
    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError>;

    /// Gives a lease up if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Records that `member` of `group` is alive at `now`.
    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError>;

    /// Members of `group` whose last heartbeat is at or after `since`.
    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError>;

    /// Removes `member` from `group` (clean shutdown).
    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError>;

    // ---- Documents: small versioned JSON records (Binder templates and pools) ----

    /// Writes document `name` of `kind` if its version is still `expected` (0: it must not
    /// exist yet); returns the new version. A mismatch is `Conflict` with the version found
    /// (0 when missing).
    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError>;

    /// One document and its version.
    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError>;

    /// Every document of `kind` with its name, sorted by name.
    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError>;

    /// Removes a document; returns whether it existed.
    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError>;

    // ---- Pool members (see `corral_model::pool`); each call is atomic ----

    /// Adds `member` as warming if the pool has fewer than `cap` members. Returns false
    /// (and changes nothing) when full or when `member` is already a member.
    async fn pool_reserve(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError>;

    /// Moves a warming member to available. False if it is not warming (claimed while
    /// warming, withdrawn, unknown).
    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError>;

    /// Hands one member to `claimant`, who is recorded with the claim: the oldest available
    /// member, else a warming one, else (below `cap`) `cold_member` as a new claimed member,
    /// else `Full`. Never hands a member out twice.
    async fn pool_claim(
        &self,
        pool: &str,
        claimant: &str,
        cold_member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<Claim, StoreError>;

    /// The whole Binder claim in one atomic operation: checks that the pool's template and
    /// pool documents are still at the versions the caller read (else `Stale`, nothing
    /// changed), takes a member as [`PoolBook::claim_instance`](pool_book::PoolBook::claim_instance)
    /// describes (readiness judged on the pod records at that moment), records the claimant,
    /// counts a cold member against the cap, and makes the claimant the owner of the
    /// member's pod (desired version bumped) if the pool (`pool_owner`) still owns it. A pod
    /// owned by anyone else keeps its owner. `owner_set` reports whether the claimant owns
    /// the pod; a store may also leave it false (the pod untouched) when it cannot change the
    /// owner safely, and the caller then does it.
    ///
    /// Every store in this crate (and the test store) does this in one round trip; the
    /// default, for wrappers that only delegate, checks the versions and claims with
    /// [`Store::pool_claim`] in separate calls (not atomic) and leaves the owner to the
    /// caller (`owner_set: false`).
    async fn pool_claim_instance(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let template = self.get_doc(TEMPLATE_KIND, req.pool).await?.map(|d| d.version);
        let pool = self.get_doc(POOL_KIND, req.pool).await?.map(|d| d.version);
        if template != Some(req.template_version) || pool != Some(req.pool_version) {
            return Ok(ClaimOutcome::Stale);
        }
        let claim =
            self.pool_claim(req.pool, req.claimant, req.cold_member, req.template_version, req.cap, req.now).await?;
        Ok(ClaimOutcome::Claimed { claim, owner_set: false })
    }

    /// Removes an unclaimed member; false if it is claimed or unknown (so a drain never
    /// takes a member a user just claimed).
    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError>;

    /// Removes a member whatever its state; returns whether it existed.
    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError>;

    /// Records activity of a claimed member at `now` (never moves it back). False if the
    /// member is not claimed.
    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError>;

    /// Every member of the pool, sorted by id.
    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError>;

    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;
}
