//! The figures of `claims` and their markdown summary.

use std::time::Duration;

use serde_json::json;

use super::Outcome;
use super::claims::Args;
use super::claims_engine::Churn;
use super::claims_pool::{ClaimResult, Outcome as ClaimOutcome};
use super::claims_refill::{Refill, figures};
use super::corral_pod::CorralSample;
use crate::stack::Target;
use crate::stats::{Latencies, Summary, TABLE_HEADER, fmt_ms};
use crate::usage::Usage;

/// Target: claim p99 at 100 concurrent clients, in ms.
const TARGET_P99_MS: f64 = 10.0;
/// Target: share of refill samples with `available` ≥ 80% of `size`.
const TARGET_REFILL_FRACTION: f64 = 1.0;
const TARGET_CLIENTS: usize = 100;

/// One claim round.
pub struct Level {
    pub clients: usize,
    pub results: Vec<ClaimResult>,
    /// Instances given back → pool full again.
    pub refill_after: Duration,
}

/// Everything the scenario measured.
pub struct Measured {
    pub cold: Vec<CorralSample>,
    pub initial_fill: Duration,
    pub levels: Vec<Level>,
    pub refill: Option<Refill>,
    /// The Docker engine's own turnover rate, the refill phase's baseline (Docker only).
    pub engine: Option<Churn>,
    pub usage: Usage,
    pub wall: Duration,
}

fn latencies<'a>(results: impl Iterator<Item = &'a ClaimResult>) -> Summary {
    let mut l = Latencies::new();
    results.for_each(|r| l.record(r.latency));
    l.summary()
}

fn count(results: &[ClaimResult], o: ClaimOutcome) -> usize {
    results.iter().filter(|r| r.outcome == o).count()
}

fn outcome_counts(results: &[ClaimResult]) -> serde_json::Value {
    json!({
        "ready": count(results, ClaimOutcome::Ready),
        "not_ready": count(results, ClaimOutcome::NotReady),
        "full_429": count(results, ClaimOutcome::Full),
        "failed": count(results, ClaimOutcome::Failed),
    })
}

pub fn summarise(args: &Args, target: &Target, m: &Measured) -> Outcome {
    let mut cold = Latencies::new();
    m.cold.iter().for_each(|s| cold.record(s.available));
    let cold = cold.summary();
    let ready = |l: &Level| latencies(l.results.iter().filter(|r| r.outcome == ClaimOutcome::Ready));
    let at_target = m.levels.iter().find(|l| l.clients == TARGET_CLIENTS).map(ready);
    let p99_met = at_target.map(|s| s.count > 0 && s.p99_ms <= TARGET_P99_MS);
    let stack = match &target.local {
        Some(_) => {
            format!("in-process stack ({} runtime, 1 spawner, health-poller, pool-manager)", args.runtime.as_str())
        }
        None => format!("remote gateway at {}", target.base),
    };
    let mut md = format!(
        "A Binder pool of busybox httpd instances ({stack}), size {} and cap {}, filled before each round \
         (claimed instances are given back by the pool's culling: template `cull-timeout` 1 s); each round starts {} ms \
         after the pool is full (the engine finishing its last starts otherwise competes with the claims). A claim is `POST /api/applications/{{template}}` sent → answer read; the rounds count only claims \
         answered with a `location` (a ready instance). Baseline: cold spawns of the same template's pod \
         (`POST /v3/pods` → `GET` answers AVAILABLE, one at a time, polled every {} ms).\n\n",
        args.size,
        args.cap(),
        args.settle_ms,
        args.poll_ms
    );
    md.push_str("| clients | claims ready / sent | claim p50 ms | claim p99 ms | max ms | cold spawn p50 ms | cold p50 / claim p50 |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    for l in &m.levels {
        let s = ready(l);
        let ratio = if s.p50_ms > 0.0 { format!("{:.0}×", cold.p50_ms / s.p50_ms) } else { "–".into() };
        md.push_str(&format!(
            "| {} | {} / {} | {} | {} | {} | {} | {ratio} |\n",
            l.clients,
            s.count,
            l.results.len(),
            fmt_ms(s.p50_ms),
            fmt_ms(s.p99_ms),
            fmt_ms(s.max_ms),
            fmt_ms(cold.p50_ms),
        ));
    }
    let verdict = match p99_met {
        Some(true) => "**met**",
        Some(false) => "**NOT met**",
        None => "not measured (no round with 100 clients)",
    };
    md.push_str(&format!(
        "\nTarget: claim p99 ≤ {TARGET_P99_MS} ms at {TARGET_CLIENTS} concurrent clients — {verdict}.\n"
    ));
    md.push_str(&format!(
        "\nPool filled from empty to {} available in {:.1} s; after each round the pool was back to full in: {}.\n",
        args.size,
        m.initial_fill.as_secs_f64(),
        m.levels
            .iter()
            .map(|l| format!("{:.1} s ({} clients)", l.refill_after.as_secs_f64(), l.clients))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let refill = m.refill.as_ref().map(|r| (r, figures(r, u64::from(args.size))));
    if let Some((r, f)) = &refill {
        let met = f.fraction_at_80pct >= TARGET_REFILL_FRACTION;
        md.push_str(&format!(
            "\n### Refill under {} claims/s\n\n{} claims over {:.1} s (each instance culled, so given back, after 1 s idle), \
             `GET /api/pools/{{template}}` sampled every {} ms ({} samples).\n\n| figure | value |\n|---|---:|\n",
            r.plan.rate,
            r.claims.len(),
            r.wall.as_secs_f64(),
            args.sample_ms,
            r.samples.len()
        ));
        md.push_str(&format!(
            "| **samples with available ≥ 80% of size** | **{:.0}%** |\n",
            f.fraction_at_80pct * 100.0
        ));
        md.push_str(&format!(
            "| available: min / median (size {}) | {} / {:.0} |\n",
            args.size, f.min_available, f.median_available
        ));
        md.push_str(&format!("| claims/s sent | {:.1} |\n", f.claims_per_s));
        md.push_str(&format!(
            "| ready instances produced per s (ready claims + Δ available) | {:.1} |\n",
            f.produced_per_s
        ));
        md.push_str(&format!(
            "| claims ready / not ready / 429 / failed | {} / {} / {} / {} |\n",
            count(&r.claims, ClaimOutcome::Ready),
            count(&r.claims, ClaimOutcome::NotReady),
            count(&r.claims, ClaimOutcome::Full),
            count(&r.claims, ClaimOutcome::Failed)
        ));
        if let Some(e) = &m.engine {
            md.push_str(&format!(
                "| baseline: the Docker engine alone, containers turned over per s (create → answering → removed, {} in flight) | {:.1} |\n",
                e.in_flight, e.per_s
            ));
        }
        md.push_str(&format!(
            "\nTarget: available ≥ 80% of size throughout (every sample) — **{}**.\n",
            if met { "met" } else { "NOT met" }
        ));
        if let Some(e) = &m.engine {
            md.push_str(&format!(
                "\nEach claim needs one new instance and the culled one removed: {:.1} such cycles/s. \
                 The engine alone, with no Corral involved, completed {} cycles in {:.1} s ({:.1}/s, {} failed), \
                 measured before the pool was made.\n",
                r.plan.rate, e.cycles, e.wall_s, e.per_s, e.failures
            ));
        }
    }
    md.push_str("\n### Distributions\n\n");
    md.push_str(TABLE_HEADER);
    md.push_str(&cold.row("cold spawn POST → AVAILABLE"));
    let mut post = Latencies::new();
    m.cold.iter().for_each(|s| post.record(s.post));
    md.push_str(&post.summary().row("cold spawn POST answered"));
    for l in &m.levels {
        md.push_str(&ready(l).row(&format!("claim, {} clients (ready)", l.clients)));
        let other = latencies(l.results.iter().filter(|r| r.outcome != ClaimOutcome::Ready));
        if other.count > 0 {
            md.push_str(&other.row(&format!("claim, {} clients (not ready/429/failed)", l.clients)));
        }
    }
    if let Some((r, _)) = &refill {
        md.push_str(
            &latencies(r.claims.iter().filter(|c| c.outcome == ClaimOutcome::Ready)).row("refill phase claim (ready)"),
        );
        md.push_str(
            &latencies(r.claims.iter().filter(|c| c.outcome != ClaimOutcome::Ready)).row("refill phase claim (other)"),
        );
    }
    if let Some(e) = m
        .levels
        .iter()
        .flat_map(|l| &l.results)
        .chain(m.refill.iter().flat_map(|r| &r.claims))
        .find_map(|r| r.error.as_ref())
    {
        md.push_str(&format!("\nFirst claim failure: `{}`\n", e.replace('`', "'")));
    }
    md.push('\n');
    md.push_str(&m.usage.load_note(m.wall.as_secs_f64()));

    let params = json!({
        "runtime": args.runtime.as_str(),
        "size": args.size,
        "cap": args.cap(),
        "clients": args.clients,
        "claims_per_round": args.claims_per_round,
        "cold_spawns": args.cold_spawns,
        "refill_rate": args.refill_rate,
        "refill_seconds": args.refill_seconds,
        "sample_ms": args.sample_ms,
        "settle_ms": args.settle_ms,
        "poll_ms": args.poll_ms,
        "stack": if target.local.is_some() { "in-process" } else { "remote" },
    });
    let results = json!({
        "cold_spawn": cold,
        "cold_spawn_samples_ms": m.cold.iter().map(|s| s.available.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        "initial_fill_s": m.initial_fill.as_secs_f64(),
        "rounds": m.levels.iter().map(|l| json!({
            "clients": l.clients,
            "ready": ready(l),
            "all": latencies(l.results.iter()),
            "outcomes": outcome_counts(&l.results),
            "refill_after_s": l.refill_after.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p99_met,
        "refill": refill.as_ref().map(|(r, f)| json!({
            "figures": f,
            "outcomes": outcome_counts(&r.claims),
            "wall_s": r.wall.as_secs_f64(),
            "target_met": f.fraction_at_80pct >= TARGET_REFILL_FRACTION,
            "samples": r.samples,
        })),
        "engine_baseline": m.engine,
        "usage": m.usage,
        "wall_s": m.wall.as_secs_f64(),
    });
    Outcome { params, results, markdown: md }
}
