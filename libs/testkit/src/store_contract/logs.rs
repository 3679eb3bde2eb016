//! The capped action log and the capped container output.

use std::sync::Arc;

use corral_store::{ACTION_LOG_CAP, OUTPUT_CAP_BYTES, Store};

use super::{action, desired, observed, unique};

/// Entries come back oldest first; past the cap the oldest are dropped, exactly.
pub async fn action_log_keeps_order_and_cap(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-actions");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");

    for n in 0..3 {
        store.append_action_log(&key, &action(n)).await.expect("append");
    }
    assert_eq!(store.action_log(&key).await.expect("read log"), (0..3).map(action).collect::<Vec<_>>());

    for n in 3..ACTION_LOG_CAP + 10 {
        store.append_action_log(&key, &action(n)).await.expect("append");
    }
    let log = store.action_log(&key).await.expect("read log");
    assert_eq!(log.len(), ACTION_LOG_CAP);
    assert_eq!(log, (10..ACTION_LOG_CAP + 10).map(action).collect::<Vec<_>>(), "the 10 oldest are dropped");
}

/// `len` bytes of a non-repeating stream, so any lost, duplicated or shifted byte shows.
fn stream(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state.to_be_bytes()[0]
        })
        .collect()
}

/// Compares large buffers without printing megabytes on failure.
fn assert_bytes_eq(actual: &[u8], expected: &[u8], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    if let Some(at) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!("{what}: first difference at byte {at} of {}", expected.len());
    }
}

/// More than the cap, appended in chunks, leaves exactly the last `OUTPUT_CAP_BYTES` bytes;
/// so does a single chunk larger than the cap.
pub async fn output_keeps_exact_tail_under_cap(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-output-cap");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");

    // Two and a half caps plus an odd remainder, in chunks that divide nothing evenly.
    let all = stream(2 * OUTPUT_CAP_BYTES + OUTPUT_CAP_BYTES / 2 + 12_345);
    let mut chunks = all.chunks(300_007);
    let first = chunks.next().expect("stream is not empty");
    store.append_output(&key, 1, first).await.expect("append first chunk");
    let (instance, kept) = store.output(&key).await.expect("read output");
    assert_eq!(instance, 1);
    assert_bytes_eq(&kept, first, "output below the cap");

    for chunk in chunks {
        store.append_output(&key, 1, chunk).await.expect("append chunk");
    }
    let (instance, kept) = store.output(&key).await.expect("read output");
    assert_eq!(instance, 1);
    assert_bytes_eq(&kept, &all[all.len() - OUTPUT_CAP_BYTES..], "output over the cap");

    let huge = stream(OUTPUT_CAP_BYTES + 4_321);
    store.append_output(&key, 2, &huge).await.expect("append one oversized chunk");
    let (instance, kept) = store.output(&key).await.expect("read output");
    assert_eq!(instance, 2);
    assert_bytes_eq(&kept, &huge[4_321..], "one chunk over the cap");
}

/// Output of an older instance is ignored, the same instance appends, a newer one resets.
/// Instance numbers compare as numbers (10 is newer than 9).
pub async fn output_follows_latest_instance(store: Arc<dyn Store>) {
    let d = desired(&unique("tenant"), "pod-output-instance");
    let key = d.key();
    store.create_pod(&d, &observed(), 0).await.expect("create");
    assert_eq!(store.output(&key).await.expect("output"), (0, Vec::new()));

    let steps: [(u64, &[u8], u64, &[u8]); 7] = [
        (2, b"a", 2, b"a"),
        (1, b"old", 2, b"a"),
        (2, b"b", 2, b"ab"),
        (3, b"c", 3, b"c"),
        (2, b"late", 3, b"c"),
        (10, b"x", 10, b"x"),
        (9, b"y", 10, b"x"),
    ];
    for (instance, bytes, want_instance, want) in steps {
        store.append_output(&key, instance, bytes).await.expect("append");
        let got = store.output(&key).await.expect("output");
        assert_eq!(got, (want_instance, want.to_vec()), "after appending {bytes:?} of instance {instance}");
    }
}
