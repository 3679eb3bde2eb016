//! An in-process gateway (memory store and bus) on a loopback port, and helpers to call it.
#![allow(dead_code)] // each test binary uses a different subset

pub mod fault_store;

use std::sync::Arc;
use std::time::Duration;

use api_gateway::{Deps, auth::issue_token};
use corral_bus::memory::MemoryBus;
use corral_bus::{Bus, ConsumeOptions, Consumer, Topology};
use corral_config::Config;
use corral_model::shard::shard_of;
use corral_model::{Desired, Observed, PodKey, PodStatus};
use corral_protocol::ShardMessage;
use corral_protocol::topology::shard_queue;
use corral_store::{PodRecord, Store};
use corral_testkit::MemoryStore;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(5);

pub struct Gateway {
    pub base: String,
    pub cfg: Config,
    pub store: Arc<MemoryStore>,
    pub bus: Arc<MemoryBus>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A response: status, parsed envelope and the raw content type.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Resp {
    pub fn result(&self) -> &Value {
        &self.body["result"]
    }
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// Tenant admins `root` (in `acme` and `dev`); image checks off unless a test turns them on.
pub const BASE_CONFIG: &str = "[auth]\nadmin_users = \"acme:root,dev:root\"\n[images]\nenforce = false\n";

impl Gateway {
    pub async fn start() -> Self {
        Self::start_with(|mem| mem).await
    }

    /// As [`Gateway::start`], with the memory store wrapped by `wrap` (to inject faults).
    pub async fn start_with(wrap: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn Store>) -> Self {
        Self::start_configured(BASE_CONFIG, wrap).await
    }

    /// As [`Gateway::start_with`], with `config` (TOML over the defaults) instead of [`BASE_CONFIG`].
    pub async fn start_configured(config: &str, wrap: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn Store>) -> Self {
        Self::start_on_bus(config, wrap, |memory| Arc::new(memory)).await
    }

    /// As [`Gateway::start_configured`], with the gateway's bus made from the memory bus by
    /// `bus` (to hold up publishes); the test's consumers read the memory bus itself.
    pub async fn start_on_bus(
        config: &str,
        wrap: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn Store>,
        bus: impl FnOnce(MemoryBus) -> Arc<dyn Bus>,
    ) -> Self {
        let cfg = Config::from_toml_over_defaults(config).expect("test config");
        let store = Arc::new(MemoryStore::new());
        let memory = MemoryBus::new();
        // Declared up front so the first kick is routable whatever the consumer's timing.
        memory.declare(&Topology { shards: cfg.spawner.shards }).await.expect("declare");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let deps = Deps { store: wrap(store.clone()), bus: bus(memory.clone()) };
        let bus = Arc::new(memory);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(api_gateway::run(cfg.clone(), deps, listener, async move {
            let _ = rx.await;
        }));
        Self { base, cfg, store, bus, http: reqwest::Client::new(), stop: Some(tx), task: Some(task) }
    }

    pub fn token(&self, tenant: &str, user: &str) -> String {
        issue_token(&self.cfg.auth.jwt_secret, tenant, user, 600).expect("token")
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().expect("ascii").to_string())
            .unwrap_or_default();
        let bytes = resp.bytes().await.expect("body");
        let body: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("body is not JSON ({e}): {bytes:?}"));
        Resp { status, body, content_type }
    }

    /// Calls the API as `token` (if any) with an optional JSON body and checks the envelope
    /// shape and the exact content type, which every response must have.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("X-Tapis-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = self.send(req).await;
        assert_envelope(&resp);
        resp
    }

    pub async fn snapshot(&self, tenants: &[&str]) -> Vec<(PodRecord, Vec<String>)> {
        let mut out = Vec::new();
        for t in tenants {
            for rec in self.store.list_tenant(t).await.expect("list") {
                let log = self.store.action_log(&rec.desired.value.key()).await.expect("log");
                out.push((rec, log.iter().map(|e| e.message.clone()).collect()));
            }
        }
        out
    }

    pub async fn record(&self, tenant: &str, pod_id: &str) -> PodRecord {
        self.store.get_pod(&PodKey::new(tenant, pod_id)).await.expect("get").expect("pod exists")
    }

    /// Plays the spawner: records that the pod reached `status` for its current generation.
    pub async fn observe(&self, tenant: &str, pod_id: &str, status: PodStatus) {
        let rec = self.record(tenant, pod_id).await;
        let obs = Observed { status, observed_generation: rec.desired.value.generation, ..rec.observed.value.clone() };
        self.store.put_observed(&rec.desired.value.key(), &obs, rec.observed.version).await.expect("put observed");
    }

    pub async fn put_desired(&self, desired: &Desired, version: u64) {
        self.store.put_desired(desired, version).await.expect("put desired");
    }

    /// A consumer of the shard queue `pod_id` of `tenant` lives in.
    pub async fn shard_consumer(&self, tenant: &str, pod_id: &str) -> Consumer {
        let shard = shard_of(tenant, pod_id, self.cfg.spawner.shards);
        self.bus.consume(&shard_queue(shard), ConsumeOptions::default()).await.expect("consume shard")
    }

    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let done = tokio::time::timeout(WAIT, task).await.expect("gateway stops in time");
            done.expect("gateway task").expect("gateway run result");
        }
    }
}

impl Gateway {
    /// Asks the gateway to stop, without waiting for it.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// The gateway's task, once: to watch it stop.
    pub fn take_task(&mut self) -> JoinHandle<anyhow::Result<()>> {
        self.task.take().expect("the gateway's task was already taken")
    }
}

/// Every response is a Tapis envelope with `Content-Type: application/json` exactly.
pub fn assert_envelope(r: &Resp) {
    assert_eq!(r.content_type, "application/json", "content type of {:?}", r.body);
    let obj = r.body.as_object().expect("envelope is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["message", "metadata", "result", "status", "version"], "envelope keys");
    assert!(obj["message"].is_string());
    assert!(obj["metadata"].is_object());
    assert_eq!(obj["version"], env!("CARGO_PKG_VERSION"));
    let status = obj["status"].as_str().expect("status string");
    if r.status >= 400 {
        assert_eq!(status, "error", "{:?}", r.body);
    } else {
        assert!(status == "success" || status == "error");
    }
}

/// The next kick on `consumer` (acked), within [`WAIT`].
pub async fn next_kick(consumer: &mut Consumer) -> ShardMessage {
    let d =
        tokio::time::timeout(WAIT, consumer.stream.next()).await.expect("a kick arrives in time").expect("stream open");
    let msg: ShardMessage = corral_protocol::decode(&d.body, d.content_type.as_deref()).expect("kick decodes");
    d.ack().await.expect("ack");
    msg
}

pub fn kick_of(tenant: &str, pod_id: &str, generation: u64) -> ShardMessage {
    ShardMessage::Kick { tenant: tenant.into(), pod_id: pod_id.into(), generation }
}

/// Every kind of document the gateway keeps beside pod records: pod meta (permissions,
/// definitions), credentials, templates, tags and the images allowlist.
pub const DOC_KINDS: [&str; 7] = [
    "pod_meta",
    corral_model::secrets::CREDENTIALS_KIND,
    "pods_template",
    "pods_template_tags",
    "pods_images",
    "session_template",
    "session_pod",
];

/// All stored state a request could change: pod records with their action logs (of
/// `tenants`) and every document of [`DOC_KINDS`] as `(kind, name, version, json)`.
pub async fn full_snapshot(
    gw: &Gateway,
    tenants: &[&str],
) -> (Vec<(PodRecord, Vec<String>)>, Vec<(String, String, u64, String)>) {
    let mut docs = Vec::new();
    for kind in DOC_KINDS {
        for (name, doc) in gw.store.list_docs(kind).await.expect("list docs") {
            docs.push((kind.to_string(), name, doc.version, doc.value));
        }
    }
    (gw.snapshot(tenants).await, docs)
}
