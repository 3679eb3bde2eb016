//! The redb tables (layout documented on the parent module) and their creation.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::codec::db_err;
use crate::StoreError;

/// `(tenant, pod_id)` → `(version, desired JSON)`; doubles as the tenant index.
pub(crate) const DESIRED: TableDefinition<'_, (&str, &str), (u64, &str)> = TableDefinition::new("desired");
/// `(tenant, pod_id)` → `(version, observed JSON)`.
pub(crate) const OBSERVED: TableDefinition<'_, (&str, &str), (u64, &str)> = TableDefinition::new("observed");
/// `(tenant, pod_id)` → encoded [`Meta`](super::meta::Meta).
pub(crate) const META: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("pod_meta");
/// `(shard, tenant, pod_id)` → `()`.
pub(crate) const SHARDS: TableDefinition<'_, (u32, &str, &str), ()> = TableDefinition::new("shard_index");
/// `(tenant, pod_id, seq)` → action-log entry JSON.
pub(crate) const ACTIONS: TableDefinition<'_, (&str, &str, u64), &str> = TableDefinition::new("action_log");
/// `(tenant, pod_id, seq)` → a chunk of output bytes.
pub(crate) const OUTPUT: TableDefinition<'_, (&str, &str, u64), &[u8]> = TableDefinition::new("output_chunks");
/// lease name → `(holder, expiry in ms since the Unix epoch)`.
pub(crate) const LEASES: TableDefinition<'_, &str, (&str, u64)> = TableDefinition::new("leases");
/// `(group, member)` → last heartbeat in ms.
pub(crate) const MEMBERS: TableDefinition<'_, (&str, &str), i64> = TableDefinition::new("members");
/// `(kind, name)` → `(version, document JSON)`.
pub(crate) const DOCS: TableDefinition<'_, (&str, &str), (u64, &str)> = TableDefinition::new("docs");
/// pool id → its [`PoolBook`](crate::pool_book::PoolBook) as JSON.
pub(crate) const POOLS: TableDefinition<'_, &str, &str> = TableDefinition::new("pools");
/// Facts about the file itself, such as [`SCHEMA_VERSION_KEY`].
pub(crate) const INFO: TableDefinition<'_, &str, u64> = TableDefinition::new("info");

pub(crate) const SCHEMA_VERSION_KEY: &str = "schema_version";
/// Bumped when the layout changes incompatibly; a file of another version is refused.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// Creates every table, so read transactions never meet a missing one, and checks (or
/// records, in a new file) the schema version.
pub(crate) fn init(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(DESIRED).map_err(db_err)?;
    txn.open_table(OBSERVED).map_err(db_err)?;
    txn.open_table(META).map_err(db_err)?;
    txn.open_table(SHARDS).map_err(db_err)?;
    txn.open_table(ACTIONS).map_err(db_err)?;
    txn.open_table(OUTPUT).map_err(db_err)?;
    txn.open_table(LEASES).map_err(db_err)?;
    txn.open_table(MEMBERS).map_err(db_err)?;
    // Added after layout version 1 without changing it: older files simply gain them here.
    txn.open_table(DOCS).map_err(db_err)?;
    txn.open_table(POOLS).map_err(db_err)?;
    let mut info = txn.open_table(INFO).map_err(db_err)?;
    let found = info.get(SCHEMA_VERSION_KEY).map_err(db_err)?.map(|v| v.value());
    match found {
        None => {
            info.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION).map_err(db_err)?;
            Ok(())
        }
        Some(SCHEMA_VERSION) => Ok(()),
        Some(other) => Err(StoreError::Corrupt(format!(
            "embedded store file has layout version {other}, this build reads version {SCHEMA_VERSION}"
        ))),
    }
}
