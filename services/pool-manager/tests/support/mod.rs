//! Shared pieces of the pool-manager tests: a template, a fake spawner and polling helpers.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;
use std::time::Duration;

use corral_bus::{Bus, OutMessage};
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND, WhenFull, pool_id};
use corral_model::{Observed, PodSpec, PodStatus};
use corral_protocol::PodEvent;
use corral_protocol::topology::{EVENTS_EXCHANGE, event_routing_key};
use corral_store::{MemberState, Store};

pub const WAIT: Duration = Duration::from_secs(10);

pub fn template(tenant: &str, cull_timeout_s: u64) -> AppTemplate {
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

pub fn pool_config(tenant: &str, size: u32, cap: u32) -> PoolConfig {
    PoolConfig {
        tenant: tenant.into(),
        template: "web".into(),
        size,
        cap,
        when_full: WhenFull::Reject,
        retry_after_s: 1,
        deleted: false,
    }
}

/// Stores the `web` template and its pool; returns the pool id and the two versions.
pub async fn make_pool(store: &dyn Store, tenant: &str, size: u32, cap: u32, cull_s: u64) -> (String, u64, u64) {
    let pool = pool_id(tenant, "web");
    let tpl = serde_json::to_string(&template(tenant, cull_s)).expect("json");
    let tv = store.put_doc(TEMPLATE_KIND, &pool, &tpl, 0).await.expect("template");
    let cfg = serde_json::to_string(&pool_config(tenant, size, cap)).expect("json");
    let pv = store.put_doc(POOL_KIND, &pool, &cfg, 0).await.expect("pool");
    (pool, tv, pv)
}

/// Plays the spawner: every live pod of `tenant` becomes AVAILABLE (announced on `bus` when
/// given, as the spawner does); deleted ones are purged.
pub async fn fake_spawner(store: Arc<dyn Store>, tenant: String, bus: Option<Arc<dyn Bus>>) {
    loop {
        for rec in store.list_tenant(&tenant).await.expect("list") {
            let d = &rec.desired.value;
            if d.deleted {
                store.purge_pod(&d.key(), 0).await.expect("purge");
            } else if rec.observed.value.status != PodStatus::Available {
                let obs =
                    Observed { status: PodStatus::Available, observed_generation: d.generation, ..rec.observed.value };
                if store.put_observed(&d.key(), &obs, rec.observed.version).await.is_ok()
                    && let Some(bus) = &bus
                {
                    announce(bus.as_ref(), &d.tenant, &d.spec.pod_id, PodStatus::Available).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes a pod event as the spawner does.
pub async fn announce(bus: &dyn Bus, tenant: &str, pod_id: &str, status: PodStatus) {
    let event = PodEvent {
        tenant: tenant.into(),
        pod_id: pod_id.into(),
        status,
        generation: 1,
        instance: 1,
        ..PodEvent::default()
    };
    let body = corral_protocol::encode(&event).expect("encode");
    bus.publish_event(EVENTS_EXCHANGE, &event_routing_key(tenant, status.as_str()), OutMessage::new(body))
        .await
        .expect("publish event");
}

pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).expect("now fits")
}

/// (warming, available, claimed) members of `pool`.
pub async fn counts(store: &dyn Store, pool: &str) -> (usize, usize, usize) {
    let members = store.pool_members(pool).await.expect("members");
    let n = |s| members.iter().filter(|m| m.state == s).count();
    (n(MemberState::Warming), n(MemberState::Available), n(MemberState::Claimed))
}

/// Polls the counts until `ok`, failing after `within`.
pub async fn wait_for(
    store: &dyn Store,
    pool: &str,
    what: &str,
    within: Duration,
    ok: impl Fn((usize, usize, usize)) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let c = counts(store, pool).await;
        if ok(c) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: counts stuck at {c:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
