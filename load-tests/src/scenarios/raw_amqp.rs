//! The pipeline baseline: how fast the same broker moves kick-sized messages from one
//! confirming publisher to an acking consumer, through the same bus implementation Corral
//! uses (persistent, mandatory, confirmed publishes; manual acks). With more than one queue,
//! the messages go round-robin over them and each queue has a consumer of its own, as the
//! shard queues have: that prices the broker's work per queue and consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_bus::amqp::AmqpBus;
use corral_bus::{Bus as _, ConsumeOptions, OutMessage, Topology};
use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_queue, shard_routing_key};
use futures::StreamExt as _;
use serde::Serialize;
use tracing::Instrument as _;

use crate::stack::fresh_namespace;
use crate::stats::{Latencies, Summary};

/// Settings of the baseline.
#[derive(Debug, Clone)]
pub struct RawAmqpOptions {
    pub amqp_url: String,
    pub messages: usize,
    /// Publishes awaiting their confirm at once.
    pub in_flight: usize,
    pub prefetch: u16,
    pub body: Vec<u8>,
    pub timeout: Duration,
    /// Queues the messages are spread over (1: the single-queue baseline).
    pub queues: u32,
}

/// What the baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct RawAmqpResult {
    pub messages: usize,
    pub message_bytes: usize,
    pub queues: u32,
    /// Queues that delivered at least one message (all of them, unless spreading failed).
    pub queues_delivered: usize,
    /// First publish → last delivery acked.
    pub seconds: f64,
    pub msgs_per_s: f64,
    /// First publish → last confirm.
    pub publish_seconds: f64,
    pub confirm_latency: Summary,
}

/// Publishes and consumes `messages` messages on a queue of a fresh namespace, then deletes
/// the namespace's exchanges and queues.
pub async fn run(o: &RawAmqpOptions) -> anyhow::Result<RawAmqpResult> {
    let ns = fresh_namespace();
    let bus = AmqpBus::connect(&o.amqp_url, &ns).await.context("connecting to rabbitmq")?;
    let queues = o.queues.max(1);
    bus.declare(&Topology { shards: queues }).await.context("declaring the baseline queues")?;
    let result = measure(&bus, o, queues).await;
    // The consumers' channels are still closing. Once, deleting right after on the same
    // connection made the broker drop it ("CHANNEL_ERROR - expected 'channel.open'"), so the
    // queues go on a connection of their own.
    drop(bus);
    let cleanup = match AmqpBus::connect(&o.amqp_url, &ns).await {
        Ok(cleaner) => cleaner.delete_namespace_for_tests(queues).await.context("deleting the baseline queues"),
        Err(e) => Err(anyhow::Error::new(e).context("connecting to rabbitmq to delete the baseline queues")),
    };
    let result = result?;
    cleanup?;
    Ok(result)
}

async fn measure(bus: &AmqpBus, o: &RawAmqpOptions, queues: u32) -> anyhow::Result<RawAmqpResult> {
    let mut streams = Vec::new();
    let mut cancels = Vec::new();
    for q in 0..queues {
        let opts = ConsumeOptions {
            prefetch: o.prefetch,
            exclusive: false,
            consumer_tag: format!("corral-load-baseline-{q}"),
            auto_ack: false,
        };
        let consumer = bus.consume(&shard_queue(q), opts).await.context("consuming a baseline queue")?;
        streams.push(consumer.stream);
        cancels.push(consumer.cancel);
    }
    let cancel_all = move || cancels.into_iter().for_each(|cancel| cancel());
    let consumed = Arc::new(AtomicUsize::new(0));
    let expected = o.messages;
    let counter = consumed.clone();
    let mut stream = futures::stream::select_all(streams);
    let consume_task = tokio::spawn(
        async move {
            let mut delivered_from = std::collections::BTreeSet::new();
            while let Some(delivery) = stream.next().await {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "baseline ack failed");
                }
                if !delivered_from.contains(&delivery.queue) {
                    delivered_from.insert(delivery.queue);
                }
                if counter.fetch_add(1, Ordering::Relaxed) + 1 >= expected {
                    return Some((Instant::now(), delivered_from.len()));
                }
            }
            None
        }
        .instrument(tracing::info_span!("task", name = "baseline-consumer")),
    );

    let keys: Vec<String> = (0..queues).map(shard_routing_key).collect();
    let t0 = Instant::now();
    let confirms: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..o.messages)
        .map(|i| {
            let msg = OutMessage::new(o.body.clone());
            let key = keys[i % keys.len()].as_str();
            async move {
                let t = Instant::now();
                bus.publish(COMMANDS_EXCHANGE, key, msg).await.context("baseline publish")?;
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(o.in_flight.max(1))
        .collect()
        .await;
    let publish_seconds = t0.elapsed().as_secs_f64();
    let mut confirm = Latencies::new();
    let published: anyhow::Result<()> = confirms.into_iter().try_for_each(|c| c.map(|d| confirm.record(d)));
    let done = match published {
        Ok(()) => tokio::time::timeout(o.timeout, consume_task).await,
        Err(e) => {
            cancel_all();
            return Err(e);
        }
    };
    cancel_all();
    let (end, queues_delivered) = match done {
        Ok(Ok(Some(done))) => done,
        Ok(Ok(None)) => anyhow::bail!("the baseline consumer stopped early"),
        Ok(Err(e)) => anyhow::bail!("the baseline consumer failed: {e}"),
        Err(_) => anyhow::bail!(
            "only {} of {} baseline messages consumed within {:?}",
            consumed.load(Ordering::Relaxed),
            o.messages,
            o.timeout
        ),
    };
    let seconds = end.duration_since(t0).as_secs_f64();
    Ok(RawAmqpResult {
        messages: o.messages,
        message_bytes: o.body.len(),
        queues,
        queues_delivered,
        seconds,
        msgs_per_s: o.messages as f64 / seconds.max(f64::EPSILON),
        publish_seconds,
        confirm_latency: confirm.summary(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(queues: u32) -> RawAmqpOptions {
        RawAmqpOptions {
            amqp_url: std::env::var("CORRAL_TEST_AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
            messages: 300,
            in_flight: 32,
            prefetch: 32,
            body: b"{\"kick\":1}".to_vec(),
            timeout: Duration::from_secs(30),
            queues,
        }
    }

    /// Against the test broker (fails when it is not running): every message is confirmed,
    /// delivered and acked, whether over one queue or spread over several.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_baseline_moves_every_message_over_one_queue_or_several() {
        for queues in [1, 4] {
            let r = run(&options(queues)).await.expect("the test broker must be running (CORRAL_TEST_AMQP_URL)");
            assert_eq!((r.messages, r.queues, r.message_bytes), (300, queues, 10));
            assert_eq!(r.queues_delivered, usize::try_from(queues).expect("small"), "every queue got messages");
            assert_eq!(r.confirm_latency.count, 300, "every publish confirmed");
            assert!(r.msgs_per_s > 0.0, "{r:?}");
        }
    }
}
