//! Kicks to shard queues with group commit: at most one publish per shard awaits its
//! confirm at a time, and the kicks that arrive meanwhile leave together in the next
//! message ([`ShardMessage::Kicks`]). An idle publisher sends a lone kick at once, as a plain
//! [`ShardMessage::Kick`], so batching adds no delay; under load it turns many confirmed
//! publishes, deliveries and acks into one each.

use std::sync::Arc;
use std::time::Duration;

use corral_protocol::topology::{COMMANDS_EXCHANGE, shard_routing_key};
use corral_protocol::{PodKick, ShardMessage};
use futures::future::BoxFuture;

use crate::gather::{BatchSender, Gatherer, out_message};
use crate::{Bus, BusError, OutMessage};

/// How long one publish may wait for its confirm before its kicks are reported as failed.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes kicks to `corral.commands`, gathered per shard. Cheap to clone; the publishing
/// task starts with the first kick and ends once every clone is dropped and the kicks in
/// hand are published.
#[derive(Clone)]
pub struct KickPublisher {
    inner: Gatherer<KickSender>,
}

impl std::fmt::Debug for KickPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KickPublisher").field("started", &self.inner.started()).finish_non_exhaustive()
    }
}

impl KickPublisher {
    /// `max_batch`: kicks in one message at most (1 sends every kick alone).
    pub fn new(bus: Arc<dyn Bus>, max_batch: usize) -> Self {
        Self { inner: Gatherer::new(KickSender { bus }, max_batch, "kick-publisher") }
    }

    /// Publishes `kick` to shard `shard`'s queue and returns once the broker confirmed the
    /// message carrying it (or that message failed: unroutable, not confirmed in time, bus
    /// down).
    pub async fn kick(&self, shard: u32, kick: PodKick) -> Result<(), BusError> {
        self.inner.submit(shard, kick).await
    }
}

struct KickSender {
    bus: Arc<dyn Bus>,
}

impl BatchSender for KickSender {
    type Key = u32;
    type Item = PodKick;

    fn send(&self, shard: u32, kicks: Vec<PodKick>) -> BoxFuture<'static, Result<(), BusError>> {
        let bus = Arc::clone(&self.bus);
        Box::pin(async move {
            let msg = message(kicks)?;
            let key = shard_routing_key(shard);
            match tokio::time::timeout(CONFIRM_TIMEOUT, bus.publish(COMMANDS_EXCHANGE, &key, msg)).await {
                Ok(published) => published,
                Err(_) => Err(BusError::NotConfirmed),
            }
        })
    }
}

/// A lone kick goes as [`ShardMessage::Kick`] with its trace context in the headers, as
/// every kick did before batches existed; more go as one [`ShardMessage::Kicks`].
fn message(mut kicks: Vec<PodKick>) -> Result<OutMessage, BusError> {
    let encoded = if kicks.len() == 1 {
        let PodKick { tenant, pod_id, generation, traceparent } = kicks.remove(0);
        corral_protocol::encode(&ShardMessage::Kick { tenant, pod_id, generation }).map(|body| (body, traceparent))
    } else {
        corral_protocol::encode(&ShardMessage::Kicks { kicks }).map(|body| (body, None))
    };
    out_message(encoded)
}
