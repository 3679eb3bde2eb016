//! In-process bus behaviour beyond the shared contract.

use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, BusError, ConsumeOptions, Consumer, Delivery, OutMessage, Topology};
use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_queue, shard_routing_key};
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(5);

async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.stream.next()).await.expect("a delivery in time").expect("stream open")
}

async fn declared() -> MemoryBus {
    let bus = MemoryBus::new();
    bus.declare(&Topology { shards: 2 }).await.expect("declare");
    bus
}

async fn publish(bus: &MemoryBus, body: &str) {
    bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(0), OutMessage::new(body.as_bytes().to_vec()))
        .await
        .expect("publish");
}

#[tokio::test]
async fn consumers_of_one_queue_take_turns() {
    let bus = declared().await;
    let mut a = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume a");
    let mut b = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume b");
    for i in 0..4 {
        publish(&bus, &i.to_string()).await;
    }
    let a_got = [next(&mut a).await.body, next(&mut a).await.body];
    let b_got = [next(&mut b).await.body, next(&mut b).await.body];
    assert_eq!(a_got, [b"0".to_vec(), b"2".to_vec()]);
    assert_eq!(b_got, [b"1".to_vec(), b"3".to_vec()]);
}

#[tokio::test]
async fn settling_after_cancel_fails_and_the_message_comes_back() {
    let bus = declared().await;
    publish(&bus, "held").await;
    let mut consumer = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");
    let held = next(&mut consumer).await;
    (consumer.cancel)();
    assert!(consumer.stream.next().await.is_none(), "a cancelled stream ends");
    assert!(matches!(held.ack().await, Err(BusError::Unavailable(_))));
    assert!(matches!(held.retry("x", 5).await, Err(BusError::Unavailable(_))));
    let mut again = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume again");
    let back = next(&mut again).await;
    assert_eq!(back.body, b"held");
    assert!(back.redelivered);
    assert_eq!(back.attempts, 0, "a failed retry must not have republished");
}

#[tokio::test]
async fn subscribing_to_a_missing_exchange_fails_cleanly() {
    let bus = declared().await;
    let err = bus.subscribe("no-such-exchange", "#", ConsumeOptions::default()).await.err().expect("missing exchange");
    assert!(matches!(err, BusError::Other(_)), "got {err:?}");
    let err = bus.consume("no-such-queue", ConsumeOptions::default()).await.err().expect("missing queue");
    assert!(matches!(err, BusError::Other(_)), "got {err:?}");
}

#[tokio::test]
async fn clones_share_one_broker() {
    let bus = declared().await;
    let other = bus.clone();
    publish(&other, "shared").await;
    let mut consumer = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");
    assert_eq!(next(&mut consumer).await.body, b"shared");
}
