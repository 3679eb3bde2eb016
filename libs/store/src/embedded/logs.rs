//! The capped action log and the capped container output, both stored as rows keyed by
//! `(tenant, pod_id, seq)` so an append writes a few small rows instead of rewriting the log.

use corral_model::{ActionLogEntry, PodKey};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::codec::{db_err, decode};
use super::meta::Meta;
use super::pods::{load_meta, store_meta};
use super::tables::{ACTIONS, OUTPUT};
use crate::{ACTION_LOG_CAP, OUTPUT_CAP_BYTES, StoreError};

/// Target size of an output chunk. Small appends fill the last chunk up to this (rewriting
/// at most this many bytes), larger ones are cut into chunks of it, so a full buffer is a
/// few hundred rows and trimming frees whole chunks.
pub(crate) const CHUNK_BYTES: usize = 16 * 1024;

const CAP: u64 = OUTPUT_CAP_BYTES as u64;

fn missing(key: &PodKey) -> StoreError {
    StoreError::NotFound(key.clone())
}

pub(crate) fn append_action(txn: &WriteTransaction, key: &PodKey, entry: &str) -> Result<(), StoreError> {
    let mut meta = load_meta(txn, key)?.ok_or_else(|| missing(key))?;
    let (tenant, pod) = (key.tenant.as_str(), key.pod_id.as_str());
    let mut actions = txn.open_table(ACTIONS).map_err(db_err)?;
    actions.insert((tenant, pod, meta.actions_next), entry).map_err(db_err)?;
    meta.actions_next += 1;
    while meta.actions_next - meta.actions_first > ACTION_LOG_CAP as u64 {
        actions.remove((tenant, pod, meta.actions_first)).map_err(db_err)?;
        meta.actions_first += 1;
    }
    store_meta(txn, key, &meta)
}

/// Appends `entries` inside an operation that has already written the pod. A missing
/// bookkeeping row this late is damage, not a refusal: the group commit may only see
/// `NotFound` before an operation's first write.
pub(crate) fn append_actions_after_write(
    txn: &WriteTransaction,
    key: &PodKey,
    entries: &[String],
) -> Result<(), StoreError> {
    for entry in entries {
        append_action(txn, key, entry).map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::Corrupt(format!("pod {key} has records but no bookkeeping row")),
            other => other,
        })?;
    }
    Ok(())
}

pub(crate) fn action_log(txn: &ReadTransaction, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
    let (tenant, pod) = (key.tenant.as_str(), key.pod_id.as_str());
    let actions = txn.open_table(ACTIONS).map_err(db_err)?;
    let mut out = Vec::new();
    for item in actions.range((tenant, pod, 0)..=(tenant, pod, u64::MAX)).map_err(db_err)? {
        let (_, json) = item.map_err(db_err)?;
        out.push(decode(&format!("action-log entry of {key}"), json.value())?);
    }
    Ok(out)
}

pub(crate) fn append_output(
    txn: &WriteTransaction,
    key: &PodKey,
    instance: u64,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let mut meta = load_meta(txn, key)?.ok_or_else(|| missing(key))?;
    if instance < meta.output_instance {
        return Ok(());
    }
    let (tenant, pod) = (key.tenant.as_str(), key.pod_id.as_str());
    let mut chunks = txn.open_table(OUTPUT).map_err(db_err)?;
    if instance > meta.output_instance {
        chunks
            .retain_in((tenant, pod, meta.output_first)..(tenant, pod, meta.output_next), |_, _| false)
            .map_err(db_err)?;
        meta =
            Meta { output_instance: instance, output_first: meta.output_next, output_skip: 0, output_len: 0, ..meta };
    }
    // Only the tail of an oversized append could survive the cap.
    let mut rest = &bytes[bytes.len().saturating_sub(OUTPUT_CAP_BYTES)..];
    if rest.is_empty() {
        return store_meta(txn, key, &meta);
    }

    // Top up the last chunk if it has room, then add full chunks.
    if meta.output_next > meta.output_first {
        let last_seq = meta.output_next - 1;
        let last = chunks.get((tenant, pod, last_seq)).map_err(db_err)?.map(|c| c.value().to_vec());
        let mut last =
            last.ok_or_else(|| StoreError::Corrupt(format!("output chunk {last_seq} of {key} is missing")))?;
        let room = CHUNK_BYTES.saturating_sub(last.len());
        if room > 0 {
            let (head, tail) = rest.split_at(room.min(rest.len()));
            last.extend_from_slice(head);
            chunks.insert((tenant, pod, last_seq), last.as_slice()).map_err(db_err)?;
            rest = tail;
            meta.output_len += head.len() as u64;
        }
    }
    for piece in rest.chunks(CHUNK_BYTES) {
        chunks.insert((tenant, pod, meta.output_next), piece).map_err(db_err)?;
        meta.output_next += 1;
        meta.output_len += piece.len() as u64;
    }

    // Drop whole chunks from the front while the rest still holds the cap, then skip into
    // the first one: the served bytes are exactly the last `OUTPUT_CAP_BYTES`.
    while meta.output_len > CAP {
        let excess = meta.output_len - CAP;
        let first_len =
            chunks.get((tenant, pod, meta.output_first)).map_err(db_err)?.map(|c| c.value().len() as u64).ok_or_else(
                || StoreError::Corrupt(format!("output chunk {} of {key} is missing", meta.output_first)),
            )?;
        let served_of_first = first_len.saturating_sub(meta.output_skip);
        if excess >= served_of_first {
            chunks.remove((tenant, pod, meta.output_first)).map_err(db_err)?;
            meta.output_first += 1;
            meta.output_skip = 0;
            meta.output_len -= served_of_first;
        } else {
            meta.output_skip += excess;
            meta.output_len -= excess;
        }
    }
    store_meta(txn, key, &meta)
}

pub(crate) fn output(txn: &ReadTransaction, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
    let table = txn.open_table(super::tables::META).map_err(db_err)?;
    let Some(meta) = table.get((key.tenant.as_str(), key.pod_id.as_str())).map_err(db_err)? else {
        return Ok((0, Vec::new()));
    };
    let meta = Meta::decode(meta.value())?;
    let (tenant, pod) = (key.tenant.as_str(), key.pod_id.as_str());
    let chunks = txn.open_table(OUTPUT).map_err(db_err)?;
    let mut out = Vec::with_capacity(usize::try_from(meta.output_len).unwrap_or(0).min(OUTPUT_CAP_BYTES));
    let mut skip = usize::try_from(meta.output_skip).unwrap_or(usize::MAX);
    for item in chunks.range((tenant, pod, meta.output_first)..(tenant, pod, meta.output_next)).map_err(db_err)? {
        let (_, chunk) = item.map_err(db_err)?;
        let chunk = chunk.value();
        out.extend_from_slice(chunk.get(skip..).unwrap_or_default());
        skip = 0;
    }
    if out.len() as u64 != meta.output_len {
        return Err(StoreError::Corrupt(format!(
            "output of {key} has {} bytes, its bookkeeping says {}",
            out.len(),
            meta.output_len
        )));
    }
    Ok((meta.output_instance, out))
}
