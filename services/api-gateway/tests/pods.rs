//! Happy paths of the pods API through HTTP, with the kicks they publish.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::fault_store::{FaultStore, Faults};
use common::{Gateway, kick_of, next_kick};
use corral_model::PodStatus;
use serde_json::json;

#[tokio::test]
async fn pod_lifecycle_through_the_api() {
    let gw = Gateway::start().await;
    let alice = gw.token("dev", "alice");
    let t = Some(alice.as_str());
    let mut shard = gw.shard_consumer("dev", "mypod").await;

    // Create: the user's networking url is ignored; hidden fields stay hidden.
    let body = json!({
        "pod_id": "mypod",
        "image": "corral-test/busybox",
        "description": "test pod",
        "environment_variables": {"GREETING": "hi"},
        "networking": {"default": {"protocol": "http", "port": 8000, "url": "evil.example"}, "admin": {"port": 9000}},
    });
    let r = gw.call("POST", "/v3/pods", t, Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "success");
    assert_eq!(r.message(), "pod created");
    assert_eq!(r.body["metadata"], json!({}));
    let pod = r.result();
    assert_eq!(pod["pod_id"], "mypod");
    assert_eq!(pod["status"], "REQUESTED");
    assert_eq!(pod["status_requested"], "ON");
    assert_eq!(pod["networking"]["default"]["url"], "mypod.pods.localhost");
    assert_eq!(pod["networking"]["default"]["port"], 8000);
    assert_eq!(pod["networking"]["admin"]["url"], "mypod-admin.pods.localhost");
    assert_eq!(pod["resources"]["cpu_limit"], 2000);
    assert_eq!(pod["time_to_stop_default"], 43200);
    assert_eq!(pod["start_instance_ts"], serde_json::Value::Null);
    let created = pod["creation_ts"].as_str().expect("creation_ts");
    assert_eq!(created.len(), "2026-11-21T10:58:45.123456".len(), "{created}");
    for hidden in ["tenant", "owner", "logs", "action_logs", "tenant_id"] {
        assert!(pod.get(hidden).is_none(), "{hidden} must be hidden");
    }
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "mypod", 1));
    let stored = gw.record("dev", "mypod").await;
    assert_eq!(stored.desired.value.owner, "alice");
    assert_eq!(stored.desired.value.spec.networking["default"].url, "mypod.pods.localhost");

    // Get and list.
    let r = gw.call("GET", "/v3/pods/mypod", t, None).await;
    assert_eq!((r.status, r.result()["pod_id"].clone()), (200, json!("mypod")));
    gw.call("POST", "/v3/pods", Some(&gw.token("dev", "bob")), Some(json!({"pod_id": "bobs", "image": "x"}))).await;
    let r = gw.call("GET", "/v3/pods", t, None).await;
    let ids: Vec<&str> = r.result().as_array().expect("list").iter().filter_map(|p| p["pod_id"].as_str()).collect();
    assert_eq!(ids, ["mypod"], "only the caller's pods are listed");

    // The spawner takes it on; the displayed status follows observed state.
    gw.observe("dev", "mypod", PodStatus::Available).await;
    let r = gw.call("GET", "/v3/pods/mypod", t, None).await;
    assert_eq!(r.result()["status"], "AVAILABLE");

    // Update: a spec change while running applies at the next start; no kick.
    let r = gw
        .call(
            "PUT",
            "/v3/pods/mypod",
            t,
            Some(json!({"description": "changed", "environment_variables": {"GREETING": "secret"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "success");
    assert_eq!(r.message(), "pod updated; changes take effect at the next start or restart");
    assert_eq!(r.result()["description"], "changed");
    assert_eq!(gw.record("dev", "mypod").await.desired.value.generation, 1);
    let r = gw.call("PUT", "/v3/pods/mypod", t, Some(json!({"description": "changed"}))).await;
    assert_eq!((r.status, r.body["status"].clone()), (200, json!("error")));
    assert_eq!(r.message(), "Incoming data made no changes to pod. Is incoming data equal to current data?");

    // Start while running is refused, naming the status.
    let r = gw.call("GET", "/v3/pods/mypod/start", t, None).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.message(), "pod is AVAILABLE; use restart to get a new container");

    // Stop: OFF shows the real status until the spawner acts.
    let r = gw.call("GET", "/v3/pods/mypod/stop", t, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.message(), "pod stop requested");
    assert_eq!(
        (r.result()["status"].clone(), r.result()["status_requested"].clone()),
        (json!("AVAILABLE"), json!("OFF"))
    );
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "mypod", 2));
    gw.observe("dev", "mypod", PodStatus::Stopped).await;
    let r = gw.call("GET", "/v3/pods/mypod/stop", t, None).await;
    assert_eq!((r.status, r.message()), (200, "pod is already stopped"));
    assert_eq!(gw.record("dev", "mypod").await.desired.value.generation, 2, "idempotent stop writes nothing");

    // Start from STOPPED: the next kick is generation 3, so the repeated stop sent none.
    let r = gw.call("GET", "/v3/pods/mypod/start", t, None).await;
    assert_eq!((r.status, r.result()["status"].clone()), (200, json!("REQUESTED")));
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "mypod", 3));
    gw.observe("dev", "mypod", PodStatus::Available).await;

    // Restart: RESTART until taken on, then it reads as ON.
    let r = gw.call("GET", "/v3/pods/mypod/restart?grab_latest_template_tag=True", t, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.result()["status"].clone(), r.result()["status_requested"].clone()),
        (json!("REQUESTED"), json!("RESTART"))
    );
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "mypod", 4));
    gw.observe("dev", "mypod", PodStatus::Creating).await;
    let r = gw.call("GET", "/v3/pods/mypod", t, None).await;
    assert_eq!(
        (r.result()["status"].clone(), r.result()["status_requested"].clone()),
        (json!("CREATING"), json!("ON"))
    );

    // Logs: container output (lossy UTF-8) and the rendered action log, secrets hidden.
    let key = corral_model::PodKey::new("dev", "mypod");
    corral_store::Store::append_output(gw.store.as_ref(), &key, 1, b"hello\n\xffworld\n").await.expect("output");
    let r = gw.call("GET", "/v3/pods/mypod/logs", t, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.result()["logs"], "hello\n\u{fffd}world\n");
    let actions: Vec<String> = r.result()["action_logs"]
        .as_array()
        .expect("action_logs")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    let expect_in_order = [
        "pod created by 'alice'",
        "pod updated by 'alice': description, environment_variables (hidden)",
        "stop requested by 'alice'",
        "start requested by 'alice'",
        "restart requested by 'alice'",
    ];
    assert_eq!(actions.len(), expect_in_order.len(), "{actions:?}");
    for (line, want) in actions.iter().zip(expect_in_order) {
        assert!(line.contains(want), "{line:?} should contain {want:?}");
    }
    assert!(!actions.iter().any(|l| l.contains("secret")), "env values never logged");

    // Delete: gone for the user at once, and the id stays taken until the spawner purges.
    let r = gw.call("DELETE", "/v3/pods/mypod", t, None).await;
    assert_eq!((r.status, r.result().clone(), r.message()), (200, json!(""), "pod deleted"));
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "mypod", 5));
    assert!(gw.record("dev", "mypod").await.desired.value.deleted);
    assert_eq!(gw.call("GET", "/v3/pods/mypod", t, None).await.status, 404);
    assert_eq!(gw.call("GET", "/v3/pods/mypod/logs", t, None).await.status, 404);
    assert_eq!(gw.call("DELETE", "/v3/pods/mypod", t, None).await.status, 404);
    let r = gw.call("GET", "/v3/pods", t, None).await;
    assert_eq!(r.result(), &json!([]));
    let r = gw.call("POST", "/v3/pods", t, Some(json!({"pod_id": "mypod", "image": "x"}))).await;
    assert_eq!((r.status, r.message()), (409, "pod 'mypod' is still being deleted; try again shortly"));

    gw.shutdown().await;
}

#[tokio::test]
async fn pod_created_off_is_stopped_and_not_kicked() {
    let gw = Gateway::start().await;
    let token = gw.token("dev", "alice");
    let mut shard = gw.shard_consumer("dev", "quiet").await;
    let r = gw
        .call(
            "POST",
            "/v3/pods",
            Some(&token),
            Some(json!({"pod_id": "quiet", "image": "x", "status_requested": "OFF"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (r.result()["status"].clone(), r.result()["status_requested"].clone()),
        (json!("STOPPED"), json!("OFF"))
    );
    let rec = gw.record("dev", "quiet").await;
    assert_eq!((rec.desired.value.generation, rec.observed.value.observed_generation), (1, 1));
    // The first kick on this shard is the start's: creating an OFF pod sent none.
    let r = gw.call("GET", "/v3/pods/quiet/start", Some(&token), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "quiet", 2));
    gw.shutdown().await;
}

#[tokio::test]
async fn bearer_header_works_and_health_needs_no_token() {
    let gw = Gateway::start().await;
    let token = gw.token("dev", "alice");
    let r = gw.send(gw.http.get(format!("{}/v3/pods", gw.base)).bearer_auth(&token)).await;
    assert_eq!(r.status, 200);
    common::assert_envelope(&r);
    for path in ["/v3/pods/healthcheck", "/healthz"] {
        let r = gw.call("GET", path, None, None).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.result(), &json!({"store": "ok", "bus": "ok"}));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn update_of_status_requested_acts_at_once_and_changes_are_validated() {
    let gw = Gateway::start().await;
    let token = gw.token("dev", "alice");
    let t = Some(token.as_str());
    let mut shard = gw.shard_consumer("dev", "upd").await;
    gw.call("POST", "/v3/pods", t, Some(json!({"pod_id": "upd", "image": "x"}))).await;
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "upd", 1));

    let r = gw
        .call("PUT", "/v3/pods/upd", t, Some(json!({"status_requested": "OFF", "resources": {"cpu_limit": 3000}})))
        .await;
    assert_eq!((r.status, r.message()), (200, "pod updated"));
    assert_eq!(r.result()["resources"]["cpu_limit"], 3000);
    assert_eq!(r.result()["resources"]["cpu_request"], 250, "resources merge per field");
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "upd", 2));

    let before = gw.snapshot(&["dev"]).await;
    let r = gw
        .call("PUT", "/v3/pods/upd", t, Some(json!({"time_to_stop_default": 5, "resources": {"mem_limit": 1}})))
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().starts_with("pod is invalid: 3 problems"), "{}", r.message());
    let fields: Vec<&str> = r.body["metadata"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter_map(|p| p["field"].as_str())
        .collect();
    assert_eq!(fields, ["time_to_stop_default", "resources.mem_limit", "resources.mem_request"]);
    assert_eq!(gw.snapshot(&["dev"]).await, before, "a refused update changes nothing");
    gw.shutdown().await;
}

#[tokio::test]
async fn shutdown_returns_promptly() {
    let gw = Gateway::start().await;
    let r = gw.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_write_that_loses_a_race_is_reapplied_on_the_fresh_record() {
    let faults = Arc::new(Faults::default());
    let gw = Gateway::start_with(FaultStore::wrap(faults.clone())).await;
    let token = gw.token("dev", "alice");
    let t = Some(token.as_str());
    let r = gw.call("POST", "/v3/pods", t, Some(json!({"pod_id": "racy", "image": "x"}))).await;
    assert_eq!(r.status, 200);

    faults.race_next_write.store(true, Ordering::SeqCst);
    let r = gw.call("PUT", "/v3/pods/racy", t, Some(json!({"compute_queue": "gpu"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rec = gw.record("dev", "racy").await;
    assert!(!faults.race_next_write.load(Ordering::SeqCst), "the race was injected");
    assert_eq!(rec.desired.version, 3, "the racer's write and ours");
    assert_eq!(rec.desired.value.spec.description, "racer", "the other writer's change survives");
    assert_eq!(rec.desired.value.spec.compute_queue, "gpu");
    gw.shutdown().await;
}
