//! The figures of `scale` and their markdown summary.

use std::time::Duration;

use serde_json::json;

use super::Outcome;
use super::scale::Args;
use super::scale_probe::ProbeReport;
use crate::procmem::Memory;

/// Target: spawner memory per idle pod at 100,000 pods, in bytes.
const TARGET_BYTES: f64 = 10.0 * 1024.0;
const TARGET_PODS: usize = 100_000;

/// The resync measurement.
#[derive(Debug, Clone, Copy)]
pub struct Resync {
    pub pods: usize,
    /// Graceful stop of the spawner holding them.
    pub stop_old: Duration,
    /// Fresh spawner started → its last pod re-announced AVAILABLE.
    pub full_resync: Duration,
}

/// The separate spawner at one size.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub pods: usize,
    pub memory: Memory,
    /// Cores the spawner used while holding the pods idle (its periodic resync).
    pub rest_cpu: Option<f64>,
    /// Growth of Redis's `used_memory` since the spawner held no pods.
    pub redis_bytes: Option<u64>,
    /// Creating this batch through the gateway.
    pub posting: Duration,
}

/// Everything the scenario measured.
pub struct Measured {
    pub resync: Option<Resync>,
    /// The separate spawner holding no pods.
    pub idle: Memory,
    pub held: Vec<Held>,
    /// Graceful stop of the separate spawner at the largest size.
    pub stop: Duration,
    pub probe: Option<ProbeReport>,
    pub usage: crate::usage::Usage,
    pub wall: Duration,
}

fn bytes_per_pod(h: &Held, idle: &Memory) -> f64 {
    h.memory.rss_kib.saturating_sub(idle.rss_kib) as f64 * 1024.0 / h.pods.max(1) as f64
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn summarise(args: &Args, m: &Measured) -> Outcome {
    let mut md = String::from(
        "Simulated runtime, pods with `local_only` networking created through `POST /v3/pods` and left AVAILABLE \
         and idle.\n\n",
    );
    if let Some(r) = &m.resync {
        md.push_str(&format!(
            "**Full resync of {} pods: {:.2} s** ({:.0} pods/s): a fresh in-process spawner takes over the shards of \
             one stopped gracefully (same simulated runtime, so the containers are still there) and adopts every \
             pod: store read, runtime state compared, pod re-announced AVAILABLE on `corral.events`; timed from its \
             start to the last re-announcement received here. Stopping the old spawner took {:.2} s.\n\n",
            r.pods,
            r.full_resync.as_secs_f64(),
            r.pods as f64 / r.full_resync.as_secs_f64().max(f64::EPSILON),
            r.stop_old.as_secs_f64()
        ));
    }
    md.push_str(&format!(
        "Memory: `corral serve spawner` in its own process (resident set from `/proc/<pid>/status`, read after \
         ≥ {} s idle and once it stops moving), against the same process holding no pods ({} resident, {} anonymous).\n\n",
        args.settle_s,
        mib(m.idle.rss_kib),
        mib(m.idle.anon_kib)
    ));
    md.push_str("| pods held | spawner RSS | peak RSS | **bytes per pod** (RSS − idle) / pods | spawner CPU at rest | Redis used_memory per pod |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|\n");
    for h in &m.held {
        md.push_str(&format!(
            "| {} | {} | {} | **{:.0}** | {} | {} |\n",
            h.pods,
            mib(h.memory.rss_kib),
            mib(h.memory.hwm_kib),
            bytes_per_pod(h, &m.idle),
            h.rest_cpu.map_or("?".into(), |c| format!("{:.0}% of a core", c * 100.0)),
            h.redis_bytes.map_or("?".into(), |b| format!("{:.0} B", b as f64 / h.pods.max(1) as f64)),
        ));
    }
    let at_target = m.held.iter().find(|h| h.pods == TARGET_PODS).map(|h| bytes_per_pod(h, &m.idle));
    let verdict = match at_target {
        Some(b) if b <= TARGET_BYTES => format!("**met** ({:.1} KiB)", b / 1024.0),
        Some(b) => format!("**NOT met** ({:.1} KiB)", b / 1024.0),
        None => "not measured (no run at 100,000 pods)".into(),
    };
    md.push_str(&format!("\nTarget: ≤ 10 KB of spawner memory per idle pod at 100,000 pods — {verdict}.\n"));
    if let Some(p) = &m.probe {
        let total = at_target.or_else(|| m.held.last().map(|h| bytes_per_pod(h, &m.idle)));
        md.push_str(&format!(
            "\nWhere it goes (a child process holding {} of the spawner's real idle pod actors in a map, then as many \
             simulated containers): **{:.0} B per idle actor** (ractor mailbox channels, task, state, map entry), \
             **{:.0} B per simulated container** record{}.\n",
            p.count,
            p.actor_bytes,
            p.container_bytes,
            total
                .map(|t| format!(
                    "; the remaining {:.0} B per pod of the spawner's figure is per-pod state beyond an idle actor \
                     (the announced status, a pending timer, buffers of the actor's last messages) and allocator \
                     overhead",
                    (t - p.actor_bytes - p.container_bytes).max(0.0)
                ))
                .unwrap_or_default()
        ));
    }
    md.push_str(&format!(
        "\nCreating the pods (not a target here): {}. Stopping the spawner holding {} pods took {:.1} s.\n",
        m.held
            .iter()
            .map(|h| format!("to {} in {:.1} s", h.pods, h.posting.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        m.held.last().map_or(0, |h| h.pods),
        m.stop.as_secs_f64()
    ));
    md.push('\n');
    md.push_str(&m.usage.load_note(m.wall.as_secs_f64()));
    let params = json!({
        "sizes": args.sizes,
        "resync_pods": args.resync_pods,
        "concurrency": args.concurrency,
        "settle_s": args.settle_s,
        "probe_count": args.probe_count,
    });
    let results = json!({
        "resync": m.resync.map(|r| json!({
            "pods": r.pods,
            "full_resync_s": r.full_resync.as_secs_f64(),
            "stop_old_s": r.stop_old.as_secs_f64(),
        })),
        "idle": m.idle,
        "held": m.held.iter().map(|h| json!({
            "pods": h.pods,
            "memory": h.memory,
            "bytes_per_pod": bytes_per_pod(h, &m.idle),
            "rest_cpu_cores": h.rest_cpu,
            "redis_used_memory_growth": h.redis_bytes,
            "posting_s": h.posting.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "target_bytes_per_pod": TARGET_BYTES,
        "target_met": at_target.map(|b| b <= TARGET_BYTES),
        "stop_s": m.stop.as_secs_f64(),
        "probe": m.probe,
        "usage": m.usage,
        "wall_s": m.wall.as_secs_f64(),
    });
    Outcome { params, results, markdown: md }
}
