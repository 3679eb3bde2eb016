//! Pod records and the indexes: create, read, compare-and-set, purge, list.

use corral_model::PodKey;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::codec::{db_err, decode};
use super::meta::Meta;
use super::tables::{ACTIONS, DESIRED, META, OBSERVED, OUTPUT, SHARDS};
use crate::{PodRecord, StoreError, Versioned};

/// A versioned-record table: `(tenant, pod_id)` → `(version, JSON)`.
pub(crate) type RecordTable = TableDefinition<'static, (&'static str, &'static str), (u64, &'static str)>;

fn row(key: &PodKey) -> (&str, &str) {
    (&key.tenant, &key.pod_id)
}

/// The pod's bookkeeping row, `None` if the pod does not exist.
pub(crate) fn load_meta(txn: &WriteTransaction, key: &PodKey) -> Result<Option<Meta>, StoreError> {
    let table = txn.open_table(META).map_err(db_err)?;
    let bytes = table.get(row(key)).map_err(db_err)?;
    bytes.map(|b| Meta::decode(b.value())).transpose()
}

pub(crate) fn store_meta(txn: &WriteTransaction, key: &PodKey, meta: &Meta) -> Result<(), StoreError> {
    let mut table = txn.open_table(META).map_err(db_err)?;
    table.insert(row(key), meta.encode().as_slice()).map_err(db_err)?;
    Ok(())
}

pub(crate) fn create(
    txn: &WriteTransaction,
    key: &PodKey,
    desired: &str,
    observed: &str,
    shard: u32,
) -> Result<(), StoreError> {
    let mut desired_table = txn.open_table(DESIRED).map_err(db_err)?;
    if desired_table.get(row(key)).map_err(db_err)?.is_some() {
        return Err(StoreError::AlreadyExists(key.clone()));
    }
    desired_table.insert(row(key), (1, desired)).map_err(db_err)?;
    txn.open_table(OBSERVED).map_err(db_err)?.insert(row(key), (1, observed)).map_err(db_err)?;
    txn.open_table(SHARDS)
        .map_err(db_err)?
        .insert((shard, key.tenant.as_str(), key.pod_id.as_str()), ())
        .map_err(db_err)?;
    store_meta(txn, key, &Meta::new(shard))
}

/// Compare-and-set of one versioned record; `which` names it in a conflict.
pub(crate) fn put_versioned(
    txn: &WriteTransaction,
    table: RecordTable,
    which: &str,
    key: &PodKey,
    json: &str,
    expected: u64,
) -> Result<u64, StoreError> {
    let mut table = txn.open_table(table).map_err(db_err)?;
    let found = table.get(row(key)).map_err(db_err)?.map(|v| v.value().0);
    match found {
        None => Err(StoreError::NotFound(key.clone())),
        Some(found) if found != expected => {
            Err(StoreError::Conflict { key: format!("{key}/{which}"), expected, found })
        }
        Some(_) => {
            let version = expected
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt(format!("version of {key}/{which} overflows")))?;
            table.insert(row(key), (version, json)).map_err(db_err)?;
            Ok(version)
        }
    }
}

/// Both records from their rows; `None` if the pod does not exist.
fn record(
    key: &PodKey,
    desired: Option<(u64, &str)>,
    observed: Option<(u64, &str)>,
) -> Result<Option<PodRecord>, StoreError> {
    match (desired, observed) {
        (None, None) => Ok(None),
        (Some((dv, d)), Some((ov, o))) => Ok(Some(PodRecord {
            desired: Versioned { version: dv, value: decode(&format!("desired state of {key}"), d)? },
            observed: Versioned { version: ov, value: decode(&format!("observed state of {key}"), o)? },
        })),
        _ => Err(StoreError::Corrupt(format!("pod {key} has only one of its two records"))),
    }
}

pub(crate) fn get(txn: &ReadTransaction, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
    let desired = txn.open_table(DESIRED).map_err(db_err)?;
    let observed = txn.open_table(OBSERVED).map_err(db_err)?;
    let d = desired.get(row(key)).map_err(db_err)?;
    let o = observed.get(row(key)).map_err(db_err)?;
    record(key, d.as_ref().map(|d| d.value()), o.as_ref().map(|o| o.value()))
}

/// The pod's (desired, observed) versions; `None` if the pod does not exist.
pub(crate) fn versions(txn: &ReadTransaction, key: &PodKey) -> Result<Option<(u64, u64)>, StoreError> {
    let desired = txn.open_table(DESIRED).map_err(db_err)?;
    let observed = txn.open_table(OBSERVED).map_err(db_err)?;
    let d = desired.get(row(key)).map_err(db_err)?.map(|d| d.value().0);
    let o = observed.get(row(key)).map_err(db_err)?.map(|o| o.value().0);
    match (d, o) {
        (None, None) => Ok(None),
        (Some(d), Some(o)) => Ok(Some((d, o))),
        _ => Err(StoreError::Corrupt(format!("pod {key} has only one of its two records"))),
    }
}

pub(crate) fn purge(txn: &WriteTransaction, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
    let meta = txn.open_table(META).map_err(db_err)?.remove(row(key)).map_err(db_err)?.map(|m| Meta::decode(m.value()));
    let recorded = match meta {
        Some(Ok(meta)) => Some(meta.shard),
        // Still purge the rest: a damaged bookkeeping row must not make the pod undeletable.
        Some(Err(err)) => {
            tracing::warn!(pod = %key, error = %err, "purging a pod whose bookkeeping row is corrupt");
            None
        }
        None => None,
    };
    let existed = txn.open_table(DESIRED).map_err(db_err)?.remove(row(key)).map_err(db_err)?.is_some();
    txn.open_table(OBSERVED).map_err(db_err)?.remove(row(key)).map_err(db_err)?;
    let mut shards = txn.open_table(SHARDS).map_err(db_err)?;
    for s in std::iter::once(shard).chain(recorded) {
        shards.remove((s, key.tenant.as_str(), key.pod_id.as_str())).map_err(db_err)?;
    }
    let (tenant, pod) = row(key);
    txn.open_table(ACTIONS)
        .map_err(db_err)?
        .retain_in((tenant, pod, 0)..=(tenant, pod, u64::MAX), |_, _| false)
        .map_err(db_err)?;
    txn.open_table(OUTPUT)
        .map_err(db_err)?
        .retain_in((tenant, pod, 0)..=(tenant, pod, u64::MAX), |_, _| false)
        .map_err(db_err)?;
    Ok(existed || recorded.is_some())
}

pub(crate) fn list_tenant(txn: &ReadTransaction, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
    let desired = txn.open_table(DESIRED).map_err(db_err)?;
    let observed = txn.open_table(OBSERVED).map_err(db_err)?;
    let mut out = Vec::new();
    for item in desired.range((tenant, "")..).map_err(db_err)? {
        let (k, d) = item.map_err(db_err)?;
        let (t, pod_id) = k.value();
        if t != tenant {
            break;
        }
        let key = PodKey::new(t, pod_id);
        let o = observed.get(row(&key)).map_err(db_err)?;
        if let Some(record) = record(&key, Some(d.value()), o.as_ref().map(|o| o.value()))? {
            out.push(record);
        }
    }
    Ok(out)
}

pub(crate) fn list_shard(txn: &ReadTransaction, shard: u32) -> Result<Vec<PodKey>, StoreError> {
    let shards = txn.open_table(SHARDS).map_err(db_err)?;
    let mut out = Vec::new();
    for item in shards.range((shard, "", "")..).map_err(db_err)? {
        let (k, _) = item.map_err(db_err)?;
        let (s, tenant, pod_id) = k.value();
        if s != shard {
            break;
        }
        out.push(PodKey::new(tenant, pod_id));
    }
    Ok(out)
}
