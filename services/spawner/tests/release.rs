//! Releasing a shard (handing it over, resubscribing, shutting down) waits for the message
//! its actors have in hand, so the shard's next owner never races a spawn of the last one.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, OutMessage, Topology};
use corral_config::Config;
use corral_model::{Observed, PodKey, PodStatus, Protocol};
use corral_protocol::{ShardMessage, encode, topology};
use corral_runtime::Runtime;
use corral_runtime::simulated::{SimulatedOptions, SimulatedRuntime};
use corral_store::Store;
use corral_testkit::MemoryStore;
use spawner::shard::Context;

/// Long enough that the release surely starts while the spawn is in hand.
const SPAWN_TAKES: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_shard_waits_for_the_spawn_in_hand() {
    let bus = Arc::new(MemoryBus::new());
    bus.declare(&Topology { shards: 1 }).await.expect("declare");
    let store = Arc::new(MemoryStore::new());
    let runtime =
        Arc::new(SimulatedRuntime::new(SimulatedOptions { namespace: "test".into(), start_delay: SPAWN_TAKES }));
    let cfg = Config::from_toml_over_defaults("[spawner]\nshards = 1\nresync_interval_ms = 3600000\n").expect("config");
    let deps = spawner::Deps { store: store.clone(), bus: bus.clone(), runtime: runtime.clone() };
    let ctx = Arc::new(Context::new(cfg, deps, "release-test".into()));
    assert!(ctx.take_shard(0).await, "the shard queue is free");

    let desired = support::desired("slow", Some(Protocol::LocalOnly));
    let key: PodKey = desired.key();
    store.create_pod(&desired, &Observed::default(), 0).await.expect("create");
    let kick = ShardMessage::Kick { tenant: key.tenant.clone(), pod_id: key.pod_id.clone(), generation: 1 };
    let body = encode(&kick).expect("encode");
    bus.publish(topology::COMMANDS_EXCHANGE, &topology::shard_routing_key(0), OutMessage::new(body))
        .await
        .expect("publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = store.get_pod(&key).await.expect("get").expect("exists").observed.value.status;
        if status == PodStatus::SpawnerSetup {
            break;
        }
        assert!(Instant::now() < deadline, "the spawn never started: {status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    ctx.release_shards(&[0], Some(Duration::from_secs(10))).await;
    // Nothing of the old owner's is still under way: the spawn finished and was stored.
    assert_eq!(ctx.actor_count(), 0, "every actor of the shard has stopped");
    assert_eq!(runtime.list().await.expect("list").len(), 1, "the spawn in hand completed before the release returned");
    let observed = store.get_pod(&key).await.expect("get").expect("exists").observed.value;
    assert_eq!(observed.status, PodStatus::Available, "and its outcome was stored: {observed:?}");
}
