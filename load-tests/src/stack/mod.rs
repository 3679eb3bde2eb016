//! The system under test: a whole Corral stack started in this process in a fresh namespace
//! (as the end-to-end tests do), or a gateway that is already running (`--url`).
//!
//! - `config`: options, the services' configuration, the shared runtime.
//! - `spawners`: spawners that can be stopped and added while the stack runs, the wait for
//!   settled shard ownership, and purging pods between phases.

mod config;
mod spawners;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use corral_bus::Bus as _;
use corral_config::Config;
use corral_runtime::{Runtime, RuntimeKind};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

pub use config::{RuntimeChoice, StackOptions};
use spawners::ServiceHandle;

/// How long services get to stop before the stack is torn down regardless.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Containers removed at once during cleanup.
const REMOVE_CONCURRENCY: usize = 16;
/// Removal passes before cleanup gives up on containers that keep appearing.
const MAX_REMOVAL_ROUNDS: u32 = 5;

/// What the load generator talks to.
pub struct Target {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    /// Present when the stack runs in this process.
    pub local: Option<LocalStack>,
}

/// A stack running in this process, with handles on its store, bus and runtime.
pub struct LocalStack {
    pub ns: String,
    pub cfg: Config,
    /// The configuration as given to the services (for one started as its own process).
    pub config_toml: String,
    pub store: Arc<corral_store::redis::RedisStore>,
    pub runtime: Arc<dyn Runtime>,
    redis_url: String,
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    spawners: Mutex<Vec<ServiceHandle>>,
    /// The process runtime's state directory, removed at shutdown.
    state_dir: Option<PathBuf>,
}

/// A fresh namespace: `l` and 10 hex digits (short, so queue names stay short).
pub fn fresh_namespace() -> String {
    format!("l{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

async fn connect_store(cfg: &Config) -> anyhow::Result<Arc<corral_store::redis::RedisStore>> {
    let store = corral_store::redis::RedisStore::connect(&cfg.redis.url, &cfg.redis.namespace)
        .await
        .with_context(|| format!("connecting to redis at {}", cfg.redis.url))?;
    Ok(Arc::new(store))
}

async fn connect_bus(cfg: &Config) -> anyhow::Result<Arc<corral_bus::amqp::AmqpBus>> {
    let bus = corral_bus::amqp::AmqpBus::connect(&cfg.amqp.url, &cfg.amqp.namespace)
        .await
        .with_context(|| format!("connecting to rabbitmq at {}", cfg.amqp.url))?;
    Ok(Arc::new(bus))
}

impl LocalStack {
    /// Starts the gateway, `spawners` spawners and (optionally) the health-poller,
    /// log-collector and pool-manager. Each service gets its own Redis and RabbitMQ
    /// connections, as separate processes would; they share one runtime.
    pub async fn start(o: &StackOptions) -> anyhow::Result<(LocalStack, String)> {
        let ns = fresh_namespace();
        let config_toml = config::config_text(&ns, o);
        let cfg = Config::from_toml_over_defaults(&config_toml).context("building the stack config")?;
        let state_dir = (o.runtime == RuntimeChoice::Process).then(|| config::process_state_dir(&ns));
        let runtime = config::make_runtime(&ns, o.runtime).await?;
        let store = connect_store(&cfg).await?;
        let bus = connect_bus(&cfg).await?;
        bus.declare(&corral_bus::Topology { shards: cfg.spawner.shards }).await.context("declaring the topology")?;
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the gateway")?;
        let base = format!("http://{}", listener.local_addr().context("gateway address")?);

        let deps = api_gateway::Deps { store: store.clone(), bus: bus.clone() };
        spawn_service(&mut tasks, "api-gateway", api_gateway::run(cfg.clone(), deps, listener, cancelled(&stop)));
        if o.auxiliaries {
            let (store2, bus2) = (connect_store(&cfg).await?, connect_bus(&cfg).await?);
            let deps = health_poller::Deps { store: store2.clone(), bus: bus2, runtime: runtime.clone() };
            spawn_service(&mut tasks, "health-poller", health_poller::run(cfg.clone(), deps, cancelled(&stop)));
            let deps = log_collector::Deps { store: store2, runtime: runtime.clone() };
            spawn_service(&mut tasks, "log-collector", log_collector::run(cfg.clone(), deps, cancelled(&stop)));
        }
        if o.pool_manager {
            let deps = pool_manager::Deps { store: connect_store(&cfg).await?, bus: connect_bus(&cfg).await? };
            spawn_service(&mut tasks, "pool-manager", pool_manager::run(cfg.clone(), deps, cancelled(&stop)));
        }
        let stack = LocalStack {
            ns,
            cfg,
            config_toml,
            store,
            runtime,
            redis_url: o.redis_url.clone(),
            stop,
            tasks,
            spawners: Mutex::new(Vec::new()),
            state_dir,
        };
        let started = async {
            for _ in 0..o.spawners {
                stack.add_spawner().await?;
            }
            if o.spawners > 0 {
                stack.wait_for_shard_owners(o.spawners).await?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = started.await {
            // Leave nothing behind in the shared servers.
            if let Err(cleanup) = stack.shutdown().await {
                tracing::warn!(error = %cleanup, "cleanup after a failed start");
            }
            return Err(e);
        }
        Ok((stack, base))
    }

    /// Stops every service, then deletes the namespace's keys, queues and containers.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let t0 = std::time::Instant::now();
        self.stop.cancel();
        self.stop_spawners().await;
        let joined = tokio::time::timeout(STOP_TIMEOUT, async {
            while let Some(r) = self.tasks.join_next().await {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "a service failed while stopping"),
                    Err(e) => tracing::warn!(error = %e, "a service task panicked"),
                }
            }
        })
        .await;
        if joined.is_err() {
            tracing::warn!("services did not stop within {STOP_TIMEOUT:?}; aborting them");
            self.tasks.abort_all();
        }
        let stopped = t0.elapsed();
        let mut problems = Vec::new();
        if self.runtime.kind() == RuntimeKind::Docker
            && let Err(e) = force_remove_docker(&self.ns).await
        {
            problems.push(format!("{e:#}"));
        }
        if matches!(self.runtime.kind(), RuntimeKind::Docker | RuntimeKind::Process) {
            problems.extend(remove_all_containers(self.runtime.as_ref()).await);
        }
        if let Err(e) = self.store.clear_namespace().await {
            problems.push(format!("redis keys: {e}"));
        }
        match connect_bus(&self.cfg).await {
            Ok(bus) => {
                if let Err(e) = bus.delete_namespace_for_tests(self.cfg.spawner.shards).await {
                    problems.push(format!("rabbitmq queues: {e}"));
                }
            }
            Err(e) => problems.push(format!("rabbitmq: {e}")),
        }
        if let Some(dir) = &self.state_dir
            && let Err(e) = config::remove_state_dir(dir)
        {
            problems.push(format!("{e:#}"));
        }
        eprintln!(
            "cleanup of namespace {}: services stopped in {:.1} s, everything removed in {:.1} s",
            self.ns,
            stopped.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
        anyhow::ensure!(problems.is_empty(), "cleanup of namespace {} incomplete: {}", self.ns, problems.join("; "));
        Ok(())
    }
}

/// Kills and removes the namespace's Docker containers at once: the runtime's own removal
/// stops each gracefully first, which with a few hundred containers on two cores takes
/// minutes that measure nothing.
async fn force_remove_docker(ns: &str) -> anyhow::Result<()> {
    use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
    let docker = bollard::Docker::connect_with_local_defaults().context("connecting to docker")?;
    let filters = std::collections::HashMap::from([("label", vec![format!("corral.namespace={ns}")])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let ids: Vec<String> = docker
        .list_containers(Some(options))
        .await
        .context("listing containers")?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    let docker = &docker;
    let failed: Vec<String> = futures::stream::iter(ids)
        .map(|id| async move {
            let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
            match docker.remove_container(&id, Some(rm)).await {
                Ok(()) => None,
                // Gone already, or being removed (the spawner's own teardown got there first).
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404 | 409, .. }) => None,
                Err(e) => Some(format!("container {id}: {e}")),
            }
        })
        .buffer_unordered(REMOVE_CONCURRENCY)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    anyhow::ensure!(failed.is_empty(), "{} containers could not be removed: {}", failed.len(), failed[0]);
    Ok(())
}

/// Removes every container of the runtime's namespace; returns what failed. A runtime call
/// an actor had in flight when its spawner stopped can still create or start a container
/// after a listing, so this lists again until two listings a second apart find nothing.
async fn remove_all_containers(runtime: &dyn Runtime) -> Vec<String> {
    let (mut quiet_rounds, mut removal_rounds) = (0, 0);
    loop {
        let containers = match runtime.list().await {
            Ok(c) => c,
            Err(e) => return vec![format!("listing containers: {e}")],
        };
        if containers.is_empty() {
            quiet_rounds += 1;
            if quiet_rounds >= 2 {
                return Vec::new();
            }
        } else {
            quiet_rounds = 0;
            removal_rounds += 1;
            if removal_rounds > MAX_REMOVAL_ROUNDS {
                return vec![format!("containers kept appearing after {MAX_REMOVAL_ROUNDS} removal rounds")];
            }
            let failed: Vec<String> = futures::stream::iter(containers)
                .map(|c| async move { runtime.remove(&c.id).await.err().map(|e| format!("container {}: {e}", c.id)) })
                .buffer_unordered(REMOVE_CONCURRENCY)
                .filter_map(futures::future::ready)
                .collect()
                .await;
            if !failed.is_empty() {
                return failed;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs one service of the stack as a task whose logs say which service it is.
fn spawn_service<F>(tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>, name: &'static str, service: F)
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tasks.spawn(service.instrument(tracing::info_span!("service", name)));
}

fn cancelled(token: &CancellationToken) -> impl std::future::Future<Output = ()> + Send + 'static {
    let t = token.clone();
    async move { t.cancelled().await }
}

impl Target {
    /// Starts a local stack.
    pub async fn local(o: &StackOptions, tenant: &str, user: &str) -> anyhow::Result<Target> {
        let (stack, base) = LocalStack::start(o).await?;
        let token = api_gateway::auth::issue_token(&stack.cfg.auth.jwt_secret, tenant, user, 24 * 3600)
            .context("issuing a token")?;
        Ok(Target { base, token, http: http_client()?, local: Some(stack) })
    }

    /// A gateway that already runs at `url`.
    pub fn remote(url: &str, token: String) -> anyhow::Result<Target> {
        Ok(Target { base: url.trim_end_matches('/').to_string(), token, http: http_client()?, local: None })
    }

    /// The in-process stack, or an error naming the scenario that needs one.
    pub fn local_stack(&self, scenario: &str) -> anyhow::Result<&LocalStack> {
        self.local.as_ref().with_context(|| format!("{scenario} needs the in-process stack (it cannot run with --url)"))
    }

    /// Stops and cleans up the local stack, if any.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        match self.local {
            Some(stack) => stack.shutdown().await,
            None => Ok(()),
        }
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the http client")
}
