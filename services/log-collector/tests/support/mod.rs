//! Fixtures for the log-collector tests: the process runtime in a private state directory,
//! a store that counts output writes, and a collector running in the background.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod counting_store;
pub mod line_runtime;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corral_config::Config;
use corral_model::{Desired, Observed, PodKey, PodSpec, PodStatus, StatusRequested};
use corral_runtime::process::{ProcessOptions, ProcessRuntime};
use corral_runtime::{ContainerSpec, Runtime};
use corral_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use counting_store::CountingStore;

pub const WAIT: Duration = Duration::from_secs(15);

/// A process runtime in its own state directory; containers and the directory are removed
/// by [`Host::clean_up`].
pub struct Host {
    pub runtime: Arc<ProcessRuntime>,
    pub dir: PathBuf,
    containers: Vec<String>,
}

impl Host {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("corral-lc-test-{}", uuid::Uuid::new_v4().simple()));
        let runtime = ProcessRuntime::new(ProcessOptions { namespace: "lc".into(), state_dir: dir.clone() })
            .expect("process runtime");
        Self { runtime: Arc::new(runtime), dir, containers: Vec::new() }
    }

    /// Starts instance `instance` of `pod` running `sh -c script`.
    pub async fn start(&mut self, pod: &PodKey, instance: u64, script: &str) -> String {
        let spec = ContainerSpec {
            pod: pod.clone(),
            generation: 1,
            instance,
            image: "unused-by-the-process-runtime".into(),
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
            args: None,
            env: BTreeMap::new(),
            cpu_limit_millis: 1000,
            mem_limit_mib: 256,
            pids_limit: 64,
            ports: Vec::new(),
            files: Vec::new(),
        };
        let info = self.runtime.spawn(&spec).await.expect("spawn process container");
        self.containers.push(info.id.clone());
        info.id
    }

    pub async fn clean_up(self) {
        for id in &self.containers {
            // The runtime's reaper may write the exit code while `remove` deletes the
            // directory ("directory not empty"): a second attempt finds it done.
            let mut attempts = 0;
            while let Err(e) = self.runtime.remove(id).await {
                attempts += 1;
                assert!(attempts < 5, "cannot remove container {id}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the pod's record: output is kept only for pods that exist.
pub async fn create_pod(store: &dyn Store, pod: &PodKey) {
    let desired = Desired {
        tenant: pod.tenant.clone(),
        owner: "tester".into(),
        spec: PodSpec { pod_id: pod.pod_id.clone(), image: "unused".into(), ..PodSpec::default() },
        status_requested: StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: 0,
        update_ts: 0,
    };
    let observed = Observed { status: PodStatus::Creating, instance: 1, ..Observed::default() };
    store.create_pod(&desired, &observed, 0).await.expect("create pod");
}

pub fn pod_key(tag: &str) -> PodKey {
    PodKey::new("tenant", format!("{tag}{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
}

/// A log-collector running in the background.
pub struct Collector {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Collector {
    pub fn start(store: Arc<dyn Store>, runtime: Arc<dyn Runtime>) -> Self {
        let cfg = Config::from_toml_over_defaults("").expect("default config");
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(log_collector::run(cfg, log_collector::Deps { store, runtime }, shutdown));
        Self { stop: Some(stop), task }
    }

    /// Stops the collector and checks that it returns cleanly and promptly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("collector stops within the bound")
            .expect("collector task did not panic")
            .expect("collector returns Ok");
    }
}

/// Polls the stored output of `pod` until `done` accepts it; returns it.
pub async fn wait_for_output(store: &dyn Store, pod: &PodKey, done: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, bytes) = store.output(pod).await.expect("read output");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if done(&text) {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "output never complete; stored so far: {text:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
