//! A [`Runtime`] wrapper whose output streams deliver one line per chunk, like a chatty
//! container read line by line: the worst case for store writes.

use std::sync::Arc;

use async_trait::async_trait;
use corral_runtime::{ContainerInfo, ContainerSpec, OutputChunk, Runtime, RuntimeError, RuntimeEvent, RuntimeKind};
use futures::StreamExt as _;
use futures::stream::BoxStream;

pub struct LineRuntime(pub Arc<dyn Runtime>);

fn lines(chunk: OutputChunk) -> Vec<OutputChunk> {
    chunk.bytes.split_inclusive(|&b| b == b'\n').map(|l| OutputChunk { bytes: l.to_vec() }).collect()
}

#[async_trait]
impl Runtime for LineRuntime {
    fn kind(&self) -> RuntimeKind {
        self.0.kind()
    }
    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        self.0.spawn(spec).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.0.remove(id).await
    }
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        self.0.inspect(id).await
    }
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.0.list().await
    }
    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError> {
        self.0.events().await
    }
    async fn output(&self, id: &str, follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError> {
        let stream = self.0.output(id, follow).await?;
        Ok(stream.flat_map(|c| futures::stream::iter(lines(c))).boxed())
    }
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.0.ping().await
    }
}
