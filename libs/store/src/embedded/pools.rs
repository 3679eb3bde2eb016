//! Documents and pool books. A pool operation reads the pool's book, changes it and writes
//! it back in one write transaction, which redb serialises: claims never interleave.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::codec::{db_err, decode, encode};
use super::tables::{DOCS, POOLS};
use crate::pool_book::PoolBook;
use crate::{PoolMember, StoreError, Versioned};

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
