//! Two spawner processes; one is SIGKILLed while 50 pods are being created. Every pod must
//! still become AVAILABLE, with exactly one container each and no orphans.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Spawners, Stack, eventually, eventually_or_explain, httpd_pod};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_a_spawner_mid_creation_loses_nothing() {
    let mut stack = Stack::start(Spawners { in_process: 0, processes: 2 }).await;
    eventually("both spawners own shards", Duration::from_secs(30), || async {
        let now = common::now_ms();
        let members = stack.store.live_members("spawner", now - 2000).await.ok()?;
        (members.len() == 2).then_some(())
    })
    .await;

    let ids: Vec<String> = (0..50).map(|i| format!("fo{i}")).collect();
    let creates = ids.iter().map(|id| stack.create(httpd_pod(id)));
    futures::future::join_all(creates).await;

    eventually("creation under way", Duration::from_secs(30), || async {
        let n = stack.runtime.list().await.ok()?.len();
        (n >= 5).then_some(())
    })
    .await;
    let victim = &mut stack.children[0];
    victim.kill().expect("SIGKILL a spawner");
    let _ = victim.wait();
    let killed_at = Instant::now();

    // The takeover itself is bounded by the lease TTL (4 s) plus a resync; the rest of the bound
    // is headroom for a loaded 2-core CI machine, where 15 s proved too tight.
    let all_available = || async {
        let (code, v) = stack.get("/v3/pods").await;
        let pods = v["result"].as_array()?.clone();
        let available = pods.iter().filter(|p| p["status"] == "AVAILABLE").count();
        (code == 200 && available == 50).then_some(())
    };
    eventually_or_explain("all 50 pods AVAILABLE", Duration::from_secs(30), all_available, || stragglers(&stack)).await;
    let took = killed_at.elapsed();

    let containers = stack.runtime.list().await.expect("list");
    let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
    for c in &containers {
        *per_pod.entry(c.pod.pod_id.clone()).or_default() += 1;
    }
    let dupes: Vec<_> = per_pod.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dupes.is_empty(), "pods without exactly one container: {dupes:?}");
    assert_eq!(per_pod.len(), 50, "orphans or missing containers: {per_pod:?}");
    eprintln!("all pods AVAILABLE {took:?} after the kill");
    // How often the kill fell between a container's creation and its start (informative:
    // the survivor must start such a container rather than wait for its readiness).
    let mut half_made = 0;
    for id in &ids {
        let (_, logs) = stack.get(&format!("/v3/pods/{id}/logs")).await;
        let actions = logs["result"]["action_logs"].as_array().cloned().unwrap_or_default();
        half_made += usize::from(actions.iter().any(|l| l.as_str().is_some_and(|l| l.contains("not started before"))));
    }
    eprintln!("containers created but not started before the takeover: {half_made}");
    stack.shutdown().await;
}

/// The pods not AVAILABLE, each with its status and the end of its action log.
async fn stragglers(stack: &Stack) -> String {
    let (code, v) = stack.get("/v3/pods").await;
    let pods = v["result"].as_array().cloned().unwrap_or_default();
    let available = pods.iter().filter(|p| p["status"] == "AVAILABLE").count();
    let mut out = format!("GET /v3/pods: {code}, {} pods, {available} AVAILABLE\n", pods.len());
    for pod in pods.iter().filter(|p| p["status"] != "AVAILABLE") {
        let id = pod["pod_id"].as_str().unwrap_or("?");
        let (_, logs) = stack.get(&format!("/v3/pods/{id}/logs")).await;
        let actions: Vec<&str> =
            logs["result"]["action_logs"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
        let tail = actions[actions.len().saturating_sub(6)..].join("\n    ");
        out.push_str(&format!("{id}: {}\n    {tail}\n", pod["status"]));
    }
    out
}
