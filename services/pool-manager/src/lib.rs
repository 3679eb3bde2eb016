//! The pool-manager: keeps every Binder pool (see `corral_model::pool`) at its size of
//! unclaimed, pre-warmed pods, refills it as members are claimed, replaces members started
//! from an outdated template, and culls claimed members that are idle past the template's
//! `cull-timeout` or older than its max age.
//!
//! It is a reconciler over the store: every pass reads each pool's members and their pods
//! and acts to converge, so a pass lost to a crash is simply redone by the next one. Only
//! the holder of the [`LEADER_LEASE`] acts, so two pool-managers never race on sizing;
//! the store's atomic member operations keep the cap and the claims exact regardless.
//! Claimed members are never removed except by culling, so restarting any service never
//! kills a claimed instance.
//!
//! # Layout
//! - `pods`: creating and deleting member pods (store writes plus shard kicks).
//! - [`reconcile`]: one pass over one pool.

mod pods;
pub mod reconcile;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_bus::{Bus, Topology};
use corral_config::Config;
use corral_model::Millis;
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND};
use corral_store::{Store, StoreError};
use tokio::time::MissedTickBehavior;

/// Membership group the pool-manager heartbeats in.
pub const GROUP: &str = "pool-manager";
/// The lease whose holder reconciles the pools.
pub const LEADER_LEASE: &str = "pool-manager-leader";

const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Time between passes: refills follow claims within about this.
const PASS_EVERY: Duration = Duration::from_millis(200);
/// The leader's lease outlives a few missed passes, and a dead leader is replaced after it.
const LEASE_TTL_MS: u64 = 3_000;

/// The external systems the pool-manager talks to.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
}

/// Runs the pool-manager until `shutdown` resolves, then gives up the lease and leaves the
/// membership group.
pub async fn run(cfg: Config, deps: Deps, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    deps.bus.declare(&Topology { shards: cfg.spawner.shards }).await.context("declaring the bus topology")?;
    let id = format!("pool-manager-{}", uuid::Uuid::new_v4());
    tracing::info!(id, "pool-manager running");
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pass = tokio::time::interval(PASS_EVERY);
    pass.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = heartbeat.tick() => {
                // A missed heartbeat only makes us look absent for a moment: keep going.
                if let Err(e) = deps.store.heartbeat(GROUP, &id, now_millis()).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
            _ = pass.tick() => {
                match deps.store.acquire_lease(LEADER_LEASE, &id, LEASE_TTL_MS).await {
                    Ok(true) => {
                        if let Err(e) = reconcile_all(&deps, cfg.spawner.shards).await {
                            tracing::warn!(error = %e, "pool pass failed; retrying next pass");
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot take the leader lease"),
                }
            }
        }
    }
    tracing::info!(id, "pool-manager stopping");
    let _ = deps.store.release_lease(LEADER_LEASE, &id).await;
    deps.store.leave(GROUP, &id).await.context("leaving the pool-manager group")?;
    Ok(())
}

/// One pass over every pool. A failing pool is logged and the others still get their pass.
pub async fn reconcile_all(deps: &Deps, shards: u32) -> Result<(), StoreError> {
    for (pool_id, doc) in deps.store.list_docs(POOL_KIND).await? {
        let cfg: PoolConfig = match serde_json::from_str(&doc.value) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(pool = pool_id, error = %e, "unreadable pool document skipped");
                continue;
            }
        };
        let template = match deps.store.get_doc(TEMPLATE_KIND, &pool_id).await? {
            Some(t) => serde_json::from_str::<AppTemplate>(&t.value).ok().map(|tpl| (tpl, t.version)),
            None => None,
        };
        let now = now_millis();
        let tpl = template.as_ref().map(|(t, v)| (t, *v));
        match reconcile::reconcile_pool(deps, shards, &pool_id, &cfg, tpl, now).await {
            Ok(report) if report != reconcile::PassReport::default() => {
                tracing::info!(pool = pool_id, ?report, "pool reconciled");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(pool = pool_id, error = %e, "pool pass failed"),
        }
        // A deleted pool's document goes once its last member is gone.
        if cfg.deleted && deps.store.pool_members(&pool_id).await?.is_empty() {
            match deps.store.delete_doc(POOL_KIND, &pool_id).await {
                Ok(_) => tracing::info!(pool = pool_id, "deleted pool removed"),
                Err(e) => tracing::warn!(pool = pool_id, error = %e, "cannot remove deleted pool"),
            }
        }
    }
    Ok(())
}

fn now_millis() -> Millis {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    Millis::try_from(nanos).unwrap_or(Millis::MAX)
}
