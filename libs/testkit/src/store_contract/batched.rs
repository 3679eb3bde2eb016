//! Calls that do several things in one store round trip: a write with its action-log lines,
//! and reads of many pods at once.

use std::sync::Arc;

use corral_model::{ActionLogEntry, PodKey, PodStatus};
use corral_store::{ACTION_LOG_CAP, Store, StoreError, Versioned};

use super::{action, desired, observed, unique};

fn actions(range: std::ops::Range<usize>) -> Vec<ActionLogEntry> {
    range.map(action).collect()
}

/// `create_pod_logged` stores the pod and starts its log; a refused create (duplicate)
/// appends nothing to the existing pod's log.
pub async fn create_pod_logged_starts_the_log(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-create-logged");
    let key = d.key();
    store.create_pod_logged(&d, &observed(), 2, &actions(0..2)).await.expect("create with log");
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.desired, Versioned { version: 1, value: d.clone() });
    assert_eq!(store.action_log(&key).await.expect("log"), actions(0..2));
    assert_eq!(store.list_shard(2).await.expect("shard").iter().filter(|k| **k == key).count(), 1);

    match store.create_pod_logged(&d, &observed(), 2, &actions(5..6)).await {
        Err(StoreError::AlreadyExists(k)) => assert_eq!(k, key),
        other => panic!("duplicate create must be AlreadyExists, got {other:?}"),
    }
    assert_eq!(store.action_log(&key).await.expect("log"), actions(0..2), "a refused create logs nothing");

    let bare = desired(&key.tenant, "pod-create-unlogged");
    store.create_pod_logged(&bare, &observed(), 0, &[]).await.expect("create without entries");
    assert!(store.action_log(&bare.key()).await.expect("log").is_empty());
}

/// `put_observed_logged` writes state and log lines together, or neither: a conflict or a
/// missing pod leaves both as they were.
pub async fn put_observed_logged_is_all_or_nothing(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-put-logged");
    let key = d.key();
    store.create_pod_logged(&d, &observed(), 0, &actions(0..1)).await.expect("create");

    let mut o2 = observed();
    o2.status = PodStatus::SpawnerSetup;
    o2.instance = 1;
    let v = store.put_observed_logged(&key, &o2, 1, &actions(1..3)).await.expect("write at current version");
    assert_eq!(v, 2);
    assert_eq!(store.action_log(&key).await.expect("log"), actions(0..3), "appended after what was there");

    let mut o3 = o2.clone();
    o3.status = PodStatus::Available;
    match store.put_observed_logged(&key, &o3, 1, &actions(3..4)).await {
        Err(StoreError::Conflict { expected: 1, found: 2, .. }) => {}
        other => panic!("stale write must conflict (expected 1, found 2), got {other:?}"),
    }
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.observed, Versioned { version: 2, value: o2 });
    assert_eq!(store.action_log(&key).await.expect("log"), actions(0..3), "a conflict logs nothing");

    assert_eq!(store.put_observed_logged(&key, &o3, 2, &[]).await.expect("write without entries"), 3);
    assert_eq!(store.action_log(&key).await.expect("log"), actions(0..3));

    let missing = PodKey::new(key.tenant.clone(), "pod-never-created");
    match store.put_observed_logged(&missing, &o3, 1, &actions(9..10)).await {
        Err(StoreError::NotFound(k)) => assert_eq!(k, missing),
        other => panic!("a write to a missing pod must be NotFound, got {other:?}"),
    }
    assert!(store.action_log(&missing).await.expect("log").is_empty(), "nothing left behind");
    assert_eq!(store.get_pod(&missing).await.expect("get"), None);
}

/// Entries written with state count against the same cap as single appends.
pub async fn logged_writes_keep_the_cap(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-logged-cap");
    let key = d.key();
    store.create_pod_logged(&d, &observed(), 0, &actions(0..3)).await.expect("create");
    for n in 3..ACTION_LOG_CAP - 1 {
        store.append_action_log(&key, &action(n)).await.expect("append");
    }
    let mut o = observed();
    o.instance = 7;
    store.put_observed_logged(&key, &o, 1, &actions(ACTION_LOG_CAP - 1..ACTION_LOG_CAP + 4)).await.expect("write");
    let log = store.action_log(&key).await.expect("log");
    assert_eq!(log.len(), ACTION_LOG_CAP);
    assert_eq!(log, actions(4..ACTION_LOG_CAP + 4), "the 4 oldest are dropped");
}

/// `get_pods` answers in the order asked, with `None` for missing pods, duplicates
/// answered twice, and the same records `get_pod` reads; long lists included.
pub async fn get_pods_reads_many_in_order(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let other = unique("tenant");
    let a = desired(&tenant, "pod-a");
    let b = desired(&other, "pod-b");
    store.create_pod(&a, &observed(), 1).await.expect("create a");
    store.create_pod(&b, &observed(), 2).await.expect("create b");
    let mut ob = observed();
    ob.status = PodStatus::Available;
    store.put_observed(&b.key(), &ob, 1).await.expect("update b");

    assert!(store.get_pods(&[]).await.expect("empty list").is_empty());

    // Long enough to span several of any store's internal batches.
    let mut keys: Vec<PodKey> = (0..1100).map(|n| PodKey::new(tenant.clone(), format!("missing-{n}"))).collect();
    keys[0] = b.key();
    keys[511] = a.key();
    keys[512] = b.key();
    keys[1099] = a.key();
    let got = store.get_pods(&keys).await.expect("get many");
    assert_eq!(got.len(), keys.len());
    let want_a = store.get_pod(&a.key()).await.expect("get a");
    let want_b = store.get_pod(&b.key()).await.expect("get b");
    assert!(want_a.is_some() && want_b.is_some());
    for (n, record) in got.iter().enumerate() {
        let want = match n {
            0 | 512 => &want_b,
            511 | 1099 => &want_a,
            _ => &None,
        };
        assert_eq!(record, want, "answer {n}");
    }
    assert_eq!(got[0].as_ref().map(|r| r.observed.version), Some(2), "current versions are read");
}

/// `pod_versions` tracks every write to either record, in the order asked, `None` for
/// missing pods, and agrees with `get_pods`.
pub async fn pod_versions_follow_writes(store: Arc<dyn Store>) {
    let a = desired(&unique("tenant"), "pod-versions-a");
    let b = desired(&unique("tenant"), "pod-versions-b");
    store.create_pod(&a, &observed(), 0).await.expect("create a");
    store.create_pod(&b, &observed(), 3).await.expect("create b");
    let missing = PodKey::new(a.tenant.clone(), "pod-versions-missing");
    let keys = [b.key(), missing.clone(), a.key()];
    assert_eq!(store.pod_versions(&keys).await.expect("versions"), vec![Some((1, 1)), None, Some((1, 1))]);
    assert!(store.pod_versions(&[]).await.expect("no keys").is_empty());

    let mut a2 = a.clone();
    a2.generation = 2;
    store.put_desired(&a2, 1).await.expect("bump desired");
    store.put_observed_logged(&b.key(), &observed(), 1, &actions(0..1)).await.expect("bump observed");
    store.put_observed(&b.key(), &observed(), 2).await.expect("bump observed again");
    let versions = store.pod_versions(&keys).await.expect("versions");
    assert_eq!(versions, vec![Some((1, 3)), None, Some((2, 1))]);
    let from_records: Vec<Option<(u64, u64)>> = store
        .get_pods(&keys)
        .await
        .expect("records")
        .into_iter()
        .map(|r| r.map(|r| (r.desired.version, r.observed.version)))
        .collect();
    assert_eq!(versions, from_records);

    // Long lists span any store's internal batches.
    let many: Vec<PodKey> = (0..1100).map(|n| if n == 700 { a.key() } else { missing.clone() }).collect();
    let versions = store.pod_versions(&many).await.expect("many versions");
    assert_eq!(versions.len(), many.len());
    assert_eq!(versions.iter().flatten().count(), 1);
    assert_eq!(versions[700], Some((2, 1)));

    store.purge_pod(&b.key(), 3).await.expect("purge b");
    assert_eq!(store.pod_versions(&keys[..1]).await.expect("versions"), vec![None], "purged pods are gone");
}
