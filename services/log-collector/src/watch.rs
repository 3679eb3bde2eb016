//! Finds containers to follow: the running ones at start, then every `Started` event.
//!
//! A follower normally first reads back what the store holds of its container's output, to
//! resume after it instead of writing it twice. That read is skipped for a container whose
//! *first* start this collector saw: nothing of it can be stored yet. So the watcher keeps
//! the ids of containers it knows to have existed before (listed when it subscribed, or
//! started since), forgetting them when they are removed; a `Started` event for any of
//! those (a restart) still resumes.

use std::collections::HashSet;
use std::sync::Arc;

use corral_runtime::{ContainerState, Runtime, RuntimeError, RuntimeEvent};
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use crate::backoff::{reconnect_delay, sleep_unless_cancelled};
use crate::followers::Followers;

/// Follows runtime events until cancelled; re-subscribes with backoff when the stream ends.
pub(crate) async fn watch(runtime: Arc<dyn Runtime>, followers: Arc<Followers>, cancel: CancellationToken) {
    let mut failures = 0u32;
    loop {
        match runtime.events().await {
            Ok(mut stream) => {
                // Subscribed before listing: a container starting in between is found by
                // one or the other (followers are deduplicated).
                match follow_running(runtime.as_ref(), &followers).await {
                    Ok(mut known) => {
                        tracing::info!("following runtime events");
                        let mut received = false;
                        loop {
                            let event = tokio::select! {
                                () = cancel.cancelled() => return,
                                e = stream.next() => match e {
                                    Some(e) => e,
                                    None => break,
                                },
                            };
                            received = true;
                            match event {
                                RuntimeEvent::Started { id, .. } => {
                                    let first_start = known.insert(id.clone());
                                    follow_started(runtime.as_ref(), &followers, &id, !first_start).await;
                                }
                                RuntimeEvent::Removed { id, .. } => {
                                    known.remove(&id);
                                }
                                RuntimeEvent::Exited { .. } => {}
                            }
                        }
                        if received {
                            failures = 0;
                        }
                        tracing::warn!("runtime event stream ended");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list containers"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot follow runtime events"),
        }
        failures = failures.saturating_add(1);
        if !sleep_unless_cancelled(reconnect_delay(failures), &cancel).await {
            return;
        }
    }
}

/// Follows every running container (resuming after what the store holds); returns the ids
/// of all containers listed, running or not.
async fn follow_running(runtime: &dyn Runtime, followers: &Followers) -> Result<HashSet<String>, RuntimeError> {
    let mut known = HashSet::new();
    for c in runtime.list().await? {
        if c.state == ContainerState::Running {
            followers.follow(&c.id, c.pod.clone(), c.instance, true);
        }
        known.insert(c.id);
    }
    Ok(known)
}

/// The event lacks the instance number the store needs: ask the runtime. `resume`: the
/// container may have run before, so part of its output may be stored already.
async fn follow_started(runtime: &dyn Runtime, followers: &Followers, id: &str, resume: bool) {
    match runtime.inspect(id).await {
        Ok(Some(c)) => followers.follow(&c.id, c.pod, c.instance, resume),
        Ok(None) => tracing::debug!(container_id = id, "started container is already gone"),
        Err(e) => tracing::warn!(container_id = id, error = %e, "cannot inspect started container"),
    }
}
