//! Pools end to end against RabbitMQ, Redis and Docker: a pool of busybox httpd instances
//! warms up, a claim's `location` answers through the pod proxy, the pool refills, and idle
//! claimed instances are culled while active ones are kept.

mod common;

use std::time::Duration;

use common::{Spawners, Stack, eventually};
use serde_json::{Value, json};
use tracing::Instrument;

/// A pooled busybox httpd that serves a page under its proxied base path.
async fn register(stack: &Stack, name: &str, cull_timeout_s: u64) {
    let body = json!({
        "name": name,
        "image-name": common::IMAGE,
        "command": "mkdir -p /www{base_path} && echo pool-ok > /www{base_path}index.html && exec httpd -f -p {port} -h /www",
        "port": 8000,
        "cull-timeout": cull_timeout_s,
        "limits": {"memory": "64m", "cpu": "0.2"},
    });
    let (code, v) = stack.call(reqwest::Method::POST, "/api/templates", Some(body)).await;
    assert_eq!(code, 200, "template: {v}");
}

async fn make_pool(stack: &Stack, name: &str, size: u32, cap: u32) {
    let (code, v) =
        stack.call(reqwest::Method::POST, &format!("/api/pools/{name}"), Some(json!({"size": size, "cap": cap}))).await;
    assert_eq!(code, 200, "pool: {v}");
}

async fn counts(stack: &Stack, name: &str) -> Value {
    let (code, v) = stack.get(&format!("/api/pools/{name}")).await;
    assert_eq!(code, 200, "pool counts: {v}");
    v
}

async fn wait_available(stack: &Stack, name: &str, n: u64, within: Duration) {
    eventually(&format!("{n} available in pool {name}"), within, || async {
        (counts(stack, name).await["available"] == n).then_some(())
    })
    .await;
}

/// Claims an instance as `token`'s user: the status and body.
async fn claim(stack: &Stack, base: &str, name: &str, token: &str) -> (u16, Value) {
    let resp = stack
        .http
        .post(format!("{base}/api/applications/{name}"))
        .header("X-Tapis-Token", token)
        .send()
        .await
        .expect("claim sent");
    let code = resp.status().as_u16();
    (code, resp.json().await.expect("claim body"))
}

/// The instance's location once it is ready.
async fn location(stack: &Stack, name: &str, id: &str, token: &str) -> String {
    eventually(&format!("a location for {id}"), Duration::from_secs(60), || async {
        let resp = stack
            .http
            .get(format!("{}/api/applications/{name}/{id}", stack.base))
            .header("X-Tapis-Token", token)
            .send()
            .await
            .expect("get app");
        let v: Value = resp.json().await.expect("app body");
        v["location"].as_str().map(str::to_string)
    })
    .await
}

/// GET through the proxy as `token`'s user: status and body.
async fn visit(stack: &Stack, location: &str, token: &str) -> (u16, String) {
    let resp = stack
        .http
        .get(format!("{}{location}", stack.base))
        .header("X-Tapis-Token", token)
        .send()
        .await
        .expect("proxied request");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn a_pool_of_five_serves_claims_through_the_proxy_and_refills() {
    let mut stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    stack.add_pool_manager().await;
    register(&stack, "web", 0).await;
    make_pool(&stack, "web", 5, 10).await;
    wait_available(&stack, "web", 5, Duration::from_secs(60)).await;

    let bob = stack.token_for("dev", "bob");
    let started = std::time::Instant::now();
    let (code, app) = claim(&stack, &stack.base, "web", &bob).await;
    let claim_time = started.elapsed();
    assert_eq!(code, 200, "claim: {app}");
    let id = app["id"].as_str().expect("id").to_string();
    let loc = app["location"].as_str().expect("a warm pool answers with the location at once").to_string();
    assert_eq!(loc, format!("/user/{id}/"));
    assert!(claim_time < Duration::from_secs(2), "a pooled claim is quick: {claim_time:?}");

    let (code, body) = visit(&stack, &loc, &bob).await;
    assert_eq!((code, body.trim()), (200, "pool-ok"), "the instance answers through the proxy");
    let (code, _) = visit(&stack, &loc, &stack.token_for("dev", "carol")).await;
    assert_eq!(code, 404, "only the claimant passes");
    let (code, _) = visit(&stack, &loc, &stack.token).await;
    assert_eq!(code, 404, "not even the admin who made the pool");

    wait_available(&stack, "web", 5, Duration::from_secs(60)).await;
    let c = counts(&stack, "web").await;
    assert_eq!((c["claimed"].as_u64(), c["running"].as_u64()), (Some(1), Some(6)), "{c}");
    stack.shutdown().await;
}

#[tokio::test]
async fn idle_claimed_instances_are_culled_and_active_ones_kept() {
    let mut stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    stack.add_pool_manager().await;
    register(&stack, "cull", 2).await;
    make_pool(&stack, "cull", 2, 6).await;
    wait_available(&stack, "cull", 2, Duration::from_secs(60)).await;

    let bob = stack.token_for("dev", "bob");
    let (_, idle) = claim(&stack, &stack.base, "cull", &bob).await;
    let (_, active) = claim(&stack, &stack.base, "cull", &bob).await;
    let idle_id = idle["id"].as_str().expect("id").to_string();
    let active_id = active["id"].as_str().expect("id").to_string();
    let active_loc = location(&stack, "cull", &active_id, &bob).await;

    // Keep one busy through the proxy for the rest of the test.
    let keeper = tokio::spawn(
        keep_busy(stack.http.clone(), format!("{}{active_loc}", stack.base), bob.clone())
            .instrument(tracing::info_span!("keep_busy")),
    );
    eventually("the idle instance culled", Duration::from_secs(30), || async {
        let resp = stack
            .http
            .get(format!("{}/api/applications/cull/{idle_id}", stack.base))
            .header("X-Tapis-Token", &bob)
            .send()
            .await
            .expect("get app");
        (resp.status() == 404).then_some(())
    })
    .await;
    eventually("the culled instance's container removed", Duration::from_secs(30), || async {
        stack.running_containers(&idle_id).await.is_empty().then_some(())
    })
    .await;
    wait_available(&stack, "cull", 2, Duration::from_secs(60)).await;
    let c = counts(&stack, "cull").await;
    assert_eq!(c["claimed"].as_u64(), Some(1), "only the active claim remains: {c}");
    let (code, body) = visit(&stack, &active_loc, &bob).await;
    assert_eq!((code, body.trim()), (200, "pool-ok"), "the active instance survived the cull");
    keeper.abort();
    let served = keeper.await.expect_err("aborted");
    assert!(served.is_cancelled());
    stack.shutdown().await;
}

/// Requests `url` every 300 ms; every answer must be the page.
async fn keep_busy(http: reqwest::Client, url: String, token: String) {
    loop {
        let resp = http.get(&url).header("X-Tapis-Token", &token).send().await.expect("proxied request");
        assert_eq!(resp.status(), 200, "the active instance keeps serving");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
