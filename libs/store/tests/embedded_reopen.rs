//! What is specific to [`EmbeddedStore`]: everything survives closing and reopening the
//! file, the file is locked while open, and a file that is not a store is refused.

use corral_model::{PodKey, PodStatus};
use corral_store::embedded::EmbeddedStore;
use corral_store::{OUTPUT_CAP_BYTES, Store, StoreError, Versioned};
use corral_testkit::store_contract::{action, desired, observed};

const TENANT: &str = "tenant-reopen";
const LONG_TTL_MS: u64 = 600_000;

/// Deterministic output bytes, so a shifted or lost byte shows.
fn output_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap_or(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("data").join("corral.redb");
    let output = output_bytes(OUTPUT_CAP_BYTES + 70_001);
    {
        let store = EmbeddedStore::open(&path).expect("open a new store");
        for (n, id) in ["pod-b", "pod-a", "pod-c"].into_iter().enumerate() {
            store.create_pod(&desired(TENANT, id), &observed(), 4).await.expect("create");
            store.append_action_log(&PodKey::new(TENANT, id), &action(n)).await.expect("append action");
        }
        let key = PodKey::new(TENANT, "pod-a");
        let mut o = observed();
        o.status = PodStatus::Available;
        o.instance = 3;
        assert_eq!(store.put_observed(&key, &o, 1).await.expect("put observed"), 2);
        for piece in output.chunks(100_003) {
            store.append_output(&key, 3, piece).await.expect("append output");
        }
        assert!(store.purge_pod(&PodKey::new(TENANT, "pod-c"), 4).await.expect("purge"));
        assert!(store.acquire_lease("shard-4", "spawner-1", LONG_TTL_MS).await.expect("lease"));
        store.heartbeat("spawners", "spawner-1", 1_000).await.expect("heartbeat");
        // Dropping the last clone closes the database and releases its lock.
        let clone = store.clone();
        drop(store);
        drop(clone);
    }

    let store = EmbeddedStore::open(&path).expect("reopen the store");
    let key = PodKey::new(TENANT, "pod-a");
    let record = store.get_pod(&key).await.expect("get").expect("pod-a survives");
    assert_eq!(record.desired, Versioned { version: 1, value: desired(TENANT, "pod-a") });
    assert_eq!((record.observed.version, record.observed.value.status), (2, PodStatus::Available));
    assert_eq!(record.observed.value.instance, 3);

    let listed: Vec<String> =
        store.list_tenant(TENANT).await.expect("list").into_iter().map(|r| r.desired.value.spec.pod_id).collect();
    assert_eq!(listed, ["pod-a", "pod-b"], "the purged pod stays purged");
    assert_eq!(store.list_shard(4).await.expect("shard"), [PodKey::new(TENANT, "pod-a"), PodKey::new(TENANT, "pod-b")]);
    assert_eq!(store.action_log(&key).await.expect("log"), [action(1)]);
    assert_eq!(store.action_log(&PodKey::new(TENANT, "pod-b")).await.expect("log"), [action(0)]);

    let (instance, kept) = store.output(&key).await.expect("output");
    assert_eq!(instance, 3);
    assert!(kept == output[output.len() - OUTPUT_CAP_BYTES..], "the output tail survives byte for byte");

    assert!(!store.acquire_lease("shard-4", "spawner-2", LONG_TTL_MS).await.expect("lease"), "the lease is still held");
    assert!(store.acquire_lease("shard-4", "spawner-1", LONG_TTL_MS).await.expect("renew"));
    assert_eq!(store.live_members("spawners", 0).await.expect("members"), ["spawner-1"]);

    // Writes continue where they left off: appends after reopening extend the same log.
    store.append_action_log(&key, &action(9)).await.expect("append after reopen");
    assert_eq!(store.action_log(&key).await.expect("log"), [action(1), action(9)]);
    store.append_output(&key, 3, b"more").await.expect("append output after reopen");
    let (_, kept) = store.output(&key).await.expect("output");
    assert_eq!(kept.len(), OUTPUT_CAP_BYTES);
    assert!(kept.ends_with(b"more"));
}

#[test]
fn an_open_file_is_locked_until_the_store_is_dropped() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("corral.redb");
    let first = EmbeddedStore::open(&path).expect("open");
    match EmbeddedStore::open(&path) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("the data directory is in use by another corral process"), "message: {msg}");
        }
        other => panic!("a second open must be Unavailable, got {other:?}"),
    }
    drop(first);
    EmbeddedStore::open(&path).expect("open again once the first store is dropped");
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("corral.redb");
    std::fs::write(&path, vec![b'x'; 64 * 1024]).expect("write a foreign file");
    let result = EmbeddedStore::open(&path);
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "got {result:?}");
    assert_eq!(std::fs::read(&path).expect("read back"), vec![b'x'; 64 * 1024], "the foreign file is left alone");
}
