//! A claimed instance whose pod its owner deleted, and the spawner purged, before the
//! pool-manager's next pass is released (its slot under the cap freed), and its pod is never
//! created again. Against the Redis at `CORRAL_TEST_REDIS_URL` (fails if it is down), with a
//! fake spawner that marks pods ready and purges deleted ones.

mod support;

use std::sync::Arc;
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_config::Config;
use corral_model::PodKey;
use corral_model::pool::{member_pod, pool_owner};
use corral_store::redis::RedisStore;
use corral_store::{Claim, ClaimOutcome, ClaimRequest, Store};
use support::{WAIT, counts, fake_spawner, make_pool, now_ms, template, wait_for};
use tokio::task::JoinHandle;

fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Harness {
    store: Arc<dyn Store>,
    redis: RedisStore,
    tenant: String,
    stop: tokio::sync::oneshot::Sender<()>,
    manager: JoinHandle<anyhow::Result<()>>,
    spawner: JoinHandle<()>,
}

impl Harness {
    async fn start() -> Self {
        let namespace = format!("corral-test-{}", uuid::Uuid::new_v4().simple());
        let redis = RedisStore::connect(&redis_url(), &namespace).await.expect("connect to the test redis");
        let store: Arc<dyn Store> = Arc::new(redis.clone());
        let tenant = "acme".to_string();
        let spawner = tokio::spawn(fake_spawner(Arc::clone(&store), tenant.clone(), None));
        let deps = pool_manager::Deps { store: Arc::clone(&store), bus: Arc::new(MemoryBus::new()) };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let conf = Config::from_toml_over_defaults("").expect("config");
        let manager = tokio::spawn(pool_manager::run(conf, deps, async move {
            let _ = stopped.await;
        }));
        Self { store, redis, tenant, stop, manager, spawner }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.manager).await.expect("stops").expect("no panic").expect("ok");
        self.spawner.abort();
        self.redis.clear_namespace().await.expect("clear the test namespace");
    }

    async fn claim(&self, pool: &str, tv: u64, pv: u64, cap: u32) -> Claim {
        let cold = format!("cold{}", uuid::Uuid::new_v4().simple());
        let req = ClaimRequest {
            tenant: &self.tenant,
            pool,
            template_version: tv,
            pool_version: pv,
            cap,
            pool_owner: &pool_owner("web"),
            claimant: "alice",
            cold_member: &cold,
            now: now_ms(),
        };
        match self.store.pool_claim_instance(&req).await.expect("claim") {
            ClaimOutcome::Claimed { claim, .. } => claim,
            ClaimOutcome::Stale => panic!("documents are current"),
        }
    }

    /// Polls until `id` is no longer a member of `pool`, failing if its pod ever exists
    /// meanwhile.
    async fn wait_released_never_recreated(&self, pool: &str, id: &str, within: Duration) {
        let key = PodKey::new(&self.tenant, id);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            assert!(self.store.get_pod(&key).await.expect("get").is_none(), "the deleted pod {id} was created again");
            let members = self.store.pool_members(pool).await.expect("members");
            if members.iter().all(|m| m.id != id) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} was never released: {members:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_instance_deleted_and_purged_between_passes_is_released_not_recreated() {
    let h = Harness::start().await;
    let (cap, size) = (3, 2);
    let (pool, tv, pv) = make_pool(h.store.as_ref(), &h.tenant, size, cap, 0).await;
    wait_for(h.store.as_ref(), &pool, "fill", WAIT, |c| c == (0, 2, 0)).await;

    let Claim::Ready(id) = h.claim(&pool, tv, pv, cap).await else { panic!("a ready member is handed out") };
    // The owner deletes it and the spawner purges it before the pool-manager looks again.
    assert!(h.store.purge_pod(&PodKey::new(&h.tenant, &id), 0).await.expect("purge"));

    // Its pod was seen, so it is released at once (well before the grace for pods that
    // never appeared), and the pool refills within the cap.
    h.wait_released_never_recreated(&pool, &id, Duration::from_secs(3)).await;
    wait_for(h.store.as_ref(), &pool, "refill", WAIT, |c| c == (0, 2, 0)).await;
    assert!(h.store.get_pod(&PodKey::new(&h.tenant, &id)).await.expect("get").is_none(), "still gone");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_instance_deleted_before_any_pass_saw_it_is_never_recreated() {
    let h = Harness::start().await;
    let cap = 2;
    let (pool, tv, pv) = make_pool(h.store.as_ref(), &h.tenant, 0, cap, 0).await;

    let Claim::Cold(id) = h.claim(&pool, tv, pv, cap).await else { panic!("an empty pool hands out a cold member") };
    // The claimant's gateway creates the pod; its owner deletes it and it is purged at once.
    let (d, o) = member_pod(&template(&h.tenant, 0), &pool, &id, "alice", now_ms());
    h.store.create_pod(&d, &o, 0).await.expect("create the cold pod");
    assert!(h.store.purge_pod(&d.key(), 0).await.expect("purge"));

    // Nobody saw its pod, so it gets the grace of a pod being created, then is released;
    // its pod never comes back.
    let within = Duration::from_millis(u64::try_from(pool_manager::decide::MISSING_POD_GRACE_MS).expect("ms")) + WAIT;
    h.wait_released_never_recreated(&pool, &id, within).await;
    assert_eq!(counts(h.store.as_ref(), &pool).await, (0, 0, 0), "its slot is free");
    h.stop().await;
}
