//! The pool-manager tells the spawners about every member pod it creates or deletes: a kick
//! for the pod's new generation on the shard queue its id maps to, as the gateway does for
//! `POST /v3/pods` and `DELETE /v3/pods/{id}`.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions, Topology};
use corral_config::Config;
use corral_model::pool::{POOL_KIND, pool_id};
use corral_model::shard::shard_of;
use corral_protocol::ShardMessage;
use corral_protocol::topology::shard_queue;
use corral_store::Store;
use corral_testkit::MemoryStore;
use futures::StreamExt as _;
use support::{WAIT, make_pool, pool_config};

/// Generations kicked per pod, each with the shard it arrived on.
type Kicked = Arc<Mutex<BTreeMap<String, Vec<(u32, u64)>>>>;

/// Reads every shard queue into `kicked`, as spawners would.
async fn watch_shards(bus: &dyn Bus, shards: u32, kicked: &Kicked) {
    for shard in 0..shards {
        let opts =
            ConsumeOptions { prefetch: 100, exclusive: true, consumer_tag: format!("s{shard}"), auto_ack: false };
        let consumer = bus.consume(&shard_queue(shard), opts).await.expect("consume a shard queue");
        let kicked = Arc::clone(kicked);
        tokio::spawn(consumer.stream.for_each(move |d| {
            let kicked = Arc::clone(&kicked);
            async move {
                let kicks = match corral_protocol::decode(&d.body, d.content_type.as_deref()).expect("a shard message")
                {
                    ShardMessage::Kick { pod_id, generation, .. } => vec![(pod_id, generation)],
                    ShardMessage::Kicks { kicks } => kicks.into_iter().map(|k| (k.pod_id, k.generation)).collect(),
                    ShardMessage::Observation { .. } | ShardMessage::Observations { .. } => Vec::new(),
                };
                for (pod, generation) in kicks {
                    kicked.lock().expect("kicks").entry(pod).or_default().push((shard, generation));
                }
                d.ack().await.expect("ack");
            }
        }));
    }
}

/// Polls until every pod in `kicked` has a kick for a generation `ok` accepts, and there are
/// `pods` of them.
async fn wait_for_kicks(kicked: &Kicked, pods: usize, what: &str, ok: impl Fn(u64) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let done = {
            let k = kicked.lock().expect("kicks");
            k.len() == pods && k.values().all(|gens| gens.iter().any(|(_, g)| ok(*g)))
        };
        if done {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: kicks so far {:?}", kicked.lock().expect("kicks"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_created_and_deleted_are_kicked_on_their_shards() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let conf = Config::from_toml_over_defaults("").expect("config");
    let shards = conf.spawner.shards;
    bus.declare(&Topology { shards }).await.expect("declare");
    let kicked: Kicked = Arc::default();
    watch_shards(bus.as_ref(), shards, &kicked).await;

    let tenant = "acme";
    let size = 12;
    let (pool, _, pool_version) = make_pool(store.as_ref(), tenant, size, size, 0).await;
    let timing = pool_manager::Timing { full_pass_every: Duration::from_millis(100) };
    let deps = pool_manager::Deps { store: Arc::clone(&store), bus: Arc::clone(&bus) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let manager = tokio::spawn(pool_manager::run_with(conf, deps, timing, async move {
        let _ = stopped.await;
    }));

    // The refill: one kick per member for generation 1, on the member's own shard.
    wait_for_kicks(&kicked, size as usize, "members created", |g| g == 1).await;
    let members: Vec<String> = store.pool_members(&pool).await.expect("members").into_iter().map(|m| m.id).collect();
    assert_eq!(members.len(), size as usize);
    {
        let k = kicked.lock().expect("kicks");
        for id in &members {
            let gens = k.get(id).unwrap_or_else(|| panic!("member {id} was never kicked: {k:?}"));
            assert!(gens.contains(&(shard_of(tenant, id, shards), 1)), "{id}: {gens:?}");
        }
    }

    // The pool shrinks to nothing: every member is deleted (a new generation) and kicked.
    let cfg = serde_json::to_string(&pool_config(tenant, 0, size)).expect("json");
    store.put_doc(POOL_KIND, &pool_id(tenant, "web"), &cfg, pool_version).await.expect("shrink the pool");
    wait_for_kicks(&kicked, size as usize, "members deleted", |g| g == 2).await;
    for id in &members {
        let rec = store.get_pod(&corral_model::PodKey::new(tenant, id)).await.expect("read").expect("still stored");
        assert!(rec.desired.value.deleted && rec.desired.value.generation == 2, "{id}: {:?}", rec.desired.value);
    }

    let _ = stop.send(());
    manager.await.expect("manager task").expect("manager stops cleanly");
}
