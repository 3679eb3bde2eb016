//! Kicks to shard queues with group commit: at most one publish per shard awaits its
//! confirm at a time, and the kicks that arrive meanwhile leave together in the next
//! message ([`ShardMessage::Kicks`]). An idle publisher sends a lone kick at once, as a plain
//! [`ShardMessage::Kick`], so batching adds no delay; under load it turns many confirmed
//! publishes, deliveries and acks into one each.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use corral_protocol::topology::{COMMANDS_EXCHANGE, HEADER_TRACEPARENT, shard_routing_key};
use corral_protocol::{PodKick, ShardMessage};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::{Bus, BusError, OutMessage};

/// How long one publish may wait for its confirm before its kicks are reported as failed.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

struct Pending {
    shard: u32,
    kick: PodKick,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// Publishes kicks to `corral.commands`, gathered per shard. Cheap to clone; the publishing
/// task starts with the first kick and ends once every clone is dropped and the kicks in
/// hand are published.
#[derive(Clone)]
pub struct KickPublisher {
    bus: Arc<dyn Bus>,
    max_batch: usize,
    tx: Arc<OnceLock<mpsc::UnboundedSender<Pending>>>,
}

impl std::fmt::Debug for KickPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KickPublisher").field("started", &self.tx.get().is_some()).finish_non_exhaustive()
    }
}

impl KickPublisher {
    /// `max_batch`: kicks in one message at most (1 sends every kick alone).
    pub fn new(bus: Arc<dyn Bus>, max_batch: usize) -> Self {
        Self { bus, max_batch: max_batch.max(1), tx: Arc::new(OnceLock::new()) }
    }

    /// Publishes `kick` to shard `shard`'s queue and returns once the broker confirmed the
    /// message carrying it (or that message failed: unroutable, not confirmed in time, bus
    /// down).
    pub async fn kick(&self, shard: u32, kick: PodKick) -> Result<(), BusError> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let span = tracing::info_span!("task", name = "kick-publisher");
            tokio::spawn(publish_loop(Arc::clone(&self.bus), self.max_batch, rx).instrument(span));
            tx
        });
        let (done, answer) = oneshot::channel();
        tx.send(Pending { shard, kick, done })
            .map_err(|_| BusError::Unavailable("the kick publisher has stopped".into()))?;
        answer.await.unwrap_or_else(|_| Err(BusError::Unavailable("the kick publisher has stopped".into())))
    }
}

/// Kicks waiting per shard, and which shards have a publish in flight.
struct Lanes {
    max_batch: usize,
    waiting: HashMap<u32, VecDeque<Pending>>,
    busy: HashSet<u32>,
}

impl Lanes {
    /// The next batch of `shard` if it has kicks waiting and no publish in flight.
    fn take(&mut self, shard: u32) -> Option<Vec<Pending>> {
        if self.busy.contains(&shard) {
            return None;
        }
        let queue = self.waiting.get_mut(&shard)?;
        let n = queue.len().min(self.max_batch);
        if n == 0 {
            return None;
        }
        let batch: Vec<Pending> = queue.drain(..n).collect();
        if queue.is_empty() {
            self.waiting.remove(&shard);
        }
        self.busy.insert(shard);
        Some(batch)
    }
}

async fn publish_loop(bus: Arc<dyn Bus>, max_batch: usize, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let mut lanes = Lanes { max_batch, waiting: HashMap::new(), busy: HashSet::new() };
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            got = rx.recv(), if open => {
                let Some(first) = got else {
                    open = false;
                    continue;
                };
                // Everything already queued joins this round, so kicks sent together leave together.
                let mut shards = vec![first.shard];
                lanes.waiting.entry(first.shard).or_default().push_back(first);
                while let Ok(p) = rx.try_recv() {
                    shards.push(p.shard);
                    lanes.waiting.entry(p.shard).or_default().push_back(p);
                }
                for shard in shards {
                    if let Some(batch) = lanes.take(shard) {
                        in_flight.push(publish_batch(Arc::clone(&bus), shard, batch));
                    }
                }
            }
            Some(shard) = in_flight.next() => {
                lanes.busy.remove(&shard);
                if let Some(batch) = lanes.take(shard) {
                    in_flight.push(publish_batch(Arc::clone(&bus), shard, batch));
                }
            }
            else => break,
        }
    }
}

/// Publishes one batch, tells each of its kicks how it went, and hands the shard back.
async fn publish_batch(bus: Arc<dyn Bus>, shard: u32, batch: Vec<Pending>) -> u32 {
    let (kicks, waiters): (Vec<PodKick>, Vec<_>) = batch.into_iter().map(|p| (p.kick, p.done)).unzip();
    let result = match message(kicks) {
        Ok(msg) => {
            let key = shard_routing_key(shard);
            match tokio::time::timeout(CONFIRM_TIMEOUT, bus.publish(COMMANDS_EXCHANGE, &key, msg)).await {
                Ok(published) => published,
                Err(_) => Err(BusError::NotConfirmed),
            }
        }
        Err(e) => Err(e),
    };
    for done in waiters {
        // A caller that gave up waiting has dropped its receiver: nothing to tell.
        let _ = done.send(result.clone());
    }
    shard
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
    let (body, traceparent) = encoded.map_err(|e| BusError::Other(e.to_string()))?;
    let msg = OutMessage::new(body);
    Ok(match traceparent {
        Some(tp) => msg.header(HEADER_TRACEPARENT, tp),
        None => msg,
    })
}
