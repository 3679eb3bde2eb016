//! One storm through Corral: N pods requested at once (`POST /v3/pods`, all in flight
//! together), timed until every one is AVAILABLE as announced on `corral.events` (a
//! subscription made before the first POST, the push counterpart of JupyterHub's progress
//! streams), then cross-checked with `GET /v3/pods`, and torn down.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_bus::amqp::AmqpBus;
use corral_model::PodKey;
use corral_store::Store as _;
use futures::StreamExt as _;
use serde_json::Value;

use super::corral_pod::{Milestones, now_ms};
use super::pipeline_load::{Tracker, subscribe, track};
use crate::progress::Progress;
use crate::stack::Target;
use crate::stats::{Latencies, Summary};

/// Deletes in flight at once during teardown.
const DELETE_CONCURRENCY: usize = 32;
const WAIT_TICK: Duration = Duration::from_millis(2);

/// What one Corral storm measured.
#[derive(Debug, Clone)]
pub struct CorralStorm {
    pub pods: usize,
    /// POST sent → answered, per pod (all sent together).
    pub post: Summary,
    /// First POST sent → the pod's AVAILABLE event arrived.
    pub available: Summary,
    /// First POST sent → the last pod's AVAILABLE event arrived.
    pub all_available: Duration,
    pub post_failures: Vec<String>,
    /// Pods that went to ERROR.
    pub errors: usize,
    /// Pods `GET /v3/pods` showed AVAILABLE afterwards.
    pub verified: usize,
    pub timed_out: bool,
    /// DELETE of every pod → records and containers gone.
    pub teardown: Duration,
    /// Where the time went, from the pods' action logs (ms): (what, distribution).
    pub phases: Vec<(&'static str, Summary)>,
    /// Pods whose container was started more than once (a restart inside the storm).
    pub restarted: usize,
    /// Why the first few of them were restarted.
    pub restart_reasons: Vec<Restart>,
}

/// A pod restarted during a storm, and why.
#[derive(Debug, Clone)]
pub struct Restart {
    pub pod: String,
    /// The spawner's reason for giving up the first attempt.
    pub why: String,
    /// The end of the pod's output the store kept, with its instance.
    pub output: String,
}

/// Restarted pods whose reasons a storm report lists.
const REASONS_SHOWN: usize = 5;
/// Output kept per listed pod: the end of it, where a server says why it stopped.
const OUTPUT_TAIL_BYTES: usize = 300;

/// What every storm of a run shares.
pub struct StormSetup<'a> {
    pub target: &'a Target,
    pub tenant: &'a str,
    pub amqp_url: &'a str,
    /// The pod (without `pod_id`).
    pub body: Value,
    pub timeout: Duration,
}

/// Requests `pods` pods at once (ids `prefix` + number), waits for all of them, then deletes
/// them.
pub async fn storm(
    setup: &StormSetup<'_>,
    prefix: &str,
    pods: usize,
    progress: Progress,
) -> anyhow::Result<CorralStorm> {
    let StormSetup { target, tenant, amqp_url, body, timeout } = setup;
    let (target, timeout) = (*target, *timeout);
    let stack = target.local_stack("spawn-storm")?;
    let bus = AmqpBus::connect(amqp_url, &stack.ns).await.context("connecting to rabbitmq for events")?;
    let consumer = subscribe(&bus, tenant).await.context("subscribing to pod events")?;
    let tracker = Arc::new(Tracker::default());
    let tracking = track(consumer.stream, tracker.clone(), prefix.to_string());
    let ids: Vec<String> = (0..pods).map(|i| format!("{prefix}{i:04}")).collect();
    let bar = progress.bar(pods as u64, &format!("storm {pods}"));

    let (t0, t0_wall) = (Instant::now(), now_ms());
    let posting = futures::future::join_all(ids.iter().map(|id| {
        let mut b = body.clone();
        b["pod_id"] = Value::String(id.clone());
        async move {
            let sent = Instant::now();
            target.create_pod(&b).await.map(|()| sent.elapsed()).map_err(|e| format!("{id}: {e:#}"))
        }
    }));
    let (answers, timed_out) = tokio::join!(posting, wait_settled(&tracker, pods, t0 + timeout, &bar));
    let mut post = Latencies::new();
    let mut post_failures = Vec::new();
    for a in answers {
        match a {
            Ok(d) => post.record(d),
            Err(e) => post_failures.push(e),
        }
    }
    bar.finish_and_clear();
    (consumer.cancel)();
    tracking.abort();
    let arrivals = tracker.arrivals();
    let mut available = Latencies::new();
    arrivals.values().for_each(|at| available.record(at.saturating_duration_since(t0)));
    let all_available = arrivals.values().max().map_or(t0.elapsed(), |at| at.saturating_duration_since(t0));
    let statuses = target.pod_statuses().await?;
    let verified = ids.iter().filter(|id| statuses.get(*id).is_some_and(|s| s == "AVAILABLE")).count();
    let (phases, restarted, restart_reasons) = phases(target, tenant, &ids, t0_wall).await?;
    let teardown = teardown(target, &ids, prefix, timeout).await?;
    Ok(CorralStorm {
        pods,
        post: post.summary(),
        available: available.summary(),
        all_available,
        post_failures,
        errors: tracker.errors.load(Ordering::Relaxed),
        verified,
        timed_out,
        teardown,
        phases,
        restarted,
        restart_reasons,
    })
}

/// Distributions of the pods' milestones: each step's duration, and when the spawner
/// started each attempt and the runtime reported each start, counted from the first POST;
/// and how many pods were started more than once, with why (for the first few).
async fn phases(
    target: &Target,
    tenant: &str,
    ids: &[String],
    t0_wall: i64,
) -> anyhow::Result<(Vec<(&'static str, Summary)>, usize, Vec<Restart>)> {
    let stack = target.local_stack("spawn-storm")?;
    let logs: Vec<Milestones> = futures::stream::iter(ids)
        .map(|id| async move { stack.store.action_log(&PodKey::new(tenant, id)).await.map(|l| Milestones::of(&l)) })
        .buffer_unordered(DELETE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .context("reading action logs")?;
    let dist = |f: &dyn Fn(&Milestones) -> Option<i64>| {
        let mut l = Latencies::new();
        logs.iter().filter_map(f).for_each(|ms| l.record_ms(ms));
        l.summary()
    };
    let diff = |a: Option<i64>, b: Option<i64>| Some(b? - a?);
    let restarted = logs.iter().filter(|m| m.starts > 1).count();
    let mut reasons = Vec::new();
    for (id, m) in ids.iter().zip(&logs).filter(|(_, m)| m.starts > 1).take(REASONS_SHOWN) {
        let why = m.retried_because.clone().unwrap_or_else(|| "no reason in the action log".into());
        let output = match stack.store.output(&PodKey::new(tenant, id)).await {
            Ok((instance, bytes)) => format!("instance {instance}: {}", tail(&bytes)),
            Err(e) => format!("output not readable: {e}"),
        };
        reasons.push(Restart { pod: id.clone(), why, output });
    }
    let phases = vec![
        ("stored → spawn requested (kick → actor)", dist(&|m| diff(m.created, m.spawn))),
        ("spawn requested → started (runtime)", dist(&|m| diff(m.spawn, m.started))),
        ("started → AVAILABLE (probe → actor)", dist(&|m| diff(m.started, m.available))),
        ("spawn requested, since first POST", dist(&|m| diff(Some(t0_wall), m.spawn))),
        ("started, since first POST", dist(&|m| diff(Some(t0_wall), m.started))),
    ];
    Ok((phases, restarted, reasons))
}

/// The last [`OUTPUT_TAIL_BYTES`] of a pod's output, as one line of text.
fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..]);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() { "(none)".into() } else { line }
}

/// Waits until `pods` pods settled (AVAILABLE or ERROR) or the deadline; true if it passed.
async fn wait_settled(tracker: &Tracker, pods: usize, deadline: Instant, bar: &indicatif::ProgressBar) -> bool {
    loop {
        let settled = tracker.available.load(Ordering::Relaxed) + tracker.errors.load(Ordering::Relaxed);
        bar.set_position(settled as u64);
        if settled >= pods {
            return false;
        }
        if Instant::now() >= deadline {
            return true;
        }
        tokio::time::sleep(WAIT_TICK).await;
    }
}

/// Deletes the pods and waits until their records and containers are gone.
async fn teardown(target: &Target, ids: &[String], prefix: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let failed: Vec<String> = futures::stream::iter(ids)
        .map(|id| async move { target.delete_pod(id).await.err().map(|e| format!("{e:#}")) })
        .buffer_unordered(DELETE_CONCURRENCY)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    anyhow::ensure!(failed.is_empty(), "{} pods could not be deleted: {}", failed.len(), failed[0]);
    let stack = target.local_stack("spawn-storm")?;
    loop {
        let records = target.pod_statuses().await?.keys().filter(|k| k.starts_with(prefix)).count();
        let containers = stack
            .runtime
            .list()
            .await
            .context("listing containers")?
            .iter()
            .filter(|c| c.pod.pod_id.starts_with(prefix))
            .count();
        if records == 0 && containers == 0 {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(
            t0.elapsed() < timeout,
            "{records} pods and {containers} containers of the storm still there after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
