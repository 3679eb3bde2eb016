//! Between its periodic passes (set an hour apart here) the pool-manager acts on events:
//! a member's AVAILABLE event promotes it, a claim hint refills the pool, and a claimed
//! member's deletion frees its slot, each at once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, OutMessage};
use corral_config::Config;
use corral_model::pool::pool_owner;
use corral_model::{PodKey, PodStatus};
use corral_protocol::PoolClaimed;
use corral_protocol::topology::{EVENTS_EXCHANGE, pool_claimed_routing_key};
use corral_store::{Claim, ClaimOutcome, ClaimRequest, Store};
use corral_testkit::MemoryStore;
use support::{WAIT, announce, fake_spawner, make_pool, now_ms, wait_for};

/// Well under the hour between periodic passes: only events can explain the progress.
const PROMPTLY: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_claim_hints_drive_promotion_refill_and_release() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let tenant = "acme".to_string();
    let (size, cap) = (2, 4);
    let (pool, tv, pv) = make_pool(store.as_ref(), &tenant, size, cap, 0).await;

    let timing = pool_manager::Timing { full_pass_every: Duration::from_secs(3600) };
    let deps = pool_manager::Deps { store: Arc::clone(&store), bus: Arc::clone(&bus) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let conf = Config::from_toml_over_defaults("").expect("config");
    let manager = tokio::spawn(pool_manager::run_with(conf, deps, timing, async move {
        let _ = stopped.await;
    }));
    // The first pass (on taking the lead) creates the members; the spawner announces each
    // ready one, and those events promote them.
    wait_for(store.as_ref(), &pool, "members created", WAIT, |c| c.0 + c.1 == size as usize).await;
    let spawner = tokio::spawn(fake_spawner(Arc::clone(&store), tenant.clone(), Some(Arc::clone(&bus))));
    wait_for(store.as_ref(), &pool, "promoted on AVAILABLE events", PROMPTLY, |c| c == (0, 2, 0)).await;

    // A claim, then the gateway's hint: refilled at once.
    let req = ClaimRequest {
        tenant: &tenant,
        pool: &pool,
        template_version: tv,
        pool_version: pv,
        cap,
        pool_owner: &pool_owner("web"),
        claimant: "alice",
        cold_member: "unused",
        now: now_ms(),
    };
    let ClaimOutcome::Claimed { claim: Claim::Ready(id), owner_set: true } =
        store.pool_claim_instance(&req).await.expect("claim")
    else {
        panic!("a ready member is handed out and owned");
    };
    let hint = corral_protocol::encode(&PoolClaimed { pool: pool.clone() }).expect("encode");
    bus.publish_event(EVENTS_EXCHANGE, &pool_claimed_routing_key(&tenant), OutMessage::new(hint))
        .await
        .expect("publish hint");
    wait_for(store.as_ref(), &pool, "refilled on the claim hint", PROMPTLY, |c| c == (0, 2, 1)).await;

    // The owner deletes the claimed instance: its DELETING event frees the slot.
    let key = PodKey::new(&tenant, &id);
    let rec = store.get_pod(&key).await.expect("get").expect("claimed pod");
    let deleted = corral_model::Desired { deleted: true, ..rec.desired.value };
    store.put_desired(&deleted, rec.desired.version).await.expect("delete");
    announce(bus.as_ref(), &tenant, &id, PodStatus::Deleting).await;
    wait_for(store.as_ref(), &pool, "released on the DELETING event", PROMPTLY, |c| c == (0, 2, 0)).await;

    let _ = stop.send(());
    tokio::time::timeout(WAIT, manager).await.expect("stops").expect("no panic").expect("ok");
    spawner.abort();
}
