//! Leases (expiring by wall clock) and group membership.

use std::time::{SystemTime, UNIX_EPOCH};

use corral_model::Millis;
use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::codec::db_err;
use super::tables::{LEASES, MEMBERS};
use crate::StoreError;

/// Wall-clock time in microseconds since the Unix epoch.
fn now_micros() -> Result<u64, StoreError> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| StoreError::Unavailable(format!("system clock is before 1970: {e}")))?;
    u64::try_from(since.as_micros()).map_err(|_| StoreError::Unavailable("system clock is out of range".into()))
}

/// Expiry of a lease taken now for `ttl_ms`, in ms. Rounded up, so that together with
/// [`held_at`] a lease is never free before its full ttl has passed.
fn expiry_ms(now_us: u64, ttl_ms: u64) -> u64 {
    now_us.div_ceil(1000).saturating_add(ttl_ms.max(1))
}

/// Whether a lease expiring at `expires_ms` is still held at `now_us`.
fn held_at(expires_ms: u64, now_us: u64) -> bool {
    now_us / 1000 < expires_ms
}

pub(crate) fn acquire_lease(txn: &WriteTransaction, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
    let now = now_micros()?;
    let mut leases = txn.open_table(LEASES).map_err(db_err)?;
    let taken_by_other = leases.get(name).map_err(db_err)?.is_some_and(|lease| {
        let (current, expires) = lease.value();
        current != holder && held_at(expires, now)
    });
    if taken_by_other {
        return Ok(false);
    }
    leases.insert(name, (holder, expiry_ms(now, ttl_ms))).map_err(db_err)?;
    Ok(true)
}

pub(crate) fn release_lease(txn: &WriteTransaction, name: &str, holder: &str) -> Result<(), StoreError> {
    let mut leases = txn.open_table(LEASES).map_err(db_err)?;
    let held_by_holder = leases.get(name).map_err(db_err)?.is_some_and(|lease| lease.value().0 == holder);
    if held_by_holder {
        leases.remove(name).map_err(db_err)?;
    }
    Ok(())
}

pub(crate) fn heartbeat(txn: &WriteTransaction, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
    txn.open_table(MEMBERS).map_err(db_err)?.insert((group, member), now).map_err(db_err)?;
    Ok(())
}

pub(crate) fn leave(txn: &WriteTransaction, group: &str, member: &str) -> Result<(), StoreError> {
    txn.open_table(MEMBERS).map_err(db_err)?.remove((group, member)).map_err(db_err)?;
    Ok(())
}

/// Members heard from at or after `since`, sorted by name (the key order).
pub(crate) fn live_members(txn: &ReadTransaction, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
    let members = txn.open_table(MEMBERS).map_err(db_err)?;
    let mut out = Vec::new();
    for item in members.range((group, "")..).map_err(db_err)? {
        let (k, at) = item.map_err(db_err)?;
        let (g, member) = k.value();
        if g != group {
            break;
        }
        if at.value() >= since {
            out.push(member.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_never_free_before_its_ttl() {
        // Taken 0.9 ms into a millisecond: free only once the whole ttl has passed.
        let taken = 5_000_900;
        let expires = expiry_ms(taken, 1_000);
        assert!(held_at(expires, taken + 999_999));
        assert!(!held_at(expires, taken + 1_000_100));
    }

    #[test]
    fn zero_ttl_counts_as_one_ms() {
        let expires = expiry_ms(7_000_000, 0);
        assert!(held_at(expires, 7_000_999));
        assert!(!held_at(expires, 7_001_000));
    }
}
