//! What a container's exit means, before the state machine sees it.
//!
//! - A batch run's outcome is final (it is never rerun), so an exit reported without a code
//!   is checked against the runtime first: the process runtime briefly shows a dead process
//!   without its code until its reaper records it, and a resync can observe that moment. The
//!   code is waited for (bounded); a container that is in fact still running makes the
//!   report stale (the event becomes a plain reconcile); one that is gone stays "no code"
//!   (an infrastructure failure).
//! - A non-zero exit of a pod with a bootstrap script is told apart from the command's own
//!   failure by the wrapper's last output line (see [`crate::bootstrap`]).
//!
//! Interactive pods' exits without a code pass unchanged: they are retried anyway.

use std::time::{Duration, Instant};

use corral_model::machine::Event;
use corral_model::{Desired, Observed};
use corral_runtime::{ContainerState, Runtime};
use futures::StreamExt as _;

use crate::bootstrap::{FAILED_REASON, is_failure_tail};

/// How much of the end of a failed container's output is searched for the failure line.
const TAIL_BYTES: usize = 64 * 1024;
/// Reading the output never holds the pod's actor longer than this.
const READ_LIMIT: Duration = Duration::from_secs(3);
/// How long a batch container's missing exit code is waited for.
const CODE_WAIT: Duration = Duration::from_secs(2);
const CODE_POLL: Duration = Duration::from_millis(100);

/// The event the machine gets for `ev` (only exits of the pod's current container change).
pub async fn explain_exit(runtime: &dyn Runtime, d: &Desired, obs: &Observed, ev: Event) -> Event {
    let Event::Exited { container_id, exit_code, reason } = ev else { return ev };
    if obs.container_id.as_deref() != Some(container_id.as_str()) {
        return Event::Exited { container_id, exit_code, reason };
    }
    let session = d.spec.session.as_ref();
    let exit_code = match exit_code {
        None if session.is_some_and(|s| s.is_batch()) => match settled_code(runtime, &container_id).await {
            Settled::StillRunning => return Event::Reconcile,
            Settled::Code(code) => code,
        },
        code => code,
    };
    let has_script = session.is_some_and(|s| s.bootstrap.is_some());
    let reason = match exit_code {
        Some(code) if code != 0 && has_script && ends_with_failure(runtime, &container_id, code).await => {
            FAILED_REASON.to_string()
        }
        _ => reason,
    };
    Event::Exited { container_id, exit_code, reason }
}

enum Settled {
    StillRunning,
    Code(Option<i64>),
}

/// The container's exit code once the runtime knows it; `None` when it is gone or the code
/// does not appear within [`CODE_WAIT`].
async fn settled_code(runtime: &dyn Runtime, container_id: &str) -> Settled {
    let deadline = Instant::now() + CODE_WAIT;
    loop {
        match runtime.inspect(container_id).await {
            Ok(Some(info)) => match info.state {
                ContainerState::Exited(Some(code)) => return Settled::Code(Some(code)),
                ContainerState::Running => return Settled::StillRunning,
                ContainerState::Exited(None) | ContainerState::Created => {}
            },
            Ok(None) => return Settled::Code(None),
            Err(e) => tracing::warn!(container = container_id, error = %e, "cannot inspect an exited container"),
        }
        if Instant::now() >= deadline {
            return Settled::Code(None);
        }
        tokio::time::sleep(CODE_POLL).await;
    }
}

async fn ends_with_failure(runtime: &dyn Runtime, container_id: &str, code: i64) -> bool {
    let read = async {
        let mut stream = runtime.output(container_id, false).await.ok()?;
        let mut tail: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            tail.extend_from_slice(&chunk.bytes);
            if tail.len() > 2 * TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
        }
        Some(tail)
    };
    match tokio::time::timeout(READ_LIMIT, read).await {
        Ok(Some(tail)) => is_failure_tail(&tail, code),
        Ok(None) => false,
        Err(_) => {
            tracing::warn!(container = container_id, "reading the container's output timed out");
            false
        }
    }
}

#[cfg(test)]
mod tests;
