//! Consumers: redelivery, prefetch and exclusivity.

use std::sync::Arc;

use corral_protocol::topology::shard_queue;
use futures::StreamExt;

use super::{ABSENCE_WAIT, POLL, WAIT, consume, declared, next, publish_all, text};
use crate::{Bus, BusError, ConsumeOptions, Consumer};

/// Unacked deliveries come back, flagged redelivered, after the consumer is cancelled;
/// the acked one does not.
pub async fn unacked_are_redelivered_after_cancel(bus: Arc<dyn Bus>) {
    redelivery(bus, |consumer| {
        (consumer.cancel)();
        drop(consumer.stream);
    })
    .await;
}

/// Same as [`unacked_are_redelivered_after_cancel`], with the consumer just dropped.
pub async fn unacked_are_redelivered_after_drop(bus: Arc<dyn Bus>) {
    redelivery(bus, drop).await;
}

async fn redelivery(bus: Arc<dyn Bus>, stop: impl FnOnce(Consumer)) {
    declared(&bus).await;
    publish_all(&bus, 1, ["m1", "m2", "m3"].map(String::from)).await;
    let mut first = consume(&bus, &shard_queue(1), 10).await;
    let m1 = next(&mut first, "m1").await;
    let m2 = next(&mut first, "m2").await;
    let m3 = next(&mut first, "m3").await;
    assert_eq!([text(&m1), text(&m2), text(&m3)], ["m1", "m2", "m3"]);
    m1.ack().await.expect("ack m1");
    stop(first);

    // Requeued deliveries go back to the head of the queue together and in order, so if m1
    // had been requeued it would come first here.
    let mut second = consume(&bus, &shard_queue(1), 10).await;
    for want in ["m2", "m3"] {
        let got = next(&mut second, "redelivered message").await;
        assert_eq!(text(&got), want, "redelivery order");
        assert!(got.redelivered, "{want} must be flagged redelivered");
        got.ack().await.expect("ack redelivered");
    }
    publish_all(&bus, 1, ["m4".to_owned()]).await;
    let m4 = next(&mut second, "m4").await;
    assert_eq!(text(&m4), "m4");
    assert!(!m4.redelivered);
    m4.ack().await.expect("ack m4");
}

/// With prefetch 5 and no acks exactly five deliveries are in flight; an ack lets one more
/// through.
pub async fn prefetch_bound_is_respected(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    publish_all(&bus, 2, (0..10).map(|i| format!("p{i}"))).await;
    let mut consumer = consume(&bus, &shard_queue(2), 5).await;
    let mut held = Vec::new();
    for i in 0..5 {
        let got = next(&mut consumer, "delivery within prefetch").await;
        assert_eq!(text(&got), format!("p{i}"));
        held.push(got);
    }
    let extra = tokio::time::timeout(ABSENCE_WAIT, consumer.stream.next()).await;
    assert!(extra.is_err(), "a sixth delivery arrived with prefetch 5 and nothing acked");
    held[0].ack().await.expect("ack");
    let sixth = next(&mut consumer, "delivery after an ack").await;
    assert_eq!(text(&sixth), "p5");
}

/// An exclusive consumer keeps every other consumer off its queue until it is cancelled,
/// and cannot join a queue that already has consumers.
pub async fn exclusive_consumer_conflicts(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let exclusive = ConsumeOptions { prefetch: 10, exclusive: true, ..ConsumeOptions::default() };
    let owner = bus.consume(&shard_queue(0), exclusive.clone()).await.expect("first exclusive consumer");
    let err = bus.consume(&shard_queue(0), exclusive.clone()).await.err().expect("second exclusive consumer refused");
    assert!(matches!(&err, BusError::ConsumerBusy(q) if *q == shard_queue(0)), "got {err:?}");
    let err = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.err().expect("shared consumer refused");
    assert!(matches!(err, BusError::ConsumerBusy(_)), "got {err:?}");

    (owner.cancel)();
    drop(owner.stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    let _successor = loop {
        match bus.consume(&shard_queue(0), exclusive.clone()).await {
            Ok(consumer) => break consumer,
            Err(BusError::ConsumerBusy(_)) if tokio::time::Instant::now() < deadline => tokio::time::sleep(POLL).await,
            Err(e) => panic!("taking over a cancelled exclusive consumer's queue: {e}"),
        }
    };

    let _shared = consume(&bus, &shard_queue(1), 10).await;
    let err = bus.consume(&shard_queue(1), exclusive).await.err().expect("exclusive next to a consumer refused");
    assert!(matches!(err, BusError::ConsumerBusy(_)), "got {err:?}");
}

/// An auto-acking consumer gets every message once; what it was handed is settled already,
/// so neither its acks nor its going away bring anything back, and a retry still republishes.
pub async fn auto_acked_deliveries_are_not_redelivered(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    publish_all(&bus, 3, (0..3).map(|i| format!("a{i}"))).await;
    // A prefetch of 1 would hold back the second message if acks were awaited.
    let auto = ConsumeOptions { prefetch: 1, auto_ack: true, ..ConsumeOptions::default() };
    let mut consumer = bus.consume(&shard_queue(3), auto).await.expect("auto-ack consumer");
    let first = next(&mut consumer, "first auto-acked delivery").await;
    let second = next(&mut consumer, "second auto-acked delivery, nothing acked").await;
    assert_eq!((text(&first), text(&second)), ("a0".to_owned(), "a1".to_owned()));
    first.ack().await.expect("ack of an auto-acked delivery is a no-op");
    second.retry("try again", 5).await.expect("retry republishes");
    let third = next(&mut consumer, "third auto-acked delivery").await;
    assert_eq!(text(&third), "a2");
    let again = next(&mut consumer, "the retried message").await;
    assert_eq!(text(&again), "a1");
    assert_eq!(again.attempts, 1);
    (consumer.cancel)();
    drop(consumer.stream);

    let mut after = consume(&bus, &shard_queue(3), 10).await;
    let extra = tokio::time::timeout(ABSENCE_WAIT, after.stream.next()).await;
    assert!(extra.is_err(), "an auto-acked delivery came back after its consumer went away");
}
