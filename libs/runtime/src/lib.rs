//! Container runtimes behind one trait: `docker` (bollard), `process` (local process groups,
//! for development and tests) and `simulated` (no real work, for load tests only).
//!
//! Containers are named and labelled after their pod and instance, so creating the same
//! instance twice returns the existing container (never a duplicate), and a new owner can
//! adopt running containers and remove orphans.

pub mod docker;
pub mod process;
pub mod simulated;

use std::collections::BTreeMap;

use async_trait::async_trait;
use corral_model::{Millis, PodKey};
use futures::stream::BoxStream;

pub const LABEL_MANAGED: &str = "corral.managed";
pub const LABEL_TENANT: &str = "corral.tenant";
pub const LABEL_POD: &str = "corral.pod";
pub const LABEL_GENERATION: &str = "corral.generation";
pub const LABEL_INSTANCE: &str = "corral.instance";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("image '{0}' is not available on this host (images cannot be pulled here; build or load it first)")]
    ImageNotFound(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("invalid container spec: {0}")]
    Invalid(String),
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    #[error("runtime error: {0}")]
    Other(String),
}

/// Which runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    Docker,
    Process,
    Simulated,
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Docker => "docker",
            Self::Process => "process",
            Self::Simulated => "simulated",
        })
    }
}

/// One port of the pod to make reachable on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Networking entry name (`default`, ...).
    pub name: String,
    pub container_port: u16,
}

/// Everything needed to start one container instance of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub pod: PodKey,
    pub generation: u64,
    pub instance: u64,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    /// Final environment (secrets already substituted by the spawner).
    pub env: BTreeMap<String, String>,
    pub cpu_limit_millis: u32,
    pub mem_limit_mib: u32,
    pub pids_limit: i64,
    pub ports: Vec<PortSpec>,
    /// Host directory trees placed into the container before it starts (e.g. a cloned git
    /// repository). Empty for most pods.
    pub files: Vec<FileTree>,
}

/// A host directory tree copied into the container at an absolute path before it starts.
///
/// - docker: uploaded as a tar archive into the created container, owned by the image's
///   user; a container that exists already (same instance) keeps the files it got.
/// - process: copied into the process's work directory, re-rooted: `/home/work/src` becomes
///   `<work>/home/work/src`; the command finds `<work>` in `CORRAL_ROOT`.
/// - simulated: ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTree {
    /// Directory on the host (read, never modified).
    pub source: std::path::PathBuf,
    /// Absolute, normalised directory inside the container (no `.` or `..` segments).
    pub destination: String,
}

impl FileTree {
    /// The destination's segments, or an error for relative paths, the root and paths with
    /// `.`/`..` segments (which could escape a re-rooted directory).
    pub fn destination_segments(&self) -> Result<Vec<&str>, RuntimeError> {
        let bad = || {
            RuntimeError::Invalid(format!(
                "file destination '{}' must be an absolute directory below the root without '.' or '..' segments",
                self.destination
            ))
        };
        let rest = self.destination.strip_prefix('/').ok_or_else(bad)?;
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() || segments.iter().any(|s| *s == "." || *s == ".." || s.contains('\0')) {
            return Err(bad());
        }
        Ok(segments)
    }
}

impl ContainerSpec {
    /// Deterministic container name: creating the same instance twice finds the same one.
    pub fn name(&self) -> String {
        container_name(&self.pod, self.instance)
    }
}

pub fn container_name(pod: &PodKey, instance: u64) -> String {
    format!("corral-{}-{}-{}", pod.tenant, pod.pod_id, instance)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    /// Stopped with this exit code (None when unknown).
    Exited(Option<i64>),
}

/// Host address where one container port answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub pod: PodKey,
    pub generation: u64,
    pub instance: u64,
    pub state: ContainerState,
    /// Networking entry name → host address.
    pub ports: BTreeMap<String, HostPort>,
    pub started_at: Option<Millis>,
}

/// A change the runtime reports for a managed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    Started { id: String, pod: PodKey },
    Exited { id: String, pod: PodKey, exit_code: Option<i64>, reason: String },
    Removed { id: String, pod: PodKey },
}

/// A chunk of container output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    pub bytes: Vec<u8>,
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    fn kind(&self) -> RuntimeKind;

    /// Creates and starts the instance. Idempotent: if a container for this pod instance
    /// already exists it is started if needed and returned.
    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError>;

    /// Stops (with a short grace period) and removes the container. Removing a container
    /// that does not exist is not an error.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// Current state of one container, or None if it does not exist.
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError>;

    /// Every container this runtime manages for Corral (all pods, all states).
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Live stream of changes to managed containers. Ends when the runtime connection ends;
    /// callers re-subscribe and resync.
    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError>;

    /// Output (stdout and stderr, interleaved) of a container from the start; with
    /// `follow` the stream stays open until the container stops.
    async fn output(&self, id: &str, follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError>;

    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), RuntimeError>;
}

/// Settings for [`connect`]; each runtime uses the fields that concern it.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub namespace: String,
    pub host_ip: String,
    pub process_state_dir: std::path::PathBuf,
    pub simulated_start_delay: std::time::Duration,
}

/// Opens the runtime of the given kind.
pub async fn connect(kind: RuntimeKind, opts: RuntimeOptions) -> Result<std::sync::Arc<dyn Runtime>, RuntimeError> {
    Ok(match kind {
        RuntimeKind::Docker => {
            let d = docker::DockerOptions { namespace: opts.namespace, host_ip: opts.host_ip, network: None };
            std::sync::Arc::new(docker::DockerRuntime::connect(d).await?)
        }
        RuntimeKind::Process => std::sync::Arc::new(process::ProcessRuntime::new(process::ProcessOptions {
            namespace: opts.namespace,
            state_dir: opts.process_state_dir,
        })?),
        RuntimeKind::Simulated => std::sync::Arc::new(simulated::SimulatedRuntime::new(simulated::SimulatedOptions {
            namespace: opts.namespace,
            start_delay: opts.simulated_start_delay,
        })),
    })
}
