//! Pods end to end against real RabbitMQ, Redis and Docker: gateway → bus → spawner actor →
//! Docker, with readiness from the health-poller and output from the log-collector.

mod common;

use std::time::{Duration, Instant};

use common::{Spawners, Stack, eventually, httpd_pod};
use reqwest::Method;

fn action_text(logs: &serde_json::Value) -> String {
    logs["action_logs"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// The full lifecycle: REQUESTED → AVAILABLE (with a real probe) → STOPPED → AVAILABLE →
/// restart with a new container → deleted with nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pod_lifecycle_on_docker() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let created = stack.create(httpd_pod("web1")).await;
    assert_eq!(created["status"], "success");
    assert_eq!(created["result"]["status"], "REQUESTED", "{created}");

    let pod = stack.wait_status("web1", "AVAILABLE", Duration::from_secs(60)).await;
    assert!(pod["start_instance_ts"].is_string(), "{pod}");
    let running = stack.running_containers("web1").await;
    assert_eq!(running.len(), 1, "exactly one container: {running:?}");
    let first = running[0].id.clone();
    // Readiness is real: the published port answers HTTP on loopback.
    let hp = running[0].ports.get("default").expect("default port published").clone();
    assert_eq!(hp.host, "127.0.0.1");
    let resp = reqwest::get(format!("http://127.0.0.1:{}/", hp.port)).await.expect("pod answers");
    assert!(resp.status().as_u16() < 500);

    let logs = eventually("output in /logs", Duration::from_secs(10), || async {
        let l = stack.logs("web1").await;
        l["logs"].as_str().is_some_and(|s| s.contains("hello from")).then_some(l)
    })
    .await;
    let actions = action_text(&logs);
    assert!(actions.contains("created by 'alice'"), "{actions}");
    assert!(actions.contains("AVAILABLE"), "{actions}");

    let (code, v) = stack.get("/v3/pods/web1/stop").await;
    assert_eq!(code, 200, "{v}");
    stack.wait_status("web1", "STOPPED", Duration::from_secs(20)).await;
    assert!(stack.containers("web1").await.is_empty(), "container removed on stop");

    let (code, v) = stack.get("/v3/pods/web1/start").await;
    assert_eq!(code, 200, "{v}");
    stack.wait_status("web1", "AVAILABLE", Duration::from_secs(30)).await;
    let second = stack.running_containers("web1").await;
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].id, first, "start makes a new container");

    let (code, v) = stack.get("/v3/pods/web1/restart").await;
    assert_eq!(code, 200, "{v}");
    let third = eventually("a new container after restart", Duration::from_secs(30), || async {
        let (_, v) = stack.get("/v3/pods/web1").await;
        let running = stack.running_containers("web1").await;
        (v["result"]["status"] == "AVAILABLE" && running.len() == 1 && running[0].id != second[0].id)
            .then(|| running[0].id.clone())
    })
    .await;
    assert_ne!(third, first);

    let (code, v) = stack.call(Method::DELETE, "/v3/pods/web1", None).await;
    assert_eq!(code, 200, "{v}");
    let (code, _) = stack.get("/v3/pods/web1").await;
    assert_eq!(code, 404, "deleted pods are gone at once");
    eventually("container and records gone", Duration::from_secs(20), || async {
        let none_left = stack.containers("web1").await.is_empty();
        let purged = stack.store.get_pod(&corral_model::PodKey::new("dev", "web1")).await.ok().flatten().is_none();
        (none_left && purged).then_some(())
    })
    .await;
    stack.shutdown().await;
}

/// A container killed from outside is noticed within 2 s, the action log says so, and the
/// pod comes back with a new container.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_container_is_noticed_within_two_seconds() {
    let stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    stack.create(httpd_pod("victim")).await;
    stack.wait_status("victim", "AVAILABLE", Duration::from_secs(60)).await;
    let before = stack.running_containers("victim").await;
    assert_eq!(before.len(), 1);
    let killed = std::process::Command::new("docker").args(["kill", &before[0].id]).output().expect("docker kill");
    assert!(killed.status.success(), "{killed:?}");
    let t0 = Instant::now();
    eventually("the kill in the action log", Duration::from_secs(2), || async {
        let actions = action_text(&stack.logs("victim").await);
        actions.contains("exited with code 137").then_some(())
    })
    .await;
    let noticed = t0.elapsed();
    assert!(noticed <= Duration::from_secs(2), "noticed after {noticed:?}");
    let (_, v) = stack.get("/v3/pods/victim").await;
    let msg = v["result"]["status_container"]["message"].as_str().unwrap_or_default().to_string();
    let status = v["result"]["status"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("137") || status == "AVAILABLE" || status == "SPAWNER SETUP" || status == "CREATING",
        "status {status}, message {msg}"
    );
    // Bounded retry: it comes back with a fresh container.
    eventually("a replacement container", Duration::from_secs(30), || async {
        let (_, v) = stack.get("/v3/pods/victim").await;
        let now = stack.running_containers("victim").await;
        (v["result"]["status"] == "AVAILABLE" && now.len() == 1 && now[0].id != before[0].id).then_some(())
    })
    .await;
    stack.shutdown().await;
}
