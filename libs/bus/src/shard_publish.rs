//! Messages to shard queues with group commit: at most one publish per shard awaits its
//! confirm at a time, and the items that arrive meanwhile leave together in the next
//! message. Kicks from the gateway and pool-manager ([`ShardMessage::Kicks`]) and
//! observations from the health-poller ([`ShardMessage::Observations`]) travel this way.
//! An idle publisher sends a lone item at once, as a plain [`ShardMessage::Kick`] or
//! [`ShardMessage::Observation`], so batching adds no delay; under load it turns many
//! confirmed publishes, deliveries and acks into one each. With a minimum interval
//! ([`ShardPublisher::with_min_interval`]), a busy shard gets at most one message per
//! interval: a persistent message alone on its queue costs the broker a disk write and a
//! confirm of its own, so spacing them gathers more per message.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_routing_key};
use corral_protocol::{PodKick, PodObservation, ProtocolError, ShardMessage};
use futures::future::BoxFuture;

use crate::gather::{BatchSender, Gatherer, out_message};
use crate::{Bus, BusError};

/// How long one publish may wait for its confirm before its items are reported as failed.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Something published to a pod's shard queue, alone or gathered with others.
pub trait ShardItem: Send + Sized + 'static {
    /// Names the publishing task in traces.
    const TASK: &'static str;

    /// The encoded message carrying `items` (never empty), with the trace context for its
    /// headers: a lone item keeps its own there, as every message did before batches.
    fn encode(items: Vec<Self>) -> Result<(Vec<u8>, Option<String>), ProtocolError>;
}

impl ShardItem for PodKick {
    const TASK: &'static str = "kick-publisher";

    fn encode(mut kicks: Vec<Self>) -> Result<(Vec<u8>, Option<String>), ProtocolError> {
        if kicks.len() == 1 {
            let PodKick { tenant, pod_id, generation, traceparent } = kicks.remove(0);
            corral_protocol::encode(&ShardMessage::Kick { tenant, pod_id, generation }).map(|body| (body, traceparent))
        } else {
            corral_protocol::encode(&ShardMessage::Kicks { kicks }).map(|body| (body, None))
        }
    }
}

impl ShardItem for PodObservation {
    const TASK: &'static str = "observation-publisher";

    fn encode(mut observations: Vec<Self>) -> Result<(Vec<u8>, Option<String>), ProtocolError> {
        if observations.len() == 1 {
            let PodObservation { tenant, pod_id, container_id, what, traceparent } = observations.remove(0);
            let msg = ShardMessage::Observation { tenant, pod_id, container_id, what };
            corral_protocol::encode(&msg).map(|body| (body, traceparent))
        } else {
            corral_protocol::encode(&ShardMessage::Observations { observations }).map(|body| (body, None))
        }
    }
}

/// Publishes items to `corral.commands`, gathered per shard. Cheap to clone; the publishing
/// task starts with the first item and ends once every clone is dropped and the items in
/// hand are published.
pub struct ShardPublisher<T: ShardItem> {
    inner: Gatherer<ShardSender<T>>,
}

/// Kicks: a pod's desired state changed.
pub type KickPublisher = ShardPublisher<PodKick>;
/// What the health-poller saw of pods' containers.
pub type ObservationPublisher = ShardPublisher<PodObservation>;

impl<T: ShardItem> Clone for ShardPublisher<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T: ShardItem> std::fmt::Debug for ShardPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardPublisher").field("task", &T::TASK).field("started", &self.inner.started()).finish()
    }
}

impl<T: ShardItem> ShardPublisher<T> {
    /// `max_batch`: items in one message at most (1 sends every item alone).
    pub fn new(bus: Arc<dyn Bus>, max_batch: usize) -> Self {
        Self { inner: Gatherer::new(ShardSender { bus, item: PhantomData }, max_batch, T::TASK) }
    }

    /// Sends each shard at most one message per `interval`; an idle shard's first item still
    /// leaves at once. Zero (the default): a shard's next message leaves once the previous
    /// one is confirmed.
    #[must_use]
    pub fn with_min_interval(self, interval: Duration) -> Self {
        Self { inner: self.inner.with_min_interval(interval) }
    }

    /// Publishes `item` to shard `shard`'s queue and returns once the broker confirmed the
    /// message carrying it (or that message failed: unroutable, not confirmed in time, bus
    /// down).
    pub async fn publish(&self, shard: u32, item: T) -> Result<(), BusError> {
        self.inner.submit(shard, item).await
    }

    /// Queues `item` for shard `shard` now, so items queued one after another leave in that
    /// order, and returns the wait for the broker's confirm of the message carrying it (see
    /// [`ShardPublisher::publish`]), which the caller may hand to another task.
    pub fn send(&self, shard: u32, item: T) -> impl Future<Output = Result<(), BusError>> + Send + 'static + use<T> {
        self.inner.enqueue(shard, item)
    }
}

impl KickPublisher {
    /// Publishes a kick (see [`ShardPublisher::publish`]).
    pub async fn kick(&self, shard: u32, kick: PodKick) -> Result<(), BusError> {
        self.publish(shard, kick).await
    }
}

struct ShardSender<T> {
    bus: Arc<dyn Bus>,
    item: PhantomData<fn(T)>,
}

impl<T: ShardItem> BatchSender for ShardSender<T> {
    type Key = u32;
    type Item = T;

    fn send(&self, shard: u32, items: Vec<T>) -> BoxFuture<'static, Result<(), BusError>> {
        let bus = Arc::clone(&self.bus);
        Box::pin(async move {
            let msg = out_message(T::encode(items))?;
            let key = shard_routing_key(shard);
            match tokio::time::timeout(CONFIRM_TIMEOUT, bus.publish(COMMANDS_EXCHANGE, &key, msg)).await {
                Ok(published) => published,
                Err(_) => Err(BusError::NotConfirmed),
            }
        })
    }
}
