//! `pipeline`: many pods through gateway → RabbitMQ → spawner → store on the simulated
//! runtime (no containers), measuring pods per second end to end; and, in the same run,
//! the raw throughput of the same broker for messages of a kick's size.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_bus::amqp::AmqpBus;
use corral_protocol::ShardMessage;
use serde_json::json;

use super::pipeline_load::{PostPlan, Posted, Tracker, merge, post_all, subscribe, track};
use super::pipeline_report::{Figures, summarise};
use super::raw_amqp::{self, RawAmqpOptions};
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target};
use crate::stats::Latencies;
use crate::usage::Snapshot;

/// How often the run checks for completion (and samples the timeline).
const TICK: Duration = Duration::from_millis(100);

/// Options of `pipeline`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pods to create.
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// POSTs in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// In-process spawners (they share the shards).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub spawners: u16,
    /// Shards of the in-process stack.
    #[arg(long, default_value_t = 16)]
    pub shards: u32,
    /// Run without the health-poller and log-collector (to see what they cost).
    #[arg(long)]
    pub no_auxiliaries: bool,
    /// Kicks the gateway may gather into one shard message (`amqp.max_kicks_per_message`;
    /// 1 sends each alone, to see what gathering them is worth). Corral's default if not given.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_kicks_per_message: Option<u16>,
    /// Pod events a spawner may gather into one message (`amqp.max_events_per_message`; 1
    /// sends each alone). Corral's default if not given.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_events_per_message: Option<u16>,
    /// Least milliseconds between two kick messages to one shard (`amqp.kick_interval_ms`;
    /// 0 sends the next as soon as the previous is confirmed, to see what spacing them is
    /// worth). Corral's default if not given.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub kick_interval_ms: Option<u64>,
    /// Give up waiting for the pods after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
    /// Messages of the raw RabbitMQ baseline (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub baseline_messages: usize,
    /// Baseline publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 256)]
    pub baseline_in_flight: usize,
    /// Baseline consumer prefetch.
    #[arg(long, default_value_t = 256)]
    pub baseline_prefetch: u16,
    /// Queues the baseline spreads its messages over, each with its own consumer (1: the
    /// baseline the target is measured against; 16 shows what the shard queues' number costs
    /// the broker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub baseline_queues: u32,
    /// With `--url`: the AMQP namespace of that deployment (`amqp.namespace`, often empty),
    /// whose `corral.events` exchange tells when pods are AVAILABLE.
    #[arg(long)]
    pub events_namespace: Option<String>,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions {
            runtime: RuntimeChoice::Simulated,
            spawners: usize::from(self.spawners),
            shards: self.shards,
            probe_interval_ms: 50,
            auxiliaries: !self.no_auxiliaries,
            pool_manager: false,
            admin: None,
            amqp_url: common.amqp_url.clone(),
            redis_url: common.redis_url.clone(),
            max_kicks_per_message: self.max_kicks_per_message,
            max_events_per_message: self.max_events_per_message,
            kick_interval_ms: self.kick_interval_ms,
        }
    }
}

/// Runs the baseline, the pipeline against `target`, then the baseline again.
pub async fn run(target: Arc<Target>, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    let prefix = format!("p{}", run_tag());
    let plan = Arc::new(PostPlan {
        target: target.clone(),
        body: json!({
            "image": "corral-test/busybox",
            "networking": {"default": {"protocol": "local_only", "port": 5000}},
        }),
        prefix: prefix.clone(),
        pods: args.pods,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let baseline_options = (args.baseline_messages > 0)
        .then(|| -> anyhow::Result<RawAmqpOptions> {
            let kick = ShardMessage::Kick { tenant: common.tenant.clone(), pod_id: plan.pod_id(0), generation: 1 };
            Ok(RawAmqpOptions {
                amqp_url: common.amqp_url.clone(),
                messages: args.baseline_messages,
                in_flight: args.baseline_in_flight,
                prefetch: args.baseline_prefetch,
                body: corral_protocol::encode(&kick).context("encoding a kick")?,
                timeout: Duration::from_secs(args.timeout_s),
                queues: args.baseline_queues,
            })
        })
        .transpose()?;
    let baseline = match &baseline_options {
        Some(o) => {
            eprintln!("pipeline: raw RabbitMQ baseline, {} messages", o.messages);
            let before = Snapshot::take(&common.redis_url).await;
            let result = raw_amqp::run(o).await.context("raw rabbitmq baseline")?;
            Some((result, before.until(&Snapshot::take(&common.redis_url).await)))
        }
        None => None,
    };

    let events_ns = match (&target.local, &args.events_namespace) {
        (Some(stack), _) => stack.ns.clone(),
        (None, Some(ns)) => ns.clone(),
        (None, None) => anyhow::bail!("pipeline with --url needs --events-namespace (the deployment's amqp.namespace)"),
    };
    let bus = AmqpBus::connect(&common.amqp_url, &events_ns).await.context("connecting to rabbitmq for events")?;
    let consumer = subscribe(&bus, &common.tenant).await.context("subscribing to pod events")?;
    let tracker = Arc::new(Tracker::default());
    let tracking = track(consumer.stream, tracker.clone(), prefix.clone());

    eprintln!("pipeline: {} pods, {} in flight", args.pods, args.concurrency);
    let before = Snapshot::take(&common.redis_url).await;
    let t0 = Instant::now();
    let mut workers = Workers(post_all(plan.clone(), args.concurrency));
    let (timeline, timed_out) = wait(&plan, &tracker, &workers.0, args, progress).await;
    let mut parts = Vec::new();
    for w in workers.0.drain(..) {
        parts.push(w.await.context("a posting worker failed")?);
    }
    let posted: Posted = merge(parts);
    let usage = before.until(&Snapshot::take(&common.redis_url).await);
    (consumer.cancel)();
    tracking.abort();
    let arrivals = tracker.arrivals();

    let mut post_to_available = Latencies::new();
    let mut early = 0usize;
    for (pod, at) in &arrivals {
        if let Some(acked) = posted.acked.get(pod) {
            // The event can beat the POST answer back to the client.
            early += usize::from(at < acked);
            post_to_available.record(at.saturating_duration_since(*acked));
        }
    }
    let last_arrival = arrivals.values().max().copied();
    // The machine's speed drifts within minutes: a second baseline after the pipeline
    // brackets it, and the ratio is taken against the mean of the two.
    let baseline_after = match &baseline_options {
        Some(o) => {
            eprintln!("pipeline: raw RabbitMQ baseline again, {} messages", o.messages);
            Some(raw_amqp::run(o).await.context("raw rabbitmq baseline after the pipeline")?)
        }
        None => None,
    };
    let verified = verify_in_store(&target, &plan).await?;
    if target.local.is_none() {
        delete_remote(&plan, args.concurrency).await;
    }
    let figures = Figures {
        t0,
        posted: &posted,
        available: arrivals.len(),
        errors: tracker.errors.load(Ordering::Relaxed),
        event_messages: (tracker.events.load(Ordering::Relaxed), tracker.messages.load(Ordering::Relaxed)),
        last_arrival,
        post_to_available: post_to_available.summary(),
        early,
        timeline,
        timed_out,
        baseline,
        baseline_after,
        usage,
        verified,
    };
    Ok(summarise(args, &target, &figures))
}

/// The posting workers; aborted if the run is dropped half-way (Ctrl-C), so they release the
/// target and the stack can be cleaned up.
struct Workers(Vec<tokio::task::JoinHandle<Posted>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &self.0 {
            w.abort();
        }
    }
}

/// Waits until every successfully posted pod is AVAILABLE (or ERROR), or the timeout.
/// Returns the timeline (seconds, posted, available) and whether it timed out.
async fn wait(
    plan: &PostPlan,
    tracker: &Tracker,
    workers: &[tokio::task::JoinHandle<Posted>],
    args: &Args,
    progress: Progress,
) -> (Vec<(f64, usize, usize)>, bool) {
    let bar = progress.bar(args.pods as u64, "available");
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(args.timeout_s);
    let mut timeline = Vec::new();
    let mut next_sample = t0;
    loop {
        let done = plan.done.load(Ordering::SeqCst);
        let settled = tracker.available.load(Ordering::Relaxed) + tracker.errors.load(Ordering::Relaxed);
        let now = Instant::now();
        if now >= next_sample {
            timeline.push((now.duration_since(t0).as_secs_f64(), done, settled));
            next_sample += Duration::from_secs(1);
        }
        bar.set_position(settled as u64);
        bar.set_message(format!("posted {done}"));
        let posting_over = workers.iter().all(tokio::task::JoinHandle::is_finished);
        // Failed POSTs never produce an event: compare with the answered POSTs once all are in.
        let succeeded = done.saturating_sub(plan.failed.load(Ordering::SeqCst));
        if posting_over && settled >= succeeded {
            bar.finish_and_clear();
            timeline.push((t0.elapsed().as_secs_f64(), done, settled));
            return (timeline, false);
        }
        if now >= deadline {
            bar.abandon();
            return (timeline, true);
        }
        tokio::time::sleep(TICK).await;
    }
}

/// In-process: counts the run's pods whose stored status is AVAILABLE, as a cross-check of
/// the events.
async fn verify_in_store(target: &Target, plan: &PostPlan) -> anyhow::Result<Option<usize>> {
    use corral_store::Store as _;
    use futures::StreamExt as _;
    let Some(stack) = &target.local else { return Ok(None) };
    let mut keys = Vec::new();
    for shard in 0..stack.cfg.spawner.shards {
        keys.extend(stack.store.list_shard(shard).await.context("listing a shard")?);
    }
    keys.retain(|k| k.pod_id.starts_with(&plan.prefix));
    let available = futures::stream::iter(keys)
        .map(|k| async move { stack.store.get_pod(&k).await })
        .buffer_unordered(64)
        .filter(|r| {
            let ok = matches!(r, Ok(Some(rec)) if rec.observed.value.status == corral_model::PodStatus::Available);
            futures::future::ready(ok)
        })
        .count()
        .await;
    Ok(Some(available))
}

/// With `--url`: deletes the pods the run created (not measured).
async fn delete_remote(plan: &PostPlan, concurrency: usize) {
    use futures::StreamExt as _;
    let failed = futures::stream::iter(0..plan.pods)
        .map(|i| async move { plan.target.delete_pod(&plan.pod_id(i)).await.is_err() })
        .buffer_unordered(concurrency.max(1))
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    if failed > 0 {
        eprintln!("pipeline: {failed} pods could not be deleted from the remote deployment");
    }
}
