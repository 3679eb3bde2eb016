//! The log-collector against the process runtime: output reaches the store, a restarted
//! collector does not duplicate it, and many small chunks cost few store writes.

mod support;

use std::sync::Arc;

use corral_runtime::Runtime;
use corral_store::Store;
use support::line_runtime::LineRuntime;
use support::{Collector, CountingStore, Host, create_pod, pod_key, wait_for_output};

#[tokio::test]
async fn output_of_a_running_container_reaches_the_store() {
    let mut host = Host::new();
    let store = Arc::new(CountingStore::default());
    let pod = pod_key("out");
    create_pod(store.as_ref(), &pod).await;
    // Running before the collector starts: found by the initial listing.
    host.start(&pod, 1, "echo hello; echo oops >&2; sleep 30").await;

    let collector = Collector::start(store.clone(), host.runtime.clone());
    let text = wait_for_output(store.as_ref(), &pod, |t| t.contains("hello\n") && t.contains("oops\n")).await;
    assert_eq!(text.len(), "hello\noops\n".len(), "each line once: {text:?}");
    assert_eq!(store.output(&pod).await.expect("output").0, 1, "kept as instance 1");

    collector.stop().await;
    host.clean_up().await;
}

#[tokio::test]
async fn a_restarted_collector_does_not_duplicate_output() {
    let mut host = Host::new();
    let store = Arc::new(CountingStore::default());
    let pod = pod_key("restart");
    create_pod(store.as_ref(), &pod).await;
    let gate = host.dir.join("go");
    let script = format!(
        "echo hello; echo oops >&2; while [ ! -e '{}' ]; do sleep 0.05; done; echo after-restart; sleep 30",
        gate.display()
    );

    // Started after the collector: found through the runtime's Started event.
    let first = Collector::start(store.clone(), host.runtime.clone());
    host.start(&pod, 1, &script).await;
    wait_for_output(store.as_ref(), &pod, |t| t.contains("hello\n") && t.contains("oops\n")).await;
    first.stop().await;

    let second = Collector::start(store.clone(), host.runtime.clone());
    std::fs::write(&gate, b"").expect("open the gate");
    // The stream is read in order: once the line after the restart is stored, the second
    // collector has gone past everything the first one stored.
    let text = wait_for_output(store.as_ref(), &pod, |t| t.contains("after-restart\n")).await;
    assert_eq!(text.matches("hello\n").count(), 1, "{text:?}");
    assert_eq!(text.matches("oops\n").count(), 1, "{text:?}");
    assert_eq!(text.len(), "hello\noops\nafter-restart\n".len(), "{text:?}");

    second.stop().await;
    host.clean_up().await;
}

#[tokio::test]
async fn many_small_chunks_are_written_in_few_batches() {
    let mut host = Host::new();
    let store = Arc::new(CountingStore::default());
    let pod = pod_key("batch");
    create_pod(store.as_ref(), &pod).await;
    host.start(&pod, 1, "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; sleep 30").await;

    let runtime: Arc<dyn Runtime> = Arc::new(LineRuntime(host.runtime.clone()));
    let collector = Collector::start(store.clone(), runtime);
    let text = wait_for_output(store.as_ref(), &pod, |t| t.contains("line1999\n")).await;

    let expected: String = (0..2000).map(|i| format!("line{i}\n")).collect();
    assert_eq!(text, expected);
    let writes = store.appends();
    assert!(writes < 50, "2000 one-line chunks took {writes} store writes");

    collector.stop().await;
    host.clean_up().await;
}
