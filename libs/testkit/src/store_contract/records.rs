//! Creating pods and compare-and-set writes of their records.

use std::sync::Arc;

use corral_model::{PodKey, PodStatus, StatusRequested};
use corral_store::{PodRecord, Store, StoreError, Versioned};
use tracing::Instrument;

use super::{action, desired, observed, unique};

/// What `create_pod` writes, `get_pod` reads back unchanged at version 1.
pub async fn create_get_round_trip(store: Arc<dyn Store>) {
    store.ping().await.expect("ping a live store");
    let d = desired(&unique("tenant"), "pod-round-trip");
    let o = observed();
    let key = d.key();
    assert_eq!(store.get_pod(&key).await.expect("get before create"), None);

    store.create_pod(&d, &o, 3).await.expect("create pod");

    let record = store.get_pod(&key).await.expect("get after create");
    let expected =
        PodRecord { desired: Versioned { version: 1, value: d }, observed: Versioned { version: 1, value: o } };
    assert_eq!(record, Some(expected));
}

/// A second create of the same tenant and pod id fails and leaves the first untouched; the
/// same pod id in another tenant is a different pod.
pub async fn duplicate_create_is_rejected(store: Arc<dyn Store>) {
    let tenant = unique("tenant");
    let first = desired(&tenant, "pod-dup");
    store.create_pod(&first, &observed(), 1).await.expect("first create");

    let mut second = first.clone();
    second.owner = "someone-else".into();
    match store.create_pod(&second, &observed(), 2).await {
        Err(StoreError::AlreadyExists(key)) => assert_eq!(key, first.key()),
        other => panic!("duplicate create must be AlreadyExists, got {other:?}"),
    }
    let kept = store.get_pod(&first.key()).await.expect("get").expect("first pod still exists");
    assert_eq!(kept.desired, Versioned { version: 1, value: first.clone() });

    let elsewhere = desired(&unique("tenant"), "pod-dup");
    store.create_pod(&elsewhere, &observed(), 1).await.expect("same pod id in another tenant");
}

/// `put_desired` succeeds only at the current version, bumps it by one, and leaves observed
/// state alone; a stale write changes nothing.
pub async fn desired_compare_and_set(store: Arc<dyn Store>) {
    let d1 = desired(&unique("tenant"), "pod-cas-d");
    let o = observed();
    let key = d1.key();
    store.create_pod(&d1, &o, 0).await.expect("create");

    let mut d2 = d1.clone();
    d2.status_requested = StatusRequested::Off;
    d2.generation = 2;
    assert_eq!(store.put_desired(&d2, 1).await.expect("write at current version"), 2);

    let mut d3 = d2.clone();
    d3.generation = 3;
    match store.put_desired(&d3, 1).await {
        Err(StoreError::Conflict { expected: 1, found: 2, .. }) => {}
        other => panic!("stale desired write must conflict (expected 1, found 2), got {other:?}"),
    }
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.desired, Versioned { version: 2, value: d2 });
    assert_eq!(record.observed, Versioned { version: 1, value: o });

    assert_eq!(store.put_desired(&d3, 2).await.expect("write at new version"), 3);
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.desired, Versioned { version: 3, value: d3 });
}

/// `put_observed` has its own version, independent of desired state.
pub async fn observed_compare_and_set(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-cas-o");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");
    let mut d2 = d.clone();
    d2.generation = 2;
    store.put_desired(&d2, 1).await.expect("bump desired to version 2");

    let mut o2 = observed();
    o2.status = PodStatus::Creating;
    o2.instance = 1;
    assert_eq!(store.put_observed(&key, &o2, 1).await.expect("observed is still at version 1"), 2);

    let mut o3 = o2.clone();
    o3.status = PodStatus::Available;
    match store.put_observed(&key, &o3, 5).await {
        Err(StoreError::Conflict { expected: 5, found: 2, .. }) => {}
        other => {
            panic!("wrong observed version must conflict (expected 5, found 2), got {other:?}")
        }
    }
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.observed, Versioned { version: 2, value: o2 });
    assert_eq!(record.desired, Versioned { version: 2, value: d2 });
}

/// Writes to a pod that was never created are `NotFound` and create nothing.
pub async fn writes_to_missing_pod_are_not_found(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-missing");
    let key = d.key();
    let not_found = |what: &str, result: Result<_, StoreError>| match result {
        Err(StoreError::NotFound(k)) => assert_eq!(k, key, "{what}"),
        other => panic!("{what} on a missing pod must be NotFound, got {other:?}"),
    };
    not_found("put_desired", store.put_desired(&d, 1).await.map(drop));
    not_found("put_observed", store.put_observed(&key, &observed(), 1).await.map(drop));
    not_found("append_action_log", store.append_action_log(&key, &action(1)).await);
    not_found("append_output", store.append_output(&key, 1, b"hello").await);

    assert_eq!(store.get_pod(&key).await.expect("get"), None);
    assert!(store.list_tenant(&key.tenant).await.expect("list").is_empty());
    assert!(store.action_log(&key).await.expect("action log").is_empty());
    assert_eq!(store.output(&key).await.expect("output"), (0, Vec::new()));
}

const RACERS: u64 = 20;

/// Of many writers holding the same version, exactly one wins; the rest see the winner's.
pub async fn concurrent_compare_and_set_has_one_winner(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-race");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");

    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..RACERS {
        let span = tracing::info_span!("store_contract_racer", racer);
        racers.spawn(race_put_observed(Arc::clone(&store), key.clone(), racer).instrument(span));
    }
    let mut winners = Vec::new();
    while let Some(joined) = racers.join_next().await {
        let (racer, result) = joined.expect("racer task panicked");
        match result {
            Ok(version) => {
                assert_eq!(version, 2, "the winner moves version 1 to 2");
                winners.push(racer);
            }
            Err(StoreError::Conflict { expected: 1, found: 2, .. }) => {}
            Err(other) => panic!("a losing racer must see Conflict(1 -> 2), got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer wins, got {winners:?}");
    let record = store.get_pod(&key).await.expect("get").expect("pod exists");
    assert_eq!(record.observed.version, 2);
    assert_eq!(record.observed.value.instance, winners[0], "the stored value is the winner's");
}

/// One racer: writes an observed state naming itself, expecting version 1.
async fn race_put_observed(store: Arc<dyn Store>, key: PodKey, racer: u64) -> (u64, Result<u64, StoreError>) {
    let mut o = observed();
    o.instance = racer;
    (racer, store.put_observed(&key, &o, 1).await)
}
