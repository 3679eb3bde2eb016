//! The broker's state: exchanges, bindings, queues and their consumers. Every method runs
//! under the bus's one mutex and never awaits; deliveries leave through unbounded channels
//! so pushing one never blocks while the lock is held.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Weak;

use corral_protocol::topology::HEADER_ATTEMPTS;
use tokio::sync::mpsc::UnboundedSender;

use super::{MemoryAcker, Shared, topic};
use crate::settle::attempts_from_header;
use crate::{BusError, Delivery, OutMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExchangeKind {
    Direct,
    Topic,
    Fanout,
}

struct Exchange {
    kind: ExchangeKind,
    /// (queue, binding key)
    bindings: BTreeSet<(String, String)>,
}

struct Stored {
    msg: OutMessage,
    redelivered: bool,
}

struct Slot {
    id: u64,
    prefetch: u16,
    exclusive: bool,
    unacked: BTreeMap<u64, Stored>,
    tx: UnboundedSender<Delivery>,
}

impl Slot {
    fn has_room(&self) -> bool {
        // Prefetch 0 means unlimited, as in AMQP.
        self.prefetch == 0 || self.unacked.len() < usize::from(self.prefetch)
    }
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Stored>,
    consumers: Vec<Slot>,
    /// Round-robin cursor over `consumers`.
    cursor: usize,
    /// Deleted when its last consumer goes (private subscription queues).
    auto_delete: bool,
}

/// Identifies one in-flight delivery for settling it.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    pub(crate) queue: String,
    pub(crate) consumer: u64,
    pub(crate) tag: u64,
}

#[derive(Default)]
pub(crate) struct State {
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Queue>,
    next_id: u64,
}

impl State {
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn declare_exchange(&mut self, name: &str, kind: ExchangeKind) -> Result<(), BusError> {
        let exchange =
            self.exchanges.entry(name.to_owned()).or_insert_with(|| Exchange { kind, bindings: BTreeSet::new() });
        if exchange.kind != kind {
            return Err(BusError::Other(format!("exchange '{name}' exists with another type")));
        }
        Ok(())
    }

    pub(crate) fn declare_queue(&mut self, name: &str, auto_delete: bool) {
        self.queues.entry(name.to_owned()).or_insert_with(|| Queue { auto_delete, ..Queue::default() });
    }

    pub(crate) fn bind(&mut self, queue: &str, exchange: &str, key: &str) -> Result<(), BusError> {
        if !self.queues.contains_key(queue) {
            return Err(not_found("queue", queue));
        }
        let exchange_state = self.exchanges.get_mut(exchange).ok_or_else(|| not_found("exchange", exchange))?;
        exchange_state.bindings.insert((queue.to_owned(), key.to_owned()));
        Ok(())
    }

    /// Routes a message; `mandatory` turns "no queue matched" into an error.
    pub(crate) fn publish(
        &mut self,
        bus: &Weak<Shared>,
        exchange: &str,
        routing_key: &str,
        msg: OutMessage,
        mandatory: bool,
    ) -> Result<(), BusError> {
        let targets = self.route(exchange, routing_key)?;
        if targets.is_empty() {
            if mandatory {
                return Err(BusError::Unroutable {
                    exchange: exchange.to_owned(),
                    routing_key: routing_key.to_owned(),
                });
            }
            return Ok(());
        }
        for queue in targets {
            if let Some(q) = self.queues.get_mut(&queue) {
                q.ready.push_back(Stored { msg: msg.clone(), redelivered: false });
            }
            self.dispatch(bus, &queue);
        }
        Ok(())
    }

    fn route(&self, exchange: &str, routing_key: &str) -> Result<BTreeSet<String>, BusError> {
        if exchange.is_empty() {
            // The default exchange routes to the queue named by the key.
            return Ok(self.queues.contains_key(routing_key).then(|| routing_key.to_owned()).into_iter().collect());
        }
        let ex = self.exchanges.get(exchange).ok_or_else(|| not_found("exchange", exchange))?;
        // A set: a queue bound twice still gets one copy.
        Ok(ex
            .bindings
            .iter()
            .filter(|(_, key)| match ex.kind {
                ExchangeKind::Direct => key == routing_key,
                ExchangeKind::Topic => topic::matches(key, routing_key),
                ExchangeKind::Fanout => true,
            })
            .map(|(queue, _)| queue.clone())
            .collect())
    }

    pub(crate) fn add_consumer(
        &mut self,
        bus: &Weak<Shared>,
        queue: &str,
        prefetch: u16,
        exclusive: bool,
        tx: UnboundedSender<Delivery>,
    ) -> Result<u64, BusError> {
        let id = self.next_id();
        let q = self.queues.get_mut(queue).ok_or_else(|| not_found("queue", queue))?;
        let taken = q.consumers.iter().any(|c| c.exclusive);
        if taken || (exclusive && !q.consumers.is_empty()) {
            return Err(BusError::ConsumerBusy(queue.to_owned()));
        }
        q.consumers.push(Slot { id, prefetch, exclusive, unacked: BTreeMap::new(), tx });
        self.dispatch(bus, queue);
        Ok(id)
    }

    /// Removes a consumer; whatever it held unacked goes back to the head of the queue,
    /// in its original order, marked redelivered. Unknown consumers are ignored so that
    /// both an explicit cancel and the stream's drop can call this.
    pub(crate) fn remove_consumer(&mut self, bus: &Weak<Shared>, queue: &str, consumer: u64) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        let Some(pos) = q.consumers.iter().position(|c| c.id == consumer) else {
            return;
        };
        let slot = q.consumers.remove(pos);
        for (_, mut stored) in slot.unacked.into_iter().rev() {
            stored.redelivered = true;
            q.ready.push_front(stored);
        }
        if q.auto_delete && q.consumers.is_empty() {
            self.delete_queue(queue);
            return;
        }
        self.dispatch(bus, queue);
    }

    /// Removes a queue, its messages and its bindings.
    pub(crate) fn delete_queue(&mut self, queue: &str) {
        self.queues.remove(queue);
        for exchange in self.exchanges.values_mut() {
            exchange.bindings.retain(|(bound, _)| bound != queue);
        }
    }

    /// True while `tag` is still held unacked by its consumer.
    pub(crate) fn holds(&self, tag: &Tag) -> bool {
        self.slot(tag).is_some_and(|slot| slot.unacked.contains_key(&tag.tag))
    }

    pub(crate) fn ack(&mut self, bus: &Weak<Shared>, tag: &Tag) -> Result<(), BusError> {
        let removed = self
            .queues
            .get_mut(&tag.queue)
            .and_then(|q| q.consumers.iter_mut().find(|c| c.id == tag.consumer))
            .and_then(|slot| slot.unacked.remove(&tag.tag));
        if removed.is_none() {
            return Err(consumer_gone());
        }
        self.dispatch(bus, &tag.queue);
        Ok(())
    }

    fn slot(&self, tag: &Tag) -> Option<&Slot> {
        self.queues.get(&tag.queue)?.consumers.iter().find(|c| c.id == tag.consumer)
    }

    /// Hands ready messages to consumers with room, round robin, until either runs out.
    fn dispatch(&mut self, bus: &Weak<Shared>, queue: &str) {
        loop {
            let id = self.next_id + 1;
            let Some(q) = self.queues.get_mut(queue) else {
                return;
            };
            if q.ready.is_empty() || q.consumers.is_empty() {
                return;
            }
            let n = q.consumers.len();
            let Some(index) = (0..n).map(|i| (q.cursor + i) % n).find(|&i| q.consumers[i].has_room()) else {
                return;
            };
            q.cursor = (index + 1) % n;
            let Some(stored) = q.ready.pop_front() else {
                return;
            };
            let slot = &mut q.consumers[index];
            let delivery = to_delivery(bus, queue, slot.id, id, &stored);
            slot.unacked.insert(id, stored);
            // A closed channel means the stream is being dropped; its guard is about to
            // requeue everything unacked, this message included.
            let _ = slot.tx.send(delivery);
            self.next_id = id;
        }
    }
}

fn to_delivery(bus: &Weak<Shared>, queue: &str, consumer: u64, tag: u64, stored: &Stored) -> Delivery {
    let msg = &stored.msg;
    Delivery {
        body: msg.body.clone(),
        content_type: msg.content_type.clone(),
        headers: msg.headers.clone(),
        reply_to: msg.reply_to.clone(),
        correlation_id: msg.correlation_id.clone(),
        redelivered: stored.redelivered,
        attempts: attempts_from_header(msg.headers.get(HEADER_ATTEMPTS).map(String::as_str)),
        queue: queue.to_owned(),
        acker: Box::new(MemoryAcker::new(bus.clone(), Tag { queue: queue.to_owned(), consumer, tag })),
    }
}

fn not_found(what: &str, name: &str) -> BusError {
    BusError::Other(format!("{what} '{name}' not found"))
}

pub(crate) fn consumer_gone() -> BusError {
    BusError::Unavailable("the delivery's consumer was cancelled; the message will be redelivered".into())
}
