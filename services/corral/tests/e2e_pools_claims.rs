//! Claims under contention, against RabbitMQ, Redis and Docker: 200 concurrent claims on a
//! pool of size 50 capped at 100, and claims while a pool-manager and a gateway die.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Spawners, Stack, eventually};
use corral_model::pool::pool_id;
use corral_store::MemberState;
use futures::future::join_all;
use serde_json::{Value, json};
use tracing::Instrument;

async fn pool_of(stack: &Stack, name: &str, size: u32, cap: u32) {
    let tpl = json!({"name": name, "image-name": common::IMAGE, "port": 8000,
        "command": "exec httpd -f -p {port} -h /", "limits": {"memory": "32m", "cpu": "0.1"}});
    let (code, v) = stack.call(reqwest::Method::POST, "/api/templates", Some(tpl)).await;
    assert_eq!(code, 200, "template: {v}");
    let (code, v) =
        stack.call(reqwest::Method::POST, &format!("/api/pools/{name}"), Some(json!({"size": size, "cap": cap}))).await;
    assert_eq!(code, 200, "pool: {v}");
}

async fn counts(http: &reqwest::Client, base: &str, token: &str, name: &str) -> Value {
    let resp = http.get(format!("{base}/api/pools/{name}")).header("X-Tapis-Token", token).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("counts")
}

/// The counts must add up and stay within the cap every time they are read.
fn check_counts(c: &Value, cap: u64) {
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}"));
    assert_eq!(n("running"), n("available") + n("warming") + n("claimed"), "counts add up: {c}");
    assert!(n("running") <= cap && n("claimed") <= cap, "within the cap: {c}");
}

/// Reads the counts every 20 ms until `stop`, checking each; returns how many were read.
async fn watch_counts(
    http: reqwest::Client,
    base: String,
    token: String,
    name: String,
    cap: u64,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut reads = 0;
    while !stop.load(Ordering::SeqCst) {
        check_counts(&counts(&http, &base, &token, &name).await, cap);
        reads += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reads
}

/// One claim as user `u{i}`: the status and the id handed out, if any.
async fn claim(
    http: &reqwest::Client,
    base: &str,
    stack: &Stack,
    name: &str,
    i: usize,
) -> Result<(u16, Option<String>), reqwest::Error> {
    let token = stack.token_for("dev", &format!("u{i}"));
    let resp = http.post(format!("{base}/api/applications/{name}")).header("X-Tapis-Token", token).send().await?;
    let code = resp.status().as_u16();
    if code == 429 {
        assert!(resp.headers().contains_key("retry-after"), "429 carries Retry-After");
    }
    let v: Value = resp.json().await?;
    Ok((code, v["id"].as_str().map(str::to_string)))
}

/// Every id handed out is a distinct member, claimed by the user it was handed to.
async fn check_claims(stack: &Stack, name: &str, handed: &[(usize, String)]) {
    let ids: BTreeSet<&str> = handed.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids.len(), handed.len(), "no instance handed out twice");
    let members = stack.store.pool_members(&pool_id("dev", name)).await.expect("members");
    for (i, id) in handed {
        let m = members.iter().find(|m| m.id == *id).unwrap_or_else(|| panic!("claimed {id} is still a member"));
        assert_eq!((m.state, m.claimant.clone()), (MemberState::Claimed, Some(format!("u{i}"))), "{id}");
    }
}

#[tokio::test]
async fn two_hundred_concurrent_claims_on_a_capped_pool() {
    let mut stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    stack.add_pool_manager().await;
    let (name, cap) = ("crowd", 100);
    pool_of(&stack, name, 50, cap).await;
    eventually("50 available", Duration::from_secs(120), || async {
        (counts(&stack.http, &stack.base, &stack.token, name).await["available"] == 50).then_some(())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(
        watch_counts(
            stack.http.clone(),
            stack.base.clone(),
            stack.token.clone(),
            name.into(),
            cap.into(),
            stop.clone(),
        )
        .instrument(tracing::info_span!("watch_counts")),
    );
    let results = join_all((0..200).map(|i| claim(&stack.http, &stack.base, &stack, name, i))).await;
    stop.store(true, Ordering::SeqCst);
    assert!(watcher.await.expect("watcher") > 0, "counts were read during the claims");

    let mut handed = Vec::new();
    let mut refused = 0;
    for (i, r) in results.into_iter().enumerate() {
        match r.expect("every claim is answered") {
            (200, Some(id)) => handed.push((i, id)),
            (429, _) => refused += 1,
            other => panic!("unexpected claim answer {other:?}"),
        }
    }
    assert_eq!((handed.len(), refused), (100, 100), "exactly the cap succeeds");
    check_claims(&stack, name, &handed).await;
    let c = counts(&stack.http, &stack.base, &stack.token, name).await;
    check_counts(&c, cap.into());
    assert_eq!(c["claimed"], 100, "{c}");
    stack.shutdown().await;
}

#[tokio::test]
async fn killing_a_pool_manager_and_a_gateway_mid_claim_loses_and_doubles_nothing() {
    let mut stack = Stack::start(Spawners { in_process: 1, processes: 0 }).await;
    let first_manager = stack.add_pool_manager().await;
    stack.add_pool_manager().await;
    let (second_base, second_gateway) = stack.add_gateway().await;
    let name = "sturdy";
    pool_of(&stack, name, 10, 40).await;
    eventually("10 available", Duration::from_secs(60), || async {
        (counts(&stack.http, &stack.base, &stack.token, name).await["available"] == 10).then_some(())
    })
    .await;

    // Claims spread over both gateways; half-way, one gateway and one pool-manager die.
    let bases = [stack.base.clone(), second_base];
    let claims = join_all((0..30).map(|i| {
        let base = bases[i % 2].clone();
        let stack = &stack;
        async move { (i, claim(&stack.http, &base, stack, name, i).await) }
    }));
    let kill = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        first_manager.abort();
        second_gateway.abort();
    };
    let (results, ()) = tokio::join!(claims, kill);

    let mut handed = Vec::new();
    for (i, r) in results {
        match r {
            Ok((200, Some(id))) => handed.push((i, id)),
            Ok(other) => panic!("unexpected claim answer {other:?}"),
            // Cut off with its gateway: whether it counted is unknown to the client.
            Err(_) => assert_eq!(i % 2, 1, "only the killed gateway's claims may fail"),
        }
    }
    assert!(handed.len() >= 15, "the surviving gateway answered all of its claims: {}", handed.len());
    check_claims(&stack, name, &handed).await;

    // The survivor refills the pool; the claimed instances stay and keep serving.
    eventually("the pool refilled by the surviving pool-manager", Duration::from_secs(60), || async {
        let c = counts(&stack.http, &stack.base, &stack.token, name).await;
        check_counts(&c, 40);
        (c["available"] == 10).then_some(())
    })
    .await;
    check_claims(&stack, name, &handed).await;
    stack.shutdown().await;
}
