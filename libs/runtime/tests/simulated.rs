//! Simulated runtime: consistency of spawn/inspect/list/remove and its events.

mod common;

use std::time::Duration;

use common::{next_matching, read_output, spec};
use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_runtime::{ContainerState, Runtime, RuntimeError, RuntimeEvent, RuntimeKind};

fn runtime(delay_ms: u64) -> SimulatedRuntime {
    SimulatedRuntime::new(SimulatedOptions {
        namespace: common::unique("sim"),
        start_delay: Duration::from_millis(delay_ms),
    })
}

#[tokio::test]
async fn spawn_is_idempotent_and_consistent_with_inspect_and_list() {
    let rt = runtime(0);
    assert_eq!(rt.kind(), RuntimeKind::Simulated);
    let s = spec("t1", "p1", &["sleep", "1"], &[("default", 8000)]);
    let first = rt.spawn(&s).await.expect("spawn");
    let second = rt.spawn(&s).await.expect("spawn again");
    assert_eq!(first, second);
    assert_eq!(first.state, ContainerState::Running);
    assert_eq!(first.ports["default"].host, "127.0.0.1");
    assert_eq!(rt.inspect(&first.id).await.expect("inspect"), Some(first.clone()));
    assert_eq!(rt.list().await.expect("list"), vec![first.clone()]);

    let other = rt.spawn(&spec("t1", "p2", &["sleep", "1"], &[("default", 8000)])).await.expect("spawn other");
    assert_ne!(other.ports["default"].port, first.ports["default"].port);
    assert_eq!(rt.list().await.expect("list").len(), 2);

    rt.remove(&first.id).await.expect("remove");
    rt.remove(&first.id).await.expect("remove twice");
    assert_eq!(rt.inspect(&first.id).await.expect("inspect"), None);
    assert_eq!(rt.list().await.expect("list"), vec![other]);
}

#[tokio::test]
async fn spawn_takes_the_start_delay() {
    let rt = runtime(150);
    let started = std::time::Instant::now();
    rt.spawn(&spec("t", "p", &["x"], &[])).await.expect("spawn");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn kill_emits_exit_and_respawn_restarts() {
    let rt = runtime(0);
    let mut events = rt.events().await.expect("events");
    let info = rt.spawn(&spec("t", "p", &["x"], &[])).await.expect("spawn");
    let started = next_matching(&mut events, Duration::from_secs(1), |_| true).await;
    assert_eq!(started, Some(RuntimeEvent::Started { id: info.id.clone(), pod: info.pod.clone() }));

    assert!(rt.kill_for_tests(&info.id, 137));
    assert!(!rt.kill_for_tests(&info.id, 137), "already exited");
    let exited = next_matching(&mut events, Duration::from_secs(1), |_| true).await;
    assert_eq!(
        exited,
        Some(RuntimeEvent::Exited {
            id: info.id.clone(),
            pod: info.pod.clone(),
            exit_code: Some(137),
            reason: "killed (signal 9)".into()
        })
    );
    assert_eq!(rt.inspect(&info.id).await.expect("inspect").map(|i| i.state), Some(ContainerState::Exited(Some(137))));

    let again = rt.spawn(&spec("t", "p", &["x"], &[])).await.expect("respawn");
    assert_eq!(again.state, ContainerState::Running);
    assert!(matches!(
        next_matching(&mut events, Duration::from_secs(1), |_| true).await,
        Some(RuntimeEvent::Started { .. })
    ));

    rt.remove(&info.id).await.expect("remove");
    assert!(matches!(
        next_matching(&mut events, Duration::from_secs(1), |_| true).await,
        Some(RuntimeEvent::Exited { .. })
    ));
    assert_eq!(
        next_matching(&mut events, Duration::from_secs(1), |_| true).await,
        Some(RuntimeEvent::Removed { id: info.id.clone(), pod: info.pod.clone() })
    );
}

#[tokio::test]
async fn output_is_fixed_and_unknown_ids_are_not_found() {
    let rt = runtime(0);
    let info = rt.spawn(&spec("t", "p", &["x"], &[])).await.expect("spawn");
    let text = read_output(rt.output(&info.id, true).await.expect("output"), Duration::from_secs(1), |_| false).await;
    assert!(text.contains(&info.id));
    assert!(matches!(rt.output("nope", false).await, Err(RuntimeError::NotFound(_))));
    rt.ping().await.expect("ping");
}

#[tokio::test]
async fn many_pods_stay_cheap() {
    let rt = runtime(0);
    for i in 0..10_000 {
        rt.spawn(&spec("t", &format!("p{i}"), &["x"], &[("default", 8000)])).await.expect("spawn");
    }
    assert_eq!(rt.list().await.expect("list").len(), 10_000);
}
