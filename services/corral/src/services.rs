//! Runs a set of services in this process against given adapters, and shuts them down in
//! order. `corral serve` (Redis + RabbitMQ) and `corral dev` (embedded store + in-process bus)
//! both go through here, so the two modes differ only in the adapters they pass in.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_bus::Bus;
use corral_config::Config;
use corral_runtime::Runtime;
use corral_store::Store;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// How long each shutdown stage may take before its tasks are abandoned.
const STAGE_GRACE: Duration = Duration::from_secs(20);

/// The systems every service is wired to.
#[derive(Clone)]
pub struct Wiring {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    /// Needed by the spawner, the health-poller and the log-collector.
    pub runtime: Option<Arc<dyn Runtime>>,
}

/// Which services to run. The gateway runs when it is given a bound listener.
#[derive(Default)]
pub struct Selection {
    pub gateway: Option<tokio::net::TcpListener>,
    pub spawner: bool,
    pub health_poller: bool,
    pub log_collector: bool,
    pub pool_manager: bool,
}

impl Selection {
    /// Every service, the gateway serving on `listener`.
    pub fn all(listener: tokio::net::TcpListener) -> Self {
        Self { gateway: Some(listener), spawner: true, health_poller: true, log_collector: true, pool_manager: true }
    }

    /// Whether any selected service needs a container runtime.
    pub fn needs_runtime(&self) -> bool {
        self.spawner || self.health_poller || self.log_collector
    }
}

// Shutdown order: first the entry points (no new requests or kicks), then the spawner
// (actors finish the message in hand and release their shards), then the observers.
const STAGE_GATEWAY: usize = 0;
const STAGE_SPAWNER: usize = 1;
const STAGE_OBSERVERS: usize = 2;
const STAGES: usize = 3;
const STAGE_NAMES: [&str; STAGES] = ["api-gateway", "spawner", "health-poller, pool-manager and log-collector"];

type ServiceFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type Joined = Result<(tokio::task::Id, anyhow::Result<()>), tokio::task::JoinError>;

struct Running {
    stops: [CancellationToken; STAGES],
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    /// Stage and name of every task still running.
    names: HashMap<tokio::task::Id, (usize, &'static str)>,
}

impl Running {
    fn new() -> Self {
        Self { stops: Default::default(), tasks: tokio::task::JoinSet::new(), names: HashMap::new() }
    }

    fn stop_signal(&self, stage: usize) -> impl Future<Output = ()> + Send + 'static {
        let token = self.stops[stage].clone();
        async move { token.cancelled().await }
    }

    fn spawn(&mut self, stage: usize, name: &'static str, fut: ServiceFuture) {
        let span = tracing::info_span!("service", name);
        let handle = self.tasks.spawn(fut.instrument(span));
        self.names.insert(handle.id(), (stage, name));
    }

    fn left_in(&self, stage: usize) -> usize {
        self.names.values().filter(|(s, _)| *s == stage).count()
    }

    /// Records one finished task; returns its error, if it failed or panicked.
    fn settle(&mut self, joined: Joined) -> Option<anyhow::Error> {
        let (id, outcome) = match joined {
            Ok((id, result)) => (id, result.err()),
            Err(e) => (e.id(), Some(anyhow::anyhow!("panicked: {e}"))),
        };
        let name = self.names.remove(&id).map_or("a service", |(_, name)| name);
        outcome.map(|e| e.context(format!("{name} stopped")))
    }

    async fn stop_in_order(&mut self) {
        for (stage, stage_name) in STAGE_NAMES.iter().enumerate() {
            self.stops[stage].cancel();
            let deadline = tokio::time::Instant::now() + STAGE_GRACE;
            while self.left_in(stage) > 0 {
                match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                    Ok(Some(joined)) => {
                        if let Some(e) = self.settle(joined) {
                            tracing::error!(error = format!("{e:#}"), "service failed while stopping");
                        }
                    }
                    Ok(None) => return,
                    Err(_) => {
                        tracing::error!(stage = stage_name, "did not stop in time; abandoning it");
                        break;
                    }
                }
            }
            tracing::info!(stage = stage_name, "stopped");
        }
        self.tasks.abort_all();
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed by this call, before
/// the future is first polled, so a signal that arrives while the services are starting
/// (after the caller announced it is ready) is a clean shutdown rather than the default kill.
pub fn shutdown_signals() -> anyhow::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Runs the selected services until `shutdown` resolves or one of them stops on its own
/// (an error), then stops the rest in order: gateway, spawner, observers.
pub async fn run(
    cfg: &Config,
    wiring: Wiring,
    selection: Selection,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let runtime = || wiring.runtime.clone().context("this service needs a container runtime");
    // Declared up front so the gateway's first kicks find their queues even before the
    // spawner (which declares it too) has started.
    wiring
        .bus
        .declare(&corral_bus::Topology { shards: cfg.spawner.shards })
        .await
        .context("declaring the bus topology")?;
    let mut r = Running::new();
    if let Some(listener) = selection.gateway {
        let deps = api_gateway::Deps { store: wiring.store.clone(), bus: wiring.bus.clone() };
        let fut = api_gateway::run(cfg.clone(), deps, listener, r.stop_signal(STAGE_GATEWAY));
        r.spawn(STAGE_GATEWAY, "api-gateway", Box::pin(fut));
    }
    if selection.spawner {
        let deps = spawner::Deps { store: wiring.store.clone(), bus: wiring.bus.clone(), runtime: runtime()? };
        let fut = spawner::run(cfg.clone(), deps, r.stop_signal(STAGE_SPAWNER));
        r.spawn(STAGE_SPAWNER, "spawner", Box::pin(fut));
    }
    if selection.health_poller {
        let deps = health_poller::Deps { store: wiring.store.clone(), bus: wiring.bus.clone(), runtime: runtime()? };
        let fut = health_poller::run(cfg.clone(), deps, r.stop_signal(STAGE_OBSERVERS));
        r.spawn(STAGE_OBSERVERS, "health-poller", Box::pin(fut));
    }
    if selection.log_collector {
        let deps = log_collector::Deps { store: wiring.store.clone(), runtime: runtime()? };
        let fut = log_collector::run(cfg.clone(), deps, r.stop_signal(STAGE_OBSERVERS));
        r.spawn(STAGE_OBSERVERS, "log-collector", Box::pin(fut));
    }
    if selection.pool_manager {
        let deps = pool_manager::Deps { store: wiring.store.clone(), bus: wiring.bus.clone() };
        let fut = pool_manager::run(cfg.clone(), deps, r.stop_signal(STAGE_OBSERVERS));
        r.spawn(STAGE_OBSERVERS, "pool-manager", Box::pin(fut));
    }
    let mut result = Ok(());
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        Some(first) = r.tasks.join_next_with_id() => {
            if let Some(e) = r.settle(first) {
                result = Err(e.context("a service stopped unexpectedly"));
            } else {
                result = Err(anyhow::anyhow!("a service stopped unexpectedly"));
            }
        }
    }
    r.stop_in_order().await;
    result
}
