//! A [`Runtime`] wrapper around the simulated runtime that counts event subscriptions and
//! can end the first event stream at once (an interrupted connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_runtime::{ContainerInfo, ContainerSpec, OutputChunk, Runtime, RuntimeError, RuntimeEvent, RuntimeKind};
use futures::StreamExt as _;
use futures::stream::BoxStream;

pub struct WatchedRuntime {
    pub sim: SimulatedRuntime,
    subscriptions: AtomicUsize,
    drop_first_stream: bool,
}

impl WatchedRuntime {
    pub fn new(drop_first_stream: bool) -> Arc<Self> {
        let sim = SimulatedRuntime::new(SimulatedOptions {
            namespace: format!("hp{}", uuid::Uuid::new_v4().simple()),
            start_delay: std::time::Duration::ZERO,
        });
        Arc::new(Self { sim, subscriptions: AtomicUsize::new(0), drop_first_stream })
    }

    /// Live event subscriptions made so far (counted once subscribed).
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Runtime for WatchedRuntime {
    fn kind(&self) -> RuntimeKind {
        self.sim.kind()
    }
    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        self.sim.spawn(spec).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.sim.remove(id).await
    }
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        self.sim.inspect(id).await
    }
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.sim.list().await
    }
    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError> {
        let stream = self.sim.events().await?;
        let before = self.subscriptions.fetch_add(1, Ordering::SeqCst);
        if before == 0 && self.drop_first_stream {
            return Ok(futures::stream::empty().boxed());
        }
        Ok(stream)
    }
    async fn output(&self, id: &str, follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError> {
        self.sim.output(id, follow).await
    }
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.sim.ping().await
    }
}
