//! `log-collector`: follows container output into the store.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use corral_config::Config;

/// Corral's log-collector: follows the output (stdout and stderr) of every running pod
/// container on this host and keeps the last 10 MB per pod in the store, where
/// GET /v3/pods/{pod_id}/logs reads it. Run one per container host.
///
/// Configuration comes from config/default.toml, then --config FILE, then environment
/// variables (CORRAL_AMQP_URL, CORRAL_REDIS_URL, CORRAL_RUNTIME, CORRAL__SECTION__KEY...).
#[derive(Parser)]
#[command(name = "log-collector", version)]
struct Args {
    /// Configuration file laid over the defaults.
    #[arg(long, env = "CORRAL_CONFIG")]
    config: Option<PathBuf>,
}

// mimalloc rather than glibc malloc: ~10 % more pipeline throughput in the load tests
// (load-tests/README.md, "Allocator experiment").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = Config::load(args.config.as_deref()).context("loading configuration")?;
    let _telemetry = corral_telemetry::init(&telemetry_settings("log-collector", &cfg))?;
    let store = connect_store(&cfg).await?;
    let runtime = connect_runtime(&cfg).await?;
    let deps = log_collector::Deps { store, runtime };
    log_collector::run(cfg, deps, corral_telemetry::shutdown_signal()).await
}

include!("../../shared/main_support.rs");
