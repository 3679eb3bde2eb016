//! `corral dev`: every service in one process, wired by the in-process bus and the embedded
//! store, on Docker when a Docker engine answers and on local processes otherwise. The
//! services are the same code as in distributed mode (`crate::services`); only the store and
//! bus adapters differ.
//!
//! Restarting after a crash: the data directory is locked, so a dev process knows it is the
//! only spawner of its store and clears the dead predecessor's shard leases at start
//! ([`leases`]) instead of waiting `spawner.lease_ttl_ms` for them to expire. The spawner then
//! takes every shard, adopting the containers that kept running and reconciling every pod
//! from the store (the in-process bus loses its messages with the process; the store does not).

mod banner;
mod data_dir;
mod leases;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_config::Config;
use corral_runtime::{Runtime, RuntimeKind};

use crate::services::{self, Selection, Wiring};
use data_dir::DataDir;

/// How long to wait for a Docker engine to answer before choosing the process runtime.
const DOCKER_PROBE: Duration = Duration::from_secs(3);
/// The tenant of the printed token.
const DEV_TENANT: &str = "dev";

/// A runtime named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// Containers on the local Docker engine.
    Docker,
    /// Local process groups (the image is ignored; the port comes as $PORT).
    Process,
    /// Nothing runs; pods become AVAILABLE at once (load tests).
    Simulated,
}

/// Flags of `corral dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Directory for the store file and the process runtime's state
    /// [default: $XDG_DATA_HOME/corral, else ~/.local/share/corral].
    #[arg(long, env = "CORRAL_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to serve HTTP on [default: http.addr, 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// Container runtime [default: docker when a Docker engine answers, else process].
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// Check pod images against the images allowlist, as a deployment does (off in dev so
    /// any local image runs).
    #[arg(long)]
    pub enforce_images: bool,
}

/// Runs `corral dev` until Ctrl-C / SIGTERM.
pub async fn run(config_file: Option<&Path>, args: DevArgs) -> anyhow::Result<()> {
    let mut cfg = Config::load(config_file).context("loading configuration")?;
    let dir = match args.data_dir {
        Some(d) => d,
        None => data_dir::default_dir(|k| std::env::var(k).ok())
            .context("no data directory: set --data-dir (neither XDG_DATA_HOME nor HOME is set)")?,
    };
    let data = DataDir::lock(&dir)?;
    let _telemetry = corral_telemetry::init(&crate::telemetry_settings("corral-dev", &cfg))?;

    if let Some(addr) = args.http_addr {
        cfg.http.addr = addr;
    }
    cfg.runtime.process_state_dir = data.process_dir().display().to_string();
    if std::env::var("CORRAL_JWT_SECRET").is_ok_and(|s| !s.is_empty()) {
        tracing::info!("using the token secret from CORRAL_JWT_SECRET");
    } else {
        cfg.auth.jwt_secret = data.secret()?;
    }

    let (runtime, reason) = choose_runtime(args.runtime, &mut cfg).await?;
    let store_file = data.store_file();
    let store = tokio::task::spawn_blocking(move || corral_store::embedded::EmbeddedStore::open(&store_file))
        .await
        .context("opening the store")?
        .with_context(|| format!("opening the store in {}", data.path().display()))?;
    let cleared = leases::clear_dead_spawners(&store, cfg.spawner.shards).await.context("clearing stale leases")?;
    if cleared > 0 {
        tracing::info!(spawners = cleared, "released the shard leases of a previous run");
    }

    let listener = tokio::net::TcpListener::bind(&cfg.http.addr).await.with_context(|| {
        format!("binding {} (is another server using it? choose one with --http-addr)", cfg.http.addr)
    })?;
    let url = format!("http://{}", listener.local_addr().context("reading the bound address")?);
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "dev".to_owned());
    cfg.images.enforce = args.enforce_images;
    // The one local user administers the dev tenant (pools, images allowlist) unless the
    // configuration names admins itself.
    if cfg.auth.admin_users.trim().is_empty() {
        cfg.auth.admin_users = format!("{DEV_TENANT}:{user}");
    }
    let token = api_gateway::auth::issue_token(&cfg.auth.jwt_secret, DEV_TENANT, &user, cfg.auth.token_ttl_s)
        .context("signing the dev token")?;
    let shutdown = services::shutdown_signals()?;
    let banner = banner::Banner {
        url: &url,
        runtime: runtime.kind(),
        runtime_reason: &reason,
        data_dir: data.path(),
        tenant: DEV_TENANT,
        user: &user,
        token: &token,
        token_ttl_s: cfg.auth.token_ttl_s,
    };
    print!("{}", banner.render());

    let wiring =
        Wiring { store: Arc::new(store), bus: Arc::new(corral_bus::memory::MemoryBus::new()), runtime: Some(runtime) };
    let result = services::run(&cfg, wiring, Selection::all(listener), shutdown).await;
    // The store closed with the last service holding it; its writes were durable already.
    tracing::info!("corral dev stopped");
    result
}

/// The runtime to use, and why, as the banner shows it.
async fn choose_runtime(choice: Option<RuntimeChoice>, cfg: &mut Config) -> anyhow::Result<(Arc<dyn Runtime>, String)> {
    let (kind, reason) = match choice {
        Some(c) => (config_kind(c), "chosen with --runtime".to_owned()),
        None => {
            cfg.runtime.kind = corral_config::RuntimeKind::Docker;
            match tokio::time::timeout(
                DOCKER_PROBE,
                corral_runtime::connect(RuntimeKind::Docker, crate::runtime_options(cfg)),
            )
            .await
            {
                Ok(Ok(rt)) => return Ok((rt, "a Docker engine answered".to_owned())),
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "docker is not usable; using the process runtime");
                    (
                        corral_config::RuntimeKind::Process,
                        "no Docker engine answered; pods run as local processes".to_owned(),
                    )
                }
                Err(_) => (
                    corral_config::RuntimeKind::Process,
                    "Docker did not answer in time; pods run as local processes".to_owned(),
                ),
            }
        }
    };
    cfg.runtime.kind = kind;
    let rt = corral_runtime::connect(crate::runtime_kind(cfg), crate::runtime_options(cfg))
        .await
        .with_context(|| format!("opening the {} runtime", crate::runtime_kind(cfg)))?;
    Ok((rt, reason))
}

fn config_kind(c: RuntimeChoice) -> corral_config::RuntimeKind {
    match c {
        RuntimeChoice::Docker => corral_config::RuntimeKind::Docker,
        RuntimeChoice::Process => corral_config::RuntimeKind::Process,
        RuntimeChoice::Simulated => corral_config::RuntimeKind::Simulated,
    }
}
