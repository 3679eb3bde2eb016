//! `api-gateway`: the HTTP API (Tapis Pods v3) and the external request consumer.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use corral_config::Config;

/// Corral's api-gateway: serves the Tapis Pods v3 API under /v3/pods (tapipy works against
/// it unchanged), authenticates HS256 tokens (X-Tapis-Token or Authorization: Bearer),
/// writes desired state to Redis and kicks the spawners over RabbitMQ. It also consumes
/// spawn requests that other systems publish to the corral.requests exchange and replies on
/// their reply_to queue.
///
/// Configuration comes from config/default.toml, then --config FILE, then environment
/// variables (CORRAL_AMQP_URL, CORRAL_REDIS_URL, CORRAL_RUNTIME, CORRAL__SECTION__KEY...).
#[derive(Parser)]
#[command(name = "api-gateway", version)]
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
    let _telemetry = corral_telemetry::init(&telemetry_settings("api-gateway", &cfg))?;
    if let Some(warning) = cfg.secrets_key_warning() {
        tracing::warn!("{warning}");
    }
    let store = connect_store(&cfg).await?;
    let bus = connect_bus(&cfg).await?;
    let listener =
        tokio::net::TcpListener::bind(&cfg.http.addr).await.with_context(|| format!("binding {}", cfg.http.addr))?;
    tracing::info!(addr = %cfg.http.addr, "api-gateway listening");
    let deps = api_gateway::Deps { store, bus };
    api_gateway::run(cfg, deps, listener, corral_telemetry::shutdown_signal()).await
}

include!("../../shared/main_support.rs");
