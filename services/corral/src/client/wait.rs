//! `--wait`: follows a pod's status until it reaches the goal, printing each transition as
//! it is seen (`REQUESTED → SPAWNER SETUP → CREATING → AVAILABLE (1.2s)`).

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::{Api, ClientError};

const POLL: Duration = Duration::from_millis(100);

/// What the caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Running and ready; ERROR and COMPLETE are failures.
    Available,
    /// No container any more: STOPPED, COMPLETE or ERROR.
    Settled,
    /// A batch run's end: COMPLETE or ERROR (or STOPPED, when someone stopped it). Whether
    /// it succeeded is for the caller to judge from the exit code.
    Finished,
}

impl Goal {
    fn name(self) -> &'static str {
        match self {
            Goal::Available => "AVAILABLE",
            Goal::Settled => "STOPPED",
            Goal::Finished => "COMPLETE or ERROR",
        }
    }
}

/// What one observed status means for the wait.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Done,
    Failed,
    Pending,
}

fn judge(goal: Goal, status: &str) -> Verdict {
    match (goal, status) {
        (Goal::Available, "AVAILABLE") | (Goal::Settled | Goal::Finished, "STOPPED" | "COMPLETE" | "ERROR") => {
            Verdict::Done
        }
        (Goal::Available, "ERROR" | "COMPLETE") => Verdict::Failed,
        _ => Verdict::Pending,
    }
}

/// One observation of the pod, as far as progress is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    status: String,
    /// Failed attempts so far (`status_container.restart_count`).
    restarts: u64,
}

/// The progress line as statuses are seen: `pod: A → B → C`.
struct Progress<'a> {
    out: &'a mut dyn Write,
    last: Option<Seen>,
}

impl Progress<'_> {
    fn see(&mut self, pod_id: &str, seen: Seen, message: &str) {
        if self.last.as_ref() == Some(&seen) {
            return;
        }
        // A higher restart count means an attempt failed and another is coming, even when
        // the statuses in between were too quick to be seen.
        let retried = self.last.as_ref().is_some_and(|l| seen.restarts > l.restarts);
        // Progress is best effort: a closed terminal must not fail the wait.
        let _ = match &self.last {
            None => write!(self.out, "{pod_id}: {}", seen.status),
            Some(_) if retried && !message.is_empty() => write!(self.out, " → {} (retry: {message})", seen.status),
            Some(_) => write!(self.out, " → {}", seen.status),
        };
        let _ = self.out.flush();
        self.last = Some(seen);
    }

    fn end(&mut self, suffix: &str) {
        let _ = writeln!(self.out, "{suffix}");
        let _ = self.out.flush();
    }
}

/// Polls the pod until `goal` (returning the pod), a failure, or `timeout` after `started`.
pub async fn wait(
    api: &Api,
    pod_id: &str,
    goal: Goal,
    timeout: Duration,
    started: Instant,
    out: &mut dyn Write,
) -> Result<Value, ClientError> {
    let mut progress = Progress { out, last: None };
    loop {
        let pod = match api.get(pod_id).await {
            Ok(reply) => reply.result,
            Err(e) => {
                if progress.last.is_some() {
                    progress.end("");
                }
                return Err(e);
            }
        };
        let status = pod["status"].as_str().unwrap_or("UNKNOWN").to_owned();
        let message = pod["status_container"]["message"].as_str().unwrap_or_default().to_owned();
        let restarts = pod["status_container"]["restart_count"].as_u64().unwrap_or(0);
        progress.see(pod_id, Seen { status: status.clone(), restarts }, &message);
        match judge(goal, &status) {
            Verdict::Done => {
                progress.end(&format!(" ({:.1}s)", started.elapsed().as_secs_f64()));
                return Ok(pod);
            }
            Verdict::Failed => {
                progress.end("");
                let message = if message.is_empty() { "no reason recorded".to_owned() } else { message };
                return Err(ClientError::PodFailed { pod: pod_id.to_owned(), status, message });
            }
            Verdict::Pending => {}
        }
        if started.elapsed() >= timeout {
            progress.end("");
            return Err(ClientError::Timeout {
                pod: pod_id.to_owned(),
                goal: goal.name().to_owned(),
                seconds: timeout.as_secs(),
                status,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_per_goal() {
        assert_eq!(judge(Goal::Available, "AVAILABLE"), Verdict::Done);
        assert_eq!(judge(Goal::Available, "CREATING"), Verdict::Pending);
        assert_eq!(judge(Goal::Available, "STOPPED"), Verdict::Pending);
        assert_eq!(judge(Goal::Available, "ERROR"), Verdict::Failed);
        assert_eq!(judge(Goal::Available, "COMPLETE"), Verdict::Failed);
        assert_eq!(judge(Goal::Settled, "AVAILABLE"), Verdict::Pending);
        assert_eq!(judge(Goal::Settled, "STOPPED"), Verdict::Done);
        assert_eq!(judge(Goal::Settled, "ERROR"), Verdict::Done);
        // A batch run passes AVAILABLE (when it serves its port) and retries on its way.
        for pending in ["REQUESTED", "SPAWNER SETUP", "CREATING", "AVAILABLE"] {
            assert_eq!(judge(Goal::Finished, pending), Verdict::Pending, "{pending}");
        }
        for done in ["COMPLETE", "ERROR", "STOPPED"] {
            assert_eq!(judge(Goal::Finished, done), Verdict::Done, "{done}");
        }
    }

    #[test]
    fn progress_prints_each_transition_once() {
        let mut buf = Vec::new();
        let mut p = Progress { out: &mut buf, last: None };
        let seen = [
            ("REQUESTED", 0, ""),
            ("REQUESTED", 0, ""),
            ("SPAWNER SETUP", 0, ""),
            ("CREATING", 0, ""),
            ("REQUESTED", 1, "exit 1"),
            ("REQUESTED", 2, "exit 2"),
            ("AVAILABLE", 2, "ready"),
        ];
        for (status, restarts, message) in seen {
            p.see("web", Seen { status: status.into(), restarts }, message);
        }
        p.end(" (1.0s)");
        let text = String::from_utf8(buf).expect("utf8");
        assert_eq!(
            text,
            "web: REQUESTED → SPAWNER SETUP → CREATING → REQUESTED (retry: exit 1) → REQUESTED (retry: exit 2) → AVAILABLE (1.0s)\n"
        );
    }
}
