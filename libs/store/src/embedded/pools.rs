//! Documents and pool books. A pool operation reads the pool's book, changes it and writes
//! it back in one write transaction, which redb serialises: claims never interleave.

use std::cell::RefCell;

use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};
use corral_model::{Desired, Millis, Observed, PodKey};
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::codec::{db_err, decode, encode};
use super::tables::{DESIRED, DOCS, OBSERVED, POOLS};
use crate::pool_book::{PodCheck, PoolBook, hand_over};
use crate::{Claim, ClaimOutcome, ClaimRequest, PoolMember, StoreError, Versioned};

pub(crate) fn put_doc(
    txn: &WriteTransaction,
    kind: &str,
    name: &str,
    json: &str,
    expected: u64,
) -> Result<u64, StoreError> {
    let mut docs = txn.open_table(DOCS).map_err(db_err)?;
    let found = docs.get((kind, name)).map_err(db_err)?.map_or(0, |d| d.value().0);
    if found != expected {
        return Err(StoreError::Conflict { key: format!("{kind}/{name}"), expected, found });
    }
    docs.insert((kind, name), (expected + 1, json)).map_err(db_err)?;
    Ok(expected + 1)
}

pub(crate) fn get_doc(txn: &ReadTransaction, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
    let docs = txn.open_table(DOCS).map_err(db_err)?;
    let doc = docs.get((kind, name)).map_err(db_err)?;
    Ok(doc.map(|d| {
        let (version, json) = d.value();
        Versioned { version, value: json.to_owned() }
    }))
}

pub(crate) fn list_docs(txn: &ReadTransaction, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
    let docs = txn.open_table(DOCS).map_err(db_err)?;
    let mut out = Vec::new();
    for item in docs.range((kind, "")..).map_err(db_err)? {
        let (k, v) = item.map_err(db_err)?;
        let (k_kind, name) = k.value();
        if k_kind != kind {
            break;
        }
        let (version, json) = v.value();
        out.push((name.to_owned(), Versioned { version, value: json.to_owned() }));
    }
    Ok(out)
}

pub(crate) fn delete_doc(txn: &WriteTransaction, kind: &str, name: &str) -> Result<bool, StoreError> {
    let mut docs = txn.open_table(DOCS).map_err(db_err)?;
    let removed = docs.remove((kind, name)).map_err(db_err)?.is_some();
    Ok(removed)
}

/// Runs `op` on the pool's book and writes the book back (or drops it once empty). The
/// book is only written when `op` changed it, so refused operations write nothing.
pub(crate) fn with_book<R>(
    txn: &WriteTransaction,
    pool: &str,
    op: impl FnOnce(&mut PoolBook) -> R,
) -> Result<R, StoreError> {
    let mut pools = txn.open_table(POOLS).map_err(db_err)?;
    let before: PoolBook = match pools.get(pool).map_err(db_err)? {
        Some(json) => decode(&format!("pool {pool}"), json.value())?,
        None => PoolBook::default(),
    };
    let mut book = before.clone();
    let out = op(&mut book);
    if book != before {
        if book.is_empty() {
            pools.remove(pool).map_err(db_err)?;
        } else {
            let json = encode("pool", &book)?;
            pools.insert(pool, json.as_str()).map_err(db_err)?;
        }
    }
    Ok(out)
}

pub(crate) fn members(txn: &ReadTransaction, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
    let pools = txn.open_table(POOLS).map_err(db_err)?;
    let book: PoolBook = match pools.get(pool).map_err(db_err)? {
        Some(json) => decode(&format!("pool {pool}"), json.value())?,
        None => return Ok(Vec::new()),
    };
    Ok(book.members())
}

/// A [`ClaimRequest`] owned by the write operation (which may run more than once).
#[derive(Debug, Clone)]
pub(crate) struct OwnedClaim {
    tenant: String,
    pool: String,
    template_version: u64,
    pool_version: u64,
    cap: u32,
    pool_owner: String,
    claimant: String,
    cold_member: String,
    now: Millis,
}

impl From<&ClaimRequest<'_>> for OwnedClaim {
    fn from(r: &ClaimRequest<'_>) -> Self {
        Self {
            tenant: r.tenant.to_owned(),
            pool: r.pool.to_owned(),
            template_version: r.template_version,
            pool_version: r.pool_version,
            cap: r.cap,
            pool_owner: r.pool_owner.to_owned(),
            claimant: r.claimant.to_owned(),
            cold_member: r.cold_member.to_owned(),
            now: r.now,
        }
    }
}

/// See [`Store::pool_claim_instance`](crate::Store::pool_claim_instance): the document
/// check, the claim and the owner change in one write transaction.
pub(crate) fn claim_instance(txn: &WriteTransaction, req: &OwnedClaim) -> Result<ClaimOutcome, StoreError> {
    {
        let docs = txn.open_table(DOCS).map_err(db_err)?;
        for (kind, expected) in [(TEMPLATE_KIND, req.template_version), (POOL_KIND, req.pool_version)] {
            let found = docs.get((kind, req.pool.as_str())).map_err(db_err)?.map(|d| d.value().0);
            if found != Some(expected) {
                return Ok(ClaimOutcome::Stale);
            }
        }
    }
    let failure = RefCell::new(None);
    let claim = {
        let desired = txn.open_table(DESIRED).map_err(db_err)?;
        let observed = txn.open_table(OBSERVED).map_err(db_err)?;
        let check = |id: &str| -> Result<PodCheck, StoreError> {
            let row = (req.tenant.as_str(), id);
            let (Some(d), Some(o)) = (desired.get(row).map_err(db_err)?, observed.get(row).map_err(db_err)?) else {
                return Ok(PodCheck::Missing);
            };
            let d: Desired = decode(&format!("desired state of {}/{id}", req.tenant), d.value().1)?;
            let o: Observed = decode(&format!("observed state of {}/{id}", req.tenant), o.value().1)?;
            Ok(PodCheck::of_state(&d, &o))
        };
        with_book(txn, &req.pool, |book| {
            book.claim_instance(&req.claimant, &req.cold_member, req.template_version, req.cap, req.now, |id| {
                check(id).unwrap_or_else(|e| {
                    failure.borrow_mut().get_or_insert(e);
                    PodCheck::Missing
                })
            })
        })?
    };
    // The book may be written already: an error here aborts the whole transaction.
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let owner_set = match &claim {
        Claim::Ready(id) | Claim::Warming(id) => hand_over_pod(txn, &PodKey::new(&req.tenant, id), req)?,
        Claim::Cold(_) | Claim::Full => false,
    };
    Ok(ClaimOutcome::Claimed { claim, owner_set })
}

/// Makes the claimant the owner of a claimed member's pod (see [`hand_over`]).
fn hand_over_pod(txn: &WriteTransaction, key: &PodKey, req: &OwnedClaim) -> Result<bool, StoreError> {
    let mut table = txn.open_table(DESIRED).map_err(db_err)?;
    let row = (key.tenant.as_str(), key.pod_id.as_str());
    let Some((version, mut desired)) = table
        .get(row)
        .map_err(db_err)?
        .map(|d| decode::<Desired>(&format!("desired state of {key}"), d.value().1).map(|v| (d.value().0, v)))
        .transpose()?
    else {
        return Ok(false);
    };
    let (set, changed) = hand_over(&mut desired, &req.pool_owner, &req.claimant);
    if changed {
        let json = encode("desired state", &desired)?;
        table.insert(row, (version + 1, json.as_str())).map_err(db_err)?;
    }
    Ok(set)
}
