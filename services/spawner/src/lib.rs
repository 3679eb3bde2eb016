//! The spawner: owns shards of pods and runs one actor per live pod that drives the pod's
//! container through the state machine in `corral_model::machine`.
//!
//! - [`ownership`]: membership heartbeats and shard leases; shards are spread evenly over
//!   live spawners and move to a survivor when one dies (lease expiry).
//! - [`shard`]: one consumer per owned shard queue, routing kicks and observations to pod
//!   actors; adoption of containers and removal of orphans when a shard is taken.
//! - [`resync`]: each owned shard's periodic resync from the store, which kicks only the
//!   pods that need their actor.
//! - [`actor`]: the per-pod actor, the only writer of a pod's observed state.
//! - [`passivation`]: actors of settled pods are stopped and revived on demand; the shard
//!   keeps only their next deadline.
//! - [`settle`]: acking (or retrying) deliveries once handled, batches of kicks included.
//! - [`effects`]: how the actor's actions touch the runtime, store and bus.
//! - [`bootstrap`]: pods' bootstrap scripts, run in the container before its command.
//! - [`exit`]: what a container's exit means (batch exit codes, failed bootstrap scripts).
//! - [`git`]: pods' git sources, cloned on the host before their container starts.

pub mod actor;
pub mod bootstrap;
pub mod effects;
pub mod exit;
pub mod git;
pub mod ownership;
pub mod passivation;
mod registry;
pub mod resync;
pub mod settle;
pub mod shard;

use std::future::Future;
use std::sync::Arc;

use corral_bus::{Bus, Topology};
use corral_config::Config;
use corral_runtime::Runtime;
use corral_store::Store;

/// The external systems the spawner works with.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub runtime: Arc<dyn Runtime>,
}

/// Runs a spawner until `shutdown` resolves, then stops consuming, lets actors finish the
/// message in hand, releases its leases and leaves the membership group.
pub async fn run(cfg: Config, deps: Deps, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    use anyhow::Context as _;
    deps.bus.declare(&Topology { shards: cfg.spawner.shards }).await.context("declaring the bus topology")?;
    let id = format!("spawner-{}", std::process::id()) + "-" + &short_id();
    tracing::info!(%id, shards = cfg.spawner.shards, runtime = %deps.runtime.kind(), "spawner starting");
    let ctx = Arc::new(shard::Context::new(cfg, deps, id));
    ownership::run(ctx, shutdown).await
}

fn short_id() -> String {
    use rand::Rng as _;
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}
