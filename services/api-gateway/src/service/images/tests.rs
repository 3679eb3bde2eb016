use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_model::images::Image;

use super::{AllowlistCache, CACHE_TTL};

fn list(image: &str) -> Arc<Vec<Image>> {
    Arc::new(vec![Image {
        image: image.into(),
        tenants: vec!["t".into()],
        description: String::new(),
        added_by: "admin".into(),
        creation_ts: 0,
    }])
}

fn images(l: &Arc<Vec<Image>>) -> Vec<&str> {
    l.iter().map(|i| i.image.as_str()).collect()
}

#[test]
fn an_allowlist_is_trusted_for_the_ttl_only() {
    let cache = AllowlistCache::default();
    let t0 = Instant::now();
    let changes = cache.get("t", t0).expect_err("empty cache");
    cache.put("t", t0, changes, list("a"));
    let hit = cache.get("t", t0 + CACHE_TTL - Duration::from_millis(1)).expect("fresh");
    assert_eq!(images(&hit), ["a"]);
    assert!(cache.get("t", t0 + CACHE_TTL).is_err(), "expired at the TTL");
    assert!(cache.get("other", t0).is_err(), "scopes are separate");
}

#[test]
fn a_change_made_here_is_seen_at_once() {
    let cache = AllowlistCache::default();
    let t0 = Instant::now();
    let changes = cache.get("t", t0).expect_err("empty cache");
    cache.put("t", t0, changes, list("a"));
    cache.invalidate("t");
    assert!(cache.get("t", t0).is_err(), "the changed scope is read again");
}

#[test]
fn a_read_that_began_before_a_change_is_not_cached() {
    let cache = AllowlistCache::default();
    let t0 = Instant::now();
    // A creation starts reading the old allowlist...
    let changes = cache.get("t", t0).expect_err("empty cache");
    // ...an admin changes it through this gateway meanwhile...
    cache.invalidate("t");
    // ...and the creation's (old) result must not be what the next check trusts.
    cache.put("t", t0, changes, list("old"));
    assert!(cache.get("t", t0).is_err(), "the stale read was dropped");
    let changes = cache.get("t", t0).expect_err("still empty");
    cache.put("t", t0, changes, list("new"));
    assert_eq!(images(&cache.get("t", t0).expect("cached")), ["new"]);
}

#[test]
fn expired_scopes_are_dropped_when_another_is_stored() {
    let cache = AllowlistCache::default();
    let t0 = Instant::now();
    for scope in ["a", "b", "c"] {
        let changes = cache.get(scope, t0).expect_err("empty");
        cache.put(scope, t0, changes, list(scope));
    }
    let later = t0 + CACHE_TTL * 2;
    let changes = cache.get("d", later).expect_err("empty");
    cache.put("d", later, changes, list("d"));
    assert_eq!(cache.lock().scopes.len(), 1, "only the fresh scope is kept");
}
