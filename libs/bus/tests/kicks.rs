//! Group commit of kicks ([`KickPublisher`]): a lone kick leaves at once as a plain kick,
//! kicks arriving while their shard's publish awaits its confirm leave together, every kick
//! arrives exactly once and in order per shard, a failed publish fails each of its kicks,
//! and a minimum interval spaces a busy shard's messages.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corral_bus::contract::WAIT;
use corral_bus::memory::MemoryBus;
use corral_bus::shard_publish::KickPublisher;
use corral_bus::{Bus, BusError, ConsumeOptions, Consumer, Topology};
use corral_protocol::topology::{HEADER_TRACEPARENT, shard_queue};
use corral_protocol::{PodKick, ShardMessage, decode};
use corral_testkit::{Gate, GatedBus};
use futures::StreamExt as _;
use tokio::time::Instant;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn kick(pod_id: &str) -> PodKick {
    PodKick { tenant: "dev".into(), pod_id: pod_id.into(), generation: 1, traceparent: None }
}

/// The next message on `consumer`, acked, as (kicks it carries, its traceparent header).
async fn next_kicks(consumer: &mut Consumer) -> (Vec<PodKick>, Option<String>) {
    let d = tokio::time::timeout(WAIT, consumer.stream.next()).await.expect("a message in time").expect("stream open");
    d.ack().await.expect("ack");
    let traceparent = d.headers.get(HEADER_TRACEPARENT).cloned();
    match decode::<ShardMessage>(&d.body, d.content_type.as_deref()).expect("a shard message") {
        ShardMessage::Kick { tenant, pod_id, generation } => {
            (vec![PodKick { tenant, pod_id, generation, traceparent: None }], traceparent)
        }
        ShardMessage::Kicks { kicks } => (kicks, traceparent),
        other => panic!("not a kick: {other:?}"),
    }
}

fn pod_ids(kicks: &[PodKick]) -> Vec<&str> {
    kicks.iter().map(|k| k.pod_id.as_str()).collect()
}

#[tokio::test]
async fn a_lone_kick_leaves_at_once_as_a_plain_kick_with_its_trace() {
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 2 }).await.expect("declare");
    let mut consumer = bus.consume(&shard_queue(1), ConsumeOptions::default()).await.expect("consume");
    let kicks = KickPublisher::new(bus, 256);
    let traced = PodKick { traceparent: Some(TRACEPARENT.into()), ..kick("a") };
    kicks.kick(1, traced).await.expect("kick");
    let (got, traceparent) = next_kicks(&mut consumer).await;
    assert_eq!(pod_ids(&got), ["a"]);
    assert_eq!(traceparent.as_deref(), Some(TRACEPARENT));
}

/// A publisher on a gated bus whose first publish (a lone kick for pod "a" of shard 0) is
/// waiting for the broker's confirm.
async fn first_publish_in_flight(
    max_batch: usize,
) -> (Arc<GatedBus>, KickPublisher, Consumer, tokio::task::JoinHandle<Result<(), BusError>>) {
    let memory = MemoryBus::new();
    memory.declare(&Topology { shards: 2 }).await.expect("declare");
    let consumer = memory.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");
    let bus = Arc::new(GatedBus::new(memory, Gate::Confirmed));
    let kicks = KickPublisher::new(bus.clone(), max_batch);
    let first = tokio::spawn({
        let kicks = kicks.clone();
        async move { kicks.kick(0, kick("a")).await }
    });
    bus.wait_for_publishes(1, "the first kick was never published").await;
    (bus, kicks, consumer, first)
}

#[tokio::test]
async fn kicks_arriving_during_a_publish_leave_together_in_order() {
    let (bus, kicks, mut consumer, first) = first_publish_in_flight(256).await;
    // Sent while the first publish awaits its confirm (each is queued on its first poll).
    let mut rest: Vec<_> = ["b", "c", "d"]
        .into_iter()
        .map(|id| {
            let traceparent = (id == "c").then(|| TRACEPARENT.to_owned());
            Box::pin(kicks.kick(0, PodKick { traceparent, ..kick(id) }))
        })
        .collect();
    for fut in &mut rest {
        assert!(futures::poll!(fut).is_pending(), "a kick finished before the broker confirmed anything");
    }
    bus.gate.add_permits(10);
    first.await.expect("join").expect("first kick");
    for fut in rest {
        fut.await.expect("kick");
    }

    assert_eq!(bus.publishes(), 2, "one publish for the lone kick, one for the three");
    let (alone, _) = next_kicks(&mut consumer).await;
    assert_eq!(pod_ids(&alone), ["a"]);
    let (batch, header) = next_kicks(&mut consumer).await;
    assert_eq!(pod_ids(&batch), ["b", "c", "d"]);
    assert_eq!(header, None, "a batch carries trace context per kick");
    let traces: BTreeMap<&str, Option<&str>> =
        batch.iter().map(|k| (k.pod_id.as_str(), k.traceparent.as_deref())).collect();
    assert_eq!(traces, BTreeMap::from([("b", None), ("c", Some(TRACEPARENT)), ("d", None)]));
}

#[tokio::test]
async fn batches_are_capped_at_the_configured_size() {
    let (bus, kicks, mut consumer, first) = first_publish_in_flight(2).await;
    let mut rest: Vec<_> = ["b", "c", "d", "e", "f"].into_iter().map(|id| Box::pin(kicks.kick(0, kick(id)))).collect();
    for fut in &mut rest {
        assert!(futures::poll!(fut).is_pending());
    }
    bus.gate.add_permits(10);
    first.await.expect("join").expect("first kick");
    for fut in rest {
        fut.await.expect("kick");
    }
    let mut batches = Vec::new();
    for _ in 0..4 {
        let (batch, _) = next_kicks(&mut consumer).await;
        batches.push(pod_ids(&batch).join(","));
    }
    assert_eq!(batches, ["a", "b,c", "d,e", "f"]);
}

#[tokio::test]
async fn a_failed_publish_fails_every_kick_it_carried() {
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 2 }).await.expect("declare");
    let kicks = KickPublisher::new(bus, 256);
    // Shard 7 has no queue: its messages are unroutable.
    let results = futures::future::join_all((0..5).map(|i| kicks.kick(7, kick(&format!("p{i}"))))).await;
    for r in results {
        assert!(matches!(r, Err(BusError::Unroutable { .. })), "{r:?}");
    }
}

/// `n` kicks at once over two shards: each arrives exactly once, in the order sent within
/// its shard, in fewer messages than kicks.
async fn many_kicks_arrive_once_in_order_and_in_fewer_messages(bus: Arc<dyn Bus>, n: usize) {
    bus.declare(&Topology { shards: corral_bus::contract::SHARDS }).await.expect("declare");
    let mut consumers = Vec::new();
    for shard in 0..2 {
        consumers.push(bus.consume(&shard_queue(shard), ConsumeOptions::default()).await.expect("consume"));
    }
    let kicks = KickPublisher::new(bus, 256);
    let sent: Vec<(u32, String)> = (0..n).map(|i| (u32::try_from(i % 2).expect("small"), format!("p{i}"))).collect();
    let results = futures::future::join_all(sent.iter().map(|(shard, id)| kicks.kick(*shard, kick(id)))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let mut messages = 0;
    for (shard, consumer) in (0u32..).zip(consumers.iter_mut()) {
        let expected: Vec<&str> = sent.iter().filter(|(s, _)| *s == shard).map(|(_, id)| id.as_str()).collect();
        let mut got: Vec<String> = Vec::new();
        while got.len() < expected.len() {
            let (batch, _) = next_kicks(consumer).await;
            messages += 1;
            got.extend(batch.into_iter().map(|k| k.pod_id));
        }
        assert_eq!(got, expected, "shard {shard}: every kick once, in the order sent");
    }
    assert!(messages < n, "{n} kicks took {messages} messages");
}

#[tokio::test]
async fn many_kicks_in_memory() {
    many_kicks_arrive_once_in_order_and_in_fewer_messages(Arc::new(MemoryBus::new()), 300).await;
}

#[tokio::test]
async fn many_kicks_through_rabbitmq() {
    support::with_namespaced_bus(|bus| many_kicks_arrive_once_in_order_and_in_fewer_messages(bus, 300)).await;
}

/// With a minimum interval, a busy shard sends at most one message per interval: kicks that
/// arrive after its previous message was confirmed wait out the interval and leave together,
/// while a kick for an idle shard, or after a quiet interval, still leaves at once.
#[tokio::test(start_paused = true)]
async fn a_minimum_interval_spaces_a_busy_shards_messages() {
    let interval = Duration::from_millis(50);
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 2 }).await.expect("declare");
    let mut shard0 = bus.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");
    let mut shard1 = bus.consume(&shard_queue(1), ConsumeOptions::default()).await.expect("consume");
    let kicks = KickPublisher::new(bus, 256).with_min_interval(interval);

    let start = Instant::now();
    kicks.kick(0, kick("a")).await.expect("kick");
    kicks.kick(1, kick("x")).await.expect("kick");
    assert_eq!(start.elapsed(), Duration::ZERO, "idle shards send at once");

    let rest = futures::future::join_all(["b", "c", "d"].map(|id| kicks.kick(0, kick(id)))).await;
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    assert_eq!(start.elapsed(), interval, "shard 0 sent again only once the interval was over");

    tokio::time::advance(interval).await;
    let quiet = Instant::now();
    kicks.kick(0, kick("e")).await.expect("kick");
    assert_eq!(quiet.elapsed(), Duration::ZERO, "after a quiet interval a kick leaves at once");

    let mut batches = Vec::new();
    for _ in 0..3 {
        batches.push(pod_ids(&next_kicks(&mut shard0).await.0).join(","));
    }
    assert_eq!(batches, ["a", "b,c,d", "e"]);
    assert_eq!(pod_ids(&next_kicks(&mut shard1).await.0), ["x"]);
}
