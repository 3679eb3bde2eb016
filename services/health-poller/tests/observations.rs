//! Containers that exit or vanish are reported to their pod's shard queue: from runtime
//! events, or by the resync when the store and the runtime disagree.

mod support;

use std::sync::Arc;

use corral_model::{PodStatus, Protocol};
use corral_protocol::Observation;
use corral_runtime::Runtime;
use corral_testkit::MemoryStore;
use support::runtime::WatchedRuntime;
use support::{Poller, WAIT, config, container_spec, loopback, pod_key, store_pod};

#[tokio::test]
async fn killed_container_is_reported_exited_after_the_event_stream_was_interrupted() {
    // The first event stream ends at once: the poller must subscribe again to see the kill.
    let runtime = WatchedRuntime::new(true);
    let pod = pod_key("kill");
    let container = runtime.spawn(&container_spec(&pod)).await.expect("spawn");
    // No store record, so nothing but the runtime event can report the exit.
    let poller = Poller::start(config(3_600_000), Arc::new(MemoryStore::new()), runtime.clone()).await;
    let mut shard = poller.shard_reader(&pod).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    while runtime.subscriptions() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "poller re-subscribes to runtime events");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(runtime.sim.kill_for_tests(&container.id, 3), "container was running");

    let (key, container_id, what) = shard.next().await;
    assert_eq!((key, container_id), (pod, container.id));
    match what {
        Observation::Exited { exit_code, reason } => {
            assert_eq!(exit_code, Some(3));
            assert!(!reason.is_empty());
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    poller.stop().await;
}

#[tokio::test]
async fn available_pod_without_container_is_reported_gone_by_resync() {
    let store = Arc::new(MemoryStore::new());
    let pod = pod_key("gone");
    store_pod(&store, &pod, PodStatus::Available, "no-such-container", Some(loopback(1)), Protocol::Http).await;

    let poller = Poller::start(config(100), store, WatchedRuntime::new(false)).await;
    let mut shard = poller.shard_reader(&pod).await;

    assert_eq!(shard.next().await, (pod, "no-such-container".to_string(), Observation::Gone));
    poller.stop().await;
}

#[tokio::test]
async fn resync_reports_a_container_that_exited_unnoticed() {
    let runtime = WatchedRuntime::new(false);
    let store = Arc::new(MemoryStore::new());
    let pod = pod_key("quiet");
    let container = runtime.spawn(&container_spec(&pod)).await.expect("spawn");
    // Killed before the poller runs: its event is lost, only the resync can notice.
    assert!(runtime.sim.kill_for_tests(&container.id, 9));
    store_pod(&store, &pod, PodStatus::Available, &container.id, Some(loopback(1)), Protocol::Http).await;

    let poller = Poller::start(config(100), store, runtime).await;
    let mut shard = poller.shard_reader(&pod).await;

    let reason = "found exited during resync".to_string();
    assert_eq!(shard.next().await, (pod, container.id, Observation::Exited { exit_code: Some(9), reason }));
    poller.stop().await;
}
