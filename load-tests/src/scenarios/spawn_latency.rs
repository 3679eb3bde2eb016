//! `spawn-latency`: cold spawns one at a time through Corral (Docker runtime), interleaved
//! with the same container started straight through the Docker API.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use super::corral_pod::{CorralPods, CorralSample};
use super::raw_docker::{RawDocker, RawSample, RawSpec};
use super::{Outcome, median, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target};
use crate::stats::{Latencies, Summary, TABLE_HEADER, fmt_ms, overhead_pct};

/// Corral's default pod resources, which the baseline copies: 2000 millicores, 3072 MiB.
pub(super) const CPU_MILLIS: i64 = 2000;
pub(super) const MEM_MIB: i64 = 3072;
/// Corral's default `runtime.pids_limit`.
pub(super) const PIDS_LIMIT: i64 = 512;
const PORT: u16 = 8000;
/// The target the report checks against: median overhead at most 15%.
const TARGET_OVERHEAD: f64 = 0.15;

/// Options of `spawn-latency`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pods to spawn through Corral, and as many containers through Docker directly.
    #[arg(long, default_value_t = 50)]
    pub pods: usize,
    /// Unrecorded spawns of each kind first (page cache, connection pools).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Image of the pod and of the baseline container (must exist locally).
    #[arg(long, default_value = "corral-test/busybox")]
    pub image: String,
    /// Client poll interval in ms: `GET /v3/pods/{id}` for Corral, the HTTP check for Docker.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Readiness-probe interval of the in-process health-poller, in ms (Corral's default).
    #[arg(long, default_value_t = 50)]
    pub probe_interval_ms: u64,
    /// Shards of the in-process stack.
    #[arg(long, default_value_t = 16)]
    pub shards: u32,
    /// Give up on one spawn (or teardown) after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_s: u64,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions {
            runtime: RuntimeChoice::Docker,
            spawners: 1,
            shards: self.shards,
            probe_interval_ms: self.probe_interval_ms,
            auxiliaries: true,
            pool_manager: false,
            admin: None,
            amqp_url: common.amqp_url.clone(),
            redis_url: common.redis_url.clone(),
            max_kicks_per_message: None,
            max_events_per_message: None,
            kick_interval_ms: None,
        }
    }
}

/// busybox httpd in the foreground, serving the image's (empty) /www on port 8000.
const COMMAND: [&str; 6] = ["httpd", "-f", "-p", "8000", "-h", "/www"];

fn command() -> Vec<String> {
    COMMAND.iter().map(|s| s.to_string()).collect()
}

#[derive(Default)]
struct Collected {
    corral: Vec<CorralSample>,
    raw: Vec<RawSample>,
}

/// Runs the scenario against `target`.
pub async fn run(target: &Target, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to docker")?
        .negotiate_version()
        .await
        .context("negotiating the docker api version")?;
    let tag = run_tag();
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let timeout = Duration::from_secs(args.timeout_s);
    let spec = RawSpec {
        image: args.image.clone(),
        command: command(),
        container_port: PORT,
        cpu_millis: CPU_MILLIS,
        mem_mib: MEM_MIB,
        pids_limit: PIDS_LIMIT,
    };
    let raw = RawDocker::new(docker.clone(), spec, tag.clone(), poll, timeout);
    let pods = CorralPods {
        target,
        docker,
        tenant: common.tenant.clone(),
        body: json!({
            "image": args.image,
            "command": command(),
            "networking": {"default": {"protocol": "http", "port": PORT}},
        }),
        poll,
        timeout,
    };
    let collected = measure(&pods, &raw, &tag, args, progress).await;
    let cleanup = raw.remove_leftovers().await;
    let collected = collected?;
    cleanup?;
    Ok(summarise(args, target, &collected))
}

async fn measure(
    pods: &CorralPods<'_>,
    raw: &RawDocker,
    tag: &str,
    args: &Args,
    progress: Progress,
) -> anyhow::Result<Collected> {
    for w in 0..args.warmup {
        pods.once(&format!("warm{tag}{w}")).await.context("warm-up spawn through corral")?;
        raw.once(usize::MAX - w).await.context("warm-up spawn through docker")?;
    }
    let bar = progress.bar(args.pods as u64, "spawn-latency");
    let mut out = Collected::default();
    for i in 0..args.pods {
        let pod_id = format!("lat{tag}{i}");
        // Alternate who goes first, so drift in the machine's state hits both equally.
        if i.is_multiple_of(2) {
            out.corral.push(pods.once(&pod_id).await.with_context(|| format!("corral spawn {i}"))?);
            out.raw.push(raw.once(i).await.with_context(|| format!("docker spawn {i}"))?);
        } else {
            out.raw.push(raw.once(i).await.with_context(|| format!("docker spawn {i}"))?);
            out.corral.push(pods.once(&pod_id).await.with_context(|| format!("corral spawn {i}"))?);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn hist<T>(items: &[T], f: impl Fn(&T) -> Option<Duration>) -> Summary {
    let mut l = Latencies::new();
    items.iter().filter_map(f).for_each(|d| l.record(d));
    l.summary()
}

fn hist_ms<T>(items: &[T], f: impl Fn(&T) -> Option<i64>) -> Summary {
    let mut l = Latencies::new();
    items.iter().filter_map(f).for_each(|ms| l.record_ms(ms));
    l.summary()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summarise(args: &Args, target: &Target, c: &Collected) -> Outcome {
    let corral = hist(&c.corral, |s| Some(s.available));
    let raw = hist(&c.raw, |s| Some(s.ready));
    // In the order things happen.
    let rows: Vec<(&str, Summary)> = vec![
        ("corral.post", hist(&c.corral, |s| Some(s.post))),
        ("corral.phase.to_spawner", hist_ms(&c.corral, |s| s.phases.to_spawner)),
        ("corral.first_seen_spawner_setup", hist(&c.corral, |s| s.first_seen.get("SPAWNER SETUP").copied())),
        ("corral.phase.runtime_start", hist_ms(&c.corral, |s| s.phases.runtime_start)),
        ("corral.first_seen_creating", hist(&c.corral, |s| s.first_seen.get("CREATING").copied())),
        ("corral.phase.readiness", hist_ms(&c.corral, |s| s.phases.readiness)),
        ("corral.phase.client_lag", hist_ms(&c.corral, |s| s.phases.client_lag)),
        ("corral.teardown", hist(&c.corral, |s| Some(s.teardown))),
        ("raw.create", hist(&c.raw, |s| Some(s.create))),
        ("raw.start", hist(&c.raw, |s| Some(s.start))),
        ("raw.inspected", hist(&c.raw, |s| Some(s.inspected))),
        ("raw.tcp_connect", hist(&c.raw, |s| Some(s.tcp))),
        ("raw.remove", hist(&c.raw, |s| Some(s.remove))),
    ];
    let mut diffs: Vec<f64> = c.corral.iter().zip(&c.raw).map(|(a, b)| ms(a.available) - ms(b.ready)).collect();
    let paired_median = median(&mut diffs);
    let ratio_p50 = if raw.p50_ms > 0.0 { corral.p50_ms / raw.p50_ms - 1.0 } else { f64::NAN };
    let ratio_p99 = if raw.p99_ms > 0.0 { corral.p99_ms / raw.p99_ms - 1.0 } else { f64::NAN };
    let verdict = if ratio_p50 <= TARGET_OVERHEAD { "met" } else { "NOT met" };

    let mut md = String::new();
    md.push_str(&format!(
        "Cold spawn of the busybox httpd pod, {} Corral pods and {} raw Docker containers, one at a time, \
         interleaved (Corral first on even iterations). Corral: `POST /v3/pods` sent → a `GET` answers \
         `AVAILABLE` (polled every {} ms). Raw Docker: create → start → inspect → an HTTP answer below 500 \
         on the published port (checked every {} ms). Same image, command, port publishing and limits \
         (2000 millicores, 3072 MiB, pids 512, no-new-privileges). Stack: {}.\n\n",
        c.corral.len(),
        c.raw.len(),
        args.poll_ms,
        args.poll_ms,
        if target.local.is_some() {
            format!("in-process, 1 spawner, {} shards, probe interval {} ms", args.shards, args.probe_interval_ms)
        } else {
            format!("remote gateway at {}", target.base)
        },
    ));
    md.push_str("| | p50 | p99 |\n|---|---:|---:|\n");
    md.push_str(&format!("| Corral POST → AVAILABLE (ms) | {} | {} |\n", fmt_ms(corral.p50_ms), fmt_ms(corral.p99_ms)));
    md.push_str(&format!("| raw Docker create → answers (ms) | {} | {} |\n", fmt_ms(raw.p50_ms), fmt_ms(raw.p99_ms)));
    md.push_str(&format!(
        "| **overhead** (Corral / raw − 1) | **{}** | {} |\n\n",
        overhead_pct(corral.p50_ms, raw.p50_ms),
        overhead_pct(corral.p99_ms, raw.p99_ms)
    ));
    md.push_str(&format!(
        "Target: median overhead ≤ 15% — **{verdict}**. Median of the per-iteration differences \
         (Corral − raw): {} ms.\n\n",
        fmt_ms(paired_median)
    ));
    md.push_str("### Distributions\n\n");
    md.push_str(TABLE_HEADER);
    md.push_str(&corral.row("Corral POST → AVAILABLE"));
    md.push_str(&raw.row("raw Docker create → HTTP answer"));
    for (name, s) in &rows {
        md.push_str(&s.row(name));
    }
    md.push_str(
        "\nWhere Corral's time goes: `phase.to_spawner` = pod stored by the gateway → the spawner's \
         actor starts the attempt (kick through RabbitMQ); `phase.runtime_start` = attempt → container \
         created, started and inspected; `phase.readiness` = container started → AVAILABLE stored (pod \
         event → health-poller probe → observation → actor); `phase.client_lag` = AVAILABLE stored → the \
         client's poll saw it. Phases come from action-log timestamps (millisecond resolution) and are \
         only available with the in-process stack. `first_seen_*` = when a client poll first showed that \
         status (missing when a status lasted less than a poll).\n",
    );
    let params = json!({
        "pods": args.pods,
        "warmup": args.warmup,
        "image": args.image,
        "poll_ms": args.poll_ms,
        "probe_interval_ms": args.probe_interval_ms,
        "shards": args.shards,
        "stack": if target.local.is_some() { "in-process" } else { "remote" },
        "gateway": target.base,
    });
    let results = json!({
        "corral_post_to_available": corral,
        "raw_create_to_answer": raw,
        "overhead_p50": ratio_p50,
        "overhead_p99": ratio_p99,
        "paired_median_difference_ms": paired_median,
        "target_overhead_p50": TARGET_OVERHEAD,
        "target_met": ratio_p50 <= TARGET_OVERHEAD,
        "distributions": rows.iter().map(|(name, s)| json!({"name": name, "summary": s})).collect::<Vec<_>>(),
        "samples_ms": {
            "corral_available": c.corral.iter().map(|s| ms(s.available)).collect::<Vec<_>>(),
            "raw_ready": c.raw.iter().map(|s| ms(s.ready)).collect::<Vec<_>>(),
        },
    });
    Outcome { params, results, markdown: md }
}
