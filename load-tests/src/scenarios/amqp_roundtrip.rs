//! Plain-lapin message round trips, as a system outside Corral would make them: a publisher
//! with publisher confirms and a bounded number of unconfirmed messages, and a consumer
//! that acks every delivery, matched by correlation id. `requests` uses it for spawn
//! requests to `corral.requests` (consuming the replies) and for its raw baseline (consuming
//! the messages themselves).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::Serialize;

use crate::progress::Progress;
use crate::stats::{Latencies, Summary};

/// What one round-trip run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    pub messages: usize,
    pub message_bytes: usize,
    /// First publish → last message consumed.
    pub seconds: f64,
    pub per_s: f64,
    /// Publish sent → the matching delivery consumed.
    pub latency: Summary,
    /// Publish sent → broker confirm.
    pub confirm: Summary,
    /// Consumed messages the check accepted.
    pub ok: usize,
    /// First few consumed messages the check refused.
    pub refused: Vec<String>,
    pub refused_count: usize,
}

/// One run: where to publish, what, and where the answers come back.
pub struct Plan<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    /// Queue consumed (replies, or the published messages themselves).
    pub consume_from: &'a str,
    pub messages: usize,
    /// Unconfirmed publishes at once.
    pub window: usize,
    pub prefetch: u16,
    pub timeout: Duration,
}

/// Opens a connection (closed when dropped with the returned value).
pub async fn connect(url: &str) -> anyhow::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await.context("connecting to rabbitmq")
}

/// Publishes `plan.messages` messages (`make(i)` → payload and properties; the correlation
/// id is set to `i`) on `pub_ch` and consumes as many on `sub_ch`, `check` judging each
/// consumed body.
pub async fn run(
    pub_ch: &Channel,
    sub_ch: &Channel,
    plan: &Plan<'_>,
    make: impl Fn(usize) -> (Vec<u8>, BasicProperties),
    check: impl Fn(&[u8]) -> Result<(), String>,
    progress: Progress,
) -> anyhow::Result<RoundTrip> {
    pub_ch.confirm_select(ConfirmSelectOptions::default()).await.context("enabling publisher confirms")?;
    sub_ch.basic_qos(plan.prefetch, BasicQosOptions::default()).await.context("setting the prefetch")?;
    let mut consumer = sub_ch
        .basic_consume(
            ShortString::from(plan.consume_from),
            ShortString::from("corral-load"),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("consuming")?;
    let message_bytes = make(0).0.len();
    let bar = progress.bar(plan.messages as u64, "round trips");
    let t0 = Instant::now();
    let publishing = futures::stream::iter(0..plan.messages)
        .map(|i| {
            let (payload, props) = make(i);
            let props = props.with_correlation_id(ShortString::from(i.to_string().as_str()));
            async move {
                let sent = Instant::now();
                let confirm = pub_ch
                    .basic_publish(
                        ShortString::from(plan.exchange),
                        ShortString::from(plan.routing_key),
                        BasicPublishOptions::default(),
                        &payload,
                        props,
                    )
                    .await
                    .context("publishing")?
                    .await
                    .context("awaiting the confirm")?;
                anyhow::ensure!(!matches!(confirm, Confirmation::Nack(_)), "the broker refused message {i}");
                Ok((i, sent, sent.elapsed()))
            }
        })
        .buffer_unordered(plan.window.max(1))
        .collect::<Vec<anyhow::Result<(usize, Instant, Duration)>>>();
    let consuming = async {
        let mut received: Vec<Option<Instant>> = vec![None; plan.messages];
        let (mut ok, mut refused, mut refused_count, mut got) = (0, Vec::new(), 0, 0);
        while got < plan.messages {
            let Some(delivery) = consumer.next().await else { anyhow::bail!("the consumer stopped") };
            let delivery = delivery.context("receiving")?;
            let now = Instant::now();
            let index = delivery.properties.correlation_id().as_ref().and_then(|c| c.as_str().parse::<usize>().ok());
            if let Some(slot) = index.and_then(|i| received.get_mut(i))
                && slot.is_none()
            {
                *slot = Some(now);
                got += 1;
                bar.inc(1);
                match check(&delivery.data) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        refused_count += 1;
                        if refused.len() < 5 {
                            refused.push(e);
                        }
                    }
                }
            }
            delivery.ack(BasicAckOptions::default()).await.context("acking")?;
        }
        Ok((received, ok, refused, refused_count, Instant::now()))
    };
    let joined = tokio::time::timeout(plan.timeout, async { tokio::join!(publishing, consuming) }).await;
    bar.finish_and_clear();
    let (published, consumed) =
        joined.map_err(|_| anyhow::anyhow!("round trips not done within {:?}", plan.timeout))?;
    let (received, ok, refused, refused_count, end) = consumed?;
    let mut latency = Latencies::new();
    let mut confirm = Latencies::new();
    for p in published {
        let (i, sent, confirmed) = p?;
        confirm.record(confirmed);
        if let Some(at) = received[i] {
            latency.record(at.saturating_duration_since(sent));
        }
    }
    let seconds = end.duration_since(t0).as_secs_f64();
    Ok(RoundTrip {
        messages: plan.messages,
        message_bytes,
        seconds,
        per_s: plan.messages as f64 / seconds.max(f64::EPSILON),
        latency: latency.summary(),
        confirm: confirm.summary(),
        ok,
        refused,
        refused_count,
    })
}
