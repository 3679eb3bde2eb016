//! RabbitMQ-only behaviour: reconnecting, namespaces, connection failures.

mod support;

use std::sync::Arc;

use corral_bus::amqp::AmqpBus;
use corral_bus::contract::{SHARDS, WAIT};
use corral_bus::{Bus, BusError, ConsumeOptions, Consumer, OutMessage, Topology};
use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_queue, shard_routing_key};
use futures::StreamExt;
use support::namespaced_bus;

fn msg(body: &str) -> OutMessage {
    OutMessage::new(body.as_bytes().to_vec())
}

async fn next_body(consumer: &mut Consumer) -> String {
    let delivery = tokio::time::timeout(WAIT, consumer.stream.next())
        .await
        .expect("a delivery within the bound")
        .expect("the stream is open");
    delivery.ack().await.expect("ack");
    String::from_utf8_lossy(&delivery.body).into_owned()
}

async fn cleanup(bus: &AmqpBus) {
    tokio::time::timeout(WAIT, bus.delete_namespace_for_tests(SHARDS))
        .await
        .expect("cleanup in time")
        .expect("cleanup");
}

#[tokio::test]
async fn reconnects_after_the_connection_drops() {
    let bus = namespaced_bus().await;
    bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
    let mut old = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");

    bus.force_close_for_tests().await;

    // Operations fail fast while the connection is down...
    let err = bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(0), msg("during")).await.expect_err("down");
    assert!(matches!(err, BusError::Unavailable(_)), "got {err:?}");
    // ...consumers end, for their owners to consume again...
    let ended = tokio::time::timeout(WAIT, async { while old.stream.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the old consumer stream must end when its connection dies");
    // ...and the bus comes back by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(0), msg("after")).await {
            Ok(()) => break,
            Err(BusError::Unavailable(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("publish after reconnect: {e}"),
        }
    }
    bus.ping().await.expect("ping after reconnect");
    let mut fresh = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume again");
    assert_eq!(next_body(&mut fresh).await, "after");
    let (_, mut events) = bus.subscribe("corral.events", "pod.#", ConsumeOptions::default()).await.expect("subscribe");
    bus.publish_event("corral.events", "pod.t.AVAILABLE", msg("event")).await.expect("publish event");
    assert_eq!(next_body(&mut events).await, "event");
    cleanup(&bus).await;
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let a = namespaced_bus().await;
    let b = namespaced_bus().await;
    assert_ne!(a.namespace(), b.namespace());
    assert_eq!(a.queue_name("corral.shard.0"), format!("{}.corral.shard.0", a.namespace()));
    for bus in [&a, &b] {
        bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
    }
    a.publish(COMMANDS_EXCHANGE, &shard_routing_key(0), msg("for a")).await.expect("publish a");
    b.publish(COMMANDS_EXCHANGE, &shard_routing_key(0), msg("for b")).await.expect("publish b");
    let mut consumer = b.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume b");
    assert_eq!(next_body(&mut consumer).await, "for b", "b must not see a's message");
    let mut consumer = a.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume a");
    assert_eq!(next_body(&mut consumer).await, "for a");
    cleanup(&a).await;
    cleanup(&b).await;
}

#[tokio::test]
async fn send_to_queue_takes_physical_names() {
    let bus = namespaced_bus().await;
    bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
    let shared: Arc<dyn Bus> = Arc::new(bus.clone());
    shared.send_to_queue(&bus.queue_name(&shard_queue(2)), msg("direct")).await.expect("send to physical name");
    let err = shared.send_to_queue(&shard_queue(2), msg("logical")).await.expect_err("logical name is not a queue");
    assert!(matches!(err, BusError::Unroutable { .. }), "got {err:?}");
    let mut consumer = bus.consume(&shard_queue(2), ConsumeOptions::default()).await.expect("consume");
    assert_eq!(next_body(&mut consumer).await, "direct");
    cleanup(&bus).await;
}

#[tokio::test]
async fn publishing_to_a_missing_exchange_fails_and_the_bus_recovers() {
    let bus = namespaced_bus().await;
    bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
    let err = bus.publish("no-such-exchange", "k", msg("x")).await.expect_err("missing exchange");
    assert!(matches!(err, BusError::Other(_)), "got {err:?}");
    bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(1), msg("fine")).await.expect("publish on a fresh channel");
    let mut consumer = bus.consume(&shard_queue(1), ConsumeOptions::default()).await.expect("consume");
    assert_eq!(next_body(&mut consumer).await, "fine");
    let err = bus.consume("no-such-queue", ConsumeOptions::default()).await.err().expect("missing queue");
    assert!(matches!(err, BusError::Other(_)), "got {err:?}");
    cleanup(&bus).await;
}

#[tokio::test]
async fn connect_fails_fast_without_a_broker() {
    // Port 1 on loopback has no listener.
    let err = AmqpBus::connect("amqp://guest:guest@127.0.0.1:1/%2f", "t").await.expect_err("nothing listens there");
    assert!(matches!(err, BusError::Unavailable(_)), "got {err:?}");
}

#[tokio::test]
async fn cleanup_refuses_the_unnamespaced_topology() {
    let bus = AmqpBus::connect(&support::amqp_url(), "").await.expect("the test broker must be running");
    assert!(bus.delete_namespace_for_tests(SHARDS).await.is_err());
}
