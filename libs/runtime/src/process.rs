//! Process runtime: runs a pod's command as a local process group, for development and tests
//! on hosts without Docker.
//!
//! Convention: the image is not used (it is logged and kept in the state record); the
//! command and args are exec'd directly on the host, without a shell. Each networking entry
//! gets a free loopback port, passed as `PORT` (default entry) and `PORT_<NAME>`; the
//! container port is ignored.
//!
//! State lives on disk under `<state_dir>/<namespace>/<id>/` (`info.json`, `output.log`,
//! `exit_code`, and the process's working directory `work/`), so every process running this
//! runtime on the host (spawner, health-poller, log-collector) sees the same containers, and a
//! restarted spawner adopts the processes its predecessor started.

mod launch;
mod ports;
mod procfs;
mod state;
mod tail;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tracing::{debug, info};

use crate::{
    ContainerInfo, ContainerSpec, ContainerState, OutputChunk, Runtime, RuntimeError, RuntimeEvent, RuntimeKind,
};

/// Grace period between SIGTERM and SIGKILL on removal.
const STOP_GRACE: Duration = Duration::from_secs(2);
const KILL_WAIT: Duration = Duration::from_secs(2);
const STOP_POLL: Duration = Duration::from_millis(50);
/// How long a spawn waits for another process's launch of the same container to finish.
const LAUNCH_WAIT: Duration = Duration::from_secs(10);
const LAUNCH_LOCK: &str = "launch.lock";

/// Where and under which namespace the process runtime keeps its containers.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Scopes every container this runtime creates, lists and reports.
    pub namespace: String,
    /// Shared by every process using this runtime on the host.
    pub state_dir: PathBuf,
}

/// [`Runtime`] running commands as local process groups.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    namespace: String,
    root: PathBuf,
}

/// Exclusive right to launch one container (a lock file, so it holds across processes).
/// Serialises launches of one container, across processes. An OS file lock, so a launcher
/// killed mid-launch releases it at once (no staleness timeout to wait out).
struct LaunchLock(#[allow(dead_code)] std::fs::File);

impl LaunchLock {
    fn try_acquire(dir: &Path) -> Result<Option<Self>, RuntimeError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LAUNCH_LOCK))
            .map_err(|e| state::io_err("opening the launch lock", &e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(state::io_err("taking the launch lock", &e)),
        }
    }
}

fn valid_id(id: &str) -> bool {
    // A leading dot is reserved for directories being removed.
    !id.is_empty() && !id.starts_with('.') && !id.contains(['/', '\\', '\0'])
}

impl ProcessRuntime {
    /// Creates the namespace's state directory if needed.
    pub fn new(opts: ProcessOptions) -> Result<Self, RuntimeError> {
        if !valid_id(&opts.namespace) {
            return Err(RuntimeError::Invalid(format!("invalid namespace '{}'", opts.namespace)));
        }
        let root = opts.state_dir.join(&opts.namespace);
        std::fs::create_dir_all(&root).map_err(|e| state::io_err("creating the state directory", &e))?;
        Ok(Self { namespace: opts.namespace, root })
    }

    /// Namespace this runtime is scoped to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Directory of one container, or None for ids that could escape the namespace directory.
    fn dir(&self, id: &str) -> Option<PathBuf> {
        valid_id(id).then(|| self.root.join(id))
    }

    fn current(&self, dir: &Path) -> Option<ContainerInfo> {
        let record = state::load(dir)?;
        let st = state::state_of(dir, &record);
        Some(state::info_of(&record, st))
    }

    /// One attempt: returns None when another launcher holds the lock. `fresh`: this attempt
    /// created the container directory, so no earlier launch can have left processes behind.
    fn try_spawn(
        &self,
        dir: &Path,
        id: &str,
        spec: &ContainerSpec,
        fresh: bool,
    ) -> Result<Option<ContainerInfo>, RuntimeError> {
        let Some(_lock) = LaunchLock::try_acquire(dir)? else {
            return Ok(None);
        };
        if let Some(info) = self.current(dir)
            && info.state == ContainerState::Running
        {
            return Ok(Some(info));
        }
        state::clear_exit_code(dir)?;
        info!(container = id, image = %spec.image, "starting process (the process runtime ignores the image)");
        let record = launch::launch(dir, id, spec, !fresh).inspect_err(|_| {
            // Never launched: leave nothing behind for list or a later spawn to trip on.
            if state::load(dir).is_none() {
                let _ = std::fs::remove_dir_all(dir);
            }
        })?;
        let st = state::state_of(dir, &record);
        Ok(Some(state::info_of(&record, st)))
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn spawn(&self, spec: &ContainerSpec) -> Result<ContainerInfo, RuntimeError> {
        launch::argv(spec)?;
        let id = spec.name();
        let dir = self.dir(&id).ok_or_else(|| RuntimeError::Invalid(format!("invalid container name '{id}'")))?;
        let deadline = Instant::now() + LAUNCH_WAIT;
        // The file work and the fork/exec block for milliseconds each: on the async workers a
        // storm of launches would stall everything else sharing them (the bus consumers,
        // readiness probes, the gateway in `corral dev`), so each attempt runs on the blocking
        // pool. The pool's threads are inside the runtime, so the launch can still start its
        // reaper task there.
        let spec = Arc::new(spec.clone());
        let mut first = true;
        loop {
            let (me, at, name, spec) = (self.clone(), dir.clone(), id.clone(), Arc::clone(&spec));
            let attempt = blocking(move || {
                // Every process of a launch carries the directory's path in its environment,
                // and a launch needs the directory: none can exist when it is created here.
                let fresh = first && create_dir(&at)?;
                me.try_spawn(&at, &name, &spec, fresh)
            });
            if let Some(info) = attempt.await? {
                return Ok(info);
            }
            first = false;
            if Instant::now() > deadline {
                return Err(RuntimeError::Other(format!("container {id} is being launched by another process")));
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(dir) = self.dir(id) else {
            return Ok(());
        };
        let record_dir = dir.clone();
        if let Some(record) = blocking(move || Ok(state::load(&record_dir))).await? {
            let (pgid, start) = (record.pid, record.start_ticks);
            if group_alive(pgid, start).await {
                procfs::signal_group(pgid, "TERM").await;
                if !wait_group_gone(pgid, start, STOP_GRACE).await {
                    debug!(container = id, "process group outlived the grace period, killing it");
                    procfs::signal_group(pgid, "KILL").await;
                    if !wait_group_gone(pgid, start, KILL_WAIT).await {
                        return Err(RuntimeError::Other(format!("process group of {id} survived SIGKILL")));
                    }
                }
            }
        }
        // Moved aside first, so the reaper recording the exit code concurrently cannot write
        // into the directory while it is being deleted.
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let tomb = self.root.join(format!(".removing-{id}-{}-{nanos}", std::process::id()));
        match tokio::fs::rename(&dir, &tomb).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(state::io_err("removing the container directory", &e)),
        }
        tokio::fs::remove_dir_all(&tomb).await.map_err(|e| state::io_err("removing the container directory", &e))
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        let Some(dir) = self.dir(id) else { return Ok(None) };
        let me = self.clone();
        blocking(move || Ok(me.current(&dir))).await
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let me = self.clone();
        blocking(move || {
            let mut infos: Vec<ContainerInfo> =
                state::entries(&me.root).into_iter().filter_map(|(_, dir)| me.current(&dir)).collect();
            infos.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(infos)
        })
        .await
    }

    async fn events(&self) -> Result<BoxStream<'static, RuntimeEvent>, RuntimeError> {
        Ok(watch::subscribe(self.root.clone()).await)
    }

    async fn output(&self, id: &str, follow: bool) -> Result<BoxStream<'static, OutputChunk>, RuntimeError> {
        let dir =
            self.dir(id).filter(|d| state::load(d).is_some()).ok_or_else(|| RuntimeError::NotFound(id.to_owned()))?;
        Ok(tail::tail(dir, follow))
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(()),
            _ => Err(RuntimeError::Unavailable(format!("state directory {} is missing", self.root.display()))),
        }
    }
}

/// Creates a container directory; false when it existed already.
fn create_dir(dir: &Path) -> Result<bool, RuntimeError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // The namespace directory itself is gone (removed by hand): recreate the path.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| state::io_err("creating the container directory", &e))?;
            Ok(false)
        }
        Err(e) => Err(state::io_err("creating the container directory", &e)),
    }
}

/// Runs file and `/proc` work on the blocking pool (see [`ProcessRuntime::spawn`]).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RuntimeError::Other(format!("process runtime task failed: {e}")))?
}

/// Whether any member of a process group lives; may scan all of `/proc`, so off the async
/// workers.
async fn group_alive(pgid: u32, start_ticks: u64) -> bool {
    // A failed scan counts as "still there": removal then waits and escalates rather than
    // deleting the state of a live group.
    blocking(move || Ok(procfs::group_alive(pgid, start_ticks))).await.unwrap_or(true)
}

/// Polls until no member of the group is alive; false when `limit` passed first.
async fn wait_group_gone(pgid: u32, start_ticks: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !group_alive(pgid, start_ticks).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(STOP_POLL).await;
    }
}
