//! Helpers shared by the runtime integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use corral_model::PodKey;
use corral_runtime::{ContainerSpec, OutputChunk, PortSpec, RuntimeEvent};
use futures::stream::{BoxStream, StreamExt};

pub const TEST_IMAGE: &str = "corral-test/busybox";

/// A namespace no other test (or concurrent test run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn spec(tenant: &str, pod: &str, command: &[&str], ports: &[(&str, u16)]) -> ContainerSpec {
    ContainerSpec {
        pod: PodKey::new(tenant, pod),
        generation: 1,
        instance: 1,
        image: TEST_IMAGE.to_owned(),
        command: Some(command.iter().map(|s| (*s).to_owned()).collect()),
        args: None,
        env: BTreeMap::new(),
        cpu_limit_millis: 500,
        mem_limit_mib: 64,
        pids_limit: 64,
        ports: ports.iter().map(|(name, port)| PortSpec { name: (*name).to_owned(), container_port: *port }).collect(),
        files: Vec::new(),
    }
}

/// Polls `check` until it yields a value or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a TCP connection to host:port succeeds within `limit`.
pub async fn connects(host: &str, port: u16, limit: Duration) -> bool {
    eventually(limit, || async move { tokio::net::TcpStream::connect((host, port)).await.ok().map(|_| ()) })
        .await
        .is_some()
}

/// Waits (bounded) for the first event matching `pred`.
pub async fn next_matching(
    events: &mut BoxStream<'static, RuntimeEvent>,
    limit: Duration,
    pred: impl Fn(&RuntimeEvent) -> bool,
) -> Option<RuntimeEvent> {
    tokio::time::timeout(limit, async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Collects output until `done` holds for what was read, the stream ends or `limit` passes.
pub async fn read_output(
    mut stream: BoxStream<'static, OutputChunk>,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut text = String::new();
    let _ = tokio::time::timeout(limit, async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.bytes));
            if done(&text) {
                break;
            }
        }
    })
    .await;
    text
}
