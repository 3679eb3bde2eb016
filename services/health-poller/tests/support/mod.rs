//! Fixtures for the health-poller tests: a poller running on in-process fakes, pod records,
//! a shard-queue reader and a runtime wrapper that shows when events are subscribed.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod runtime;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions, OutMessage, Topology};
use corral_config::Config;
use corral_model::{
    Desired, Endpoint, Observed, PodKey, PodSpec, PodStatus, Protocol, StatusRequested, shard::shard_of,
};
use corral_protocol::{Observation, PodEvent, ProbeKind, ShardMessage, decode, encode, topology};
use corral_runtime::{ContainerSpec, Runtime};
use corral_store::Store;
use corral_testkit::MemoryStore;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SHARDS: u32 = 4;
pub const WAIT: Duration = Duration::from_secs(10);

/// Short intervals so every behaviour shows within a fraction of a second.
pub fn config(resync_interval_ms: u64) -> Config {
    Config::from_toml_over_defaults(&format!(
        "[spawner]\nshards = {SHARDS}\nstall_timeout_ms = 60000\n\
         [health]\nresync_interval_ms = {resync_interval_ms}\nprobe_interval_ms = 20\nprobe_timeout_ms = 500\n"
    ))
    .expect("test config is valid")
}

/// A health-poller running in the background.
pub struct Poller {
    pub store: Arc<MemoryStore>,
    pub bus: MemoryBus,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Poller {
    pub async fn start(cfg: Config, store: Arc<MemoryStore>, runtime: Arc<dyn Runtime>) -> Self {
        let bus = MemoryBus::new();
        // Declared before the poller does, so the test can read shard queues at once.
        bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
        let deps = health_poller::Deps { store: store.clone(), bus: Arc::new(bus.clone()), runtime };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(health_poller::run(cfg, deps, shutdown));
        Self { store, bus, stop: Some(stop), task }
    }

    /// Stops the poller and checks that it returns cleanly and promptly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("poller stops within the bound")
            .expect("poller task did not panic")
            .expect("poller returns Ok");
    }

    /// Reads the shard queue of `pod`, so an observation found there was routed correctly.
    pub async fn shard_reader(&self, pod: &PodKey) -> ShardReader {
        let queue = topology::shard_queue(shard_of(&pod.tenant, &pod.pod_id, SHARDS));
        let consumer = self.bus.consume(&queue, ConsumeOptions::default()).await.expect("consume shard queue");
        ShardReader { stream: consumer.stream, gathered: VecDeque::new() }
    }

    /// Publishes a pod event once the poller listens for it: a mandatory publish fails as
    /// unroutable until the poller's subscription queue is bound.
    pub async fn publish_event_when_subscribed(&self, event: &PodEvent) {
        let key = topology::event_routing_key(&event.tenant, event.status.as_str());
        let body = encode(event).expect("encode event");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.bus.publish(topology::EVENTS_EXCHANGE, &key, OutMessage::new(body.clone())).await {
                Ok(()) => return,
                Err(e) => assert!(tokio::time::Instant::now() < deadline, "poller never subscribed to events: {e}"),
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Reads observations from one shard queue.
pub struct ShardReader {
    stream: BoxStream<'static, corral_bus::Delivery>,
    /// The rest of the last message when it was a batch.
    gathered: VecDeque<(PodKey, String, Observation)>,
}

impl ShardReader {
    /// The next observation on the queue (alone or in a batch), within [`WAIT`].
    pub async fn next(&mut self) -> (PodKey, String, Observation) {
        if let Some(next) = self.gathered.pop_front() {
            return next;
        }
        let delivery = tokio::time::timeout(WAIT, self.stream.next())
            .await
            .expect("an observation arrives within the bound")
            .expect("shard queue stays open");
        delivery.ack().await.expect("ack");
        match decode::<ShardMessage>(&delivery.body, delivery.content_type.as_deref()).expect("decodable") {
            ShardMessage::Observation { tenant, pod_id, container_id, what } => {
                (PodKey::new(tenant, pod_id), container_id, what)
            }
            ShardMessage::Observations { observations } => {
                self.gathered = observations
                    .into_iter()
                    .map(|o| (PodKey::new(o.tenant, o.pod_id), o.container_id, o.what))
                    .collect();
                self.gathered.pop_front().expect("a batch is never empty")
            }
            other => panic!("expected an observation, got {other:?}"),
        }
    }
}

/// A unique pod key, so tests never see each other's pods.
pub fn pod_key(tag: &str) -> PodKey {
    PodKey::new("tenant", format!("{tag}{}", uuid::Uuid::new_v4().simple()))
}

/// A CREATING event naming `container_id` and where it answers.
pub fn creating_event(pod: &PodKey, container_id: &str, endpoint: Endpoint, probe: ProbeKind) -> PodEvent {
    PodEvent {
        tenant: pod.tenant.clone(),
        pod_id: pod.pod_id.clone(),
        status: PodStatus::Creating,
        generation: 1,
        instance: 1,
        container_id: Some(container_id.to_string()),
        endpoint: Some(endpoint),
        probe: Some(probe),
        ..PodEvent::default()
    }
}

/// Stores a pod whose actor observed `status` with `container_id` at `endpoint`.
pub async fn store_pod(
    store: &MemoryStore,
    pod: &PodKey,
    status: PodStatus,
    container_id: &str,
    endpoint: Option<Endpoint>,
    protocol: Protocol,
) {
    let mut spec = PodSpec { pod_id: pod.pod_id.clone(), image: "corral-test/busybox".into(), ..PodSpec::default() };
    for net in spec.networking.values_mut() {
        net.protocol = protocol;
    }
    let desired = Desired {
        tenant: pod.tenant.clone(),
        owner: "tester".into(),
        spec,
        status_requested: StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: 0,
        update_ts: 0,
    };
    let observed = Observed {
        status,
        instance: 1,
        container_id: Some(container_id.to_string()),
        endpoint,
        observed_generation: 1,
        ..Observed::default()
    };
    store.create_pod(&desired, &observed, shard_of(&pod.tenant, &pod.pod_id, SHARDS)).await.expect("create pod");
}

/// What the spawner would ask the runtime for.
pub fn container_spec(pod: &PodKey) -> ContainerSpec {
    ContainerSpec {
        pod: pod.clone(),
        generation: 1,
        instance: 1,
        image: "corral-test/busybox".into(),
        command: None,
        args: None,
        env: BTreeMap::new(),
        cpu_limit_millis: 1000,
        mem_limit_mib: 256,
        pids_limit: 64,
        ports: Vec::new(),
        files: Vec::new(),
    }
}

pub fn loopback(port: u16) -> Endpoint {
    Endpoint { host: "127.0.0.1".into(), port }
}
