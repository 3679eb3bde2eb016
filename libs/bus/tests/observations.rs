//! Observations gathered per shard ([`ObservationPublisher`]), as kicks are: a lone one
//! leaves at once as a plain observation with its trace in the headers; those arriving while
//! the shard's publish awaits its confirm leave together, each with its own trace context.

mod support;

use std::sync::Arc;

use corral_bus::contract::WAIT;
use corral_bus::memory::MemoryBus;
use corral_bus::shard_publish::ObservationPublisher;
use corral_bus::{Bus, ConsumeOptions, Consumer, Topology};
use corral_protocol::topology::{HEADER_TRACEPARENT, shard_queue};
use corral_protocol::{Observation, PodObservation, ShardMessage, decode};
use corral_testkit::{Gate, GatedBus};
use futures::StreamExt as _;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn ready(pod_id: &str, traceparent: Option<&str>) -> PodObservation {
    PodObservation {
        tenant: "dev".into(),
        pod_id: pod_id.into(),
        container_id: format!("c-{pod_id}"),
        what: Observation::Ready,
        traceparent: traceparent.map(str::to_owned),
    }
}

/// The next message on `consumer`, acked, decoded, with its traceparent header.
async fn next_message(consumer: &mut Consumer) -> (ShardMessage, Option<String>) {
    let d = tokio::time::timeout(WAIT, consumer.stream.next()).await.expect("a message in time").expect("stream open");
    d.ack().await.expect("ack");
    let msg = decode::<ShardMessage>(&d.body, d.content_type.as_deref()).expect("a shard message");
    (msg, d.headers.get(HEADER_TRACEPARENT).cloned())
}

#[tokio::test]
async fn a_lone_observation_leaves_at_once_as_a_plain_observation_with_its_trace() {
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 2 }).await.expect("declare");
    let mut consumer = bus.consume(&shard_queue(1), ConsumeOptions::default()).await.expect("consume");
    let publisher = ObservationPublisher::new(bus, 256);
    publisher.publish(1, ready("a", Some(TRACEPARENT))).await.expect("publish");
    let (msg, traceparent) = next_message(&mut consumer).await;
    let expected = ShardMessage::Observation {
        tenant: "dev".into(),
        pod_id: "a".into(),
        container_id: "c-a".into(),
        what: Observation::Ready,
    };
    assert_eq!(msg, expected);
    assert_eq!(traceparent.as_deref(), Some(TRACEPARENT));
}

#[tokio::test]
async fn observations_arriving_during_a_publish_leave_together_with_their_traces() {
    let memory = MemoryBus::new();
    memory.declare(&Topology { shards: 2 }).await.expect("declare");
    let mut consumer = memory.consume(&shard_queue(0), ConsumeOptions::default()).await.expect("consume");
    let bus = Arc::new(GatedBus::new(memory, Gate::Confirmed));
    let publisher = ObservationPublisher::new(bus.clone(), 256);
    let first = tokio::spawn({
        let publisher = publisher.clone();
        async move { publisher.publish(0, ready("a", None)).await }
    });
    bus.wait_for_publishes(1, "the first observation was never published").await;
    let gone = PodObservation { what: Observation::Gone, ..ready("c", None) };
    let mut rest = vec![
        Box::pin(publisher.publish(0, ready("b", Some(TRACEPARENT)))),
        Box::pin(publisher.publish(0, gone.clone())),
    ];
    for fut in &mut rest {
        assert!(futures::poll!(fut).is_pending(), "an observation finished before the broker confirmed anything");
    }
    bus.gate.add_permits(10);
    first.await.expect("join").expect("first observation");
    for fut in rest {
        fut.await.expect("observation");
    }

    assert_eq!(bus.publishes(), 2, "one publish for the lone observation, one for the other two");
    let (alone, _) = next_message(&mut consumer).await;
    assert!(matches!(alone, ShardMessage::Observation { ref pod_id, .. } if pod_id == "a"), "{alone:?}");
    let (batch, header) = next_message(&mut consumer).await;
    assert_eq!(header, None, "a batch carries trace context per observation");
    assert_eq!(batch, ShardMessage::Observations { observations: vec![ready("b", Some(TRACEPARENT)), gone] });
}
