//! Readiness probe tasks: at most one per pod, probing one container until it answers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use corral_model::{Endpoint, PodKey};
use corral_protocol::{Observation, ProbeKind};
use std::time::Duration;
use tokio::task::AbortHandle;

use tokio::time::Instant;
use tracing::Instrument as _;

use crate::Settings;
use crate::probe;
use crate::publish::Publisher;

/// What to probe.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub pod: PodKey,
    pub container_id: String,
    pub endpoint: Endpoint,
    pub kind: ProbeKind,
}

struct Active {
    container_id: String,
    task: AbortHandle,
}

/// The running probe tasks, keyed by pod: a pod has one current container, so a probe for
/// a newer container replaces the old one.
#[derive(Default)]
pub(crate) struct Probes {
    active: Mutex<HashMap<PodKey, Active>>,
}

impl Probes {
    fn lock(&self) -> MutexGuard<'_, HashMap<PodKey, Active>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a probe task for this container is still running.
    pub(crate) fn is_active(&self, pod: &PodKey, container_id: &str) -> bool {
        self.lock().get(pod).is_some_and(|a| a.container_id == container_id && !a.task.is_finished())
    }

    /// Starts probing `target` unless a probe for that container is already running.
    /// Returns whether a task was started.
    pub(crate) fn ensure(&self, target: Target, publisher: &Publisher, settings: &Settings) -> bool {
        let mut active = self.lock();
        if let Some(a) = active.get(&target.pod) {
            if a.container_id == target.container_id && !a.task.is_finished() {
                return false;
            }
            a.task.abort();
        }
        let span = tracing::info_span!("probe", pod = %target.pod, container_id = %target.container_id);
        let pod = target.pod.clone();
        let container_id = target.container_id.clone();
        let task = corral_telemetry::spawn_named(
            "readiness-probe",
            probe_until_ready(target, publisher.clone(), *settings).instrument(span),
        );
        active.insert(pod, Active { container_id, task: task.abort_handle() });
        true
    }

    /// Stops probing `pod` unless its probe is for `keep` (a later event showed another
    /// status or another container).
    pub(crate) fn stop_unless(&self, pod: &PodKey, keep: Option<&str>) {
        let mut active = self.lock();
        if active.get(pod).is_some_and(|a| Some(a.container_id.as_str()) != keep)
            && let Some(a) = active.remove(pod)
        {
            a.task.abort();
        }
    }

    /// Stops probing `container_id` (it exited or is gone).
    pub(crate) fn stop_container(&self, pod: &PodKey, container_id: &str) {
        let mut active = self.lock();
        if active.get(pod).is_some_and(|a| a.container_id == container_id)
            && let Some(a) = active.remove(pod)
        {
            a.task.abort();
        }
    }

    /// Forgets finished probes, so the map holds only pods being probed.
    pub(crate) fn prune(&self) {
        self.lock().retain(|_, a| !a.task.is_finished());
    }

    /// Stops every probe (shutdown).
    pub(crate) fn abort_all(&self) {
        for (_, a) in self.lock().drain() {
            a.task.abort();
        }
    }
}

/// First wait between failed probes: most services answer a few milliseconds after their
/// container starts, so the first retries come quickly.
const FIRST_RETRY: Duration = Duration::from_millis(5);

/// How long to wait after failed probe number `failures` (1-based): [`FIRST_RETRY`],
/// doubling up to `interval`.
fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(interval)
}

/// Probes at once, then again after each failure with [`retry_delay`], until the target
/// answers; then publishes `Ready` once. Gives up after the stall timeout: by then the actor
/// has counted the attempt as failed.
async fn probe_until_ready(target: Target, publisher: Publisher, settings: Settings) {
    let give_up_at = Instant::now() + settings.probe_give_up;
    // Attempts that did not end the task: a failed probe, or a `Ready` not published.
    let mut failed = 0u32;
    let mut last_error = String::new();
    tracing::debug!(endpoint = %format_args!("{}:{}", target.endpoint.host, target.endpoint.port), "probing");
    loop {
        if failed > 0 {
            tokio::time::sleep(retry_delay(failed, settings.probe_interval)).await;
        }
        failed = failed.saturating_add(1);
        if Instant::now() >= give_up_at {
            tracing::info!(last_error, "readiness probe gave up");
            return;
        }
        match probe::check(&target.endpoint, target.kind, settings.probe_timeout).await {
            Ok(()) => match publisher.observe(&target.pod, &target.container_id, Observation::Ready).await {
                Ok(()) => {
                    tracing::info!("readiness probe passed");
                    return;
                }
                // Keep the task: the next attempt probes and publishes again.
                Err(e) => tracing::warn!(error = %e, "could not publish readiness"),
            },
            Err(e) => {
                let err = e.to_string();
                if err != last_error {
                    tracing::debug!(error = %err, "not ready yet");
                    last_error = err;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use corral_bus::memory::MemoryBus;

    use super::*;

    fn target(container_id: &str, port: u16) -> Target {
        Target {
            pod: PodKey::new("t", "p"),
            container_id: container_id.into(),
            endpoint: Endpoint { host: "127.0.0.1".into(), port },
            kind: ProbeKind::Tcp,
        }
    }

    #[test]
    fn retries_start_fast_and_back_off_to_the_interval() {
        let ms = Duration::from_millis;
        let table = [(1, 50, 5), (2, 50, 10), (3, 50, 20), (4, 50, 40), (5, 50, 50), (9, 50, 50), (1, 2, 2)];
        for (failures, interval, want) in table {
            assert_eq!(retry_delay(failures, ms(interval)), ms(want), "after {failures} failures, interval {interval}");
        }
        assert_eq!(retry_delay(u32::MAX, ms(50)), ms(50), "no overflow");
    }

    #[tokio::test]
    async fn one_probe_per_container_and_a_newer_container_replaces_it() {
        // A closed port keeps the probes running for the whole test.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let settings = Settings {
            shards: 1,
            resync_interval: Duration::from_secs(60),
            probe_interval: Duration::from_millis(10),
            probe_timeout: Duration::from_millis(100),
            probe_give_up: Duration::from_secs(60),
        };
        let publisher = Publisher::new(Arc::new(MemoryBus::new()), 1, 256);
        let probes = Probes::default();
        let pod = PodKey::new("t", "p");

        assert!(probes.ensure(target("a", port), &publisher, &settings));
        assert!(!probes.ensure(target("a", port), &publisher, &settings), "same container: already probing");
        assert!(probes.ensure(target("b", port), &publisher, &settings), "newer container replaces");
        assert!(!probes.is_active(&pod, "a"));
        assert!(probes.is_active(&pod, "b"));

        probes.stop_unless(&pod, Some("b"));
        assert!(probes.is_active(&pod, "b"), "an event for the same container keeps the probe");
        probes.stop_container(&pod, "a");
        assert!(probes.is_active(&pod, "b"), "an older container's exit does not stop the probe");
        probes.stop_unless(&pod, None);
        assert!(!probes.is_active(&pod, "b"), "another status stops the probe");
        probes.abort_all();
    }
}
