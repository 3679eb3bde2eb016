//! A whole Corral stack against the real RabbitMQ, Redis and Docker on this machine, isolated
//! by a fresh namespace (queue prefix, key prefix, container label), for end-to-end tests.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corral_config::Config;
use corral_runtime::{ContainerInfo, Runtime};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub fn amqp_url() -> String {
    std::env::var("CORRAL_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn redis_url() -> String {
    std::env::var("CORRAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub const IMAGE: &str = "corral-test/busybox";

/// Which spawners to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spawners {
    pub in_process: usize,
    pub processes: usize,
}

pub struct Stack {
    pub ns: String,
    pub cfg: Config,
    pub config_file: tempfile::NamedTempFile,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    pub runtime: Arc<dyn Runtime>,
    pub store: Arc<dyn corral_store::Store>,
    stop: CancellationToken,
    spawner_stops: Vec<CancellationToken>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
    pub children: Vec<Child>,
}

fn config_text(ns: &str) -> String {
    format!(
        r#"
[amqp]
url = "{amqp}"
namespace = "{ns}"
prefetch = 64
[redis]
url = "{redis}"
namespace = "{ns}"
[http]
addr = "127.0.0.1:0"
[runtime]
kind = "docker"
namespace = "{ns}"
[auth]
admin_users = "dev:alice"
[spawner]
shards = 8
lease_ttl_ms = 2000
membership_interval_ms = 400
resync_interval_ms = 1000
stall_timeout_ms = 30000
backoff_base_ms = 300
backoff_max_ms = 2000
[health]
resync_interval_ms = 500
probe_interval_ms = 25
[images]
allow = ["corral-test/*", "sim/*", "busybox*"]
"#,
        amqp = amqp_url(),
        redis = redis_url(),
    )
}

impl Stack {
    pub async fn start(spawners: Spawners) -> Stack {
        let ns = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let text = config_text(&ns);
        let cfg = Config::from_toml_over_defaults(&text).expect("test config");
        let config_file = tempfile::NamedTempFile::new().expect("temp config");
        std::fs::write(config_file.path(), &text).expect("write config");

        let store: Arc<dyn corral_store::Store> = Arc::new(
            corral_store::redis::RedisStore::connect(&cfg.redis.url, &ns).await.expect("redis must be running"),
        );
        let bus: Arc<dyn corral_bus::Bus> =
            Arc::new(corral_bus::amqp::AmqpBus::connect(&cfg.amqp.url, &ns).await.expect("rabbitmq must be running"));
        let runtime: Arc<dyn Runtime> = Arc::new(
            corral_runtime::docker::DockerRuntime::connect(corral_runtime::docker::DockerOptions::new(ns.clone()))
                .await
                .expect("docker must be running"),
        );
        bus.declare(&corral_bus::Topology { shards: cfg.spawner.shards }).await.expect("declare");
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let s = stop.clone();
        let deps = api_gateway::Deps { store: store.clone(), bus: bus.clone() };
        tasks.spawn(api_gateway::run(cfg.clone(), deps, listener, async move { s.cancelled().await }));
        let s = stop.clone();
        let deps = health_poller::Deps { store: store.clone(), bus: bus.clone(), runtime: runtime.clone() };
        tasks.spawn(health_poller::run(cfg.clone(), deps, async move { s.cancelled().await }));
        let s = stop.clone();
        let deps = log_collector::Deps { store: store.clone(), runtime: runtime.clone() };
        tasks.spawn(log_collector::run(cfg.clone(), deps, async move { s.cancelled().await }));
        let mut stack = Stack {
            token: api_gateway::auth::issue_token(&cfg.auth.jwt_secret, "dev", "alice", 3600).expect("token"),
            ns,
            cfg,
            config_file,
            base,
            http: reqwest::Client::new(),
            runtime,
            store,
            stop,
            spawner_stops: Vec::new(),
            tasks,
            children: Vec::new(),
        };
        for _ in 0..spawners.in_process {
            stack.add_in_process_spawner(bus.clone());
        }
        for _ in 0..spawners.processes {
            stack.add_spawner_process();
        }
        stack
    }

    pub fn add_in_process_spawner(&mut self, bus: Arc<dyn corral_bus::Bus>) {
        let s = CancellationToken::new();
        let deps = spawner::Deps { store: self.store.clone(), bus, runtime: self.runtime.clone() };
        let stop = s.clone();
        self.tasks.spawn(spawner::run(self.cfg.clone(), deps, async move { stop.cancelled().await }));
        self.spawner_stops.push(s);
    }

    /// A new connection to this stack's bus (for services added after the start).
    pub async fn connect_bus(&self) -> Arc<dyn corral_bus::Bus> {
        Arc::new(
            corral_bus::amqp::AmqpBus::connect(&self.cfg.amqp.url, &self.ns).await.expect("rabbitmq must be running"),
        )
    }

    /// Opt-in: runs a pool-manager in this process. Aborting the returned handle kills it
    /// mid-whatever, like a crash (no lease given up); shutdown stops it cleanly.
    pub async fn add_pool_manager(&mut self) -> tokio::task::AbortHandle {
        let s = CancellationToken::new();
        let deps = pool_manager::Deps { store: self.store.clone(), bus: self.connect_bus().await };
        let stop = s.clone();
        self.spawner_stops.push(s);
        self.tasks.spawn(pool_manager::run(self.cfg.clone(), deps, async move { stop.cancelled().await }))
    }

    /// Opt-in: one more gateway on its own port over the same store and bus; returns its
    /// base URL and a handle whose abort kills it like a crash.
    pub async fn add_gateway(&mut self) -> (String, tokio::task::AbortHandle) {
        let s = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let deps = api_gateway::Deps { store: self.store.clone(), bus: self.connect_bus().await };
        let stop = s.clone();
        self.spawner_stops.push(s);
        let handle =
            self.tasks.spawn(api_gateway::run(self.cfg.clone(), deps, listener, async move { stop.cancelled().await }));
        (base, handle)
    }

    /// A spawner in its own OS process (`corral serve spawner`), so it can be SIGKILLed.
    pub fn add_spawner_process(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_corral"))
            .args(["serve", "spawner", "--config"])
            .arg(self.config_file.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start a spawner process");
        self.children.push(child);
    }

    pub fn token_for(&self, tenant: &str, user: &str) -> String {
        api_gateway::auth::issue_token(&self.cfg.auth.jwt_secret, tenant, user, 3600).expect("token")
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).header("X-Tapis-Token", &self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.expect("json body");
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn create(&self, body: Value) -> Value {
        let (code, v) = self.call(reqwest::Method::POST, "/v3/pods", Some(body)).await;
        assert_eq!(code, 200, "create failed: {v}");
        v
    }

    /// Polls the pod until `status` (or panics with the last answer after `within`).
    pub async fn wait_status(&self, pod_id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (code, v) = self.get(&format!("/v3/pods/{pod_id}")).await;
            if code == 200 && v["result"]["status"] == status {
                return v["result"].clone();
            }
            assert!(Instant::now() < deadline, "pod {pod_id} did not reach {status} within {within:?}; last: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn logs(&self, pod_id: &str) -> Value {
        let (code, v) = self.get(&format!("/v3/pods/{pod_id}/logs")).await;
        assert_eq!(code, 200, "logs: {v}");
        v["result"].clone()
    }

    /// Containers of this stack's namespace for the pod (all states).
    pub async fn containers(&self, pod_id: &str) -> Vec<ContainerInfo> {
        let all = self.runtime.list().await.expect("list containers");
        all.into_iter().filter(|c| c.pod.pod_id == pod_id).collect()
    }

    pub async fn running_containers(&self, pod_id: &str) -> Vec<ContainerInfo> {
        let mut v = self.containers(pod_id).await;
        v.retain(|c| c.state == corral_runtime::ContainerState::Running);
        v
    }

    /// Stops the in-process services in order and reaps spawner processes.
    pub async fn shutdown(mut self) {
        for s in &self.spawner_stops {
            s.cancel();
        }
        self.stop.cancel();
        let _ =
            tokio::time::timeout(Duration::from_secs(15), async { while self.tasks.join_next().await.is_some() {} })
                .await;
        self.cleanup();
    }

    fn cleanup(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
        remove_namespace_containers(&self.ns);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.cleanup();
    }
}

pub fn remove_namespace_containers(ns: &str) {
    let out = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=corral.namespace={ns}")]).output();
    if let Ok(out) = out {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).status();
        }
    }
}

/// Polls `f` until it returns Some, or panics with `what` after `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_or_explain(what, within, f, || async { String::new() }).await
}

/// As [`eventually`]; a timeout's panic also carries what `explain` finds at that moment
/// (the state a test waited on in vain, to tell a slow machine from a stuck pod).
pub async fn eventually_or_explain<T, F, Fut, E, EFut>(what: &str, within: Duration, mut f: F, explain: E) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
    E: FnOnce() -> EFut,
    EFut: std::future::Future<Output = String>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= deadline {
            let why = explain().await;
            panic!("timed out after {within:?} waiting for: {what}\n{why}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn httpd_pod(pod_id: &str) -> Value {
    serde_json::json!({
        "pod_id": pod_id,
        "image": IMAGE,
        "command": ["sh", "-c", "echo hello from $HOSTNAME; exec httpd -f -v -p 8000 -h /www"],
        "networking": {"default": {"protocol": "http", "port": 8000}},
        "resources": {"cpu_limit": 500, "mem_limit": 256, "mem_request": 256, "cpu_request": 250}
    })
}

pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
