//! The pool-manager: keeps every Binder pool (see `corral_model::pool`) at its size of
//! unclaimed, pre-warmed pods, refills it as members are claimed, replaces members started
//! from an outdated template, and culls claimed members that are idle past the template's
//! `cull-timeout` or older than its max age.
//!
//! It is a reconciler over the store: every pass reads each pool's members and their pods
//! and acts to converge, so a pass lost to a crash is simply redone by the next one. Passes
//! run periodically over every pool and, in between, at once over the pools that pod events
//! and the gateways' claim hints name ([`events`]), so a claim is refilled and a member that
//! becomes ready is promoted without waiting for the next period. Only the holder of the
//! [`LEADER_LEASE`] acts, so two pool-managers never race on sizing; the store's atomic
//! member operations keep the cap and the claims exact regardless. Claimed members are
//! never removed except by culling or once their pod is gone, so restarting any service
//! never kills a claimed instance.
//!
//! # Layout
//! - [`decide`]: what a pass does with one member (pure).
//! - [`reconcile`]: one pass over one pool.
//! - [`records`]: pod records of members, re-read only when they change.
//! - [`events`]: the wake-ups between periodic passes.
//! - `pods`: creating and deleting member pods (store writes plus shard kicks).

pub mod decide;
pub mod events;
mod pods;
pub mod reconcile;
pub mod records;

pub use pods::PassKicks;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_bus::shard_publish::KickPublisher;
use corral_bus::{Bus, Topology};
use corral_config::Config;
use corral_model::Millis;
use corral_model::pool::{AppTemplate, POOL_KIND, PoolConfig, TEMPLATE_KIND};
use corral_store::{Store, StoreError};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::events::Wake;
use crate::records::RecordCache;

/// Membership group the pool-manager heartbeats in.
pub const GROUP: &str = "pool-manager";
/// The lease whose holder reconciles the pools.
pub const LEADER_LEASE: &str = "pool-manager-leader";

const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// The leader's lease outlives a few missed renewals, and a dead leader is replaced after it.
const LEASE_TTL_MS: u64 = 3_000;
const LEASE_RENEW_EVERY: Duration = Duration::from_millis(500);
/// Passes run only while the lease has at least this much left, so another pool-manager
/// cannot hold it yet (and clocks may drift a little).
const LEASE_MARGIN: Duration = Duration::from_millis(1_000);

/// How often things happen; tests shorten or lengthen them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Between passes over every pool. Culling follows this; refills and promotions follow
    /// events at once.
    pub full_pass_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self { full_pass_every: Duration::from_millis(250) }
    }
}

/// The external systems the pool-manager talks to.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
}

/// Runs the pool-manager until `shutdown` resolves, then gives up the lease and leaves the
/// membership group.
pub async fn run(cfg: Config, deps: Deps, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    run_with(cfg, deps, Timing::default(), shutdown).await
}

/// [`run`] with explicit [`Timing`].
pub async fn run_with(
    cfg: Config,
    deps: Deps,
    timing: Timing,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    deps.bus.declare(&Topology { shards: cfg.spawner.shards }).await.context("declaring the bus topology")?;
    let id = format!("pool-manager-{}", uuid::Uuid::new_v4());
    tracing::info!(id, "pool-manager running");
    let wake = Arc::new(Wake::default());
    let stop_events = CancellationToken::new();
    let watcher = tokio::spawn(
        events::watch(Arc::clone(&deps.bus), Arc::clone(&wake), stop_events.clone())
            .instrument(tracing::info_span!("pool_events")),
    );
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut renew = tokio::time::interval(LEASE_RENEW_EVERY);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pass = tokio::time::interval(timing.full_pass_every);
    pass.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let kicks = KickPublisher::new(Arc::clone(&deps.bus), usize::from(cfg.amqp.max_kicks_per_message))
        .with_min_interval(cfg.amqp.kick_interval());
    let mut manager =
        Manager { deps, kicks, shards: cfg.spawner.shards, wake: Arc::clone(&wake), cache: RecordCache::default() };
    let mut leader_until: Option<Instant> = None;
    let leading = |until: Option<Instant>| until.is_some_and(|t| Instant::now() < t);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = heartbeat.tick() => {
                // A missed heartbeat only makes us look absent for a moment: keep going.
                if let Err(e) = manager.deps.store.heartbeat(GROUP, &id, now_millis()).await {
                    tracing::warn!(error = %e, "heartbeat failed");
                }
            }
            _ = renew.tick() => {
                let asked = Instant::now();
                match manager.deps.store.acquire_lease(LEADER_LEASE, &id, LEASE_TTL_MS).await {
                    Ok(true) => {
                        if !leading(leader_until) {
                            tracing::info!(id, "leading the pools");
                            wake.everything();
                        }
                        leader_until = Some(asked + Duration::from_millis(LEASE_TTL_MS) - LEASE_MARGIN);
                    }
                    Ok(false) => leader_until = None,
                    Err(e) => tracing::warn!(error = %e, "cannot renew the leader lease"),
                }
            }
            _ = pass.tick() => {
                if leading(leader_until) {
                    // A full pass covers whatever was due.
                    let _ = wake.take();
                    manager.pass(None).await;
                }
            }
            () = wake.wait() => {
                let due = wake.take();
                if leading(leader_until) {
                    manager.pass(due.as_ref()).await;
                }
            }
        }
    }
    tracing::info!(id, "pool-manager stopping");
    stop_events.cancel();
    let _ = watcher.await;
    let _ = manager.deps.store.release_lease(LEADER_LEASE, &id).await;
    manager.deps.store.leave(GROUP, &id).await.context("leaving the pool-manager group")?;
    Ok(())
}

/// The leader's state between passes.
struct Manager {
    deps: Deps,
    kicks: KickPublisher,
    shards: u32,
    wake: Arc<Wake>,
    cache: RecordCache,
}

impl Manager {
    /// One pass over `pools` (every pool if `None`); failures are logged, the next pass
    /// retries.
    async fn pass(&mut self, pools: Option<&BTreeSet<String>>) {
        if pools.is_some_and(BTreeSet::is_empty) {
            return;
        }
        let mut kicks = PassKicks::new(self.kicks.clone(), self.shards);
        let outcome = reconcile_some(&self.deps, &mut kicks, &mut self.cache, &self.wake, pools).await;
        kicks.finish().await;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "pool pass failed; retrying next pass");
        }
    }
}

/// One pass over `only` (every pool if `None`). A failing pool is logged and the others
/// still get their pass.
async fn reconcile_some(
    deps: &Deps,
    kicks: &mut PassKicks,
    cache: &mut RecordCache,
    wake: &Wake,
    only: Option<&BTreeSet<String>>,
) -> Result<(), StoreError> {
    let docs = deps.store.list_docs(POOL_KIND).await?;
    if only.is_none() {
        let live: Vec<String> = docs.iter().map(|(name, _)| name.clone()).collect();
        cache.retain_pools(&live);
        wake.retain_pools(&live);
    }
    for (pool_id, doc) in docs {
        if only.is_some_and(|pools| !pools.contains(&pool_id)) {
            continue;
        }
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
        let tpl = template.as_ref().map(|(t, v)| (t, *v));
        match reconcile::reconcile_pool(deps, kicks, cache, &pool_id, &cfg, tpl, now_millis()).await {
            Ok(pass) => {
                if pass.report != reconcile::PassReport::default() {
                    tracing::info!(pool = pool_id, report = ?pass.report, "pool reconciled");
                }
                wake.set_members(&pool_id, &cfg.tenant, &pass.members);
                // A deleted pool's document goes once its last member is gone.
                if cfg.deleted && pass.members.is_empty() && deps.store.pool_members(&pool_id).await?.is_empty() {
                    match deps.store.delete_doc(POOL_KIND, &pool_id).await {
                        Ok(_) => tracing::info!(pool = pool_id, "deleted pool removed"),
                        Err(e) => tracing::warn!(pool = pool_id, error = %e, "cannot remove deleted pool"),
                    }
                }
            }
            Err(e) => tracing::warn!(pool = pool_id, error = %e, "pool pass failed"),
        }
    }
    Ok(())
}

fn now_millis() -> Millis {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    Millis::try_from(nanos).unwrap_or(Millis::MAX)
}
