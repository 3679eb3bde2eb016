//! Stale shard leases left by a `corral dev` that was killed.
//!
//! A killed spawner's leases stay in the store until they expire (`spawner.lease_ttl_ms`),
//! and its heartbeat keeps it "alive" in the membership group for as long, so a restarted dev
//! process would wait that long before owning every shard. The data-directory lock proves
//! that no other spawner shares this store, so every member still recorded is dead: its
//! leases are released and it is removed from the group before the new spawner starts.

use corral_store::{Store, StoreError};

/// The spawner's membership group (`spawner::ownership`).
const SPAWNER_GROUP: &str = spawner::ownership::GROUP;

/// Releases every shard lease of every recorded spawner and forgets those spawners.
/// Returns how many spawners were cleared. Only for a store no live spawner uses.
pub async fn clear_dead_spawners(store: &dyn Store, shards: u32) -> Result<usize, StoreError> {
    // Heartbeats are timestamps since the epoch, so `since = 0` lists every member.
    let members = store.live_members(SPAWNER_GROUP, 0).await?;
    for member in &members {
        for k in 0..shards {
            store.release_lease(&spawner::ownership::lease_name(k), member).await?;
        }
        store.leave(SPAWNER_GROUP, member).await?;
    }
    Ok(members.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dead_spawners_leases_are_freed_for_a_new_one() {
        let store = corral_testkit::MemoryStore::new();
        let lease = spawner::ownership::lease_name(3);
        store.heartbeat(SPAWNER_GROUP, "spawner-old", 1_000).await.expect("heartbeat");
        assert!(store.acquire_lease(&lease, "spawner-old", 60_000).await.expect("acquire"));
        assert!(!store.acquire_lease(&lease, "spawner-new", 60_000).await.expect("blocked"));

        assert_eq!(clear_dead_spawners(&store, 8).await.expect("clear"), 1);

        assert!(store.acquire_lease(&lease, "spawner-new", 60_000).await.expect("free now"));
        assert!(store.live_members(SPAWNER_GROUP, 0).await.expect("members").is_empty());
    }
}
