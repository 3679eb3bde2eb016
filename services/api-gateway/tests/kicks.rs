//! Kicks are confirmed in the background: a request is answered once its change is stored,
//! whatever the broker is doing, and a stopping gateway waits for the kicks it has in hand.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{BASE_CONFIG, Gateway, WAIT, kick_of, next_kick};
use corral_testkit::{Gate, GatedBus};
use serde_json::json;

/// Less than the publisher's confirm timeout, after which a waiting request would have been
/// answered anyway.
const ANSWER_BOUND: Duration = Duration::from_secs(2);

/// A gateway whose confirmed publishes (kicks) wait until the test lets them through.
async fn gateway_with_held_kicks() -> (Gateway, Arc<GatedBus>) {
    let mut gated = None;
    let gw = Gateway::start_on_bus(
        BASE_CONFIG,
        |store| store,
        |memory| {
            let bus = Arc::new(GatedBus::new(memory, Gate::Confirmed));
            gated = Some(Arc::clone(&bus));
            bus
        },
    )
    .await;
    (gw, gated.expect("the bus was made"))
}

async fn create(gw: &Gateway, pod_id: &str) {
    let token = gw.token("dev", "alice");
    let body = json!({"pod_id": pod_id, "image": "corral-test/busybox"});
    let answered = tokio::time::timeout(ANSWER_BOUND, gw.call("POST", "/v3/pods", Some(&token), Some(body))).await;
    let r = answered.expect("the request was answered while its kick was unconfirmed");
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn requests_are_answered_before_their_kicks_are_confirmed() {
    let (gw, bus) = gateway_with_held_kicks().await;
    let mut shard = gw.shard_consumer("dev", "held").await;
    create(&gw, "held").await;
    bus.wait_for_publishes(1, "the kick was never published").await;
    assert_eq!(gw.record("dev", "held").await.desired.value.generation, 1, "the pod was stored");

    bus.gate.add_permits(1);
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "held", 1));
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stopping_gateway_waits_for_the_kicks_in_hand() {
    let (mut gw, bus) = gateway_with_held_kicks().await;
    let mut shard = gw.shard_consumer("dev", "late").await;
    create(&gw, "late").await;
    bus.wait_for_publishes(1, "the kick was never published").await;

    gw.stop();
    let mut task = gw.take_task();
    let early = tokio::time::timeout(Duration::from_millis(300), &mut task).await;
    assert!(early.is_err(), "the gateway stopped with a kick unconfirmed: {early:?}");

    bus.gate.add_permits(1);
    let stopped = tokio::time::timeout(WAIT, task).await.expect("the gateway stops once its kick is confirmed");
    stopped.expect("gateway task").expect("gateway run result");
    assert_eq!(next_kick(&mut shard).await, kick_of("dev", "late", 1));
}
