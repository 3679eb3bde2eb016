//! The placeholder pool-manager joins its membership group while running and leaves it on
//! shutdown, after declaring the bus topology.

use std::sync::Arc;
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions};
use corral_config::Config;
use corral_protocol::topology;
use corral_store::Store;
use corral_testkit::MemoryStore;

const WAIT: Duration = Duration::from_secs(10);

async fn members(store: &MemoryStore) -> Vec<String> {
    store.live_members(pool_manager::GROUP, 0).await.expect("live members")
}

#[tokio::test]
async fn joins_while_running_and_leaves_on_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let cfg = Config::from_toml_over_defaults("").expect("default config");
    let shards = cfg.spawner.shards;
    let bus = MemoryBus::new();
    let deps = pool_manager::Deps { store: store.clone(), bus: Arc::new(bus.clone()) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(pool_manager::run(cfg, deps, async move {
        let _ = stopped.await;
    }));

    let deadline = tokio::time::Instant::now() + WAIT;
    let joined = loop {
        let now = members(&store).await;
        if !now.is_empty() {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "pool-manager never joined its group");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(joined.len(), 1, "{joined:?}");
    assert!(joined[0].starts_with("pool-manager-"), "{joined:?}");
    // It joins only after declaring: the shard queues exist.
    let last_shard = topology::shard_queue(shards - 1);
    bus.consume(&last_shard, ConsumeOptions::default()).await.expect("shard queues are declared");

    let _ = stop.send(());
    tokio::time::timeout(WAIT, task).await.expect("stops within the bound").expect("no panic").expect("returns Ok");
    assert!(members(&store).await.is_empty(), "left the group on shutdown");
}
