//! The pool-manager fills a pool, refills it after a claim, culls an idle claimed member
//! and drains a deleted pool, against the in-memory store with a fake spawner that marks
//! every pod ready.

use std::sync::Arc;
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_config::Config;
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND, WhenFull, pool_id};
use corral_model::{Observed, PodKey, PodSpec, PodStatus};
use corral_store::{Claim, MemberState, Store};
use corral_testkit::MemoryStore;

const WAIT: Duration = Duration::from_secs(10);

fn template(tenant: &str, cull_timeout_s: u64) -> AppTemplate {
    AppTemplate {
        name: "web".into(),
        tenant: tenant.into(),
        spec: PodSpec { image: "corral-test/busybox".into(), ..PodSpec::default() },
        cull_timeout_s,
        max_age_s: 0,
        services: serde_json::Value::Null,
        limits: serde_json::Value::Null,
        command: None,
        image_name: "corral-test/busybox".into(),
        created: 0,
        modified: 0,
    }
}

/// Plays the spawner: every live pod of `tenant` becomes AVAILABLE; deleted ones are purged.
async fn fake_spawner(store: Arc<MemoryStore>, tenant: String) {
    loop {
        for rec in store.list_tenant(&tenant).await.expect("list") {
            let d = &rec.desired.value;
            if d.deleted {
                store.purge_pod(&d.key(), 0).await.expect("purge");
            } else if rec.observed.value.status != PodStatus::Available {
                let obs = Observed {
                    status: PodStatus::Available,
                    observed_generation: d.generation,
                    ..rec.observed.value.clone()
                };
                let _ = store.put_observed(&d.key(), &obs, rec.observed.version).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).expect("now fits")
}

async fn counts(store: &MemoryStore, pool: &str) -> (usize, usize, usize) {
    let members = store.pool_members(pool).await.expect("members");
    let n = |s| members.iter().filter(|m| m.state == s).count();
    (n(MemberState::Warming), n(MemberState::Available), n(MemberState::Claimed))
}

async fn wait_for(store: &MemoryStore, pool: &str, what: &str, ok: impl Fn((usize, usize, usize)) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = counts(store, pool).await;
        if ok(c) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: counts stuck at {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_refills_culls_and_drains() {
    let store = Arc::new(MemoryStore::new());
    let tenant = "acme".to_string();
    let pool = pool_id(&tenant, "web");
    let tpl = serde_json::to_string(&template(&tenant, 1)).expect("json");
    let tv = store.put_doc(TEMPLATE_KIND, &pool, &tpl, 0).await.expect("template");
    let cfg = PoolConfig {
        tenant: tenant.clone(),
        template: "web".into(),
        size: 3,
        cap: 5,
        when_full: WhenFull::Reject,
        retry_after_s: 1,
        deleted: false,
    };
    store.put_doc(POOL_KIND, &pool, &serde_json::to_string(&cfg).expect("json"), 0).await.expect("pool");

    let spawner = tokio::spawn(fake_spawner(store.clone(), tenant.clone()));
    let deps = pool_manager::Deps { store: store.clone(), bus: Arc::new(MemoryBus::new()) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let conf = Config::from_toml_over_defaults("").expect("config");
    let manager = tokio::spawn(pool_manager::run(conf, deps, async move {
        let _ = stopped.await;
    }));

    wait_for(&store, &pool, "fill", |c| c == (0, 3, 0)).await;
    let pods = store.list_tenant(&tenant).await.expect("list");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.desired.value.owner == "pool:web"), "members are labelled pool members");
    assert!(pods.iter().all(|p| p.desired.value.spec.environment_variables.get("CORRAL_POOL") == Some(&pool)));

    // A claim is refilled, and the claimant becomes the owner.
    let Claim::Ready(claimed) = store.pool_claim(&pool, "alice", "cold1", tv, 5, now_ms()).await.expect("claim") else {
        panic!("a ready member is handed out");
    };
    wait_for(&store, &pool, "refill", |c| c == (0, 3, 1)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while store
        .get_pod(&PodKey::new(&tenant, &claimed))
        .await
        .expect("get")
        .is_some_and(|r| r.desired.value.owner != "alice")
    {
        assert!(tokio::time::Instant::now() < deadline, "owner never set");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // With no activity since the claim, the member is culled after the 1 s cull timeout,
    // while the unclaimed members stay.
    wait_for(&store, &pool, "cull", |c| c.2 == 0).await;
    let gone = store.get_pod(&PodKey::new(&tenant, &claimed)).await.expect("get");
    assert!(gone.is_none_or(|r| r.desired.value.deleted), "the culled pod is deleted");
    wait_for(&store, &pool, "steady", |c| c == (0, 3, 0)).await;

    // A template change replaces the unclaimed members.
    let before: Vec<String> = store.pool_members(&pool).await.expect("m").into_iter().map(|m| m.id).collect();
    store.put_doc(TEMPLATE_KIND, &pool, &tpl, tv).await.expect("template update");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now: Vec<_> = store.pool_members(&pool).await.expect("m");
        if now.len() == 3 && now.iter().all(|m| m.state == MemberState::Available && !before.contains(&m.id)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "members never replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Deleting the pool drains it and then removes its document.
    let doc = store.get_doc(POOL_KIND, &pool).await.expect("get").expect("pool doc");
    let deleted = PoolConfig { deleted: true, ..cfg };
    store.put_doc(POOL_KIND, &pool, &serde_json::to_string(&deleted).expect("json"), doc.version).await.expect("put");
    wait_for(&store, &pool, "drain", |c| c == (0, 0, 0)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.get_doc(POOL_KIND, &pool).await.expect("get").is_some() {
        assert!(tokio::time::Instant::now() < deadline, "deleted pool document never removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let _ = stop.send(());
    tokio::time::timeout(WAIT, manager).await.expect("stops").expect("no panic").expect("ok");
    spawner.abort();
}
