//! The health-poller: watches containers and tells each pod's actor what it saw.
//!
//! Three loops feed observations ([`corral_protocol::ShardMessage`], gathered per shard) into
//! the pod's shard queue (never into the store: only the pod's actor writes observed state):
//! - runtime events (`Exited` → `Exited`, `Removed` → `Gone`), re-subscribed with backoff;
//! - readiness probes for pods that are `CREATING` (started from pod events on
//!   `corral.events`, or by the resync when an event was lost) → `Ready`;
//! - a periodic resync comparing the store with the runtime, so a lost event never leaves
//!   a pod stuck; it re-reads only the pods whose records changed since its last pass.
//!
//! Every observation is a hint: the actor checks it against the pod's current container, so
//! duplicates and late observations are harmless.

mod backoff;
mod known;
mod pod_events;
mod probe;
mod probes;
mod publish;
mod resync;
mod runtime_events;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_bus::{Bus, Topology};
use corral_config::Config;
use corral_runtime::Runtime;
use corral_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::probes::Probes;
use crate::publish::Publisher;

pub use probe::ProbeError;

/// The external systems the poller talks to.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub runtime: Arc<dyn Runtime>,
}

/// Timing taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub shards: u32,
    pub resync_interval: Duration,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// A probe gives up after this long: the actor's stall timer takes over.
    pub probe_give_up: Duration,
}

impl Settings {
    fn from_config(cfg: &Config) -> Self {
        Self {
            shards: cfg.spawner.shards,
            resync_interval: Duration::from_millis(cfg.health.resync_interval_ms.max(1)),
            probe_interval: Duration::from_millis(cfg.health.probe_interval_ms.max(1)),
            probe_timeout: Duration::from_millis(cfg.health.probe_timeout_ms.max(1)),
            probe_give_up: Duration::from_millis(cfg.spawner.stall_timeout_ms),
        }
    }
}

/// State shared by the poller's loops.
pub(crate) struct Ctx {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub runtime: Arc<dyn Runtime>,
    pub settings: Settings,
    pub publisher: Publisher,
    pub probes: Probes,
    /// Wakes the resync loop early (after the runtime event stream was interrupted).
    pub resync_now: Notify,
}

/// Runs the health-poller until `shutdown` resolves.
///
/// Declares the bus topology first (observations are published with mandatory routing,
/// so the shard queues must exist); fails if that is impossible.
pub async fn run(cfg: Config, deps: Deps, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let settings = Settings::from_config(&cfg);
    deps.bus.declare(&Topology { shards: settings.shards }).await.context("declaring the bus topology")?;
    let ctx = Arc::new(Ctx {
        publisher: Publisher::new(
            deps.bus.clone(),
            settings.shards,
            usize::from(cfg.amqp.max_observations_per_message),
        ),
        store: deps.store,
        bus: deps.bus,
        runtime: deps.runtime,
        settings,
        probes: Probes::default(),
        resync_now: Notify::new(),
    });
    let cancel = CancellationToken::new();
    let tasks = [
        corral_telemetry::spawn_named("runtime-events", runtime_events::watch(ctx.clone(), cancel.clone())),
        corral_telemetry::spawn_named("pod-events", pod_events::watch(ctx.clone(), cancel.clone())),
        corral_telemetry::spawn_named("resync", resync::every_interval(ctx.clone(), cancel.clone())),
    ];
    tracing::info!(shards = settings.shards, "health-poller running");
    shutdown.await;
    tracing::info!("health-poller stopping");
    cancel.cancel();
    for task in tasks {
        if let Err(e) = task.await {
            tracing::warn!(error = %e, "health-poller task ended abnormally");
        }
    }
    ctx.probes.abort_all();
    Ok(())
}
