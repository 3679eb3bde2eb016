//! The message bus behind one trait ([`Bus`]): RabbitMQ via lapin ([`amqp::AmqpBus`]); the
//! in-process implementation and test fakes implement the same trait and pass the same
//! contract tests.
//!
//! Semantics every implementation keeps:
//! - `publish` returns only after the broker has taken responsibility for the message
//!   (publisher confirm) and fails if it could not be routed to any queue (mandatory).
//!   `publish_event` is for hints only: no confirm, not mandatory, not persistent.
//! - Deliveries are acknowledged explicitly, after the resulting state is durably written.
//!   [`Delivery::retry`] counts failures in a header and dead-letters the message with its
//!   reason once `max_attempts` is reached, so a poison message never blocks a queue.
//! - Per-queue order is kept for deliveries that are acked in order.

pub mod amqp;
pub mod contract;
pub mod events;
mod gather;
pub mod memory;
mod settle;
pub mod shard_publish;

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::stream::BoxStream;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    #[error("message to '{exchange}' with key '{routing_key}' could not be routed to any queue")]
    Unroutable { exchange: String, routing_key: String },
    #[error("broker did not confirm the message")]
    NotConfirmed,
    #[error("queue '{0}' already has an exclusive consumer")]
    ConsumerBusy(String),
    #[error("bus error: {0}")]
    Other(String),
}

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutMessage {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub reply_to: Option<String>,
    pub correlation_id: Option<String>,
}

impl OutMessage {
    pub fn new(body: Vec<u8>) -> Self {
        Self { body, content_type: Some("application/msgpack".into()), ..Self::default() }
    }
    pub fn header(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.headers.insert(k.into(), v.into());
        self
    }
}

/// How a delivery is settled. Implemented by each bus.
#[async_trait]
pub trait Acker: Send + Sync {
    async fn ack(&self) -> Result<(), BusError>;
    /// Settles the delivery as failed: republish it with the attempt count increased, or
    /// after `max_attempts` send it to the dead-letter exchange with `reason`.
    async fn retry(&self, msg: &Delivery, reason: &str, max_attempts: u32) -> Result<(), BusError>;
    /// Dead-letters the delivery at once with `reason` (malformed, never retryable).
    async fn dead_letter(&self, msg: &Delivery, reason: &str) -> Result<(), BusError>;
}

/// A received message.
pub struct Delivery {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub reply_to: Option<String>,
    pub correlation_id: Option<String>,
    pub redelivered: bool,
    /// Failed processing attempts so far (from the attempts header).
    pub attempts: u32,
    pub queue: String,
    pub acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("bytes", &self.body.len())
            .field("attempts", &self.attempts)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub async fn ack(&self) -> Result<(), BusError> {
        self.acker.ack().await
    }
    pub async fn retry(&self, reason: &str, max_attempts: u32) -> Result<(), BusError> {
        self.acker.retry(self, reason, max_attempts).await
    }
    pub async fn dead_letter(&self, reason: &str) -> Result<(), BusError> {
        self.acker.dead_letter(self, reason).await
    }
}

/// Options for a consumer.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Unacked deliveries in flight.
    pub prefetch: u16,
    /// Refuse to share the queue with another consumer (shard ownership).
    pub exclusive: bool,
    pub consumer_tag: String,
    /// Deliveries count as acknowledged once handed to the consumer: no ack travels back,
    /// `prefetch` does not apply and nothing is redelivered when the consumer goes away
    /// ([`Delivery::ack`] does nothing; retry and dead-letter still republish). Only for
    /// hints whose loss a resync makes up for (pod events), where it saves the broker and
    /// the client a frame per message.
    pub auto_ack: bool,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        Self { prefetch: 256, exclusive: false, consumer_tag: String::new(), auto_ack: false }
    }
}

/// A stream of deliveries; dropping it (or calling `cancel`) stops consuming, and the
/// broker redelivers whatever was not acked.
pub struct Consumer {
    pub stream: BoxStream<'static, Delivery>,
    pub cancel: Box<dyn FnOnce() + Send>,
}

/// What a service declares at start. Declaring is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Number of shard queues `corral.shard.<k>`.
    pub shards: u32,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Declares exchanges (`corral.commands`, `corral.events`, `corral.requests`, dead
    /// letter), the shard queues and their bindings, the requests queue and the dead-letter
    /// queue. Safe to call from every service at every start.
    async fn declare(&self, topology: &Topology) -> Result<(), BusError>;

    /// Publishes with confirm and mandatory routing.
    async fn publish(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError>;

    /// Publishes a hint (pod events): without the mandatory flag (nobody may be listening
    /// yet), not persistent, and without waiting for a publisher confirm, so it may be lost
    /// when the connection fails at that moment. Only for messages whose loss a receiver's
    /// periodic resync makes up for; commands go through [`Bus::publish`].
    async fn publish_event(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError>;

    /// Publishes to a queue by name (replies to `reply_to`).
    async fn send_to_queue(&self, queue: &str, msg: OutMessage) -> Result<(), BusError>;

    /// Starts consuming a named queue.
    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer, BusError>;

    /// Declares a private, auto-deleted queue bound to `exchange` with `binding_key` (topic
    /// pattern) and consumes it. Used for event subscriptions and reply queues.
    async fn subscribe(
        &self,
        exchange: &str,
        binding_key: &str,
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError>;

    /// As [`Bus::subscribe`], with the queue bound once per key: it gets each message that
    /// matches any of them, once. At least one key is needed.
    async fn subscribe_keys(
        &self,
        exchange: &str,
        binding_keys: &[&str],
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError>;

    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), BusError>;
}
