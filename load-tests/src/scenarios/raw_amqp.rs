//! The pipeline baseline: how fast the same broker moves kick-sized messages from one
//! confirming publisher to one acking consumer, through the same bus implementation Corral
//! uses (persistent, mandatory, confirmed publishes; manual acks).

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
}

/// What the baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct RawAmqpResult {
    pub messages: usize,
    pub message_bytes: usize,
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
    bus.declare(&Topology { shards: 1 }).await.context("declaring the baseline queue")?;
    let result = measure(&bus, o).await;
    let cleanup = bus.delete_namespace_for_tests(1).await.context("deleting the baseline queues");
    let result = result?;
    cleanup?;
    Ok(result)
}

async fn measure(bus: &AmqpBus, o: &RawAmqpOptions) -> anyhow::Result<RawAmqpResult> {
    let opts = ConsumeOptions {
        prefetch: o.prefetch,
        exclusive: false,
        consumer_tag: "corral-load-baseline".into(),
        auto_ack: false,
    };
    let consumer = bus.consume(&shard_queue(0), opts).await.context("consuming the baseline queue")?;
    let consumed = Arc::new(AtomicUsize::new(0));
    let expected = o.messages;
    let counter = consumed.clone();
    let mut stream = consumer.stream;
    let consume_task = tokio::spawn(
        async move {
            while let Some(delivery) = stream.next().await {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, "baseline ack failed");
                }
                if counter.fetch_add(1, Ordering::Relaxed) + 1 >= expected {
                    return Some(Instant::now());
                }
            }
            None
        }
        .instrument(tracing::info_span!("task", name = "baseline-consumer")),
    );

    let key = shard_routing_key(0);
    let t0 = Instant::now();
    let confirms: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..o.messages)
        .map(|_| {
            let msg = OutMessage::new(o.body.clone());
            let key = key.as_str();
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
            (consumer.cancel)();
            return Err(e);
        }
    };
    (consumer.cancel)();
    let end = match done {
        Ok(Ok(Some(end))) => end,
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
        seconds,
        msgs_per_s: o.messages as f64 / seconds.max(f64::EPSILON),
        publish_seconds,
        confirm_latency: confirm.summary(),
    })
}
