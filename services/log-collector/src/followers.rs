//! Follower tasks: one per container, copying its output stream into the store in batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use corral_model::PodKey;
use corral_runtime::Runtime;
use corral_store::{OUTPUT_CAP_BYTES, Store, StoreError};
use futures::StreamExt as _;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::backoff::{reconnect_delay, sleep_unless_cancelled};
use crate::batch::Batch;

/// The running followers, keyed by container id (one follower per container).
pub(crate) struct Followers {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    cancel: CancellationToken,
    active: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl Followers {
    pub(crate) fn new(store: Arc<dyn Store>, runtime: Arc<dyn Runtime>, cancel: CancellationToken) -> Self {
        Self { store, runtime, cancel, active: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        // Only single inserts and removes happen under the lock: a poisoned map is intact.
        self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts following container `id` (instance `instance` of `pod`) unless a follower for
    /// it is running already or the collector is stopping. `resume`: first read how much of
    /// this instance's output the store holds and skip that much (false for a container
    /// that cannot have stored output yet).
    pub(crate) fn follow(&self, id: &str, pod: PodKey, instance: u64, resume: bool) {
        if self.cancel.is_cancelled() {
            return;
        }
        let mut active = self.lock();
        active.retain(|_, task| !task.is_finished());
        if active.contains_key(id) {
            return;
        }
        let span = tracing::info_span!("follow", %pod, container_id = id, instance);
        let job = Job {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            cancel: self.cancel.clone(),
            id: id.to_string(),
            pod,
            instance,
            resume,
        };
        let task = corral_telemetry::spawn_named("log-follower", follow_output(job).instrument(span));
        active.insert(id.to_string(), task);
    }

    /// Waits for every follower to flush and end (after cancellation).
    pub(crate) async fn join_all(&self) {
        let tasks: Vec<JoinHandle<()>> = self.lock().drain().map(|(_, t)| t).collect();
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "log follower ended abnormally");
            }
        }
    }
}

struct Job {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    cancel: CancellationToken,
    id: String,
    pod: PodKey,
    instance: u64,
    resume: bool,
}

/// Copies the container's output into the store until the stream ends or the collector
/// stops; pending bytes are written before returning.
async fn follow_output(job: Job) {
    let skip = if job.resume {
        let Some(skip) = already_stored(&job).await else { return };
        skip
    } else {
        0
    };
    let mut stream = match job.runtime.output(&job.id, true).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow container output");
            return;
        }
    };
    tracing::debug!(skip, "following container output");
    let mut batch = Batch::new(skip, OUTPUT_CAP_BYTES);
    loop {
        let deadline = batch.deadline();
        tokio::select! {
            () = job.cancel.cancelled() => break,
            chunk = stream.next() => match chunk {
                Some(chunk) => {
                    if batch.push(&chunk.bytes, Instant::now()) && write(&job, &mut batch).await == Written::PodGone {
                        return;
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if write(&job, &mut batch).await == Written::PodGone {
                    return;
                }
            }
        }
    }
    if write(&job, &mut batch).await == Written::Kept {
        tracing::warn!(bytes = batch.pending().len(), "output not stored before stopping");
    }
    tracing::debug!("stopped following container output");
}

/// How many bytes of this instance's output the store holds already (a previous collector
/// wrote them); None if the store holds a newer instance, whose output replaces ours.
///
/// The store keeps only the newest [`OUTPUT_CAP_BYTES`]: past that, the count is a lower
/// bound and some output may be written twice after a restart.
async fn already_stored(job: &Job) -> Option<usize> {
    let mut failures = 0u32;
    loop {
        match job.store.output(&job.pod).await {
            Ok((stored, _)) if stored > job.instance => {
                tracing::debug!(stored, "store holds a newer instance; not following");
                return None;
            }
            Ok((stored, bytes)) => return Some(if stored == job.instance { bytes.len() } else { 0 }),
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "cannot read stored output; retrying");
                if !sleep_unless_cancelled(reconnect_delay(failures), &job.cancel).await {
                    return None;
                }
            }
        }
    }
}

/// Outcome of writing a batch.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    /// Stored, or nothing was pending.
    Done,
    /// The store failed; the bytes are kept for the next attempt.
    Kept,
    /// The pod has no record (deleted, or an orphan container): nowhere to keep its output.
    PodGone,
}

async fn write(job: &Job, batch: &mut Batch) -> Written {
    if batch.pending().is_empty() {
        return Written::Done;
    }
    match job.store.append_output(&job.pod, job.instance, batch.pending()).await {
        Ok(()) => {
            batch.written();
            Written::Done
        }
        Err(StoreError::NotFound(_)) => {
            tracing::debug!("pod has no record; not following its output");
            Written::PodGone
        }
        Err(e) => {
            tracing::warn!(error = %e, bytes = batch.pending().len(), "cannot store output; will retry");
            batch.retry_later(Instant::now());
            Written::Kept
        }
    }
}
