//! `spawner`: owns shards of pods and drives their containers.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use corral_config::Config;

/// Corral's spawner: takes a fair share of the pod shards (leases in Redis, one consumer per
/// shard queue in RabbitMQ), runs one actor per pod, and starts and stops containers on the
/// configured runtime. Run as many as you like: shards spread over the live spawners and move
/// to a survivor within a lease TTL when one dies.
///
/// Configuration comes from config/default.toml, then --config FILE, then environment
/// variables (CORRAL_AMQP_URL, CORRAL_REDIS_URL, CORRAL_RUNTIME, CORRAL__SECTION__KEY...).
#[derive(Parser)]
#[command(name = "spawner", version)]
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
    let _telemetry = corral_telemetry::init(&telemetry_settings("spawner", &cfg))?;
    if let Some(warning) = cfg.secrets_key_warning() {
        tracing::warn!("{warning}");
    }
    let store = connect_store(&cfg).await?;
    let bus = connect_bus(&cfg).await?;
    let runtime = connect_runtime(&cfg).await?;
    let deps = spawner::Deps { store, bus, runtime };
    spawner::run(cfg, deps, corral_telemetry::shutdown_signal()).await
}

include!("../../shared/main_support.rs");
