//! The pod state machine. `step` takes the observed state by value, what the user wants,
//! one event and `now`, and returns the next observed state plus the actions to perform.
//! It never does I/O; the spawner's actor executes the actions and feeds their outcomes
//! back in as events.
//!
//! Lifecycle of one generation (a create, start or restart bumps the generation):
//! `STOPPED → SPAWNER SETUP → CREATING → AVAILABLE`, then `DELETING → STOPPED` when switched
//! off, deleted or past its time-to-stop. Failures (spawn errors, crashes, stalls) back off
//! and retry up to `max_attempts`, then settle in `ERROR`. A generation that has settled
//! (`STOPPED`, `ERROR`, `COMPLETE`) is never respawned until the user bumps the generation.
//!
//! Batch pods (`session.session_type: batch`, see [`batch`]) run once per generation: any exit
//! ends the run in `COMPLETE` (or `ERROR` when the infrastructure failed) with a
//! [`Termination`](crate::record::Termination), and are never restarted.

mod batch;

pub use batch::Batch;

use crate::Millis;
use crate::backoff::delay_ms;
use crate::record::{Desired, Endpoint, Observed, PodStatus, StatusRequested};

/// Timing and retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a container may stay CREATING before it counts as stalled.
    pub stall_timeout_ms: u64,
    /// Failed attempts allowed per generation before the pod settles in ERROR.
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self { stall_timeout_ms: 120_000, max_attempts: 5, backoff_base_ms: 1_000, backoff_max_ms: 60_000 }
    }
}

/// The part of desired state the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub on: bool,
    pub generation: u64,
    pub deleted: bool,
    pub ttl_default_s: i64,
    pub ttl_instance_s: Option<i64>,
    /// The pod has a probed networking port; otherwise "running" is "ready".
    pub needs_probe: bool,
    /// Set for batch pods: run once to completion.
    pub batch: Option<Batch>,
}

impl Want {
    pub fn from_desired(d: &Desired) -> Self {
        let batch = Batch::of(&d.spec);
        // A batch run is "running" once spawned: its ports, if any, are not waited for.
        let needs_probe =
            batch.is_none() && d.spec.default_port().is_some_and(|(_, n)| n.protocol != crate::Protocol::LocalOnly);
        Self {
            on: d.status_requested != StatusRequested::Off,
            generation: d.generation,
            deleted: d.deleted,
            ttl_default_s: d.spec.time_to_stop_default,
            ttl_instance_s: d.spec.time_to_stop_instance,
            needs_probe,
            batch,
        }
    }
}

/// Something that happened to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Desired state may have changed, or a periodic resync: converge.
    Reconcile,
    /// A timer fired: check stalls, time-to-stop and backoff.
    Timer,
    /// The runtime created and started instance `instance`.
    Spawned { instance: u64, container_id: String, endpoint: Option<Endpoint> },
    /// Creating or starting the container failed.
    SpawnFailed { instance: u64, reason: String },
    /// The readiness probe passed.
    Ready { container_id: String },
    /// The container stopped running (exited, was killed, or disappeared).
    Exited { container_id: String, exit_code: Option<i64>, reason: String },
    /// The container is gone after a `Remove`.
    Removed { container_id: String },
}

/// Side effects for the actor to perform, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create and start container instance `instance` (idempotent per instance).
    Spawn { instance: u64 },
    /// Stop and remove the container (idempotent).
    Remove { container_id: String },
    /// Append to the action log.
    Log(String),
    /// Deliver `Event::Timer` at this time.
    Wake { at: Millis },
    /// Teardown after delete is complete: remove every record of the pod.
    Purge,
}

struct Step {
    obs: Observed,
    actions: Vec<Action>,
    now: Millis,
}

impl Step {
    fn set_status(&mut self, status: PodStatus) {
        if self.obs.status != status {
            self.obs.status = status;
            self.obs.since = self.now;
        }
    }
    fn log(&mut self, msg: impl Into<String>) {
        self.actions.push(Action::Log(msg.into()));
    }
}

/// Advances the machine by one event.
pub fn step(obs: Observed, want: &Want, event: Event, now: Millis, cfg: &Settings) -> (Observed, Vec<Action>) {
    let before = obs.clone();
    let mut s = Step { obs, actions: Vec::new(), now };
    match event {
        Event::Reconcile | Event::Timer => {}
        Event::Spawned { instance, container_id, endpoint } => {
            on_spawned(&mut s, want, instance, container_id, endpoint)
        }
        Event::SpawnFailed { instance, reason } => {
            if instance == s.obs.instance && s.obs.status == PodStatus::SpawnerSetup {
                fail(&mut s, cfg, &format!("could not start the container: {reason}"));
                if want.batch.is_some() {
                    batch::note_gave_up(&mut s);
                }
            }
        }
        Event::Ready { container_id } => {
            if s.obs.container_id.as_deref() == Some(&container_id) && s.obs.status == PodStatus::Creating {
                become_available(&mut s, want);
            }
        }
        Event::Exited { container_id, exit_code, reason } => match want.batch {
            Some(_) => batch::on_exited(&mut s, container_id, exit_code, &reason),
            None => on_exited(&mut s, cfg, container_id, exit_code, &reason),
        },
        Event::Removed { container_id } => {
            if s.obs.container_id.as_deref() == Some(&container_id) {
                s.obs.container_id = None;
                s.obs.endpoint = None;
            }
        }
    }
    converge(&mut s, want, cfg);
    // Only a real change moves `update_ts`: a no-op reconcile must leave the record as it
    // was, so periodic resyncs cost no store writes.
    if s.obs != before {
        s.obs.update_ts = now;
    }
    (s.obs, s.actions)
}

fn on_spawned(s: &mut Step, want: &Want, instance: u64, container_id: String, endpoint: Option<Endpoint>) {
    let current = instance == s.obs.instance && s.obs.status == PodStatus::SpawnerSetup;
    if !current {
        // A late result for an instance we no longer want: never leave it running.
        if s.obs.container_id.as_deref() != Some(&container_id) {
            s.actions.push(Action::Remove { container_id });
        }
        return;
    }
    s.obs.container_id = Some(container_id);
    s.obs.endpoint = endpoint;
    s.obs.status_container.start_time = Some(s.now);
    s.obs.status_container.phase = "Running".into();
    s.set_status(PodStatus::Creating);
    if want.needs_probe {
        s.obs.status_container.message = "waiting for the readiness probe".into();
        s.log(format!("container started (instance {instance}); waiting for readiness"));
    } else {
        become_available(s, want);
    }
}

fn become_available(s: &mut Step, want: &Want) {
    s.set_status(PodStatus::Available);
    s.obs.start_instance_ts = Some(s.now);
    s.obs.status_container.message = if want.batch.is_some() { "running".into() } else { "ready".into() };
    let ttl = match want.ttl_instance_s {
        Some(v) if v != -1 => Some(v),
        _ if want.ttl_default_s != -1 => Some(want.ttl_default_s),
        _ => None,
    };
    s.obs.time_to_stop_ts = ttl.map(|t| s.now.saturating_add(t.saturating_mul(1000)));
    match want.batch {
        Some(b) => s.log(format!("pod is AVAILABLE: batch run started{}", b.limit_text())),
        None => s.log("pod is AVAILABLE: container running and ready"),
    }
}

fn on_exited(s: &mut Step, cfg: &Settings, container_id: String, exit_code: Option<i64>, reason: &str) {
    if s.obs.container_id.as_deref() != Some(&container_id) {
        return;
    }
    let active = matches!(s.obs.status, PodStatus::Creating | PodStatus::Available | PodStatus::SpawnerSetup);
    if !active {
        return;
    }
    s.obs.status_container.exit_code = exit_code;
    s.obs.status_container.phase = "Exited".into();
    let code = exit_code.map_or_else(|| "unknown".to_string(), |c| c.to_string());
    if exit_code == Some(0) {
        s.set_status(PodStatus::Complete);
        s.obs.status_container.message = format!("container exited with code 0 ({reason})");
        s.log(format!("container exited with code 0 ({reason}); pod COMPLETE"));
        s.actions.push(Action::Remove { container_id });
        return;
    }
    fail(s, cfg, &format!("container exited with code {code} ({reason})"));
}

/// Counts a failed attempt: back off and retry, or settle in ERROR.
fn fail(s: &mut Step, cfg: &Settings, reason: &str) {
    s.obs.attempts = s.obs.attempts.saturating_add(1);
    s.obs.status_container.message = reason.to_string();
    if let Some(id) = s.obs.container_id.clone() {
        s.actions.push(Action::Remove { container_id: id });
    }
    if s.obs.attempts >= cfg.max_attempts {
        s.set_status(PodStatus::Error);
        s.obs.retry_at = None;
        s.log(format!("{reason}; giving up after {} attempts", s.obs.attempts));
    } else {
        let delay = delay_ms(s.obs.attempts, cfg.backoff_base_ms, cfg.backoff_max_ms);
        let at = s.now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
        s.obs.retry_at = Some(at);
        s.obs.status_container.restart_count = s.obs.status_container.restart_count.saturating_add(1);
        s.set_status(PodStatus::Requested);
        s.log(format!(
            "{reason}; retrying in {:.1}s (attempt {} of {})",
            delay as f64 / 1000.0,
            s.obs.attempts + 1,
            cfg.max_attempts
        ));
        s.actions.push(Action::Wake { at });
    }
}

fn spawn(s: &mut Step) {
    s.obs.instance = s.obs.instance.saturating_add(1);
    s.obs.retry_at = None;
    s.obs.start_instance_ts = None;
    s.obs.time_to_stop_ts = None;
    s.obs.status_container.exit_code = None;
    s.obs.termination = None;
    s.obs.status_container.phase = "Pending".into();
    s.obs.status_container.message = "creating the container".into();
    s.set_status(PodStatus::SpawnerSetup);
    s.actions.push(Action::Spawn { instance: s.obs.instance });
}

fn teardown(s: &mut Step, why: &str) {
    if let Some(id) = s.obs.container_id.clone() {
        if s.obs.status != PodStatus::Deleting {
            s.log(format!("stopping: {why}"));
        }
        s.set_status(PodStatus::Deleting);
        s.actions.push(Action::Remove { container_id: id });
    }
}

fn settle_stopped(s: &mut Step, want: &Want, why: &str) {
    if s.obs.status != PodStatus::Stopped {
        s.log(format!("pod STOPPED: {why}"));
    }
    s.set_status(PodStatus::Stopped);
    s.obs.observed_generation = want.generation;
    s.obs.start_instance_ts = None;
    s.obs.time_to_stop_ts = None;
    s.obs.retry_at = None;
    s.obs.status_container.phase = "Stopped".into();
}

fn converge(s: &mut Step, want: &Want, cfg: &Settings) {
    if want.deleted {
        if s.obs.container_id.is_some() {
            teardown(s, "pod deleted");
        } else {
            s.actions.push(Action::Purge);
        }
        return;
    }
    if !want.on {
        if s.obs.container_id.is_some() {
            teardown(s, "stop requested");
        } else if s.obs.status != PodStatus::Stopped || s.obs.observed_generation < want.generation {
            let why = if s.obs.status == PodStatus::Stopped { "already stopped" } else { "stop requested" };
            settle_stopped(s, want, why);
        }
        return;
    }
    if s.obs.observed_generation < want.generation {
        if s.obs.container_id.is_some() {
            teardown(s, "restart requested");
        } else {
            s.obs.observed_generation = want.generation;
            s.obs.attempts = 0;
            s.obs.status_container.restart_count = 0;
            s.log(format!("spawn requested (generation {})", want.generation));
            spawn(s);
        }
        return;
    }
    // A container left over from a failed attempt whose removal did not go through yet:
    // remove it before anything else, so two containers never run for one pod.
    let settled_or_waiting =
        matches!(s.obs.status, PodStatus::Stopped | PodStatus::Error | PodStatus::Complete | PodStatus::Requested);
    if settled_or_waiting && let Some(id) = s.obs.container_id.clone() {
        if batch::keeps_finished_container(s, want) {
            return;
        }
        if !s.actions.iter().any(|a| matches!(a, Action::Remove { .. })) {
            s.actions.push(Action::Remove { container_id: id });
        }
        return;
    }
    match s.obs.status {
        PodStatus::Stopped | PodStatus::Error | PodStatus::Complete => {}
        PodStatus::Requested => match s.obs.retry_at {
            // `fail` has already armed this timer when the failure happened in this step.
            Some(at) if at > s.now => {
                if !s.actions.contains(&Action::Wake { at }) {
                    s.actions.push(Action::Wake { at });
                }
            }
            _ => spawn(s),
        },
        // An attempt persisted as in flight but without an outcome (the actor died mid-spawn):
        // spawning the same instance again is idempotent.
        PodStatus::SpawnerSetup => {
            if !s.actions.iter().any(|a| matches!(a, Action::Spawn { .. })) {
                s.actions.push(Action::Spawn { instance: s.obs.instance });
            }
        }
        PodStatus::Creating => {
            let deadline = s.obs.since.saturating_add(i64::try_from(cfg.stall_timeout_ms).unwrap_or(i64::MAX));
            if s.now >= deadline {
                let secs = cfg.stall_timeout_ms / 1000;
                fail(s, cfg, &format!("container did not become ready within {secs}s"));
            } else {
                s.actions.push(Action::Wake { at: deadline });
            }
        }
        PodStatus::Available => {
            if batch::check_deadline(s, want) {
                return;
            }
            match s.obs.time_to_stop_ts {
                Some(at) if at <= s.now => teardown(s, "time_to_stop reached"),
                Some(at) => s.actions.push(Action::Wake { at }),
                None => {}
            }
        }
        PodStatus::Deleting => {
            if let Some(id) = s.obs.container_id.clone() {
                if !s.actions.iter().any(|a| matches!(a, Action::Remove { .. })) {
                    s.actions.push(Action::Remove { container_id: id });
                }
            } else {
                settle_stopped(s, want, "time_to_stop reached");
            }
        }
    }
}

#[cfg(test)]
mod tests;
