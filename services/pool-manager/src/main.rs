//! `pool-manager`: keeps pools of pre-warmed pods filled and culls idle claimed ones.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use corral_config::Config;

/// Corral's pool-manager: keeps Binder pools at their size of pre-warmed pods, refills
/// them after claims, and culls claimed instances idle past their template's cull-timeout
/// or older than its max age.
///
/// Configuration comes from config/default.toml, then --config FILE, then environment
/// variables (CORRAL_AMQP_URL, CORRAL_REDIS_URL, CORRAL_RUNTIME, CORRAL__SECTION__KEY...).
#[derive(Parser)]
#[command(name = "pool-manager", version)]
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
    let _telemetry = corral_telemetry::init(&telemetry_settings("pool-manager", &cfg))?;
    let store = connect_store(&cfg).await?;
    let bus = connect_bus(&cfg).await?;
    let deps = pool_manager::Deps { store, bus };
    pool_manager::run(cfg, deps, corral_telemetry::shutdown_signal()).await
}

include!("../../shared/main_support.rs");
