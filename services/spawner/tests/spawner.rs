//! The spawner against in-process adapters (MemoryStore, MemoryBus, simulated runtime):
//! kicks drive pods through the state machine, observations are acted on, takeover adopts
//! and cleans up, and poison messages are dead-lettered without blocking the shard.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions, OutMessage, Topology};
use corral_config::Config;
use corral_model::shard::shard_of;
use corral_model::{Observed, PodKey, PodStatus, Protocol, StatusRequested};
use corral_protocol::{Observation, PodKick, PodObservation, ShardMessage, encode, topology};
use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_runtime::{ContainerInfo, ContainerSpec, ContainerState, Runtime};
use corral_store::Store;
use corral_testkit::MemoryStore;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 4;

fn config() -> Config {
    config_with_resync_ms(300)
}

fn config_with_resync_ms(resync_ms: u64) -> Config {
    Config::from_toml_over_defaults(&format!(
        "[spawner]\nshards = 4\nlease_ttl_ms = 600\nmembership_interval_ms = 100\nresync_interval_ms = {resync_ms}\n\
         backoff_base_ms = 50\nbackoff_max_ms = 200\nmax_attempts = 3\n",
    ))
    .expect("config")
}

struct Rig {
    store: Arc<MemoryStore>,
    bus: Arc<MemoryBus>,
    runtime: Arc<SimulatedRuntime>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Rig {
    async fn new() -> Rig {
        let bus = Arc::new(MemoryBus::new());
        bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
        Rig {
            store: Arc::new(MemoryStore::new()),
            bus,
            runtime: Arc::new(SimulatedRuntime::new(SimulatedOptions {
                namespace: "test".into(),
                start_delay: Duration::from_millis(5),
            })),
            stop: CancellationToken::new(),
            task: None,
        }
    }

    fn start(&mut self) {
        self.start_with(config());
    }

    fn start_with(&mut self, cfg: Config) {
        let deps = spawner::Deps { store: self.store.clone(), bus: self.bus.clone(), runtime: self.runtime.clone() };
        let stop = self.stop.clone();
        self.task = Some(tokio::spawn(spawner::run(cfg, deps, async move { stop.cancelled().await })));
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(5), t).await.expect("spawner stops in time");
            r.expect("join").expect("clean exit");
        }
    }

    /// Stores a new pod without telling the spawner (as if the gateway's kick was lost).
    async fn create_unkicked(&self, pod_id: &str, protocol: Protocol) -> PodKey {
        let d = support::desired(pod_id, Some(protocol));
        let key = d.key();
        let shard = shard_of("dev", pod_id, SHARDS);
        self.store.create_pod(&d, &Observed::default(), shard).await.expect("create");
        key
    }

    async fn create(&self, pod_id: &str, protocol: Protocol) -> PodKey {
        let key = self.create_unkicked(pod_id, protocol).await;
        self.kick(&key, 1).await;
        key
    }

    async fn kick(&self, key: &PodKey, generation: u64) {
        let msg = ShardMessage::Kick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation };
        self.publish(key, &msg).await;
    }

    async fn publish(&self, key: &PodKey, msg: &ShardMessage) {
        let shard = shard_of(&key.tenant, &key.pod_id, SHARDS);
        let body = encode(msg).expect("encode");
        self.bus
            .publish(topology::COMMANDS_EXCHANGE, &topology::shard_routing_key(shard), OutMessage::new(body))
            .await
            .expect("publish");
    }

    async fn observed(&self, key: &PodKey) -> Option<Observed> {
        self.store.get_pod(key).await.ok().flatten().map(|r| r.observed.value)
    }

    async fn wait_for(&self, key: &PodKey, what: &str, f: impl Fn(&Observed) -> bool) -> Observed {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(o) = self.observed(key).await
                && f(&o)
            {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "{key}: timed out waiting for {what}; last: {:?}",
                self.observed(key).await
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_spawns_and_stop_removes() {
    let mut rig = Rig::new().await;
    rig.start();
    let key = rig.create("plain", Protocol::LocalOnly).await;
    let obs = rig.wait_for(&key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    assert_eq!(obs.instance, 1);
    let listed = rig.runtime.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(Some(listed[0].id.clone()), obs.container_id);

    let rec = rig.store.get_pod(&key).await.expect("get").expect("exists");
    let mut d = rec.desired.value;
    d.status_requested = StatusRequested::Off;
    d.generation = 2;
    rig.store.put_desired(&d, rec.desired.version).await.expect("put");
    rig.kick(&key, 2).await;
    rig.wait_for(&key, "STOPPED", |o| o.status == PodStatus::Stopped && o.observed_generation == 2).await;
    assert!(rig.runtime.list().await.expect("list").is_empty(), "container removed");
    let log = rig.store.action_log(&key).await.expect("log");
    assert!(log.iter().any(|e| e.message.contains("AVAILABLE")), "{log:?}");
    assert!(log.iter().any(|e| e.message.contains("STOPPED")), "{log:?}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_kicks_starts_every_pod_in_it() {
    let mut rig = Rig::new().await;
    // No periodic resync: only the batch can start the pods.
    rig.start_with(config_with_resync_ms(3_600_000));
    // Pods of one shard, as a publisher gathers them.
    let ids: Vec<String> =
        (0..200).map(|i| format!("batched-{i}")).filter(|id| shard_of("dev", id, SHARDS) == 2).take(6).collect();
    // Once the first is up, the shard is owned and adopted: later pods wait for a kick.
    let first = rig.create(&ids[0], Protocol::LocalOnly).await;
    rig.wait_for(&first, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    let ids = &ids[1..];
    let mut keys = Vec::new();
    for id in ids {
        keys.push(rig.create_unkicked(id, Protocol::LocalOnly).await);
    }
    let kicks = keys
        .iter()
        .map(|k| PodKick { tenant: k.tenant.clone(), pod_id: k.pod_id.clone(), generation: 1, traceparent: None })
        .collect();
    rig.publish(&keys[0], &ShardMessage::Kicks { kicks }).await;
    for key in &keys {
        rig.wait_for(key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_kick_is_made_up_by_the_resync() {
    let mut rig = Rig::new().await;
    rig.start();
    // Once this pod runs, its shard is owned and adopted: what comes later is not adoption.
    let first = rig.create("first", Protocol::LocalOnly).await;
    rig.wait_for(&first, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    let shard = shard_of("dev", "first", SHARDS);
    let id = (0..).map(|n| format!("unkicked{n}")).find(|id| shard_of("dev", id, SHARDS) == shard).expect("an id");
    let key = rig.create_unkicked(&id, Protocol::LocalOnly).await;
    rig.wait_for(&key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    let log: Vec<String> = rig.store.action_log(&key).await.expect("log").into_iter().map(|e| e.message).collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("spawn requested"), "{log:?}");
    assert!(log[1].contains("AVAILABLE"), "{log:?}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_exit_observations_drive_the_pod() {
    let mut rig = Rig::new().await;
    rig.start();
    let key = rig.create("probed", Protocol::Http).await;
    let obs = rig.wait_for(&key, "CREATING", |o| o.status == PodStatus::Creating).await;
    let id = obs.container_id.clone().expect("container");
    let ready = ShardMessage::Observation {
        tenant: "dev".into(),
        pod_id: "probed".into(),
        container_id: id.clone(),
        what: Observation::Ready,
    };
    rig.publish(&key, &ready).await;
    rig.wait_for(&key, "AVAILABLE", |o| o.status == PodStatus::Available).await;

    let exited = ShardMessage::Observation {
        tenant: "dev".into(),
        pod_id: "probed".into(),
        container_id: id.clone(),
        what: Observation::Exited { exit_code: Some(137), reason: "killed".into() },
    };
    rig.publish(&key, &exited).await;
    // The crash counts as a failed attempt: a new instance is started after the backoff.
    let again = rig.wait_for(&key, "a second instance", |o| o.instance == 2 && o.container_id.is_some()).await;
    assert_eq!(again.attempts, 1);
    assert_ne!(again.container_id.as_deref(), Some(id.as_str()));
    let log = rig.store.action_log(&key).await.expect("log");
    assert!(log.iter().any(|e| e.message.contains("exited with code 137")), "{log:?}");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_observations_reaches_every_pod_in_it() {
    let mut rig = Rig::new().await;
    rig.start();
    // Pods of one shard, as the health-poller gathers their observations.
    let ids: Vec<String> =
        (0..200).map(|i| format!("observed-{i}")).filter(|id| shard_of("dev", id, SHARDS) == 1).take(4).collect();
    let mut pods = Vec::new();
    for id in &ids {
        let key = rig.create(id, Protocol::Http).await;
        let obs = rig.wait_for(&key, "CREATING", |o| o.status == PodStatus::Creating).await;
        pods.push((key, obs.container_id.expect("container")));
    }
    let observation = |(key, container_id): &(PodKey, String), what: Observation| PodObservation {
        tenant: key.tenant.clone(),
        pod_id: key.pod_id.clone(),
        container_id: container_id.clone(),
        what,
        traceparent: None,
    };
    let (crashed, ready) = pods.split_last().expect("pods");
    let mut observations: Vec<PodObservation> = ready.iter().map(|p| observation(p, Observation::Ready)).collect();
    observations.push(observation(crashed, Observation::Exited { exit_code: Some(137), reason: "killed".into() }));
    rig.publish(&crashed.0, &ShardMessage::Observations { observations }).await;
    for (key, _) in ready {
        rig.wait_for(key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    }
    let again = rig.wait_for(&crashed.0, "a second instance", |o| o.instance == 2).await;
    assert_eq!(again.attempts, 1, "the crash counts as a failed attempt");
    rig.stop().await;
}

/// The container of `pod`'s `instance`, as the spawner would ask for it.
fn container(pod: &PodKey, instance: u64) -> ContainerSpec {
    ContainerSpec {
        pod: pod.clone(),
        generation: 1,
        instance,
        image: "img".into(),
        command: None,
        args: None,
        env: BTreeMap::new(),
        cpu_limit_millis: 250,
        mem_limit_mib: 256,
        pids_limit: 64,
        ports: Vec::new(),
        files: Vec::new(),
    }
}

/// Polls the runtime (at most 10 s) until it holds exactly the containers `want` accepts.
async fn wait_for_containers(rig: &Rig, what: &str, want: impl Fn(&[ContainerInfo]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let containers = rig.runtime.list().await.expect("list");
        if want(&containers) {
            return;
        }
        assert!(Instant::now() < deadline, "expected {what}, found {containers:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_adopts_running_containers_and_removes_orphans() {
    let mut rig = Rig::new().await;
    // State left by a spawner that died: pod "kept" AVAILABLE with a running container, and
    // a container whose pod record no longer exists.
    let key = PodKey::new("dev", "kept");
    let running = rig.runtime.spawn(&container(&key, 1)).await.expect("spawn");
    let orphan = rig.runtime.spawn(&container(&PodKey::new("dev", "gone"), 1)).await.expect("spawn");
    let stray = rig.runtime.spawn(&container(&key, 7)).await.expect("spawn");
    let obs = Observed {
        status: PodStatus::Available,
        observed_generation: 1,
        instance: 1,
        container_id: Some(running.id.clone()),
        ..Observed::default()
    };
    rig.store.create_pod(&support::desired("kept", None), &obs, shard_of("dev", "kept", SHARDS)).await.expect("create");

    rig.start();
    let what = format!("only the adopted container (orphan {}, stray {})", orphan.id, stray.id);
    wait_for_containers(&rig, &what, |cs| cs.len() == 1 && cs[0].id == running.id).await;
    let now = rig.observed(&key).await.expect("pod");
    assert_eq!(now.status, PodStatus::Available, "adopted, not restarted");
    assert_eq!(now.instance, 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_starts_a_container_its_creator_never_started() {
    let mut rig = Rig::new().await;
    // The spawner died between creating the container of instance 1 and starting it.
    let key = PodKey::new("dev", "half-made");
    let created = rig.runtime.create_for_tests(&container(&key, 1));
    let obs = Observed { status: PodStatus::SpawnerSetup, observed_generation: 1, instance: 1, ..Observed::default() };
    rig.store
        .create_pod(&support::desired("half-made", None), &obs, shard_of("dev", "half-made", SHARDS))
        .await
        .expect("create");

    rig.start();
    let now = rig.wait_for(&key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    assert_eq!(now.container_id.as_deref(), Some(created.id.as_str()), "the same container, adopted");
    assert_eq!((now.instance, now.attempts), (1, 0), "not counted as a failure");
    let log: Vec<String> = rig.store.action_log(&key).await.expect("log").into_iter().map(|e| e.message).collect();
    assert!(log.iter().any(|m| m.contains("created but not started before the takeover")), "{log:?}");
    let running =
        |cs: &[ContainerInfo]| cs.len() == 1 && cs[0].id == created.id && cs[0].state == ContainerState::Running;
    wait_for_containers(&rig, "the container started", running).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_is_dead_lettered_and_the_shard_keeps_going() {
    let mut rig = Rig::new().await;
    let mut dlq = rig.bus.consume(topology::DEAD_LETTER_QUEUE, ConsumeOptions::default()).await.expect("dlq");
    rig.start();
    let key = PodKey::new("dev", "after");
    let shard = shard_of("dev", "after", SHARDS);
    rig.bus
        .publish(
            topology::COMMANDS_EXCHANGE,
            &topology::shard_routing_key(shard),
            OutMessage::new(b"\xc1not msgpack".to_vec()),
        )
        .await
        .expect("publish garbage");
    let dead =
        tokio::time::timeout(Duration::from_secs(10), dlq.stream.next()).await.expect("dead-lettered").expect("msg");
    assert!(dead.headers.get(topology::HEADER_ERROR).is_some_and(|r| !r.is_empty()), "{:?}", dead.headers);
    dead.ack().await.expect("ack");
    let created = rig.create("after", Protocol::LocalOnly).await;
    assert_eq!(created, key);
    rig.wait_for(&key, "AVAILABLE", |o| o.status == PodStatus::Available).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_shards_and_leaves_the_group() {
    let mut rig = Rig::new().await;
    rig.start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rig.store.live_members("spawner", 0).await.expect("members").is_empty() {
        assert!(Instant::now() < deadline, "spawner never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let store = rig.store.clone();
    rig.stop().await;
    assert!(store.live_members("spawner", 0).await.expect("members").is_empty(), "left the group");
    for k in 0..SHARDS {
        let free = store.acquire_lease(&spawner::ownership::lease_name(k), "someone-else", 1000).await.expect("lease");
        assert!(free, "shard {k} lease released on shutdown");
    }
}
