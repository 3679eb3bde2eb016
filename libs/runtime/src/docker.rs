//! Docker runtime (bollard). Containers are named after their pod instance and labelled with
//! the namespace, pod, tenant, generation and instance, so a new owner adopts them and a
//! namespace never sees another's containers. Ports are published on a loopback address with
//! ephemeral host ports. Images are never pulled: a missing image is [`RuntimeError::ImageNotFound`].

mod archive;
mod convert;
mod create;

pub(crate) use convert::exit_reason;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::stream::{BoxStream, StreamExt};
use tracing::{debug, info};

use crate::{
    ContainerInfo, ContainerSpec, ContainerState, LABEL_MANAGED, OutputChunk, Runtime, RuntimeError, RuntimeEvent,
    RuntimeKind,
};

/// Label holding the namespace a container belongs to.
pub const LABEL_NAMESPACE: &str = "corral.namespace";
/// Prefix of the labels mapping a networking entry name to its container port
/// (`corral.port.<name>=<container_port>`).
pub const LABEL_PORT_PREFIX: &str = "corral.port.";

/// Grace period between SIGTERM and SIGKILL when removing a container.
const STOP_TIMEOUT_SECS: i32 = 2;
/// How long a name reserved by a concurrent create may take to become a container.
const NAME_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
const NAME_SETTLE_POLL: Duration = Duration::from_millis(50);
/// How many containers `list` inspects concurrently.
const LIST_CONCURRENCY: usize = 8;

/// How to reach and use the Docker engine.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    /// Scopes every container this runtime creates, lists and reports.
    pub namespace: String,
    /// Host address pod ports are published on.
    pub host_ip: String,
    /// Docker network to attach containers to (the engine's default bridge when None).
    pub network: Option<String>,
}

impl DockerOptions {
    /// Options with the defaults: ports on 127.0.0.1, default bridge network.
    pub fn new(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), host_ip: "127.0.0.1".to_owned(), network: None }
    }
}

/// What Docker accepts at the start of a container name.
fn valid_name_prefix(namespace: &str) -> bool {
    let mut chars = namespace.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// [`Runtime`] backed by a Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    opts: DockerOptions,
}

impl DockerRuntime {
    /// Connects with the local defaults (`DOCKER_HOST` or the unix socket) and negotiates
    /// the API version down to what the engine speaks.
    pub async fn connect(opts: DockerOptions) -> Result<Self, RuntimeError> {
        if !valid_name_prefix(&opts.namespace) {
            return Err(RuntimeError::Invalid(format!(
                "runtime namespace '{}' must be letters, digits, '_', '.' or '-', starting with a letter or \
                 digit: it prefixes the names of the containers",
                opts.namespace
            )));
        }
        if let Some(network) = opts.network.as_deref()
            && (network == "host" || network.starts_with("container:"))
        {
            return Err(RuntimeError::Invalid(format!(
                "network '{network}' would share a namespace with the host or another container"
            )));
        }
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Unavailable(format!("connecting to docker: {e}")))?
            .negotiate_version()
            .await
            .map_err(|e| RuntimeError::Unavailable(format!("negotiating the docker api version: {e}")))?;
        Ok(Self { docker, opts })
    }

    /// The underlying client (exec, uploads and tests use it).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Namespace this runtime is scoped to.
    pub fn namespace(&self) -> &str {
        &self.opts.namespace
    }

    /// The name of a spec's container: deterministic, so creating the same instance twice
    /// finds the same container, and prefixed by the namespace, so deployments sharing an
    /// engine never contend for a name (the default namespace `corral` gives
    /// `corral-<tenant>-<pod>-<instance>`).
    pub fn container_name(&self, spec: &ContainerSpec) -> String {
        format!("{}-{}-{}-{}", self.opts.namespace, spec.pod.tenant, spec.pod.pod_id, spec.instance)
    }

    fn namespace_filters(&self) -> HashMap<&'static str, Vec<String>> {
        HashMap::from([(
            "label",
            vec![format!("{LABEL_MANAGED}=true"), format!("{LABEL_NAMESPACE}={}", self.opts.namespace)],
        )])
    }

    async fn inspect_raw(&self, id: &str) -> Result<Option<bollard::models::ContainerInspectResponse>, RuntimeError> {
        match self.docker.inspect_container(id, None).await {
            Ok(resp) => Ok(Some(resp)),
            Err(e) if convert::status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(convert::map_err("inspecting container", e)),
        }
    }

    /// The container already exists under this name: adopt it, starting it if needed.
    async fn adopt_existing(
        &self,
        spec: &ContainerSpec,
        name: &str,
        existing: &bollard::models::ContainerInspectResponse,
    ) -> Result<ContainerInfo, RuntimeError> {
        let info = convert::info_from_inspect(existing, &self.opts.namespace, &self.opts.host_ip).ok_or_else(|| {
            RuntimeError::Other(format!(
                "container name {name} is taken by a container outside namespace {}",
                self.opts.namespace
            ))
        })?;
        if info.state == ContainerState::Running {
            return Ok(info);
        }
        // Never started: a creator may have died before (or while) placing the files.
        // Uploading again only overwrites them; a container that ran keeps what it had.
        if info.state == ContainerState::Created && !spec.files.is_empty() {
            archive::upload(&self.docker, &info.id, &spec.files).await?;
        }
        debug!(container = name, "starting existing container");
        self.start_and_inspect(&info.id).await
    }

    async fn start_and_inspect(&self, id: &str) -> Result<ContainerInfo, RuntimeError> {
        self.docker.start_container(id, None).await.map_err(|e| convert::map_err("starting container", e))?;
        let resp = self
            .inspect_raw(id)
            .await?
            .ok_or_else(|| RuntimeError::Other(format!("container {id} vanished after start")))?;
        convert::info_from_inspect(&resp, &self.opts.namespace, &self.opts.host_ip)
            .ok_or_else(|| RuntimeError::Other(format!("container {id} lost its corral labels")))
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        for tree in &spec.files {
            tree.destination_segments()?;
        }
        let name = self.container_name(spec);
        let deadline = Instant::now() + NAME_SETTLE_TIMEOUT;
        loop {
            let body =
                create::create_body(&self.opts.namespace, &self.opts.host_ip, self.opts.network.as_deref(), spec);
            let options = CreateContainerOptionsBuilder::new().name(&name).build();
            match self.docker.create_container(Some(options), body).await {
                Ok(created) => {
                    info!(container = %name, id = %created.id, image = %spec.image, "created container");
                    if !spec.files.is_empty()
                        && let Err(e) = archive::upload(&self.docker, &created.id, &spec.files).await
                    {
                        // Gone rather than left half-filled: the next attempt starts afresh.
                        if let Err(rm) = self.remove(&created.id).await {
                            debug!(container = %name, error = %rm, "removing the container after a failed upload");
                        }
                        return Err(e);
                    }
                    return self.start_and_inspect(&created.id).await;
                }
                Err(e) => match convert::status_of(&e) {
                    Some(409) => {
                        if let Some(existing) = self.inspect_raw(&name).await? {
                            return self.adopt_existing(spec, &name, &existing).await;
                        }
                        // The engine reserves the name before a concurrent create completes
                        // (or fails): wait for it to show up or go away.
                        if Instant::now() >= deadline {
                            return Err(RuntimeError::Other(format!(
                                "container name {name} stays reserved but no container appears"
                            )));
                        }
                        tokio::time::sleep(NAME_SETTLE_POLL).await;
                    }
                    Some(404) => return Err(RuntimeError::ImageNotFound(spec.image.clone())),
                    _ => return Err(convert::map_err("creating container", e)),
                },
            }
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let stop = StopContainerOptionsBuilder::new().t(STOP_TIMEOUT_SECS).build();
        match self.docker.stop_container(id, Some(stop)).await {
            Ok(()) => {}
            Err(e) if convert::status_of(&e) == Some(404) => return Ok(()),
            // The forced removal below still kills it.
            Err(e) => debug!(container = id, error = %e, "stop failed, removing by force"),
        }
        let rm = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        match self.docker.remove_container(id, Some(rm)).await {
            Ok(()) => Ok(()),
            // 409: a removal is already in progress.
            Err(e) if matches!(convert::status_of(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(convert::map_err("removing container", e)),
        }
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        Ok(self
            .inspect_raw(id)
            .await?
            .and_then(|resp| convert::info_from_inspect(&resp, &self.opts.namespace, &self.opts.host_ip)))
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let options = ListContainersOptionsBuilder::new().all(true).filters(&self.namespace_filters()).build();
        let summaries =
            self.docker.list_containers(Some(options)).await.map_err(|e| convert::map_err("listing containers", e))?;
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let inspected: Vec<Result<Option<ContainerInfo>, RuntimeError>> = futures::stream::iter(ids)
            .map(|id| async move { self.inspect(&id).await })
            .buffer_unordered(LIST_CONCURRENCY)
            .collect()
            .await;
        let mut infos = Vec::with_capacity(inspected.len());
        for item in inspected {
            // None: removed between listing and inspecting.
            if let Some(info) = item? {
                infos.push(info);
            }
        }
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(infos)
    }

    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError> {
        let mut filters = self.namespace_filters();
        filters.insert("type", vec!["container".to_owned()]);
        filters.insert("event", vec!["start".to_owned(), "die".to_owned(), "destroy".to_owned()]);
        // The request is only sent when the stream is first polled; `since` makes the engine
        // replay what happened in between, so nothing after this call is missed.
        let now = time::OffsetDateTime::now_utc();
        let since = format!("{}.{:09}", now.unix_timestamp(), now.nanosecond());
        let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
        let namespace = self.opts.namespace.clone();
        let stream = self
            .docker
            .events(Some(options))
            .take_while(|item| {
                if let Err(e) = item {
                    debug!(error = %e, "docker event stream ended");
                }
                futures::future::ready(item.is_ok())
            })
            .filter_map(move |item| {
                let event = item.ok().and_then(|msg| convert::event_from_message(&msg, &namespace));
                futures::future::ready(event)
            });
        Ok(stream.boxed())
    }

    async fn output(&self, id: &str, follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError> {
        // Fail now, not as an empty stream, for unknown or foreign containers.
        if self.inspect(id).await?.is_none() {
            return Err(RuntimeError::NotFound(id.to_owned()));
        }
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(follow).tail("all").build();
        let stream =
            self.docker.logs(id, Some(options)).take_while(|item| futures::future::ready(item.is_ok())).filter_map(
                |item| futures::future::ready(item.ok().map(|out| OutputChunk { bytes: out.into_bytes().to_vec() })),
            );
        Ok(stream.boxed())
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await.map(|_| ()).map_err(|e| RuntimeError::Unavailable(format!("docker ping: {e}")))
    }
}
