//! Embedded, durable implementation of [`crate::Store`] in one redb file, for `corral dev`:
//! no Redis to install, and nothing acknowledged is lost when the process is killed.
//!
//! # Table layout
//!
//! `(a, b)` is a redb tuple key: it sorts by `a`, then `b`, with strings compared byte by
//! byte, so every "all rows of X" read is one range scan.
//!
//! | table | key | value |
//! |---|---|---|
//! | `desired` | `(tenant, pod_id)` | `(version, desired JSON)`; also the tenant index: a tenant's pods are one range, ordered by pod id |
//! | `observed` | `(tenant, pod_id)` | `(version, observed JSON)` |
//! | `pod_meta` | `(tenant, pod_id)` | 60 fixed bytes: recorded shard, action-log and output sequence counters |
//! | `shard_index` | `(shard, tenant, pod_id)` | `()`: a shard's pods are one range, sorted like [`PodKey`](corral_model::PodKey) |
//! | `action_log` | `(tenant, pod_id, seq)` | one entry as JSON; the oldest are deleted past [`ACTION_LOG_CAP`](crate::ACTION_LOG_CAP) |
//! | `output_chunks` | `(tenant, pod_id, seq)` | up to 16 KiB of output; whole chunks are deleted from the front and the first one may be partly skipped |
//! | `leases` | `name` | `(holder, expiry in ms since the Unix epoch)` |
//! | `members` | `(group, member)` | last heartbeat (ms) |
//! | `docs` | `(kind, name)` | `(version, document JSON)` |
//! | `pools` | pool id | the pool's members as one JSON [`PoolBook`](crate::pool_book::PoolBook): pools hold hundreds of members at most, and one row makes each claim a single-row read-modify-write |
//! | `info` | `name` | `schema_version` of this layout |
//!
//! Desired and observed state live in separate tables so that the actor's frequent observed
//! writes never rewrite the spec, and the counters in `pod_meta` are separate so that appends
//! rewrite a 60-byte row rather than a record. One read transaction sees a consistent
//! snapshot, so a pod's two records are read together without a combined row.
//!
//! # Durability and concurrency
//!
//! Every write is committed with redb's default (immediate) durability before the method
//! returns: a write that returned `Ok` survives `kill -9`. Concurrent writes share a commit
//! (group commit, in the private `writer` module), so throughput grows with the number of
//! writers instead of being capped at one fsync per write. redb is synchronous, so
//! transactions run on tokio's blocking pool; readers run beside the writer on a snapshot.
//! The file is locked: a second process (or a second `open` in this one) gets
//! [`StoreError::Unavailable`].

mod codec;
mod coord;
mod logs;
mod meta;
mod ops;
mod pods;
mod pools;
mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, DatabaseError, ReadTransaction};
use tracing::Instrument;

use self::codec::db_err;
use self::writer::{WriteOp, Writer};
use crate::StoreError;

/// Upper bound on redb's page cache; it grows on demand up to this.
const CACHE_BYTES: usize = 256 * 1024 * 1024;

/// A [`Store`](crate::Store) in one local redb file. Cheap to clone: clones share the open
/// database, which is closed (and its file lock released) when the last clone is dropped.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<Database>,
    writer: Arc<Writer>,
    path: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens the store at `path`, creating the file and its parent directories if needed.
    /// Blocking file I/O: call it before serving, or from a blocking task.
    ///
    /// Fails with `Unavailable` if another process (or another open store in this one) has
    /// the file open, and with `Corrupt` if the file is not a store of this layout.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot create data directory {}: {e}", dir.display())))?;
        }
        let db = redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
                "the data directory is in use by another corral process ({} is locked)",
                path.display()
            )),
            other => db_err(other),
        })?;
        let txn = db.begin_write().map_err(db_err)?;
        tables::init(&txn)?;
        txn.commit().map_err(db_err)?;
        let db = Arc::new(db);
        let writer = Arc::new(Writer::new(Arc::clone(&db)));
        Ok(Self { inner: Arc::new(Inner { db, writer, path: path.to_owned() }) })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `read` on a snapshot, on the blocking pool.
    async fn read<R, F>(&self, op: &'static str, read: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = move || {
            let txn = redb::ReadableDatabase::begin_read(&*inner.db).map_err(db_err)?;
            read(&txn)
        };
        run_blocking(op, task).await
    }

    /// Queues `write` for the next group commit (see [`writer`]) and waits until it is
    /// durably committed, or refused without writing anything.
    async fn write<R: Send + 'static>(&self, op: &'static str, write: impl WriteOp<R>) -> Result<R, StoreError> {
        self.inner.writer.write(op, write).await
    }
}

/// Runs one store transaction on tokio's blocking pool, inside a span naming the operation.
async fn run_blocking<R, F>(op: &'static str, task: F) -> Result<R, StoreError>
where
    R: Send + 'static,
    F: FnOnce() -> Result<R, StoreError> + Send + 'static,
{
    let span = tracing::info_span!("embedded_store", op);
    let in_span = span.clone();
    tokio::task::spawn_blocking(move || in_span.in_scope(task))
        .instrument(span)
        .await
        .map_err(|e| StoreError::Unavailable(format!("embedded store task for {op} failed: {e}")))?
}
