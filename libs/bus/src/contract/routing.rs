//! Declaring, publishing and routing.

use std::collections::BTreeSet;
use std::sync::Arc;

use corral_protocol::topology::{
    COMMANDS_EXCHANGE, EVENTS_EXCHANGE, REQUESTS_EXCHANGE, REQUESTS_QUEUE, REQUESTS_ROUTING_KEY, shard_queue,
    shard_routing_key,
};

use super::{POLL, SHARDS, WAIT, consume, declared, msg, next, opts, publish_all, text};
use crate::{Bus, BusError, OutMessage, Topology};

/// Declaring twice succeeds, and the declared queues work afterwards.
pub async fn declare_is_idempotent(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    declared(&bus).await;
    bus.declare(&Topology { shards: SHARDS }).await.expect("a third declare");
    publish_all(&bus, SHARDS - 1, ["after redeclare".to_owned()]).await;
    let mut consumer = consume(&bus, &shard_queue(SHARDS - 1), 10).await;
    let got = next(&mut consumer, "message after redeclare").await;
    assert_eq!(text(&got), "after redeclare");
    got.ack().await.expect("ack");
    bus.ping().await.expect("ping");
}

/// Body, headers, content type, correlation id and reply-to survive the trip; a fresh
/// message has no attempts, is not redelivered, and can be acked exactly once.
pub async fn round_trip_preserves_the_message(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let sent = OutMessage {
        body: vec![0, 159, 146, 150, b'x'],
        content_type: Some("application/json".into()),
        headers: [("traceparent", "00-abc-def-01"), ("x-tapis-tenant", "dev")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        reply_to: Some("some.reply.queue".into()),
        correlation_id: Some("corr-42".into()),
    };
    bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(1), sent.clone()).await.expect("publish");
    let mut consumer = consume(&bus, &shard_queue(1), 10).await;
    let got = next(&mut consumer, "round trip").await;
    assert_eq!(got.body, sent.body);
    assert_eq!(got.content_type, sent.content_type);
    assert_eq!(got.headers, sent.headers);
    assert_eq!(got.reply_to, sent.reply_to);
    assert_eq!(got.correlation_id, sent.correlation_id);
    assert_eq!(got.attempts, 0);
    assert!(!got.redelivered, "a first delivery is not redelivered");
    assert_eq!(got.queue, shard_queue(1));
    got.ack().await.expect("first ack");
    assert!(got.ack().await.is_err(), "a second ack of the same delivery must fail");
}

/// A command reaches its shard's queue and no other. Each queue gets a marker published
/// afterwards; FIFO means a stray copy would arrive before the marker.
pub async fn routes_by_shard_key(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    publish_all(&bus, 2, ["for shard 2".to_owned()]).await;
    for shard in 0..SHARDS {
        publish_all(&bus, shard, [format!("marker {shard}")]).await;
    }
    for shard in 0..SHARDS {
        let mut consumer = consume(&bus, &shard_queue(shard), 10).await;
        let first = next(&mut consumer, "first message of a shard").await;
        if shard == 2 {
            assert_eq!(text(&first), "for shard 2");
            let second = next(&mut consumer, "marker of shard 2").await;
            assert_eq!(text(&second), "marker 2");
            second.ack().await.expect("ack");
        } else {
            assert_eq!(text(&first), format!("marker {shard}"), "shard {shard} got a message routed elsewhere");
        }
        first.ack().await.expect("ack");
    }
}

/// Mandatory publishes (`publish`, `send_to_queue`) that match no queue fail as
/// `Unroutable`; `publish_event` does not care.
pub async fn unroutable_publish_fails(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let err = bus.publish(COMMANDS_EXCHANGE, "shard.999", msg("lost")).await.expect_err("no shard.999 queue");
    assert!(
        matches!(&err, BusError::Unroutable { exchange, routing_key } if exchange == COMMANDS_EXCHANGE && routing_key == "shard.999"),
        "got {err:?}"
    );
    let err = bus.publish(EVENTS_EXCHANGE, "pod.nobody.AVAILABLE", msg("e")).await.expect_err("nobody bound");
    assert!(matches!(err, BusError::Unroutable { .. }), "got {err:?}");
    bus.publish_event(EVENTS_EXCHANGE, "pod.nobody.AVAILABLE", msg("e")).await.expect("events need no listener");
    let err = bus.send_to_queue("no-such-queue-for-the-contract", msg("r")).await.expect_err("no such queue");
    assert!(matches!(err, BusError::Unroutable { .. }), "got {err:?}");
    // The bus keeps working after a return.
    publish_all(&bus, 0, ["still fine".to_owned()]).await;
}

/// 1000 messages published in order are consumed in that order.
pub async fn order_is_preserved(bus: Arc<dyn Bus>) {
    const N: usize = 1000;
    declared(&bus).await;
    publish_all(&bus, 0, (0..N).map(|i| i.to_string())).await;
    let mut consumer = consume(&bus, &shard_queue(0), 100).await;
    for i in 0..N {
        let got = next(&mut consumer, "ordered message").await;
        assert_eq!(text(&got), i.to_string(), "message {i} out of order");
        got.ack().await.expect("ack");
    }
}

/// Many tasks publishing at once all get confirmed, and every message arrives once.
pub async fn concurrent_publishes_all_arrive(bus: Arc<dyn Bus>) {
    const TASKS: usize = 20;
    const EACH: usize = 10;
    declared(&bus).await;
    let publishers = (0..TASKS).map(|t| {
        let bus = bus.clone();
        async move {
            for i in 0..EACH {
                let body = format!("{t}-{i}");
                bus.publish(COMMANDS_EXCHANGE, &shard_routing_key(3), msg(&body))
                    .await
                    .unwrap_or_else(|e| panic!("concurrent publish {body}: {e}"));
            }
        }
    });
    tokio::time::timeout(WAIT, futures::future::join_all(publishers)).await.expect("publishers finish");
    let mut consumer = consume(&bus, &shard_queue(3), 50).await;
    let mut seen = BTreeSet::new();
    for _ in 0..TASKS * EACH {
        let got = next(&mut consumer, "concurrently published message").await;
        assert!(seen.insert(text(&got)), "duplicate {}", text(&got));
        got.ack().await.expect("ack");
    }
    let want: BTreeSet<String> = (0..TASKS).flat_map(|t| (0..EACH).map(move |i| format!("{t}-{i}"))).collect();
    assert_eq!(seen, want);
}

/// A topic subscription gets the matching events only, in order.
pub async fn topic_subscription_filters(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let (_, mut tenant_a) = bus.subscribe(EVENTS_EXCHANGE, "pod.tenant-a.*", opts(10)).await.expect("subscribe a");
    let (_, mut all) = bus.subscribe(EVENTS_EXCHANGE, "pod.#", opts(10)).await.expect("subscribe all");
    let (_, mut available) =
        bus.subscribe(EVENTS_EXCHANGE, "pod.*.AVAILABLE", opts(10)).await.expect("subscribe available");
    let events = [
        ("pod.tenant-a.AVAILABLE", "a1"),
        ("pod.tenant-b.AVAILABLE", "b1"),
        ("pod.tenant-a.deep.STOPPED", "a-deep"),
        ("pod.tenant-a.STOPPED", "a2"),
        ("other.tenant-a.AVAILABLE", "other"),
    ];
    for (key, body) in events {
        bus.publish_event(EVENTS_EXCHANGE, key, msg(body)).await.expect("publish event");
    }
    let expectations: [(&mut crate::Consumer, &[&str]); 3] =
        [(&mut tenant_a, &["a1", "a2"]), (&mut all, &["a1", "b1", "a-deep", "a2"]), (&mut available, &["a1", "b1"])];
    for (consumer, want) in expectations {
        for body in want {
            let got = next(consumer, "subscribed event").await;
            assert_eq!(text(&got), *body);
            got.ack().await.expect("ack");
        }
    }
    // Nothing else is pending: a final event every pattern matches comes next everywhere.
    bus.publish_event(EVENTS_EXCHANGE, "pod.tenant-a.AVAILABLE", msg("last")).await.expect("publish last");
    for consumer in [&mut tenant_a, &mut all, &mut available] {
        assert_eq!(text(&next(consumer, "last event").await), "last");
    }
}

/// A subscription bound with several keys gets every event matching any of them, once;
/// one with no key is refused.
pub async fn multi_key_subscription_matches_any_key_once(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let keys = ["pod.tenant-a.*", "pod.#.STOPPED"];
    let (_, mut both) = bus.subscribe_keys(EVENTS_EXCHANGE, &keys, opts(10)).await.expect("subscribe with two keys");
    let events = [
        ("pod.tenant-a.AVAILABLE", "a-available"),
        ("pod.tenant-b.AVAILABLE", "b-available"),
        ("pod.tenant-a.STOPPED", "a-stopped"),
        ("pod.tenant-b.STOPPED", "b-stopped"),
        ("pod.tenant-b.deep.STOPPED", "b-deep-stopped"),
    ];
    for (key, body) in events {
        bus.publish_event(EVENTS_EXCHANGE, key, msg(body)).await.expect("publish event");
    }
    for want in ["a-available", "a-stopped", "b-stopped", "b-deep-stopped"] {
        let got = next(&mut both, "event matching a key").await;
        assert_eq!(text(&got), want, "matching events, in order, each once");
        got.ack().await.expect("ack");
    }
    bus.publish_event(EVENTS_EXCHANGE, "pod.tenant-a.STOPPED", msg("last")).await.expect("publish last");
    assert_eq!(text(&next(&mut both, "last event").await), "last", "nothing else was pending");

    match bus.subscribe_keys(EVENTS_EXCHANGE, &[], opts(10)).await {
        Err(BusError::Other(_)) => {}
        Err(other) => panic!("no binding key must be refused as Other, got {other:?}"),
        Ok(_) => panic!("a subscription without binding keys must be refused"),
    }
}

/// Request/reply: a requester subscribes a private queue and names it in `reply_to`; the
/// responder answers with `send_to_queue`. Once the requester is gone, replying fails.
pub async fn request_reply_via_send_to_queue(bus: Arc<dyn Bus>) {
    declared(&bus).await;
    let (reply_queue, mut replies) =
        bus.subscribe(EVENTS_EXCHANGE, "contract.reply", opts(10)).await.expect("subscribe reply queue");
    let mut requests = consume(&bus, REQUESTS_QUEUE, 10).await;
    let request = OutMessage { reply_to: Some(reply_queue.clone()), correlation_id: Some("c-1".into()), ..msg("ping") };
    bus.publish(REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY, request).await.expect("publish request");

    let got = next(&mut requests, "request").await;
    assert_eq!(text(&got), "ping");
    let reply_to = got.reply_to.clone().expect("request carries reply_to");
    assert_eq!(reply_to, reply_queue);
    let reply = OutMessage { correlation_id: got.correlation_id.clone(), ..msg("pong") };
    bus.send_to_queue(&reply_to, reply).await.expect("send reply");
    got.ack().await.expect("ack request");

    let answer = next(&mut replies, "reply").await;
    assert_eq!(text(&answer), "pong");
    assert_eq!(answer.correlation_id.as_deref(), Some("c-1"));
    answer.ack().await.expect("ack reply");

    (replies.cancel)();
    drop(replies.stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match bus.send_to_queue(&reply_queue, msg("too late")).await {
            Err(BusError::Unroutable { .. }) => break,
            Ok(()) if tokio::time::Instant::now() < deadline => tokio::time::sleep(POLL).await,
            other => panic!("replying to a cancelled subscription should become unroutable, got {other:?}"),
        }
    }
}
