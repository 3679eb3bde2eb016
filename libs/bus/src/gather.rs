//! Group commit over publishes: per lane (a shard queue, an event routing key) at most one
//! publish is in flight, and the items that arrive meanwhile leave together in the next
//! message. An idle lane sends a lone item at once, so gathering adds no delay; under load
//! it turns many publishes (and their deliveries, confirms and acks) into one each.
//!
//! A lane may also be given a minimum interval between the starts of its publishes: then a
//! busy lane sends at most one message per interval, however fast the broker confirms,
//! while an idle lane still sends at once. This is for messages the broker must store: a
//! persistent message costs the broker about the same whether it carries one item or dozens.
//!
//! What a message looks like and how it is published is the [`BatchSender`]'s business
//! ([`crate::shard_publish`], [`crate::events`]); this module only decides what leaves together.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use corral_protocol::topology::HEADER_TRACEPARENT;

use crate::{BusError, OutMessage};

/// Publishes one gathered batch.
pub(crate) trait BatchSender: Send + Sync + 'static {
    /// The lane: batches of one lane are published one at a time, in order.
    type Key: Clone + Eq + Hash + Send + 'static;
    type Item: Send + 'static;
    /// Publishes `items` (never empty, at most the batch limit) as one message on `key`.
    fn send(&self, key: Self::Key, items: Vec<Self::Item>) -> BoxFuture<'static, Result<(), BusError>>;
}

struct Pending<K, T> {
    key: K,
    item: T,
    done: oneshot::Sender<Result<(), BusError>>,
}

type Queue<S> = mpsc::UnboundedSender<Pending<<S as BatchSender>::Key, <S as BatchSender>::Item>>;

/// Hands items to a publishing task that gathers them per lane. Cheap to clone; the task
/// starts with the first item and ends once every clone is dropped and the items in hand
/// are published.
pub(crate) struct Gatherer<S: BatchSender> {
    sender: Arc<S>,
    max_batch: usize,
    /// Between the starts of two publishes on one lane, at least this long.
    min_interval: Duration,
    /// Name of the publishing task, for traces.
    task: &'static str,
    tx: Arc<OnceLock<Queue<S>>>,
}

impl<S: BatchSender> Clone for Gatherer<S> {
    fn clone(&self) -> Self {
        Self {
            sender: Arc::clone(&self.sender),
            max_batch: self.max_batch,
            min_interval: self.min_interval,
            task: self.task,
            tx: Arc::clone(&self.tx),
        }
    }
}

impl<S: BatchSender> Gatherer<S> {
    /// `max_batch`: items in one message at most (1 sends every item alone).
    pub(crate) fn new(sender: S, max_batch: usize, task: &'static str) -> Self {
        Self {
            sender: Arc::new(sender),
            max_batch: max_batch.max(1),
            min_interval: Duration::ZERO,
            task,
            tx: Arc::new(OnceLock::new()),
        }
    }

    /// Lets each lane start a publish at most once per `interval` (zero: whenever the
    /// previous one is done).
    pub(crate) fn with_min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    pub(crate) fn started(&self) -> bool {
        self.tx.get().is_some()
    }

    /// Publishes `item` on lane `key` and returns once the message carrying it was
    /// published (as the sender defines it), or failed.
    pub(crate) async fn submit(&self, key: S::Key, item: S::Item) -> Result<(), BusError> {
        self.enqueue(key, item).await
    }

    /// Queues `item` on lane `key` now, so items queued one after another leave in that
    /// order, and returns the wait for the outcome of the message carrying it.
    pub(crate) fn enqueue(&self, key: S::Key, item: S::Item) -> impl Future<Output = Result<(), BusError>> + use<S> {
        let task = self.task;
        let stopped = move || BusError::Unavailable(format!("the {task} has stopped"));
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let span = tracing::info_span!("task", name = self.task);
            let pace = Pace { max_batch: self.max_batch, min_interval: self.min_interval };
            tokio::spawn(publish_loop(Arc::clone(&self.sender), pace, rx).instrument(span));
            tx
        });
        let (done, answer) = oneshot::channel();
        let queued = tx.send(Pending { key, item, done }).map_err(|_| stopped());
        async move {
            queued?;
            answer.await.unwrap_or_else(|_| Err(stopped()))
        }
    }
}

/// Items waiting per lane, and which lanes have a publish in flight.
struct Lanes<K, T> {
    max_batch: usize,
    waiting: HashMap<K, VecDeque<Pending<K, T>>>,
    busy: HashSet<K>,
}

impl<K: Clone + Eq + Hash, T> Lanes<K, T> {
    fn push(&mut self, p: Pending<K, T>) {
        self.waiting.entry(p.key.clone()).or_default().push_back(p);
    }

    /// The next batch of `key` if it has items waiting and no publish in flight.
    fn take(&mut self, key: &K) -> Option<Vec<Pending<K, T>>> {
        if self.busy.contains(key) {
            return None;
        }
        let queue = self.waiting.get_mut(key)?;
        let n = queue.len().min(self.max_batch);
        if n == 0 {
            return None;
        }
        let batch: Vec<Pending<K, T>> = queue.drain(..n).collect();
        if queue.is_empty() {
            self.waiting.remove(key);
        }
        self.busy.insert(key.clone());
        Some(batch)
    }
}

/// How much one message may carry, and how often a lane may send one.
#[derive(Clone, Copy)]
struct Pace {
    max_batch: usize,
    min_interval: Duration,
}

async fn publish_loop<S: BatchSender>(
    sender: Arc<S>,
    pace: Pace,
    mut rx: mpsc::UnboundedReceiver<Pending<S::Key, S::Item>>,
) {
    let mut lanes = Lanes { max_batch: pace.max_batch, waiting: HashMap::new(), busy: HashSet::new() };
    let mut in_flight = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            got = rx.recv(), if open => {
                let Some(first) = got else {
                    open = false;
                    continue;
                };
                // Everything already queued joins this round, so items sent together leave together.
                let mut keys = vec![first.key.clone()];
                lanes.push(first);
                while let Ok(p) = rx.try_recv() {
                    keys.push(p.key.clone());
                    lanes.push(p);
                }
                for key in keys {
                    if let Some(batch) = lanes.take(&key) {
                        in_flight.push(publish_batch(sender.as_ref(), key, batch, pace.min_interval));
                    }
                }
            }
            Some(key) = in_flight.next() => {
                lanes.busy.remove(&key);
                if let Some(batch) = lanes.take(&key) {
                    in_flight.push(publish_batch(sender.as_ref(), key, batch, pace.min_interval));
                }
            }
            else => break,
        }
    }
}

/// Publishes one batch, tells each of its items how it went, and hands the lane back once
/// `min_interval` has passed since the publish started.
fn publish_batch<S: BatchSender>(
    sender: &S,
    key: S::Key,
    batch: Vec<Pending<S::Key, S::Item>>,
    min_interval: Duration,
) -> impl Future<Output = S::Key> + use<S> {
    let (items, waiters): (Vec<S::Item>, Vec<_>) = batch.into_iter().map(|p| (p.item, p.done)).unzip();
    let started = tokio::time::Instant::now();
    let publish = sender.send(key.clone(), items);
    async move {
        let result = publish.await;
        for done in waiters {
            // A caller that gave up waiting has dropped its receiver: nothing to tell.
            let _ = done.send(result.clone());
        }
        // The lane stays busy meanwhile, so what arrives leaves together afterwards.
        if !min_interval.is_zero() {
            tokio::time::sleep_until(started + min_interval).await;
        }
        key
    }
}

/// The message for an encoded batch; a lone item's trace context goes in the headers.
pub(crate) fn out_message(
    encoded: Result<(Vec<u8>, Option<String>), corral_protocol::ProtocolError>,
) -> Result<OutMessage, BusError> {
    let (body, traceparent) = encoded.map_err(|e| BusError::Other(e.to_string()))?;
    let msg = OutMessage::new(body);
    Ok(match traceparent {
        Some(tp) => msg.header(HEADER_TRACEPARENT, tp),
        None => msg,
    })
}
