//! Simulated runtime: no real work, for load tests (100k pods) and unit tests of the services.
//! Containers are entries of an in-memory map; events go through a broadcast channel.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use corral_model::{Millis, PodKey};
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::broadcast;

use crate::docker::exit_reason;
use crate::{
    ContainerInfo, ContainerSpec, ContainerState, HostPort, OutputChunk, Runtime, RuntimeError, RuntimeEvent,
    RuntimeKind,
};

/// Events a slow subscriber may lag behind before its stream ends (it then resyncs).
const EVENT_CAPACITY: usize = 16 * 1024;
/// Fake host ports cycle through this range.
const FIRST_PORT: u32 = 20_000;
const PORT_RANGE: u32 = 40_000;
/// Exit code reported for a container stopped by `remove` (SIGTERM).
const REMOVED_EXIT_CODE: i64 = 143;

/// Options of the simulated runtime.
#[derive(Debug, Clone)]
pub struct SimulatedOptions {
    /// Reported in logs; each runtime value is its own engine, so namespaces never mix.
    pub namespace: String,
    /// How long `spawn` takes.
    pub start_delay: Duration,
}

/// One simulated container, kept small: the load tests hold 100k of them.
#[derive(Debug, Clone)]
struct SimContainer {
    pod: PodKey,
    generation: u64,
    instance: u64,
    state: ContainerState,
    /// Networking entry name → fake loopback port.
    ports: Vec<(String, u16)>,
    started_at: Millis,
}

impl SimContainer {
    fn info(&self, id: &str) -> ContainerInfo {
        ContainerInfo {
            id: id.to_owned(),
            pod: self.pod.clone(),
            generation: self.generation,
            instance: self.instance,
            state: self.state,
            ports: self
                .ports
                .iter()
                .map(|(name, port)| (name.clone(), HostPort { host: "127.0.0.1".to_owned(), port: *port }))
                .collect::<BTreeMap<_, _>>(),
            started_at: Some(self.started_at),
        }
    }
}

/// [`Runtime`] that only pretends: every spawn succeeds after `start_delay`.
#[derive(Debug)]
pub struct SimulatedRuntime {
    opts: SimulatedOptions,
    containers: Mutex<HashMap<String, SimContainer>>,
    events: broadcast::Sender<RuntimeEvent>,
    next_port: AtomicU32,
}

fn now_millis() -> Millis {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl SimulatedRuntime {
    /// An empty simulated engine.
    pub fn new(opts: SimulatedOptions) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Self { opts, containers: Mutex::new(HashMap::new()), events, next_port: AtomicU32::new(0) }
    }

    /// Namespace this runtime is scoped to.
    pub fn namespace(&self) -> &str {
        &self.opts.namespace
    }

    /// A poisoned map is still consistent (every update is a single insert/assign).
    fn containers(&self) -> MutexGuard<'_, HashMap<String, SimContainer>> {
        self.containers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fake_port(&self) -> u16 {
        let n = self.next_port.fetch_add(1, Ordering::Relaxed) % PORT_RANGE;
        u16::try_from(FIRST_PORT + n).unwrap_or(u16::MAX)
    }

    fn emit(&self, event: RuntimeEvent) {
        // No subscriber is fine: events are hints, state is in the map.
        let _ = self.events.send(event);
    }

    /// A new container of `spec` in `state`, with fake ports.
    fn container(&self, spec: &ContainerSpec, state: ContainerState) -> SimContainer {
        SimContainer {
            pod: spec.pod.clone(),
            generation: spec.generation,
            instance: spec.instance,
            state,
            ports: spec.ports.iter().map(|p| (p.name.clone(), self.fake_port())).collect(),
            started_at: now_millis(),
        }
    }

    /// Test hook: the container `spawn` would make, created but never started, as a creator
    /// that died between the two steps leaves it.
    #[doc(hidden)]
    pub fn create_for_tests(&self, spec: &ContainerSpec) -> ContainerInfo {
        let id = spec.name();
        let c = self.container(spec, ContainerState::Created);
        let info = c.info(&id);
        self.containers().insert(id, c);
        info
    }

    /// Test hook: the container exits with `exit_code` as if its process died. Returns false
    /// when it does not exist or is not running.
    #[doc(hidden)]
    pub fn kill_for_tests(&self, id: &str, exit_code: i64) -> bool {
        let pod = {
            let mut containers = self.containers();
            match containers.get_mut(id) {
                Some(c) if c.state == ContainerState::Running => {
                    c.state = ContainerState::Exited(Some(exit_code));
                    c.pod.clone()
                }
                _ => return false,
            }
        };
        self.emit(RuntimeEvent::Exited {
            id: id.to_owned(),
            pod,
            exit_code: Some(exit_code),
            reason: exit_reason(Some(exit_code)),
        });
        true
    }
}

#[async_trait]
impl Runtime for SimulatedRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Simulated
    }

    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        if !self.opts.start_delay.is_zero() {
            tokio::time::sleep(self.opts.start_delay).await;
        }
        let id = spec.name();
        let (info, started) = {
            let mut containers = self.containers();
            match containers.get_mut(&id) {
                Some(c) if c.state == ContainerState::Running => (c.info(&id), false),
                Some(c) => {
                    c.state = ContainerState::Running;
                    c.started_at = now_millis();
                    (c.info(&id), true)
                }
                None => {
                    let c = self.container(spec, ContainerState::Running);
                    let info = c.info(&id);
                    containers.insert(id.clone(), c);
                    (info, true)
                }
            }
        };
        if started {
            self.emit(RuntimeEvent::Started { id, pod: spec.pod.clone() });
        }
        Ok(info)
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let removed = self.containers().remove(id);
        if let Some(c) = removed {
            if c.state == ContainerState::Running {
                let exit_code = Some(REMOVED_EXIT_CODE);
                self.emit(RuntimeEvent::Exited {
                    id: id.to_owned(),
                    pod: c.pod.clone(),
                    exit_code,
                    reason: exit_reason(exit_code),
                });
            }
            self.emit(RuntimeEvent::Removed { id: id.to_owned(), pod: c.pod });
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        Ok(self.containers().get(id).map(|c| c.info(id)))
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut infos: Vec<ContainerInfo> = self.containers().iter().map(|(id, c)| c.info(id)).collect();
        infos.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(infos)
    }

    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError> {
        let rx = self.events.subscribe();
        // A lagging subscriber's stream ends, so it resyncs instead of missing events silently.
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.ok().map(|e| (e, rx)) }).boxed())
    }

    async fn output(&self, id: &str, _follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError> {
        if !self.containers().contains_key(id) {
            return Err(RuntimeError::NotFound(id.to_owned()));
        }
        let chunk = OutputChunk { bytes: format!("simulated container {id}\n").into_bytes() };
        Ok(futures::stream::iter([chunk]).boxed())
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}
