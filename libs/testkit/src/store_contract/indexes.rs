//! Tenant and shard indexes, and purging a pod from all of them.

use std::sync::Arc;

use corral_model::PodKey;
use corral_store::{Store, StoreError, Versioned};

use super::{action, desired, observed, unique};

/// A tenant lists only its own pods, ordered by pod id (byte order), never pods of tenants
/// whose names merely share a prefix.
pub async fn list_tenant_is_isolated_and_ordered(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let neighbours = [format!("{tenant}:x"), format!("{tenant}x"), format!("x{tenant}")];
    for id in ["pod-c", "pod-9", "pod-a", "pod-10"] {
        store.create_pod(&desired(&tenant, id), &observed(), 1).await.expect("create own pod");
    }
    for other in &neighbours {
        let mut d = desired(other, "pod-a");
        d.owner = "neighbour".into();
        store.create_pod(&d, &observed(), 1).await.expect("create neighbour pod");
    }

    let listed = store.list_tenant(&tenant).await.expect("list tenant");
    let ids: Vec<&str> = listed.iter().map(|r| r.desired.value.spec.pod_id.as_str()).collect();
    assert_eq!(ids, ["pod-10", "pod-9", "pod-a", "pod-c"]);
    for record in &listed {
        assert_eq!(record.desired.value, desired(&tenant, &record.desired.value.spec.pod_id));
        assert_eq!(record.observed, Versioned { version: 1, value: observed() });
    }

    for other in &neighbours {
        let listed = store.list_tenant(other).await.expect("list neighbour");
        assert_eq!(listed.len(), 1, "tenant {other} has exactly its own pod");
        assert_eq!(listed[0].desired.value.owner, "neighbour");
        assert_eq!(&listed[0].desired.value.tenant, other);
    }
    assert!(store.list_tenant(&unique("nobody")).await.expect("list unknown tenant").is_empty());
}

/// This test's pods in `shard`, sorted (other tests may share the store and the shard).
async fn shard_of(store: &dyn Store, shard: u32, tenant: &str) -> Vec<String> {
    let keys = store.list_shard(shard).await.expect("list shard");
    assert!(keys.is_sorted(), "list_shard is sorted: {keys:?}");
    keys.into_iter().filter(|k| k.tenant == tenant).map(|k| k.pod_id).collect()
}

/// Pods appear in the shard they were created in and leave it when purged, even when the
/// purge names the wrong shard.
pub async fn list_shard_follows_create_and_purge(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let (shard, other_shard) = (11, 12);
    for id in ["pod-2", "pod-1"] {
        store.create_pod(&desired(&tenant, id), &observed(), shard).await.expect("create");
    }
    store.create_pod(&desired(&tenant, "pod-3"), &observed(), other_shard).await.expect("create");

    assert_eq!(shard_of(&*store, shard, &tenant).await, ["pod-1", "pod-2"]);
    assert_eq!(shard_of(&*store, other_shard, &tenant).await, ["pod-3"]);

    assert!(store.purge_pod(&PodKey::new(&tenant, "pod-1"), shard).await.expect("purge"));
    assert_eq!(shard_of(&*store, shard, &tenant).await, ["pod-2"]);

    assert!(store.purge_pod(&PodKey::new(&tenant, "pod-3"), shard).await.expect("purge naming another shard"));
    assert!(shard_of(&*store, other_shard, &tenant).await.is_empty(), "purge cleans the recorded shard");
    assert_eq!(shard_of(&*store, shard, &tenant).await, ["pod-2"]);
}

/// After a purge nothing of the pod is left, and the id can be used again from scratch.
pub async fn purge_removes_everything(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let d = desired(&tenant, "pod-purge");
    let key = d.key();
    let shard = 21;
    store.create_pod(&d, &observed(), shard).await.expect("create");
    store.create_pod(&desired(&tenant, "pod-stays"), &observed(), shard).await.expect("create neighbour");
    store.put_observed(&key, &observed(), 1).await.expect("put observed");
    store.append_action_log(&key, &action(1)).await.expect("append action");
    store.append_output(&key, 1, b"some output").await.expect("append output");

    assert!(store.purge_pod(&key, shard).await.expect("purge"), "purge reports the pod existed");

    assert_eq!(store.get_pod(&key).await.expect("get"), None);
    let ids: Vec<String> =
        store.list_tenant(&tenant).await.expect("list").into_iter().map(|r| r.desired.value.spec.pod_id).collect();
    assert_eq!(ids, ["pod-stays"]);
    assert_eq!(shard_of(&*store, shard, &tenant).await, ["pod-stays"]);
    assert!(store.action_log(&key).await.expect("action log").is_empty());
    assert_eq!(store.output(&key).await.expect("output"), (0, Vec::new()));
    assert!(!store.purge_pod(&key, shard).await.expect("purge again"), "a second purge finds nothing");
    match store.put_observed(&key, &observed(), 2).await {
        Err(StoreError::NotFound(k)) => assert_eq!(k, key),
        other => panic!("writing a purged pod must be NotFound, got {other:?}"),
    }

    store.create_pod(&d, &observed(), shard).await.expect("re-create after purge");
    let record = store.get_pod(&key).await.expect("get").expect("re-created pod exists");
    assert_eq!((record.desired.version, record.observed.version), (1, 1));
    assert!(store.action_log(&key).await.expect("action log").is_empty());
    assert_eq!(store.output(&key).await.expect("output"), (0, Vec::new()));
}
