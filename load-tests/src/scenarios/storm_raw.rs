//! The Docker baseline of `spawn-storm`: the same N containers created and started in
//! parallel straight through the Docker API, each until its published port answers HTTP.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::raw_docker::RawDocker;
use crate::progress::Progress;
use crate::stats::{Latencies, Summary};

/// Containers removed at once afterwards.
const REMOVE_CONCURRENCY: usize = 16;

/// What one raw storm measured.
#[derive(Debug, Clone)]
pub struct RawStorm {
    pub containers: usize,
    /// First create sent → each container answered.
    pub ready: Summary,
    /// First create sent → the last container answered.
    pub all_ready: Duration,
    pub failures: Vec<String>,
    /// Removal of all of them (forced).
    pub teardown: Duration,
}

/// Starts `n` containers at once (numbered from `first`), waits for all, removes them.
pub async fn storm(raw: &RawDocker, first: usize, n: usize, progress: Progress) -> RawStorm {
    let bar = progress.bar(n as u64, &format!("docker {n}"));
    let t0 = Instant::now();
    let bar_ref = &bar;
    let all = futures::future::join_all((0..n).map(|i| async move {
        let (id, t, _) = raw.create(first + i).await.map_err(|e| (None, format!("{e:#}")))?;
        match raw.start_and_wait(&id, t).await {
            Ok(_) => {
                bar_ref.inc(1);
                Ok((id, t0.elapsed()))
            }
            Err(e) => Err((Some(id), format!("{e:#}"))),
        }
    }))
    .await;
    let waited = t0.elapsed();
    bar.finish_and_clear();
    let mut ready = Latencies::new();
    let mut failures = Vec::new();
    let mut ids = Vec::new();
    let mut last = Duration::ZERO;
    for r in all {
        match r {
            Ok((id, d)) => {
                ready.record(d);
                last = last.max(d);
                ids.push(id);
            }
            Err((id, e)) => {
                failures.push(e);
                ids.extend(id);
            }
        }
    }
    // The last answer; with failures, the whole wait (the figure is then not comparable).
    let all_ready = if failures.is_empty() { last } else { waited };
    let t_rm = Instant::now();
    let removal: Vec<String> = futures::stream::iter(ids)
        .map(|id| async move { raw.remove(&id).await.err().map(|e| format!("{e:#}")) })
        .buffer_unordered(REMOVE_CONCURRENCY)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    failures.extend(removal);
    RawStorm { containers: n, ready: ready.summary(), all_ready, failures, teardown: t_rm.elapsed() }
}
