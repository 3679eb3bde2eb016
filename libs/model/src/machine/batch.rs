//! Batch runs: a batch pod runs its command once per generation.
//!
//! - It is `AVAILABLE` ("running") as soon as its container is spawned: readiness probes are
//!   not waited for, since a batch command need not listen on anything.
//! - Any exit ends the run and is never retried: exit code 0 is `COMPLETE` / `succeeded`, any
//!   other code `COMPLETE` / `failed` (a failing bootstrap script included), with the code in
//!   `status_container.exit_code`. The exited container is removed [`KEEP_EXITED_MS`] later,
//!   so the log-collector can still read the output of a run that ended at once. A container that vanished without an exit code is `ERROR` /
//!   `infrastructure`: the run's outcome is unknown, and rerunning it unasked could repeat side
//!   effects.
//! - `batch_timeout` counts from the spawn: past it the container is removed and the run ends
//!   `COMPLETE` / `timeout`.
//! - Spawn failures back off and retry like any pod's (the command has not run yet); once the
//!   attempts are used up the pod is `ERROR` / `infrastructure`.
//! - `time_to_stop_*` still applies and stops the pod (`STOPPED`, no termination), as does a
//!   user's stop. A start or restart bumps the generation and runs it again; the previous
//!   termination is cleared when the new instance is spawned.

use super::{Action, Step, Want};
use crate::record::{PodStatus, Termination, TerminationReason};
use crate::{Millis, PodSpec};

/// How long an exited batch container is kept before removal: its output is read from the
/// runtime by the log-collector, and a run that ends within milliseconds of its start would
/// otherwise be removed before the collector attached.
pub const KEEP_EXITED_MS: Millis = 3_000;

/// What the machine needs of a batch pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Batch {
    /// Seconds a run may take; `None`: no limit.
    pub timeout_s: Option<u32>,
}

impl Batch {
    /// `Some` for a pod whose session is a batch run.
    pub fn of(spec: &PodSpec) -> Option<Self> {
        spec.session.as_ref().filter(|s| s.is_batch()).map(|s| Self { timeout_s: s.batch_timeout })
    }

    /// `" (timeout 5 s)"` or nothing, for the action log.
    pub(super) fn limit_text(self) -> String {
        self.timeout_s.map(|t| format!(" (timeout {t} s)")).unwrap_or_default()
    }
}

fn end(s: &mut Step, status: PodStatus, reason: TerminationReason, message: String) {
    s.obs.status_container.message.clone_from(&message);
    s.obs.termination = Some(Termination { reason, message });
    s.obs.retry_at = None;
    s.set_status(status);
}

/// The run's container stopped: the run is over, whatever the code.
pub(super) fn on_exited(s: &mut Step, container_id: String, exit_code: Option<i64>, reason: &str) {
    if s.obs.container_id.as_deref() != Some(&container_id) {
        return;
    }
    if !matches!(s.obs.status, PodStatus::Creating | PodStatus::Available | PodStatus::SpawnerSetup) {
        return;
    }
    s.obs.status_container.exit_code = exit_code;
    s.obs.status_container.phase = "Exited".into();
    let (status, why, message) = match exit_code {
        Some(0) => (PodStatus::Complete, TerminationReason::Succeeded, "batch run succeeded (exit code 0)".to_string()),
        Some(code) => (PodStatus::Complete, TerminationReason::Failed, failed_message(code, reason)),
        None => (
            PodStatus::Error,
            TerminationReason::Infrastructure,
            format!("batch run lost: the container stopped without an exit code ({reason})"),
        ),
    };
    s.log(format!("{message}; pod {status}"));
    end(s, status, why, message);
    if status == PodStatus::Complete {
        // Removed by `keeps_finished_container` once its output has been collected.
        s.actions.push(Action::Wake { at: s.now.saturating_add(KEEP_EXITED_MS) });
    } else {
        s.actions.push(Action::Remove { container_id });
    }
}

/// For a batch pod `COMPLETE` after its container exited: keeps the container (and arms a
/// wake-up for its removal) until [`KEEP_EXITED_MS`] after the run ended. A timed-out run's
/// container is removed at once (it may still be running).
pub(super) fn keeps_finished_container(s: &mut Step, want: &Want) -> bool {
    let exited = s
        .obs
        .termination
        .as_ref()
        .is_some_and(|t| matches!(t.reason, TerminationReason::Succeeded | TerminationReason::Failed));
    if want.batch.is_none() || s.obs.status != PodStatus::Complete || !exited {
        return false;
    }
    let at = s.obs.since.saturating_add(KEEP_EXITED_MS);
    if at <= s.now {
        return false;
    }
    if !s.actions.contains(&Action::Wake { at }) {
        s.actions.push(Action::Wake { at });
    }
    true
}

/// `"batch run failed: exit code 3"`, with the runtime's reason when it says more than
/// "exited" (a signal, a failed bootstrap script).
fn failed_message(code: i64, reason: &str) -> String {
    if reason.is_empty() || reason == "exited" {
        format!("batch run failed: exit code {code}")
    } else {
        format!("batch run failed: exit code {code} ({reason})")
    }
}

/// After a spawn failure: if the attempts are used up, the run ends as an infrastructure
/// failure (the command never ran).
pub(super) fn note_gave_up(s: &mut Step) {
    if s.obs.status == PodStatus::Error {
        let message = format!("batch run could not start: {}", s.obs.status_container.message);
        end(s, PodStatus::Error, TerminationReason::Infrastructure, message);
    }
}

/// When the run must end, if it has a limit and has started.
fn deadline(s: &Step, want: &Want) -> Option<(Millis, u32)> {
    let limit = want.batch?.timeout_s?;
    let started = s.obs.status_container.start_time?;
    Some((started.saturating_add(i64::from(limit).saturating_mul(1000)), limit))
}

/// For a running batch pod: past the deadline, remove the container and end the run with
/// `timeout` (returns true); before it, arm a wake-up for it.
pub(super) fn check_deadline(s: &mut Step, want: &Want) -> bool {
    let Some((at, limit)) = deadline(s, want) else { return false };
    if at > s.now {
        s.actions.push(Action::Wake { at });
        return false;
    }
    let message = format!("batch run timed out after {limit} s");
    s.log(format!("{message}; removing the container; pod COMPLETE"));
    end(s, PodStatus::Complete, TerminationReason::Timeout, message);
    s.obs.status_container.phase = "Terminated".into();
    if let Some(id) = s.obs.container_id.clone() {
        s.actions.push(Action::Remove { container_id: id });
    }
    true
}
