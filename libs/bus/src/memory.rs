//! In-process bus with the same semantics as RabbitMQ, for `corral dev` and unit tests.
//!
//! What it keeps from the broker (and what the contract tests check on both):
//! direct/topic/fanout exchanges and the default exchange, `mandatory` publishes that fail
//! as [`BusError::Unroutable`], per-queue FIFO, round-robin over a queue's consumers, the
//! prefetch bound (0 = unlimited), exclusive consumers ([`BusError::ConsumerBusy`]),
//! redelivery (`redelivered = true`, original order, at the head of the queue) of whatever
//! a consumer held unacked when it is cancelled or its stream dropped, private
//! auto-deleted subscription queues, and retry/dead-letter with attempt counting.
//!
//! Nothing is persisted: a process restart loses every message, which is what the
//! single-process `corral dev` mode accepts since its store reconciles from stored state.

mod state;
mod topic;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use async_trait::async_trait;
use corral_protocol::topology::{
    COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EVENTS_EXCHANGE, REQUESTS_EXCHANGE, REQUESTS_QUEUE,
    REQUESTS_ROUTING_KEY, shard_queue, shard_routing_key,
};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::settle::{dead_letter_message, plan_retry};
use crate::{Acker, Bus, BusError, ConsumeOptions, Consumer, Delivery, OutMessage, Topology};
use state::{ExchangeKind, State, Tag, consumer_gone};

/// In-process [`Bus`]. Cloning shares the same broker.
#[derive(Clone, Default)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind, still consistent
        // enough for a test or dev broker to carry on.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus").finish_non_exhaustive()
    }
}

impl MemoryBus {
    /// An empty broker: nothing exists until [`Bus::declare`] (or `subscribe`) creates it.
    pub fn new() -> Self {
        Self::default()
    }

    fn weak(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    fn start_consumer(&self, queue: &str, opts: &ConsumeOptions) -> Result<Consumer, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = self.weak();
        let id = self.shared.lock().add_consumer(&bus, queue, opts.prefetch, opts.exclusive, tx)?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let guard = ConsumerGuard { bus: bus.clone(), queue: queue.to_owned(), id };
        let auto_ack = opts.auto_ack;
        let stream =
            futures::stream::unfold((rx, guard, cancelled.clone()), move |(mut rx, guard, cancelled)| async move {
                // Deliveries already buffered when the consumer was cancelled have been
                // requeued, so they must not surface here as well.
                if cancelled.load(Ordering::SeqCst) {
                    return None;
                }
                let mut delivery: Delivery = rx.recv().await?;
                if cancelled.load(Ordering::SeqCst) {
                    return None;
                }
                if auto_ack {
                    // Settled as it is handed out, as the broker does; later settling only republishes.
                    if let Err(e) = delivery.ack().await {
                        tracing::warn!(error = %e, "cannot settle an auto-acked delivery");
                    }
                    delivery.acker = Box::new(AutoAcked { bus: guard.bus.clone(), queue: guard.queue.clone() });
                }
                Some((delivery, (rx, guard, cancelled)))
            })
            .boxed();
        let queue = queue.to_owned();
        let cancel = Box::new(move || {
            cancelled.store(true, Ordering::SeqCst);
            if let Some(shared) = bus.upgrade() {
                shared.lock().remove_consumer(&bus, &queue, id);
            }
        });
        Ok(Consumer { stream, cancel })
    }
}

/// Cancels its consumer when the stream is dropped.
struct ConsumerGuard {
    bus: Weak<Shared>,
    queue: String,
    id: u64,
}

impl Drop for ConsumerGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.bus.upgrade() {
            shared.lock().remove_consumer(&self.bus, &self.queue, self.id);
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        let mut st = self.shared.lock();
        st.declare_exchange(COMMANDS_EXCHANGE, ExchangeKind::Direct)?;
        st.declare_exchange(EVENTS_EXCHANGE, ExchangeKind::Topic)?;
        st.declare_exchange(REQUESTS_EXCHANGE, ExchangeKind::Direct)?;
        st.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeKind::Fanout)?;
        for shard in 0..topology.shards {
            let queue = shard_queue(shard);
            st.declare_queue(&queue, false);
            st.bind(&queue, COMMANDS_EXCHANGE, &shard_routing_key(shard))?;
        }
        st.declare_queue(REQUESTS_QUEUE, false);
        st.bind(REQUESTS_QUEUE, REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY)?;
        st.declare_queue(DEAD_LETTER_QUEUE, false);
        st.bind(DEAD_LETTER_QUEUE, DEAD_LETTER_EXCHANGE, "")?;
        Ok(())
    }

    async fn publish(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.shared.lock().publish(&self.weak(), exchange, routing_key, msg, true)
    }

    async fn publish_event(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.shared.lock().publish(&self.weak(), exchange, routing_key, msg, false)
    }

    async fn send_to_queue(&self, queue: &str, msg: OutMessage) -> Result<(), BusError> {
        self.shared.lock().publish(&self.weak(), "", queue, msg, true)
    }

    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer, BusError> {
        self.start_consumer(queue, &opts)
    }

    async fn subscribe(
        &self,
        exchange: &str,
        binding_key: &str,
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        self.subscribe_keys(exchange, &[binding_key], opts).await
    }

    async fn subscribe_keys(
        &self,
        exchange: &str,
        binding_keys: &[&str],
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        if binding_keys.is_empty() {
            return Err(BusError::Other("a subscription needs at least one binding key".into()));
        }
        let queue = {
            let mut st = self.shared.lock();
            let queue = format!("memory.gen-{}", st.next_id());
            st.declare_queue(&queue, true);
            for key in binding_keys {
                if let Err(e) = st.bind(&queue, exchange, key) {
                    st.delete_queue(&queue);
                    return Err(e);
                }
            }
            queue
        };
        // A private queue never has other consumers, so exclusivity cannot conflict.
        let consumer = self.start_consumer(&queue, &opts)?;
        Ok((queue, consumer))
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// The acker of a delivery settled when it was handed out ([`ConsumeOptions::auto_ack`]).
struct AutoAcked {
    bus: Weak<Shared>,
    queue: String,
}

impl AutoAcked {
    fn republish(&self, exchange: &str, msg: OutMessage) -> Result<(), BusError> {
        let shared = self.bus.upgrade().ok_or_else(|| BusError::Unavailable("bus was dropped".into()))?;
        let mut st = shared.lock();
        st.publish(&self.bus, exchange, &self.queue, msg, true)
    }
}

#[async_trait]
impl Acker for AutoAcked {
    async fn ack(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn retry(&self, msg: &Delivery, reason: &str, max_attempts: u32) -> Result<(), BusError> {
        let (target, out) = plan_retry(msg, reason, max_attempts);
        self.republish(target.exchange(), out)
    }

    async fn dead_letter(&self, msg: &Delivery, reason: &str) -> Result<(), BusError> {
        self.republish(DEAD_LETTER_EXCHANGE, dead_letter_message(msg, reason))
    }
}

/// Settles one in-flight delivery of a [`MemoryBus`].
pub(crate) struct MemoryAcker {
    bus: Weak<Shared>,
    tag: Tag,
    settled: AtomicBool,
}

impl MemoryAcker {
    pub(crate) fn new(bus: Weak<Shared>, tag: Tag) -> Self {
        Self { bus, tag, settled: AtomicBool::new(false) }
    }

    /// Republishes (if asked) then acks, under one lock so nobody sees the message twice.
    fn settle(&self, republish: Option<(&str, &str, OutMessage)>) -> Result<(), BusError> {
        if self.settled.load(Ordering::SeqCst) {
            return Err(BusError::Other("delivery already settled".into()));
        }
        let shared = self.bus.upgrade().ok_or_else(|| BusError::Unavailable("bus was dropped".into()))?;
        let mut st = shared.lock();
        if !st.holds(&self.tag) {
            return Err(consumer_gone());
        }
        if let Some((exchange, key, msg)) = republish {
            st.publish(&self.bus, exchange, key, msg, true)?;
        }
        st.ack(&self.bus, &self.tag)?;
        self.settled.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.settle(None)
    }

    async fn retry(&self, msg: &Delivery, reason: &str, max_attempts: u32) -> Result<(), BusError> {
        let (target, out) = plan_retry(msg, reason, max_attempts);
        self.settle(Some((target.exchange(), &self.tag.queue, out)))
    }

    async fn dead_letter(&self, msg: &Delivery, reason: &str) -> Result<(), BusError> {
        self.settle(Some((DEAD_LETTER_EXCHANGE, &self.tag.queue, dead_letter_message(msg, reason))))
    }
}
