//! One cold spawn through Corral, observed as a client sees it (polling `GET /v3/pods/{id}`),
//! plus the server-side phase timestamps from the pod's action log when the stack runs in
//! this process.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use corral_model::PodKey;
use corral_store::Store as _;
use serde_json::Value;

use crate::stack::Target;

/// Server-side phases, in milliseconds, from action-log timestamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// Pod stored by the gateway → the spawner's actor started the attempt (kick delivery).
    pub to_spawner: Option<i64>,
    /// Attempt started → container created, started and inspected (runtime).
    pub runtime_start: Option<i64>,
    /// Container started → AVAILABLE (event → health-poller probe → observation → actor).
    pub readiness: Option<i64>,
    /// AVAILABLE stored → the client's poll saw it.
    pub client_lag: Option<i64>,
}

/// When a pod passed each milestone of a spawn (wall clock, ms), from its action log.
#[derive(Debug, Clone, Default)]
pub struct Milestones {
    /// Stored by the gateway.
    pub created: Option<i64>,
    /// The spawner's actor started the attempt.
    pub spawn: Option<i64>,
    /// The runtime reported the container (or process) started.
    pub started: Option<i64>,
    pub available: Option<i64>,
    /// Containers started for the pod (more than one: it was restarted).
    pub starts: usize,
    /// Why the first attempt was given up, when one was (the spawner's log line).
    pub retried_because: Option<String>,
}

impl Milestones {
    pub fn of(log: &[corral_model::ActionLogEntry]) -> Self {
        let at = |prefix: &str| log.iter().find(|e| e.message.starts_with(prefix)).map(|e| e.ts);
        Self {
            created: at("pod created"),
            spawn: at("spawn requested"),
            started: at("container started"),
            available: at("pod is AVAILABLE"),
            starts: log.iter().filter(|e| e.message.starts_with("container started")).count(),
            retried_because: log
                .iter()
                .find_map(|e| e.message.split_once("; retrying in").map(|(why, _)| why.to_owned())),
        }
    }
}

/// One Corral spawn.
#[derive(Debug, Clone)]
pub struct CorralSample {
    pub post: Duration,
    /// POST sent → a GET answered AVAILABLE: the figure compared with raw Docker.
    pub available: Duration,
    /// When each displayed status was first seen, from the POST.
    pub first_seen: BTreeMap<String, Duration>,
    pub phases: Phases,
    /// DELETE sent → the pod's container is gone.
    pub teardown: Duration,
}

/// How the client polls and what it spawns.
pub struct CorralPods<'a> {
    pub target: &'a Target,
    pub docker: Docker,
    pub tenant: String,
    pub body: Value,
    pub poll: Duration,
    pub timeout: Duration,
}

pub fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl CorralPods<'_> {
    /// Creates `pod_id`, waits for AVAILABLE, deletes it and waits for its container to go.
    pub async fn once(&self, pod_id: &str) -> anyhow::Result<CorralSample> {
        let mut body = self.body.clone();
        body["pod_id"] = Value::String(pod_id.to_string());
        let t0 = Instant::now();
        self.target.create_pod(&body).await?;
        let post = t0.elapsed();
        let mut first_seen = BTreeMap::new();
        let available = loop {
            let status = self.target.pod_status(pod_id).await?.context("the pod vanished")?;
            let at = t0.elapsed();
            first_seen.entry(status.clone()).or_insert(at);
            match status.as_str() {
                "AVAILABLE" => break at,
                "ERROR" | "COMPLETE" | "STOPPED" => anyhow::bail!("pod {pod_id} settled in {status}"),
                _ => {}
            }
            anyhow::ensure!(at < self.timeout, "pod {pod_id} not AVAILABLE within {:?}", self.timeout);
            tokio::time::sleep(self.poll).await;
        };
        let seen_wall = now_ms();
        let phases = self.phases(pod_id, seen_wall).await?;
        let t_del = Instant::now();
        self.target.delete_pod(pod_id).await?;
        self.wait_gone(pod_id).await?;
        Ok(CorralSample { post, available, first_seen, phases, teardown: t_del.elapsed() })
    }

    async fn phases(&self, pod_id: &str, seen_wall: i64) -> anyhow::Result<Phases> {
        let Some(stack) = &self.target.local else { return Ok(Phases::default()) };
        let log = stack.store.action_log(&PodKey::new(&self.tenant, pod_id)).await.context("reading the action log")?;
        let m = Milestones::of(&log);
        let diff = |a: Option<i64>, b: Option<i64>| Some(b? - a?);
        Ok(Phases {
            to_spawner: diff(m.created, m.spawn),
            runtime_start: diff(m.spawn, m.started),
            readiness: diff(m.started, m.available),
            client_lag: diff(m.available, Some(seen_wall)),
        })
    }

    /// Waits until no container of the pod exists any more (and, in-process, its records
    /// are purged), so the next spawn does not overlap with this teardown.
    async fn wait_gone(&self, pod_id: &str) -> anyhow::Result<()> {
        let mut labels = vec![format!("corral.pod={pod_id}"), format!("corral.tenant={}", self.tenant)];
        if let Some(stack) = &self.target.local {
            labels.push(format!("corral.namespace={}", stack.ns));
        }
        let filters = HashMap::from([("label", labels)]);
        let key = PodKey::new(&self.tenant, pod_id);
        let t0 = Instant::now();
        loop {
            let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
            let containers = self.docker.list_containers(Some(options)).await.context("listing containers")?;
            let purged = match &self.target.local {
                Some(stack) => stack.store.get_pod(&key).await.context("reading the pod record")?.is_none(),
                None => true,
            };
            if containers.is_empty() && purged {
                return Ok(());
            }
            anyhow::ensure!(t0.elapsed() < self.timeout, "pod {pod_id} not torn down within {:?}", self.timeout);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use corral_model::ActionLogEntry;

    use super::Milestones;

    fn at(ts: i64, message: &str) -> ActionLogEntry {
        ActionLogEntry { ts, actor: "spawner".into(), message: message.into() }
    }

    #[test]
    fn a_restarted_pod_shows_its_first_start_and_why_it_was_retried() {
        let log = [
            at(1, "pod created by 'load'"),
            at(2, "spawn requested (generation 1)"),
            at(3, "container started (instance 1); waiting for readiness"),
            at(4, "container exited with code 1 (process exited); retrying in 1.0s (attempt 2 of 5)"),
            at(1004, "spawn requested (generation 1)"),
            at(1005, "container started (instance 2); waiting for readiness"),
            at(1009, "pod is AVAILABLE: container running and ready"),
        ];
        let m = Milestones::of(&log);
        assert_eq!((m.created, m.spawn, m.started, m.available), (Some(1), Some(2), Some(3), Some(1009)));
        assert_eq!(m.starts, 2);
        assert_eq!(m.retried_because.as_deref(), Some("container exited with code 1 (process exited)"));
        let clean = Milestones::of(&[log[0].clone(), log[1].clone(), log[2].clone(), log[6].clone()]);
        assert_eq!((clean.starts, clean.retried_because), (1, None));
    }
}
