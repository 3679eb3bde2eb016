//! Pod events gathered per routing key ([`EventPublisher`]): a lone event leaves at once as a
//! plain event with its trace in the headers, events for one key arriving while that key's
//! publish is in flight leave together (other keys are not held up), and every event
//! arrives exactly once and in order per key.

mod support;

use std::sync::Arc;

use corral_bus::contract::WAIT;
use corral_bus::events::EventPublisher;
use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions, Consumer, Topology};
use corral_model::PodStatus;
use corral_protocol::topology::{EVENTS_EXCHANGE, HEADER_TRACEPARENT};
use corral_protocol::{PodEvent, decode_pod_events};
use corral_testkit::{Gate, GatedBus};
use futures::StreamExt as _;

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn event(pod_id: &str, status: PodStatus) -> PodEvent {
    PodEvent { tenant: "dev".into(), pod_id: pod_id.into(), status, generation: 1, instance: 1, ..PodEvent::default() }
}

async fn subscribe(bus: &dyn Bus) -> Consumer {
    let opts = ConsumeOptions { auto_ack: true, ..ConsumeOptions::default() };
    bus.subscribe(EVENTS_EXCHANGE, "pod.dev.*", opts).await.expect("subscribe").1
}

/// The next message on `consumer`: the events it carries and its traceparent header.
async fn next_events(consumer: &mut Consumer) -> (Vec<PodEvent>, Option<String>) {
    let d = tokio::time::timeout(WAIT, consumer.stream.next()).await.expect("a message in time").expect("stream open");
    let traceparent = d.headers.get(HEADER_TRACEPARENT).cloned();
    (decode_pod_events(&d.body, d.content_type.as_deref()).expect("pod events"), traceparent)
}

fn ids(events: &[PodEvent]) -> Vec<&str> {
    events.iter().map(|e| e.pod_id.as_str()).collect()
}

#[tokio::test]
async fn a_lone_event_leaves_at_once_as_a_plain_event_with_its_trace() {
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 1 }).await.expect("declare");
    let mut consumer = subscribe(bus.as_ref()).await;
    let events = EventPublisher::new(bus, 256);
    let traced = PodEvent { traceparent: Some(TRACEPARENT.into()), ..event("a", PodStatus::Available) };
    events.publish(traced).await.expect("publish");
    let (got, header) = next_events(&mut consumer).await;
    assert_eq!(ids(&got), ["a"]);
    assert_eq!(header.as_deref(), Some(TRACEPARENT));
    assert_eq!(got[0].traceparent, None, "a lone event's trace travels in the headers");
}

#[tokio::test]
async fn events_for_a_key_in_flight_leave_together_and_other_keys_go_ahead() {
    let memory = MemoryBus::new();
    memory.declare(&Topology { shards: 1 }).await.expect("declare");
    let mut consumer = subscribe(&memory).await;
    let bus = Arc::new(GatedBus::new(memory, Gate::Events));
    let events = EventPublisher::new(bus.clone(), 256);
    let first = tokio::spawn({
        let events = events.clone();
        async move { events.publish(event("a", PodStatus::Available)).await }
    });
    bus.wait_for_publishes(1, "the first event was never published").await;
    let mut same_key: Vec<_> = ["b", "c"]
        .into_iter()
        .map(|id| {
            let traceparent = (id == "c").then(|| TRACEPARENT.to_owned());
            Box::pin(events.publish(PodEvent { traceparent, ..event(id, PodStatus::Available) }))
        })
        .collect();
    for fut in &mut same_key {
        assert!(futures::poll!(fut).is_pending(), "an event left before the key's publish was done");
    }
    // Another key has its own lane: its publish starts while "a" is still in flight.
    let mut other = Box::pin(events.publish(event("x", PodStatus::Creating)));
    assert!(futures::poll!(&mut other).is_pending());
    bus.wait_for_publishes(2, "the other key's event waited for the first key").await;
    bus.gate.add_permits(10);
    first.await.expect("join").expect("first event");
    other.await.expect("other key");
    for fut in same_key {
        fut.await.expect("event");
    }
    assert_eq!(bus.publishes(), 3, "a, x, then b and c together");

    let mut messages = Vec::new();
    for _ in 0..3 {
        let (got, header) = next_events(&mut consumer).await;
        let traces: Vec<Option<&str>> = got.iter().map(|e| e.traceparent.as_deref()).collect();
        messages.push((ids(&got).join(","), header, format!("{traces:?}")));
    }
    messages.sort();
    assert_eq!(
        messages,
        [
            ("a".to_owned(), None, "[None]".to_owned()),
            ("b,c".to_owned(), None, format!("[None, Some({TRACEPARENT:?})]")),
            ("x".to_owned(), None, "[None]".to_owned()),
        ]
    );
}

/// `n` events at once over two statuses: each arrives exactly once, in the order published
/// within its routing key, in fewer messages than events.
async fn many_events_arrive_once_in_order_and_in_fewer_messages(bus: Arc<dyn Bus>, n: usize) {
    bus.declare(&Topology { shards: 1 }).await.expect("declare");
    let mut consumer = subscribe(bus.as_ref()).await;
    let events = EventPublisher::new(bus, 256);
    let statuses = [PodStatus::Creating, PodStatus::Available];
    let sent: Vec<PodEvent> = (0..n).map(|i| event(&format!("p{i}"), statuses[i % 2])).collect();
    let results = futures::future::join_all(sent.iter().map(|e| events.publish(e.clone()))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let (mut got, mut messages) = (Vec::new(), 0);
    while got.len() < n {
        got.extend(next_events(&mut consumer).await.0);
        messages += 1;
    }
    for status in statuses {
        let expected: Vec<&str> = sent.iter().filter(|e| e.status == status).map(|e| e.pod_id.as_str()).collect();
        let arrived: Vec<&str> = got.iter().filter(|e| e.status == status).map(|e| e.pod_id.as_str()).collect();
        assert_eq!(arrived, expected, "{status}: every event once, in the order published");
    }
    assert!(messages < n, "{n} events took {messages} messages");
}

#[tokio::test]
async fn many_events_in_memory() {
    many_events_arrive_once_in_order_and_in_fewer_messages(Arc::new(MemoryBus::new()), 300).await;
}

#[tokio::test]
async fn many_events_through_rabbitmq() {
    support::with_namespaced_bus(|bus| many_events_arrive_once_in_order_and_in_fewer_messages(bus, 300)).await;
}
