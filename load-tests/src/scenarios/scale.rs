//! `scale`: a spawner holding many idle pods (simulated runtime). First a full resync: N
//! AVAILABLE pods handed over from one spawner to a fresh one (graceful stop, same runtime),
//! timed until every pod's new actor has re-read it and announced it again. Then the
//! resident memory of a spawner in its own process (`corral serve spawner`) holding 10,000
//! and 100,000 pods, against the same process holding none; and, in a child process, the
//! memory of the spawner's idle pod actors and of simulated containers on their own.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_bus::amqp::AmqpBus;
use serde_json::json;

use super::pipeline_load::{PostPlan, Tracker, merge, post_all, subscribe, track};
use super::scale_probe;
use super::scale_report::{Held, Measured, Resync, summarise};
use super::scale_spawner::{SpawnerProcess, default_corral_bin};
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target};
use crate::usage::Snapshot;

/// Options of `scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pods the separate spawner process holds, measured at each (comma-separated, rising).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    pub sizes: Vec<usize>,
    /// Pods of the full-resync measurement (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    pub resync_pods: usize,
    /// POSTs in flight while creating pods.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The `corral` binary run as the spawner (default: next to this one).
    #[arg(long, env = "CORRAL_LOAD_CORRAL_BIN")]
    pub corral_bin: Option<PathBuf>,
    /// Seconds to wait after the last pod is AVAILABLE before reading memory (more than one
    /// resync interval, 5 s), then until it stops moving.
    #[arg(long, default_value_t = 8)]
    pub settle_s: u64,
    /// Actors and containers of the memory breakdown probe (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub probe_count: usize,
    /// Give up waiting for pods after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions::basic(RuntimeChoice::Simulated, 1, common)
    }
}

pub async fn run(target: Arc<Target>, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    let stack = target.local_stack("scale")?;
    let bus = AmqpBus::connect(&common.amqp_url, &stack.ns).await.context("connecting to rabbitmq for events")?;
    let tag = run_tag();
    let t0 = Instant::now();
    let before = Snapshot::take(&common.redis_url).await;
    let resync = if args.resync_pods > 0 {
        Some(resync(&target, &bus, common, args, &format!("r{tag}"), progress).await?)
    } else {
        stack.stop_spawners().await;
        None
    };

    let dir = std::env::temp_dir().join(format!("corral-load-scale-{tag}"));
    let bin = args.corral_bin.clone().unwrap_or_else(default_corral_bin);
    let mut spawner = SpawnerProcess::start(&bin, &stack.config_toml, &dir).await?;
    let held = hold(&target, &bus, common, args, &mut spawner, &format!("m{tag}"), progress).await;
    let spawner_cpu = spawner.cpu_seconds().unwrap_or(0.0);
    let mut usage = before.until(&Snapshot::take(&common.redis_url).await);
    // The separate spawner is part of this run, not outside load.
    if let Some(other) = usage.cpu_seconds.get_mut(crate::usage::OTHER) {
        *other = (*other - spawner_cpu).max(0.0);
    }
    usage.cpu_seconds.insert("spawner process".into(), spawner_cpu);
    let stopped = spawner.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    let (idle, held) = held?;
    let stop = stopped?;
    let probe = if args.probe_count > 0 {
        eprintln!("scale: memory breakdown probe, {} actors and containers", args.probe_count);
        Some(scale_probe::run_child(args.probe_count).await?)
    } else {
        None
    };
    let measured = Measured { resync, idle, held, stop, probe, usage, wall: t0.elapsed() };
    Ok(summarise(args, &measured))
}

/// Creates `n` pods named `prefix…` through the gateway, `concurrency` at a time.
pub(super) async fn post(target: &Arc<Target>, prefix: &str, n: usize, concurrency: usize) -> anyhow::Result<Duration> {
    let plan = Arc::new(PostPlan {
        target: target.clone(),
        body: json!({"image": "corral-test/busybox", "networking": {"default": {"protocol": "local_only", "port": 5000}}}),
        prefix: prefix.to_string(),
        pods: n,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    });
    let t0 = Instant::now();
    let mut parts = Vec::new();
    for w in post_all(plan, concurrency) {
        parts.push(w.await.context("a posting worker failed")?);
    }
    let posted = merge(parts);
    anyhow::ensure!(posted.failures.is_empty(), "{} POSTs failed: {}", posted.failures.len(), posted.failures[0]);
    Ok(t0.elapsed())
}

/// Waits until the tracker saw `n` pods AVAILABLE; when the last one arrived.
pub(super) async fn wait_available(
    tracker: &Tracker,
    n: usize,
    timeout: Duration,
    progress: Progress,
    what: &str,
) -> anyhow::Result<Instant> {
    let bar = progress.bar(n as u64, what);
    let t0 = Instant::now();
    loop {
        let seen = tracker.available.load(Ordering::Relaxed);
        bar.set_position(seen as u64);
        if seen >= n {
            bar.finish_and_clear();
            return Ok(tracker.arrivals().values().max().copied().unwrap_or_else(Instant::now));
        }
        anyhow::ensure!(tracker.errors.load(Ordering::Relaxed) == 0, "pods went to ERROR");
        anyhow::ensure!(t0.elapsed() < timeout, "only {seen} of {n} pods AVAILABLE within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A tracker of `prefix`'s AVAILABLE events, and what stops it.
pub(super) async fn tracked(
    bus: &AmqpBus,
    tenant: &str,
    prefix: &str,
) -> anyhow::Result<(Arc<Tracker>, impl FnOnce())> {
    let consumer = subscribe(bus, tenant).await.context("subscribing to pod events")?;
    let tracker = Arc::new(Tracker::default());
    let task = track(consumer.stream, tracker.clone(), prefix.to_string());
    let cancel = consumer.cancel;
    Ok((tracker, move || {
        cancel();
        task.abort();
    }))
}

/// The full resync: pods created with the in-process spawner, handed to a fresh one.
async fn resync(
    target: &Arc<Target>,
    bus: &AmqpBus,
    common: &Common,
    args: &Args,
    prefix: &str,
    progress: Progress,
) -> anyhow::Result<Resync> {
    let stack = target.local_stack("scale")?;
    let n = args.resync_pods;
    let timeout = Duration::from_secs(args.timeout_s);
    eprintln!("scale: {n} pods for the resync");
    let (created, stop) = tracked(bus, &common.tenant, prefix).await?;
    post(target, prefix, n, args.concurrency).await?;
    wait_available(&created, n, timeout, progress, "created").await?;
    stop();
    let (again, stop) = tracked(bus, &common.tenant, prefix).await?;
    let t_stop = Instant::now();
    stack.stop_spawners().await;
    let stopping = t_stop.elapsed();
    eprintln!("scale: handing {n} pods over to a fresh spawner");
    let t_start = Instant::now();
    stack.add_spawner().await?;
    let last = wait_available(&again, n, timeout, progress, "resync").await?;
    stop();
    let resync = Resync { pods: n, stop_old: stopping, full_resync: last.saturating_duration_since(t_start) };
    // The pods must not be adopted by the next phase's spawner: stop this one and purge them
    // from the store (cleanup, not measured).
    stack.stop_spawners().await;
    stack.purge_pods().await.context("purging the resync phase's pods")?;
    Ok(resync)
}

/// The separate spawner: memory with no pods, then at each size.
async fn hold(
    target: &Arc<Target>,
    bus: &AmqpBus,
    common: &Common,
    args: &Args,
    spawner: &mut SpawnerProcess,
    prefix: &str,
    progress: Progress,
) -> anyhow::Result<(crate::procmem::Memory, Vec<Held>)> {
    let stack = target.local_stack("scale")?;
    stack.wait_for_shard_owners(1).await?;
    let idle = spawner.settled_memory(Duration::from_secs(2)).await?;
    let redis_before = redis_used_memory(&common.redis_url).await;
    let (tracker, stop) = tracked(bus, &common.tenant, prefix).await?;
    let mut held = Vec::new();
    let mut have = 0;
    for (batch, &size) in args.sizes.iter().enumerate() {
        anyhow::ensure!(size > have, "--sizes must rise");
        eprintln!("scale: {} more pods, to {size}", size - have);
        let posting = post(target, &format!("{prefix}b{batch}"), size - have, args.concurrency).await?;
        wait_available(&tracker, size, Duration::from_secs(args.timeout_s), progress, "held").await?;
        have = size;
        spawner.check_alive()?;
        let (cpu0, t) = (spawner.cpu_seconds(), Instant::now());
        let memory = spawner.settled_memory(Duration::from_secs(args.settle_s)).await?;
        let rest_cpu = match (cpu0, spawner.cpu_seconds()) {
            (Some(a), Some(b)) => Some((b - a) / t.elapsed().as_secs_f64()),
            _ => None,
        };
        let redis = match (redis_before, redis_used_memory(&common.redis_url).await) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        held.push(Held { pods: size, memory, rest_cpu, redis_bytes: redis, posting });
    }
    stop();
    Ok((idle, held))
}

/// `used_memory` of the Redis server (shared: other users move it too).
async fn redis_used_memory(url: &str) -> Option<u64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok())
}
