//! Redis implementation of [`crate::Store`].
//!
//! # Key schema
//!
//! Every key starts with the store's namespace `{ns}`, so deployments and tests can share
//! one Redis. Tenant, pod, lease and group names are escaped (`%` → `%25`, `:` → `%3A`), so
//! they never contain the `:` separator and two names never map to the same key.
//!
//! | key | type | content |
//! |---|---|---|
//! | `{ns}:pod:{tenant}:{pod_id}` | hash | `dv`/`d`: desired version and JSON, `ov`/`o`: observed version and JSON, `shard` |
//! | `{ns}:pod:{tenant}:{pod_id}:actions` | list | action-log entries as JSON, oldest first, at most [`ACTION_LOG_CAP`](crate::ACTION_LOG_CAP) |
//! | `{ns}:pod:{tenant}:{pod_id}:output` | string | output bytes of the latest instance (the last [`OUTPUT_CAP_BYTES`] are served) |
//! | `{ns}:pod:{tenant}:{pod_id}:output:instance` | string | the instance the kept output belongs to |
//! | `{ns}:tenant:{tenant}:pods` | sorted set | pod ids, all scored 0, so they sort by id |
//! | `{ns}:shard:{k}:pods` | set | `{tenant}:{pod_id}` of every pod in shard `k` |
//! | `{ns}:lease:{name}` | string | the holder, expiring after the lease's ttl |
//! | `{ns}:group:{group}` | sorted set | members scored by their last heartbeat (ms) |
//! | `{ns}:doc:{kind}` / `{ns}:docv:{kind}` | hash | document name → JSON / version |
//! | `{ns}:pool:{pool}:state` | hash | member → `warming`, `available` or `claimed` |
//! | `{ns}:pool:{pool}:warm` / `:avail` | list | warming / available members, oldest first |
//! | `{ns}:pool:{pool}:tv` / `:claimant` / `:since` / `:act` | hash | member → template version / claimant / since (ms) / last activity (ms) |
//! | `{ns}:pool:{pool}:seen` | hash | member → `1` once its pod is known to have existed |
//!
//! Both versions of a pod live in one hash, so one HMGET reads them consistently, and every
//! check-then-write (create, compare-and-set, capped appends, leases) is one Lua script.
//! Writes to the log or output of a pod that does not exist fail with `NotFound` instead of
//! leaving keys behind after a purge.

mod claim;
mod codec;
mod keys;
mod ops;
mod pools;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use self::codec::map_err;
use self::keys::Keys;
use self::pools::PoolScripts;
use self::scripts::Scripts;
use crate::{OUTPUT_CAP_BYTES, StoreError};

/// How far the kept output may grow past [`OUTPUT_CAP_BYTES`] before it is cut back.
const OUTPUT_SLACK_BYTES: usize = OUTPUT_CAP_BYTES / 4;

/// Timeouts of a [`RedisStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// Bound on [`RedisStore::connect_with`], retries included.
    pub connect_timeout: Duration,
    /// Bound on each request once connected.
    pub response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), response_timeout: Duration::from_secs(10) }
    }
}

/// A [`Store`](crate::Store) on Redis. Cheap to clone; clones share one multiplexed connection that
/// reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
    scripts: Arc<Scripts>,
    pool_scripts: Arc<PoolScripts>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("namespace", &self.keys.namespace()).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with default [`RedisOptions`]; every key is prefixed with `namespace`.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, namespace, RedisOptions::default()).await
    }

    /// Connects to `url`; fails with `Unavailable` if Redis does not answer within
    /// `options.connect_timeout`.
    pub async fn connect_with(url: &str, namespace: &str, options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Unavailable(format!("bad redis url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(options.connect_timeout, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| StoreError::Unavailable(format!("redis did not answer within {:?}", options.connect_timeout)))?
            .map_err(map_err)?;
        Ok(Self {
            conn,
            keys: Keys::new(namespace),
            scripts: Arc::new(Scripts::new()),
            pool_scripts: Arc::new(PoolScripts::new()),
        })
    }

    /// The prefix of every key this store writes.
    pub fn namespace(&self) -> &str {
        self.keys.namespace()
    }

    /// Deletes every key of this store's namespace (tests, decommissioning). Returns how
    /// many keys were deleted.
    pub async fn clear_namespace(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let pattern = self.keys.namespace_pattern();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(map_err)?;
            if !batch.is_empty() {
                let n: u64 = redis::cmd("UNLINK").arg(&batch).query_async(&mut conn).await.map_err(map_err)?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}
