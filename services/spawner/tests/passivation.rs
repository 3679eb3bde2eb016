//! Passivation against in-process adapters (MemoryStore, MemoryBus, simulated runtime): the
//! actors of settled pods stop, every kind of message revives them, no bus delivery is lost
//! to an actor that stops, and a passivated pod is still stopped at its time-to-stop
//! (injected clock).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, OutMessage, Topology};
use corral_config::Config;
use corral_model::shard::shard_of;
use corral_model::{Observed, PodKey, PodStatus, Protocol, StatusRequested};
use corral_protocol::{Observation, ShardMessage, encode, topology};
use corral_runtime::Runtime;
use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_store::Store;
use corral_testkit::MemoryStore;
use spawner::shard::{Clock, Context};
use tokio_util::sync::CancellationToken;

const SHARDS: u32 = 2;
const HOUR_S: i64 = 3600;

/// `resync_ms` large keeps the periodic resync out of a test that must show the shard's
/// own timers at work; `prefetch` small makes a lost (never acked) delivery stall the shard.
fn config(resync_ms: u64, prefetch: u16) -> Config {
    Config::from_toml_over_defaults(&format!(
        "[amqp]\nprefetch = {prefetch}\n[spawner]\nshards = {SHARDS}\nlease_ttl_ms = 600\nmembership_interval_ms = 100\n\
         resync_interval_ms = {resync_ms}\nbackoff_base_ms = 50\nbackoff_max_ms = 200\nmax_attempts = 3\n"
    ))
    .expect("config")
}

fn wall_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch");
    i64::try_from(d.as_millis()).expect("fits")
}

struct Rig {
    store: Arc<MemoryStore>,
    bus: Arc<MemoryBus>,
    runtime: Arc<SimulatedRuntime>,
    ctx: Arc<Context>,
    /// Offset added to the wall clock, as the spawner sees it.
    skew: Arc<AtomicI64>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Rig {
    async fn start(cfg: Config) -> Rig {
        let bus = Arc::new(MemoryBus::new());
        bus.declare(&Topology { shards: SHARDS }).await.expect("declare");
        let store = Arc::new(MemoryStore::new());
        let runtime = Arc::new(SimulatedRuntime::new(SimulatedOptions {
            namespace: "test".into(),
            start_delay: Duration::from_millis(1),
        }));
        let skew = Arc::new(AtomicI64::new(0));
        let offset = skew.clone();
        let clock: Clock = Arc::new(move || wall_ms() + offset.load(Ordering::SeqCst));
        let deps = spawner::Deps { store: store.clone(), bus: bus.clone(), runtime: runtime.clone() };
        let ctx = Arc::new(Context::with_clock(cfg, deps, "passivation-test".into(), clock));
        let stop = CancellationToken::new();
        let cancelled = stop.clone();
        let task = tokio::spawn(spawner::ownership::run(ctx.clone(), async move { cancelled.cancelled().await }));
        Rig { store, bus, runtime, ctx, skew, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let r = tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("spawner stops in time");
        r.expect("join").expect("clean exit");
    }

    /// Stores a pod (`local_only`: AVAILABLE as soon as it runs) and kicks it.
    async fn create(&self, pod_id: &str, ttl_s: i64) -> PodKey {
        let mut d = support::desired(pod_id, Some(Protocol::LocalOnly));
        d.spec.time_to_stop_default = ttl_s;
        let key = d.key();
        self.store.create_pod(&d, &Observed::default(), shard_of("dev", pod_id, SHARDS)).await.expect("create");
        self.kick(&key).await;
        key
    }

    /// Changes the desired state; `kick` false leaves it to the resync (a lost kick).
    async fn switch(&self, key: &PodKey, on: bool, kick: bool) {
        let rec = self.store.get_pod(key).await.expect("get").expect("exists");
        let mut d = rec.desired.value;
        d.status_requested = if on { StatusRequested::On } else { StatusRequested::Off };
        d.generation += 1;
        self.store.put_desired(&d, rec.desired.version).await.expect("put desired");
        if kick {
            self.kick(key).await;
        }
    }

    async fn kick(&self, key: &PodKey) {
        let msg = ShardMessage::Kick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation: 0 };
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

    async fn observed(&self, key: &PodKey) -> Observed {
        self.store.get_pod(key).await.expect("get").expect("exists").observed.value
    }

    async fn wait_for(&self, key: &PodKey, what: &str, f: impl Fn(&Observed) -> bool) -> Observed {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = self.observed(key).await;
            if f(&o) {
                return o;
            }
            assert!(Instant::now() < deadline, "{key}: timed out waiting for {what}; last: {o:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_passivated(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.ctx.actor_count() > 0 {
            assert!(Instant::now() < deadline, "{what}: {} actors still live after 10 s", self.ctx.actor_count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn available(o: &Observed) -> bool {
    o.status == PodStatus::Available
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_pods_give_up_their_actors_and_every_message_revives_them() {
    let rig = Rig::start(config(300, 64)).await;
    let mut with_ttl = Vec::new();
    let mut without = Vec::new();
    for n in 0..20 {
        with_ttl.push(rig.create(&format!("ttl{n}"), HOUR_S).await);
        without.push(rig.create(&format!("nottl{n}"), -1).await);
    }
    for key in with_ttl.iter().chain(&without) {
        rig.wait_for(key, "AVAILABLE", available).await;
    }
    rig.wait_passivated("after start").await;
    assert_eq!(rig.ctx.kept_deadlines(), with_ttl.len(), "one kept deadline per pod with a time-to-stop");
    for key in &with_ttl {
        let o = rig.observed(key).await;
        assert_eq!(rig.ctx.kept_deadline(key), o.time_to_stop_ts, "{key}: the kept deadline is its time-to-stop");
    }
    for key in &without {
        assert_eq!(rig.ctx.kept_deadline(key), None, "{key}");
    }

    // A command: stop, then start again.
    let key = &with_ttl[0];
    rig.switch(key, false, true).await;
    rig.wait_for(key, "STOPPED", |o| o.status == PodStatus::Stopped && o.container_id.is_none()).await;
    assert_eq!(rig.ctx.kept_deadline(key), None, "a stopped pod keeps no deadline");
    rig.switch(key, true, true).await;
    let o = rig.wait_for(key, "AVAILABLE again", |o| available(o) && o.observed_generation == 3).await;
    rig.wait_passivated("after the restart").await;
    assert_eq!(rig.ctx.kept_deadline(key), o.time_to_stop_ts, "the new instance's time-to-stop is kept");

    // A runtime observation: the container exits, the pod is respawned.
    let key = &without[0];
    let before = rig.observed(key).await;
    let container_id = before.container_id.clone().expect("a running pod has a container");
    let exited = ShardMessage::Observation {
        tenant: key.tenant.clone(),
        pod_id: key.pod_id.clone(),
        container_id,
        what: Observation::Exited { exit_code: Some(1), reason: "killed by the test".into() },
    };
    rig.publish(key, &exited).await;
    let after = rig.wait_for(key, "respawned", |o| available(o) && o.instance > before.instance).await;
    assert_eq!(after.status_container.restart_count, 1);
    rig.wait_passivated("after the crash").await;

    // The resync: a desired change whose kick was lost.
    let key = &without[1];
    rig.switch(key, false, false).await;
    rig.wait_for(key, "STOPPED by the resync", |o| o.status == PodStatus::Stopped).await;
    rig.wait_passivated("after the resync").await;

    // Every pod still converges and none has a second container.
    for key in with_ttl.iter().chain(&without) {
        let mine = rig.runtime.list().await.expect("list").into_iter().filter(|c| c.pod == *key).count();
        assert!(mine <= 1, "{key}: {mine} containers");
    }
    rig.stop().await;
}

/// Kicks race with actors passivating: none may be lost, or the shard's few delivery slots
/// (prefetch 2) fill with deliveries nobody acks and the last round never converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_delivery_is_lost_to_a_passivating_actor() {
    let rig = Rig::start(config(600_000, 2)).await;
    let mut keys = Vec::new();
    for n in 0..30 {
        keys.push(rig.create(&format!("pod{n}"), -1).await);
    }
    for key in &keys {
        rig.wait_for(key, "AVAILABLE", available).await;
    }
    for _round in 0..10 {
        for key in &keys {
            rig.kick(key).await;
        }
    }
    for key in &keys {
        rig.switch(key, false, true).await;
    }
    for key in &keys {
        rig.wait_for(key, "STOPPED", |o| o.status == PodStatus::Stopped && o.observed_generation == 2).await;
    }
    rig.wait_passivated("after the storm of kicks").await;
    assert!(rig.runtime.list().await.expect("list").is_empty(), "every container removed");
    rig.stop().await;
}

/// A passivated pod has no actor and so no timer of its own: its shard stops it when its
/// time-to-stop comes. The clock is moved an hour ahead instead of waiting, and the resync is
/// kept out of the way (10 min interval).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passivated_pod_is_stopped_at_its_time_to_stop() {
    let rig = Rig::start(config(600_000, 64)).await;
    let short = rig.create("short", HOUR_S).await;
    let long = rig.create("long", 2 * HOUR_S).await;
    let o = rig.wait_for(&short, "AVAILABLE", available).await;
    rig.wait_for(&long, "AVAILABLE", available).await;
    rig.wait_passivated("after start").await;
    let stop_at = o.time_to_stop_ts.expect("a time-to-stop");
    assert_eq!(rig.ctx.kept_deadline(&short), Some(stop_at));

    // Just before its time nothing happens.
    rig.skew.store(stop_at - wall_ms() - 3_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(rig.observed(&short).await.status, PodStatus::Available, "stopped early");

    rig.skew.store(stop_at - wall_ms() + 1, Ordering::SeqCst);
    let t0 = Instant::now();
    let o = rig.wait_for(&short, "STOPPED at its time-to-stop", |o| o.status == PodStatus::Stopped).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "stopped {:?} after its time", t0.elapsed());
    assert!(o.container_id.is_none());
    let log = rig.store.action_log(&short).await.expect("log");
    assert!(log.iter().any(|e| e.message.contains("time_to_stop reached")), "{log:?}");
    assert_eq!(rig.observed(&long).await.status, PodStatus::Available, "the other pod's time has not come");
    assert!(rig.ctx.kept_deadline(&long).is_some());
    rig.wait_passivated("after the stop").await;
    assert_eq!(rig.ctx.kept_deadlines(), 1, "only the long pod's deadline is left");
    rig.stop().await;
}
