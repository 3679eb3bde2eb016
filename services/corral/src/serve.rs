//! `corral serve`: one or all services in this process, wired to the configured Redis,
//! RabbitMQ and runtime. Ctrl-C / SIGTERM shuts everything down in order.

use anyhow::Context as _;
use corral_config::Config;

use crate::services::{self, Selection, Wiring};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    ApiGateway,
    Spawner,
    HealthPoller,
    PoolManager,
    LogCollector,
    All,
}

/// Runs `which` until Ctrl-C / SIGTERM.
pub async fn run(cfg: Config, which: Service) -> anyhow::Result<()> {
    let name = format!("{which:?}").to_lowercase();
    let _telemetry = corral_telemetry::init(&crate::telemetry_settings(&name, &cfg))?;
    let shutdown = services::shutdown_signals()?;
    let want = |s: Service| which == s || which == Service::All;
    let gateway = if want(Service::ApiGateway) {
        let listener = tokio::net::TcpListener::bind(&cfg.http.addr)
            .await
            .with_context(|| format!("binding {}", cfg.http.addr))?;
        tracing::info!(addr = %cfg.http.addr, "api-gateway listening");
        Some(listener)
    } else {
        None
    };
    let selection = Selection {
        gateway,
        spawner: want(Service::Spawner),
        health_poller: want(Service::HealthPoller),
        log_collector: want(Service::LogCollector),
        pool_manager: want(Service::PoolManager),
    };
    // Once per process, by the services that seal or open named secrets.
    if (selection.gateway.is_some() || selection.spawner)
        && let Some(warning) = cfg.secrets_key_warning()
    {
        tracing::warn!("{warning}");
    }
    let store = crate::connect_store(&cfg).await?;
    let bus = crate::connect_bus(&cfg).await?;
    let runtime = if selection.needs_runtime() { Some(crate::connect_runtime(&cfg).await?) } else { None };
    let wiring = Wiring { store, bus, runtime };
    services::run(&cfg, wiring, selection, shutdown).await
}
