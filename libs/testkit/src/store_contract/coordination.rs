//! Leases and group membership.

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_store::Store;

use super::unique;

/// Generous enough that a slow machine never sees a "held" lease expire mid-check.
const LONG_TTL_MS: u64 = 60_000;
/// Pause between polls of a lease.
const POLL: Duration = Duration::from_millis(25);

/// A held lease refuses other holders, renews for its holder, ignores a release by anyone
/// else and is free again once its holder releases it.
pub async fn lease_is_exclusive(store: Arc<dyn Store>) {
    let lease = unique("lease");
    assert!(store.acquire_lease(&lease, "a", LONG_TTL_MS).await.expect("acquire free lease"));
    assert!(!store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire held lease"));
    assert!(store.acquire_lease(&lease, "a", LONG_TTL_MS).await.expect("renew"), "the holder renews");

    store.release_lease(&lease, "b").await.expect("release by non-holder");
    assert!(!store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire"), "a non-holder cannot release");

    store.release_lease(&lease, "a").await.expect("release by holder");
    assert!(store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire released lease"));
    assert!(!store.acquire_lease(&lease, "a", LONG_TTL_MS).await.expect("acquire"), "b holds it now");
    store.release_lease(&unique("never-taken"), "a").await.expect("releasing an unknown lease is a no-op");
}

/// Renewing replaces the ttl: a short lease renewed with a long ttl outlives the short one.
pub async fn lease_renewal_extends_ttl(store: Arc<dyn Store>) {
    let lease = unique("lease");
    let short = Duration::from_millis(300);
    let short_ms = u64::try_from(short.as_millis()).unwrap_or(u64::MAX);
    assert!(store.acquire_lease(&lease, "a", short_ms).await.expect("acquire"));
    let renewed_at = Instant::now();
    assert!(store.acquire_lease(&lease, "a", LONG_TTL_MS).await.expect("renew"));

    // Watch the lease for three times the original ttl: it must stay a's throughout.
    while renewed_at.elapsed() < 3 * short {
        assert!(!store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire"), "the renewed lease is held");
        tokio::time::sleep(POLL).await;
    }
}

/// Once the ttl passes without renewal, another holder takes the lease (not before).
pub async fn lease_expires_after_ttl(store: Arc<dyn Store>) {
    let lease = unique("lease");
    let ttl = Duration::from_millis(1_000);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let start = Instant::now();
    assert!(store.acquire_lease(&lease, "a", ttl_ms).await.expect("acquire"));
    assert!(!store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire held lease"));

    let deadline = start + ttl + Duration::from_secs(10);
    loop {
        if store.acquire_lease(&lease, "b", LONG_TTL_MS).await.expect("acquire") {
            break;
        }
        assert!(Instant::now() < deadline, "lease did not expire within 10 s after its ttl");
        tokio::time::sleep(POLL).await;
    }
    assert!(start.elapsed() >= ttl, "taken after {:?}, before the ttl of {ttl:?}", start.elapsed());
    assert!(!store.acquire_lease(&lease, "a", LONG_TTL_MS).await.expect("acquire"), "b holds it now");
}

/// `live_members` lists members heard from at or after `since`, sorted; heartbeats move a
/// member forward, `leave` removes it, and groups are independent.
pub async fn membership_tracks_heartbeats(store: Arc<dyn Store>) {
    let group = unique("group");
    let other_group = unique("group");
    for (member, at) in [("c", 3_000), ("a", 1_000), ("b", 2_000)] {
        store.heartbeat(&group, member, at).await.expect("heartbeat");
    }
    store.heartbeat(&other_group, "x", 5_000).await.expect("heartbeat other group");

    let live = |since| {
        let store = Arc::clone(&store);
        let group = group.clone();
        async move { store.live_members(&group, since).await.expect("live members") }
    };
    assert_eq!(live(0).await, ["a", "b", "c"]);
    assert_eq!(live(2_000).await, ["b", "c"], "since is inclusive");
    assert!(live(3_001).await.is_empty());

    store.heartbeat(&group, "a", 4_000).await.expect("heartbeat again");
    assert_eq!(live(3_500).await, ["a"]);

    store.leave(&group, "b").await.expect("leave");
    store.leave(&group, "never-joined").await.expect("leaving twice or unknown is a no-op");
    assert_eq!(live(0).await, ["a", "c"]);
    assert_eq!(store.live_members(&other_group, 0).await.expect("other group"), ["x"]);
    assert!(store.live_members(&unique("group"), 0).await.expect("unknown group").is_empty());
}
