//! When a follower reads back what the store holds before following: only for containers
//! that may have run before (listed at start, or restarted), never for a first start the
//! collector saw itself.

mod support;

use std::sync::Arc;
use std::time::Duration;

use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_runtime::{ContainerSpec, Runtime};
use corral_store::Store;
use support::{Collector, CountingStore, WAIT, create_pod, pod_key, wait_for_output};

fn runtime() -> Arc<SimulatedRuntime> {
    Arc::new(SimulatedRuntime::new(SimulatedOptions { namespace: "lc".into(), start_delay: Duration::ZERO }))
}

fn spec(pod: &corral_model::PodKey) -> ContainerSpec {
    ContainerSpec {
        pod: pod.clone(),
        generation: 1,
        instance: 1,
        image: "img".into(),
        command: None,
        args: None,
        env: Default::default(),
        cpu_limit_millis: 1000,
        mem_limit_mib: 256,
        pids_limit: 64,
        ports: Vec::new(),
        files: Vec::new(),
    }
}

/// Polls (bounded) until the collector has read stored output `n` times.
async fn wait_for_reads(store: &CountingStore, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.output_reads() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the collector read stored output {} times",
            store.output_reads()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_first_start_is_followed_without_reading_back_then_a_restart_resumes() {
    let store = Arc::new(CountingStore::default());
    let runtime = runtime();
    let pod = pod_key("fresh");
    create_pod(store.as_ref(), &pod).await;
    let collector = Collector::start(store.clone(), runtime.clone());
    // Once a first container's output is stored, the collector has subscribed and listed:
    // whatever starts after that is a first start it sees.
    let warm_up = pod_key("warmup");
    create_pod(store.as_ref(), &warm_up).await;
    runtime.spawn(&spec(&warm_up)).await.expect("spawn warm-up container");
    wait_for_output(store.uncounted(), &warm_up, |t| !t.is_empty()).await;
    let reads_before = store.output_reads();

    let info = runtime.spawn(&spec(&pod)).await.expect("spawn");
    let line = format!("simulated container {}\n", info.id);
    let text = wait_for_output(store.uncounted(), &pod, |t| !t.is_empty()).await;
    assert_eq!(text, line);
    assert_eq!(store.output_reads(), reads_before, "nothing of a first start can be stored: no read back");

    // The same container started again: it may have stored output, so the follower reads
    // it back and skips what is there (the simulated runtime replays the same line).
    assert!(runtime.kill_for_tests(&info.id, 1), "the container was running");
    runtime.spawn(&spec(&pod)).await.expect("restart");
    wait_for_reads(&store, reads_before + 1).await;
    collector.stop().await;
    let (instance, bytes) = store.uncounted().output(&pod).await.expect("output");
    assert_eq!(instance, 1);
    assert_eq!(String::from_utf8_lossy(&bytes), line, "the replayed output is not stored twice");
}

#[tokio::test]
async fn containers_running_at_start_are_resumed() {
    let store = Arc::new(CountingStore::default());
    let runtime = runtime();
    let pod = pod_key("listed");
    create_pod(store.as_ref(), &pod).await;
    let info = runtime.spawn(&spec(&pod)).await.expect("spawn");
    let line = format!("simulated container {}\n", info.id);
    // A previous collector stored the output already.
    store.uncounted().append_output(&pod, 1, line.as_bytes()).await.expect("append");

    let collector = Collector::start(store.clone(), runtime.clone());
    wait_for_reads(&store, 1).await;
    collector.stop().await;
    let (_, bytes) = store.uncounted().output(&pod).await.expect("output");
    assert_eq!(String::from_utf8_lossy(&bytes), line, "not stored twice");
}
