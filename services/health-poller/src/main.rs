//! `health-poller`: watches containers and probes readiness.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use corral_config::Config;

/// Corral's health-poller: follows the container runtime's events (exits, removals), probes
/// readiness of starting pods (TCP connect, or an HTTP answer below 500 for http
/// networking), and resyncs the runtime against the store periodically. It never writes pod
/// status itself: every observation goes to the pod's shard queue, where the pod's actor
/// in the spawner decides.
///
/// Configuration comes from config/default.toml, then --config FILE, then environment
/// variables (CORRAL_AMQP_URL, CORRAL_REDIS_URL, CORRAL_RUNTIME, CORRAL__SECTION__KEY...).
#[derive(Parser)]
#[command(name = "health-poller", version)]
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
    let _telemetry = corral_telemetry::init(&telemetry_settings("health-poller", &cfg))?;
    let store = connect_store(&cfg).await?;
    let bus = connect_bus(&cfg).await?;
    let runtime = connect_runtime(&cfg).await?;
    let deps = health_poller::Deps { store, bus, runtime };
    health_poller::run(cfg, deps, corral_telemetry::shutdown_signal()).await
}

include!("../../shared/main_support.rs");
