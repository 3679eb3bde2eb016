//! Consumers: one channel each (its own prefetch, and a channel error such as an exclusive
//! conflict does not disturb anyone else), and the ackers of their deliveries.

use std::sync::Arc;

use async_trait::async_trait;
use corral_protocol::topology::{DEAD_LETTER_EXCHANGE, HEADER_ATTEMPTS};
use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, message};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{Instrument, debug, info_span, warn};

use super::convert::{headers, is_access_refused, short};
use super::link::Link;
use crate::settle::{attempts_from_header, dead_letter_message, plan_retry};
use crate::{Acker, BusError, ConsumeOptions, Consumer, Delivery, OutMessage};

/// Reply code of a normal channel close.
const REPLY_SUCCESS: u16 = 200;

/// Which queue to consume.
pub(crate) enum Source<'a> {
    /// A declared queue, by logical name.
    Named(&'a str),
    /// A new server-named, exclusive, auto-deleted queue bound to a logical exchange with
    /// each of the keys.
    Private { exchange: &'a str, binding_keys: &'a [&'a str] },
}

/// What every delivery of one consumer shares.
struct Origin {
    link: Arc<Link>,
    physical: String,
    /// Name reported in [`Delivery::queue`]: logical for named queues, the server's name
    /// for private ones.
    reported: String,
    /// The broker counts deliveries as acked when it sends them.
    auto_ack: bool,
}

/// Starts a consumer; returns the physical queue name with it.
pub(crate) async fn start(
    link: &Arc<Link>,
    source: Source<'_>,
    opts: &ConsumeOptions,
) -> Result<(String, Consumer), BusError> {
    let live = link.live()?;
    let channel = live.conn.create_channel().await.map_err(|e| link.error(&e))?;
    channel.basic_qos(opts.prefetch, BasicQosOptions::default()).await.map_err(|e| link.error(&e))?;
    let (physical, reported) = match source {
        Source::Named(queue) => (link.physical(queue), queue.to_owned()),
        Source::Private { exchange, binding_keys } => {
            let name = declare_private(link, &channel, exchange, binding_keys).await?;
            (name.clone(), name)
        }
    };
    let tag = short(&opts.consumer_tag, "consumer tag")?;
    let options =
        BasicConsumeOptions { exclusive: opts.exclusive, no_ack: opts.auto_ack, ..BasicConsumeOptions::default() };
    let consumer = channel
        .basic_consume(short(&physical, "queue name")?, tag, options, FieldTable::default())
        .await
        .map_err(|e| if is_access_refused(&e) { BusError::ConsumerBusy(reported.clone()) } else { link.error(&e) })?;

    let token = CancellationToken::new();
    let span = info_span!("amqp_consumer", queue = %physical);
    tokio::spawn(close_channel_when_cancelled(channel, token.clone()).instrument(span));
    let origin = Arc::new(Origin { link: link.clone(), physical: physical.clone(), reported, auto_ack: opts.auto_ack });
    let state = StreamState { consumer, _close_on_drop: token.clone().drop_guard(), token: token.clone(), origin };
    let stream = futures::stream::unfold(state, next_delivery).boxed();
    Ok((physical, Consumer { stream, cancel: Box::new(move || token.cancel()) }))
}

async fn declare_private(
    link: &Link,
    channel: &Channel,
    exchange: &str,
    binding_keys: &[&str],
) -> Result<String, BusError> {
    if binding_keys.is_empty() {
        return Err(BusError::Other("a subscription needs at least one binding key".into()));
    }
    let options = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
    let queue = channel
        .queue_declare(ShortString::default(), options, FieldTable::default())
        .await
        .map_err(|e| link.error(&e))?;
    let exchange = short(&link.physical(exchange), "exchange name")?;
    for key in binding_keys {
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.clone(),
                short(key, "binding key")?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| link.error(&e))?;
    }
    Ok(queue.name().as_str().to_owned())
}

/// Closing the channel (rather than only cancelling the consumer) is what makes the broker
/// requeue the deliveries still unacked, so they are redelivered at once.
async fn close_channel_when_cancelled(channel: Channel, token: CancellationToken) {
    token.cancelled().await;
    if channel.status().connected()
        && let Err(e) = channel.close(REPLY_SUCCESS, "consumer cancelled".into()).await
    {
        debug!(error = %e, "closing a cancelled consumer's channel failed");
    }
}

struct StreamState {
    consumer: lapin::Consumer,
    _close_on_drop: DropGuard,
    token: CancellationToken,
    origin: Arc<Origin>,
}

async fn next_delivery(mut st: StreamState) -> Option<(Delivery, StreamState)> {
    // Deliveries prefetched before a cancel are requeued by the channel close; handing
    // them out as well would only produce acks that fail.
    if st.token.is_cancelled() {
        return None;
    }
    let next = tokio::select! {
        () = st.token.cancelled() => return None,
        next = st.consumer.next() => next?,
    };
    match next {
        Ok(delivery) => Some((convert(delivery, &st.origin), st)),
        Err(e) => {
            warn!(error = %e, queue = %st.origin.physical, "consumer ended with an error");
            None
        }
    }
}

fn convert(delivery: message::Delivery, origin: &Arc<Origin>) -> Delivery {
    let message::Delivery { redelivered, properties, data, acker, .. } = delivery;
    let headers = headers(properties.headers().as_ref());
    let attempts = attempts_from_header(headers.get(HEADER_ATTEMPTS).map(String::as_str));
    let text = |s: &Option<ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
    Delivery {
        body: data,
        content_type: text(properties.content_type()),
        reply_to: text(properties.reply_to()),
        correlation_id: text(properties.correlation_id()),
        headers,
        redelivered,
        attempts,
        queue: origin.reported.clone(),
        acker: Box::new(AmqpAcker { inner: acker, origin: origin.clone() }),
    }
}

/// Settles one delivery. Republishing (retry, dead-letter) is confirmed before the ack, so
/// a crash in between duplicates the message instead of losing it.
struct AmqpAcker {
    inner: lapin::Acker,
    origin: Arc<Origin>,
}

impl AmqpAcker {
    async fn settle(&self, republish: Option<(&str, OutMessage)>) -> Result<(), BusError> {
        if self.origin.auto_ack {
            // Already settled by the broker: only a republish is left to do.
            if let Some((exchange, msg)) = republish {
                self.origin.link.publish(exchange, &self.origin.physical, &msg, true).await?;
            }
            return Ok(());
        }
        if !self.inner.usable() {
            return Err(self.unusable());
        }
        let link = &self.origin.link;
        if let Some((exchange, msg)) = republish {
            link.publish(exchange, &self.origin.physical, &msg, true).await?;
        }
        match self.inner.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.unusable()),
            Err(e) => Err(link.error(&e)),
        }
    }

    fn unusable(&self) -> BusError {
        if self.inner.poisoned() {
            BusError::Unavailable("the delivery's channel is closed; the message will be redelivered".into())
        } else {
            BusError::Other("delivery already settled".into())
        }
    }
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(None).await
    }

    async fn retry(&self, msg: &Delivery, reason: &str, max_attempts: u32) -> Result<(), BusError> {
        let (target, out) = plan_retry(msg, reason, max_attempts);
        self.settle(Some((target.exchange(), out))).await
    }

    async fn dead_letter(&self, msg: &Delivery, reason: &str) -> Result<(), BusError> {
        self.settle(Some((DEAD_LETTER_EXCHANGE, dead_letter_message(msg, reason)))).await
    }
}
