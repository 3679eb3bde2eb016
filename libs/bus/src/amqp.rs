//! RabbitMQ implementation of [`Bus`], on lapin.
//!
//! # Names
//! Exchange and queue names given to the trait are *logical*; on the broker they are
//! prefixed with the bus's namespace (`{ns}.corral.shard.3`; an empty namespace adds no
//! prefix) so several deployments or test runs can share one broker and vhost. Routing
//! keys are not prefixed. Two names are *physical*, because they cross system boundaries:
//! - [`Bus::subscribe`] returns the physical (server-generated) name of its private queue,
//!   so it can be handed out as a `reply_to`;
//! - [`Bus::send_to_queue`] takes a physical name as given: a `reply_to` set by another
//!   system is a raw queue name. Use [`AmqpBus::queue_name`] to send to a declared queue.
//!
//! [`Delivery::queue`](crate::Delivery::queue) is the logical name for consumers of named
//! queues and the physical name for subscriptions.
//!
//! # Publishing
//! One channel in confirm mode is shared by all publishers: each publish waits for its own
//! confirm without holding a lock, so many tasks publish concurrently. `publish` and
//! `send_to_queue` are mandatory (a `basic.return` becomes [`BusError::Unroutable`]) and
//! persistent; a nack is [`BusError::NotConfirmed`]. `publish_event` sends hints on a second
//! shared channel without confirms: not mandatory, transient, and done once the frames are
//! written to the connection (no broker round trip, no confirm for the broker to issue).
//! Publishing to an exchange that does not exist makes the broker close the channel: that
//! publish fails with [`BusError::Other`], publishes in flight on that channel fail too, and
//! the next publish opens a fresh channel.
//!
//! # Connection loss
//! A supervisor task notices a dead connection (connection events, errors seen by
//! operations, and a twice-a-second status check) and reconnects with exponential backoff
//! (100 ms doubling to 10 s, jittered). Meanwhile every operation fails fast with
//! [`BusError::Unavailable`]. **Consumers do not survive a reconnect**: their streams end
//! when the connection dies and callers consume again once the bus is back (their unacked
//! deliveries are redelivered by the broker). Exclusive private subscription queues die
//! with the connection, so subscribers re-subscribe and get a new queue name.
//!
//! # Consumers
//! Each consumer has its own channel with `basic.qos(prefetch)` and manual acks. Cancelling
//! it (or dropping its stream) closes that channel, which makes the broker requeue its
//! unacked deliveries at once (flagged `redelivered`). An exclusive consumer conflict is
//! [`BusError::ConsumerBusy`].

mod consume;
mod convert;
mod link;
mod publish;

use std::sync::Arc;

use async_trait::async_trait;
use corral_protocol::topology::{
    COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, REQUESTS_EXCHANGE, REQUESTS_QUEUE,
    REQUESTS_ROUTING_KEY, shard_queue, shard_routing_key,
};
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::{Bus, BusError, ConsumeOptions, Consumer, OutMessage, Topology};
use consume::Source;
use convert::short;
use link::Link;

/// Reply code of a normal channel close.
const REPLY_SUCCESS: u16 = 200;

/// The exchanges [`Bus::declare`] creates, all durable.
const EXCHANGES: [(&str, ExchangeKind); 4] = [
    (COMMANDS_EXCHANGE, ExchangeKind::Direct),
    (EVENTS_EXCHANGE, ExchangeKind::Topic),
    (REQUESTS_EXCHANGE, ExchangeKind::Direct),
    (DEAD_LETTER_EXCHANGE, ExchangeKind::Fanout),
];

/// RabbitMQ-backed [`Bus`]. Cloning shares the connection.
#[derive(Clone)]
pub struct AmqpBus {
    link: Arc<Link>,
}

impl std::fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBus").field("namespace", &self.link.namespace).finish_non_exhaustive()
    }
}

impl AmqpBus {
    /// Connects to `url` (`amqp://user:pass@host:port/vhost`); fails with
    /// [`BusError::Unavailable`] if the broker cannot be reached now. Later losses of the
    /// connection are repaired in the background.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, BusError> {
        Ok(Self { link: Link::connect(url, namespace).await? })
    }

    /// The namespace prefixed to every exchange and queue name.
    pub fn namespace(&self) -> &str {
        &self.link.namespace
    }

    /// Physical broker name of a logical queue or exchange name (for [`Bus::send_to_queue`]
    /// to a declared queue, or for other systems that must publish to it).
    pub fn queue_name(&self, logical: &str) -> String {
        self.link.physical(logical)
    }

    /// Closes the connection from the client side, as a broker restart would, so tests can
    /// exercise the reconnect path without disturbing anyone else on the broker.
    #[doc(hidden)]
    pub async fn force_close_for_tests(&self) {
        self.link.force_close().await;
    }

    /// Deletes this namespace's exchanges and queues (as declared for `shards` shards).
    /// Refuses the empty namespace, which is a real deployment's topology.
    #[doc(hidden)]
    pub async fn delete_namespace_for_tests(&self, shards: u32) -> Result<(), BusError> {
        if self.link.namespace.is_empty() {
            return Err(BusError::Other("refusing to delete the topology of the empty namespace".into()));
        }
        let channel = self.topology_channel().await?;
        let queues = (0..shards).map(shard_queue).chain([REQUESTS_QUEUE.to_owned(), DEAD_LETTER_QUEUE.to_owned()]);
        for queue in queues {
            let name = short(&self.link.physical(&queue), "queue name")?;
            channel.queue_delete(name, QueueDeleteOptions::default()).await.map_err(|e| self.link.error(&e))?;
        }
        for (exchange, _) in EXCHANGES {
            let name = short(&self.link.physical(exchange), "exchange name")?;
            channel.exchange_delete(name, ExchangeDeleteOptions::default()).await.map_err(|e| self.link.error(&e))?;
        }
        self.close_quietly(&channel).await;
        Ok(())
    }

    /// A short-lived channel for declarations: a failed declaration closes its channel, and
    /// that must not take the publishing channel down with it.
    async fn topology_channel(&self) -> Result<Channel, BusError> {
        let live = self.link.live()?;
        live.conn.create_channel().await.map_err(|e| self.link.error(&e))
    }

    async fn close_quietly(&self, channel: &Channel) {
        if let Err(e) = channel.close(REPLY_SUCCESS, "done".into()).await {
            tracing::debug!(error = %e, "closing a topology channel failed");
        }
    }

    async fn declare_queue(&self, channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), BusError> {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("classic")));
        let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        let name = short(&self.link.physical(queue), "queue name")?;
        channel.queue_declare(name.clone(), options, args).await.map_err(|e| self.link.error(&e))?;
        let exchange = short(&self.link.physical(exchange), "exchange name")?;
        channel
            .queue_bind(name, exchange, short(key, "routing key")?, QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(|e| self.link.error(&e))
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        let channel = self.topology_channel().await?;
        for (exchange, kind) in EXCHANGES {
            let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
            let name = short(&self.link.physical(exchange), "exchange name")?;
            channel
                .exchange_declare(name, kind, options, FieldTable::default())
                .await
                .map_err(|e| self.link.error(&e))?;
        }
        for shard in 0..topology.shards {
            self.declare_queue(&channel, &shard_queue(shard), COMMANDS_EXCHANGE, &shard_routing_key(shard)).await?;
        }
        self.declare_queue(&channel, REQUESTS_QUEUE, REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY).await?;
        self.declare_queue(&channel, DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, "").await?;
        self.close_quietly(&channel).await;
        Ok(())
    }

    async fn publish(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.link.publish(exchange, routing_key, &msg, true).await
    }

    async fn publish_event(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.link.publish_hint(exchange, routing_key, &msg).await
    }

    /// `queue` is a physical name (see the module docs).
    async fn send_to_queue(&self, queue: &str, msg: OutMessage) -> Result<(), BusError> {
        self.link.publish("", queue, &msg, true).await
    }

    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer, BusError> {
        consume::start(&self.link, Source::Named(queue), &opts).await.map(|(_, consumer)| consumer)
    }

    /// Returns the physical name of the private queue (usable as `reply_to`).
    async fn subscribe(
        &self,
        exchange: &str,
        binding_key: &str,
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        self.subscribe_keys(exchange, &[binding_key], opts).await
    }

    /// Returns the physical name of the private queue (usable as `reply_to`).
    async fn subscribe_keys(
        &self,
        exchange: &str,
        binding_keys: &[&str],
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        consume::start(&self.link, Source::Private { exchange, binding_keys }, &opts).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.link.publisher(link::Lane::Confirmed).await.map(|_| ())
    }
}
