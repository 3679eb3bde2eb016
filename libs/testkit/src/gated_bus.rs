//! A memory bus whose publishes of one kind wait for a permit, so a test decides when the
//! broker "takes" a message.

use async_trait::async_trait;
use corral_bus::contract::WAIT;
use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, BusError, ConsumeOptions, Consumer, OutMessage, Topology};
use tokio::sync::{Semaphore, watch};

/// Which publishes wait for the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `publish` (confirmed commands).
    Confirmed,
    /// `publish_event` (hints).
    Events,
}

pub struct GatedBus {
    pub inner: MemoryBus,
    pub gate: Semaphore,
    /// Gated publishes started so far.
    started: watch::Sender<usize>,
    which: Gate,
}

impl GatedBus {
    pub fn new(inner: MemoryBus, which: Gate) -> Self {
        Self { inner, gate: Semaphore::new(0), started: watch::Sender::new(0), which }
    }

    /// Gated publishes started so far.
    pub fn publishes(&self) -> usize {
        *self.started.borrow()
    }

    /// Waits (at most [`WAIT`]) until `n` gated publishes have started; panics with `what`
    /// otherwise.
    pub async fn wait_for_publishes(&self, n: usize, what: &str) {
        let mut rx = self.started.subscribe();
        let reached = tokio::time::timeout(WAIT, rx.wait_for(|started| *started >= n)).await;
        assert!(matches!(reached, Ok(Ok(_))), "{what}");
    }

    async fn pass(&self, kind: Gate) -> Result<(), BusError> {
        if kind == self.which {
            self.started.send_modify(|n| *n += 1);
            self.gate.acquire().await.map_err(|e| BusError::Other(e.to_string()))?.forget();
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for GatedBus {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        self.inner.declare(topology).await
    }
    async fn publish(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.pass(Gate::Confirmed).await?;
        self.inner.publish(exchange, routing_key, msg).await
    }
    async fn publish_event(&self, exchange: &str, routing_key: &str, msg: OutMessage) -> Result<(), BusError> {
        self.pass(Gate::Events).await?;
        self.inner.publish_event(exchange, routing_key, msg).await
    }
    async fn send_to_queue(&self, queue: &str, msg: OutMessage) -> Result<(), BusError> {
        self.inner.send_to_queue(queue, msg).await
    }
    async fn consume(&self, queue: &str, opts: ConsumeOptions) -> Result<Consumer, BusError> {
        self.inner.consume(queue, opts).await
    }
    async fn subscribe(
        &self,
        exchange: &str,
        binding_key: &str,
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        self.inner.subscribe(exchange, binding_key, opts).await
    }
    async fn subscribe_keys(
        &self,
        exchange: &str,
        binding_keys: &[&str],
        opts: ConsumeOptions,
    ) -> Result<(String, Consumer), BusError> {
        self.inner.subscribe_keys(exchange, binding_keys, opts).await
    }
    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}
