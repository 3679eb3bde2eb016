//! The Binder API against the in-memory store: templates, pools, claims (ready, warming,
//! cold, 429) and who may see what. The pool-manager is played by the test.

mod common;

use std::collections::BTreeSet;

use common::Gateway;
use corral_model::pool::{AppTemplate, TEMPLATE_KIND, member_pod, pool_id, pool_owner};
use corral_model::shard::shard_of;
use corral_model::{Observed, PodStatus};
use corral_store::Store;
use serde_json::json;

const ADMIN: &str = "root";

async fn gateway() -> Gateway {
    Gateway::start().await
}

/// Plays the pool-manager: reserves and starts `n` members and marks them ready.
async fn warm(gw: &Gateway, template: &str, n: usize, cap: u32) -> Vec<String> {
    let pool = pool_id("acme", template);
    let doc = gw.store.get_doc(TEMPLATE_KIND, &pool).await.expect("get").expect("template stored");
    let tpl: AppTemplate = serde_json::from_str(&doc.value).expect("template json");
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("warm{i}x{}", uuid::Uuid::new_v4().simple());
        assert!(gw.store.pool_reserve(&pool, &id, doc.version, cap, 1).await.expect("reserve"));
        let (d, o) = member_pod(&tpl, &pool, &id, &pool_owner(template), 1);
        gw.store.create_pod(&d, &o, shard_of("acme", &id, gw.cfg.spawner.shards)).await.expect("create");
        gw.observe("acme", &id, PodStatus::Available).await;
        assert!(gw.store.pool_ready(&pool, &id, 2).await.expect("ready"));
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn templates_need_an_admin_and_round_trip() {
    let gw = gateway().await;
    let admin = gw.token("acme", ADMIN);
    let user = gw.token("acme", "alice");
    let body = json!({"name": "web", "image-name": "corral-test/busybox", "limits": {"memory": "512m", "cpu": "0.5"},
        "command": "httpd -f -p {port} -h /www # {base_path}", "cull-timeout": 60, "services": [], "port": 8000});
    let r = gw.call("POST", "/api/templates", Some(&user), Some(body.clone())).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r =
        gw.send(gw.http.post(format!("{}/api/templates", gw.base)).header("X-Tapis-Token", &admin).json(&body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"], "web");
    assert!(r.body["time-created"].is_string());

    let r = gw.send(gw.http.get(format!("{}/api/templates/web", gw.base)).header("X-Tapis-Token", &user)).await;
    assert_eq!(
        (r.status, &r.body["image-name"], &r.body["cull-timeout"]),
        (200, &json!("corral-test/busybox"), &json!(60))
    );
    let r = gw.send(gw.http.get(format!("{}/api/templates/web/status", gw.base)).header("X-Tapis-Token", &user)).await;
    assert_eq!(r.body, json!({"status": "completed"}));
    let other_tenant = gw.token("other", ADMIN);
    let r = gw.call("GET", "/api/templates/web", Some(&other_tenant), None).await;
    assert_eq!(r.status, 404, "templates are per tenant");
    let bad = json!({"image-name": "x", "limits": {"memory": "lots"}});
    let r = gw.call("POST", "/api/templates", Some(&admin), Some(bad)).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("limits.memory"), "{}", r.message());
    let r = gw.call("GET", "/api/templates", None, None).await;
    assert_eq!(r.status, 405);
    gw.shutdown().await;
}

#[tokio::test]
async fn claims_hand_out_ready_then_cold_then_429() {
    let gw = gateway().await;
    let admin = gw.token("acme", ADMIN);
    let alice = gw.token("acme", "alice");
    let body = json!({"name": "app", "image-name": "corral-test/busybox", "port": 8000});
    assert_eq!(
        gw.send(gw.http.post(format!("{}/api/templates", gw.base)).header("X-Tapis-Token", &admin).json(&body))
            .await
            .status,
        200
    );
    let r = gw.call("POST", "/api/pools/app", Some(&alice), Some(json!({"size": 2}))).await;
    assert_eq!(r.status, 403, "resizing a pool needs an admin");
    let pool = json!({"size": 2, "cap": 3, "retry-after": 7});
    let r =
        gw.send(gw.http.post(format!("{}/api/pools/app", gw.base)).header("X-Tapis-Token", &admin).json(&pool)).await;
    assert_eq!((r.status, &r.body["size"], &r.body["cap"]), (200, &json!(2), &json!(3)), "{:?}", r.body);

    let warm_ids: BTreeSet<String> = warm(&gw, "app", 2, 3).await.into_iter().collect();
    let r = gw.send(gw.http.get(format!("{}/api/pools/app", gw.base)).header("X-Tapis-Token", &alice)).await;
    assert_eq!((&r.body["running"], &r.body["available"], &r.body["size"]), (&json!(2), &json!(2), &json!(2)));

    let claim = || gw.send(gw.http.post(format!("{}/api/applications/app", gw.base)).header("X-Tapis-Token", &alice));
    let mut handed = BTreeSet::new();
    for _ in 0..2 {
        let r = claim().await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        assert_eq!(r.body["location"], format!("/user/{id}/"), "pre-warmed instances come with a location");
        assert_eq!(gw.record("acme", &id).await.desired.value.owner, "alice", "the claimant owns it");
        handed.insert(id);
    }
    assert_eq!(handed, warm_ids);

    let r = claim().await;
    assert_eq!(r.status, 200);
    let cold = r.body["id"].as_str().expect("id").to_string();
    assert!(r.body.get("location").is_none(), "a cold instance has no location yet: {:?}", r.body);
    let rec = gw.record("acme", &cold).await;
    assert_eq!(
        (rec.desired.value.owner.as_str(), rec.desired.value.spec.image.as_str()),
        ("alice", "corral-test/busybox")
    );

    let r = gw
        .http
        .post(format!("{}/api/applications/app", gw.base))
        .header("X-Tapis-Token", &alice)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");

    // Once ready, the cold instance has a location.
    let r =
        gw.send(gw.http.get(format!("{}/api/applications/app/{cold}", gw.base)).header("X-Tapis-Token", &alice)).await;
    assert!(r.body.get("location").is_none());
    let obs = gw.record("acme", &cold).await.observed;
    let ready = Observed { status: PodStatus::Available, observed_generation: 1, ..obs.value };
    gw.store.put_observed(&rec.desired.value.key(), &ready, obs.version).await.expect("observe");
    let r =
        gw.send(gw.http.get(format!("{}/api/applications/app/{cold}", gw.base)).header("X-Tapis-Token", &alice)).await;
    assert_eq!(r.body["location"], format!("/user/{cold}/"));

    // Others see neither the instance nor the list entries; the list shows alice's three.
    let bob = gw.token("acme", "bob");
    let r = gw.call("GET", &format!("/api/applications/app/{cold}"), Some(&bob), None).await;
    assert_eq!(r.status, 404);
    let r = gw.send(gw.http.get(format!("{}/api/applications/app", gw.base)).header("X-Tapis-Token", &bob)).await;
    assert_eq!(r.body, json!([]));
    let r = gw.send(gw.http.get(format!("{}/api/applications/app", gw.base)).header("X-Tapis-Token", &alice)).await;
    assert_eq!(r.body.as_array().expect("list").len(), 3);

    let r = gw.send(gw.http.get(format!("{}/api/pools/", gw.base)).header("X-Tapis-Token", &admin)).await;
    assert_eq!(r.body[0]["claimed"], 3, "{:?}", r.body);
    let r = gw.send(gw.http.delete(format!("{}/api/pools/app", gw.base)).header("X-Tapis-Token", &admin)).await;
    assert_eq!(r.body["deleted"], true);
    let r = gw.call("GET", "/api/pools/app", Some(&admin), None).await;
    assert_eq!(r.status, 404);
    gw.shutdown().await;
}

/// Claim hints (the pool-manager's cue to refill): a burst of claims is gathered into few
/// hints, none before the gathering time, and a hint goes out after the burst was answered.
#[tokio::test]
async fn a_burst_of_claims_is_followed_by_few_hints() {
    use corral_bus::{Bus as _, ConsumeOptions};
    use corral_protocol::PoolClaimed;
    use corral_protocol::topology::{EVENTS_EXCHANGE, pool_claimed_routing_key};
    use futures::StreamExt as _;

    const CLAIMS: usize = 20;
    let gw = gateway().await;
    let admin = gw.token("acme", ADMIN);
    let alice = gw.token("acme", "alice");
    let body = json!({"name": "burst", "image-name": "corral-test/busybox", "port": 8000});
    let post = |path: &str, token: &str| gw.http.post(format!("{}{path}", gw.base)).header("X-Tapis-Token", token);
    let r = gw.send(post("/api/templates", &admin).json(&body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = gw.send(post("/api/pools/burst", &admin).json(&json!({"size": CLAIMS, "cap": 2 * CLAIMS}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let cap = u32::try_from(2 * CLAIMS).expect("small");
    warm(&gw, "burst", CLAIMS, cap).await;
    let (_, mut hints) = gw
        .bus
        .subscribe(EVENTS_EXCHANGE, &pool_claimed_routing_key("#"), ConsumeOptions::default())
        .await
        .expect("subscribe");

    let sent = std::time::Instant::now();
    let claims = (0..CLAIMS).map(|_| gw.send(post("/api/applications/burst", &alice)));
    for r in futures::future::join_all(claims).await {
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert!(r.body["location"].is_string(), "every claim found a ready instance: {:?}", r.body);
    }
    // Every claim is followed by a hint: at least one arrives now; then count them until
    // none has come for a while (a bound, not a sleep: any hint ends the wait early).
    let mut count = 0;
    let quiet = std::time::Duration::from_millis(500);
    let first = tokio::time::timeout(common::WAIT, hints.stream.next()).await.expect("a hint after the burst");
    // The hint waits for the rest of the burst (20 ms) before it goes out.
    assert!(sent.elapsed() >= std::time::Duration::from_millis(20), "hint sent before the burst was gathered");
    let mut next = first;
    while let Some(d) = next {
        let hint: PoolClaimed = corral_protocol::decode(&d.body, d.content_type.as_deref()).expect("hint decodes");
        assert_eq!(hint.pool, pool_id("acme", "burst"));
        d.ack().await.expect("ack");
        count += 1;
        next = tokio::time::timeout(quiet, hints.stream.next()).await.ok().flatten();
    }
    assert!((1..CLAIMS / 2).contains(&count), "{CLAIMS} claims at once gave {count} hints");
    gw.shutdown().await;
}
