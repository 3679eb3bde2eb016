//! The pipeline's figures and their markdown summary.

use std::time::Instant;

use serde_json::json;

use super::Outcome;
use super::pipeline::Args;
use super::pipeline_load::Posted;
use super::raw_amqp::RawAmqpResult;
use crate::stack::Target;
use crate::stats::{Summary, TABLE_HEADER};
use crate::usage::{OTHER, Usage};

/// The target the report checks against.
const TARGET_PODS_PER_S: f64 = 2000.0;
/// Pods/s as a share of the raw broker round trips measured in the same run.
const TARGET_PCT_OF_BASELINE: f64 = 25.0;

/// Everything the pipeline run measured.
pub struct Figures<'a> {
    pub t0: Instant,
    pub posted: &'a Posted,
    pub available: usize,
    pub errors: usize,
    /// (events received, messages they arrived in) on the tracker's subscription.
    pub event_messages: (usize, usize),
    pub last_arrival: Option<Instant>,
    pub post_to_available: Summary,
    /// AVAILABLE events that arrived before the POST's answer.
    pub early: usize,
    /// (seconds, POSTs answered, pods settled)
    pub timeline: Vec<(f64, usize, usize)>,
    pub timed_out: bool,
    /// The baseline's figures and the CPU it cost.
    pub baseline: Option<(RawAmqpResult, Usage)>,
    /// The same baseline measured again once the pipeline finished.
    pub baseline_after: Option<RawAmqpResult>,
    pub usage: Usage,
    /// Pods found AVAILABLE in the store afterwards (in-process stack only).
    pub verified: Option<usize>,
}

fn rate(n: usize, t0: Instant, end: Option<Instant>) -> f64 {
    match end {
        Some(e) if e > t0 => n as f64 / e.duration_since(t0).as_secs_f64(),
        _ => 0.0,
    }
}

pub fn summarise(args: &Args, target: &Target, f: &Figures<'_>) -> Outcome {
    let pods_per_s = rate(f.available, f.t0, f.last_arrival);
    let posts_per_s = rate(f.posted.acked.len(), f.t0, f.posted.last_ack);
    let wall = f.last_arrival.map(|e| e.duration_since(f.t0).as_secs_f64()).unwrap_or(0.0);
    let post = f.posted.latency.summary();
    let baseline = f.baseline.as_ref().map(|(b, _)| b);
    let baseline_rate = baseline.map(|b| bracketing_rate(b, f.baseline_after.as_ref()));
    let pct = baseline_rate.map(|r| pods_per_s / r * 100.0);
    let verdict = if pods_per_s >= TARGET_PODS_PER_S { "met" } else { "NOT met" };
    let stack = match &target.local {
        Some(_) => format!(
            "in-process stack, simulated runtime (start delay 0), {} spawner(s), {} shards, {}, {}, {}, {}",
            args.spawners,
            args.shards,
            match args.max_kicks_per_message {
                None => "kicks gathered per shard message (default limit)".to_owned(),
                Some(1) => "every kick a message of its own".to_owned(),
                Some(n) => format!("up to {n} kicks per shard message"),
            },
            match args.kick_interval_ms {
                None => "kick messages to a shard spaced by the default interval".to_owned(),
                Some(0) => "a shard's next kick message sent once the previous is confirmed".to_owned(),
                Some(ms) => format!("kick messages to a shard at least {ms} ms apart"),
            },
            match args.max_events_per_message {
                None => "events gathered per routing key (default limit)".to_owned(),
                Some(1) => "every event a message of its own".to_owned(),
                Some(n) => format!("up to {n} events per message"),
            },
            if args.no_auxiliaries {
                "without health-poller/log-collector"
            } else {
                "with health-poller and log-collector"
            }
        ),
        None => format!("remote gateway at {}", target.base),
    };

    let mut md = format!(
        "{} pods posted to `POST /v3/pods` with {} in flight ({stack}); networking `local_only`, so no \
         readiness probe. Completion is counted from AVAILABLE events on `corral.events`.\n\n",
        args.pods, args.concurrency
    );
    md.push_str("| figure | value |\n|---|---:|\n");
    md.push_str(&format!("| **pods/s** (first POST → last AVAILABLE) | **{pods_per_s:.0}** |\n"));
    md.push_str(&format!("| wall time | {wall:.2} s |\n"));
    md.push_str(&format!("| POSTs/s (gateway intake, first POST → last answer) | {posts_per_s:.0} |\n"));
    md.push_str(&format!(
        "| pods AVAILABLE / posted OK / POST failures / ERROR | {} / {} / {} / {} |\n",
        f.available,
        f.posted.acked.len(),
        f.posted.failures.len(),
        f.errors
    ));
    let (events, messages) = f.event_messages;
    md.push_str(&format!("| pod events received / messages they came in | {events} / {messages} |\n"));
    if let Some(v) = f.verified {
        md.push_str(&format!("| AVAILABLE in the store afterwards | {v} |\n"));
    }
    if let (Some(b), Some(rate), Some(p)) = (baseline, baseline_rate, pct) {
        let spread = match b.queues {
            1 => String::new(),
            n => format!(", over {n} queues with a consumer each"),
        };
        let label =
            format!("raw RabbitMQ baseline ({} msgs of {} B, confirm + ack{spread})", b.messages, b.message_bytes);
        match &f.baseline_after {
            Some(after) => md.push_str(&format!(
                "| {label}, before / after the pipeline | {:.0} / {:.0} msgs/s (mean {rate:.0}) |\n",
                b.msgs_per_s, after.msgs_per_s
            )),
            None => md.push_str(&format!("| {label} | {rate:.0} msgs/s |\n")),
        }
        md.push_str(&format!("| Corral pods/s as % of the baseline | {p:.1}% |\n"));
    }
    md.push_str(&format!("\nTarget: ≥ {TARGET_PODS_PER_S:.0} pods/s — **{verdict}**"));
    if let Some(p) = pct {
        let met = if p >= TARGET_PCT_OF_BASELINE { "met" } else { "NOT met" };
        md.push_str(&format!("; ≥ {TARGET_PCT_OF_BASELINE:.0}% of the raw broker rate — **{met}** ({p:.1}%)"));
    }
    if f.timed_out {
        md.push_str(&format!(" (the run timed out after {} s)", args.timeout_s));
    }
    md.push_str(".\n\n### Latencies\n\n");
    md.push_str(TABLE_HEADER);
    md.push_str(&post.row("POST /v3/pods (answered)"));
    md.push_str(&f.post_to_available.row("POST answered → AVAILABLE event"));
    if let Some(b) = baseline {
        md.push_str(&b.confirm_latency.row("baseline publish → confirm"));
    }
    if f.early > 0 {
        md.push_str(&format!("\n{} AVAILABLE events arrived before their POST's answer (counted as 0 ms).\n", f.early));
    }
    let pods = f.available.max(1) as f64;
    md.push_str(&cpu_table(f, wall, pods));
    let mut calls: Vec<(&String, &u64)> = f.usage.redis_calls.iter().collect();
    calls.sort_by(|a, b| b.1.cmp(a.1));
    md.push_str("\nRedis commands per AVAILABLE pod (server-wide counters, so other users of the server add noise): ");
    let top: Vec<String> = calls.iter().take(8).map(|(k, v)| format!("`{k}` {:.1}", **v as f64 / pods)).collect();
    md.push_str(&top.join(", "));
    md.push_str(".\n");
    if let Some(first) = f.posted.failures.first() {
        md.push_str(&format!("\nFirst POST failure: `{}`\n", first.replace('`', "'")));
    }

    let params = json!({
        "pods": args.pods,
        "concurrency": args.concurrency,
        "spawners": args.spawners,
        "shards": args.shards,
        "auxiliaries": !args.no_auxiliaries,
        "baseline_messages": args.baseline_messages,
        "baseline_in_flight": args.baseline_in_flight,
        "baseline_prefetch": args.baseline_prefetch,
        "baseline_queues": args.baseline_queues,
        "stack": if target.local.is_some() { "in-process" } else { "remote" },
        "gateway": target.base,
    });
    let results = json!({
        "pods_per_s": pods_per_s,
        "posts_per_s": posts_per_s,
        "wall_s": wall,
        "available": f.available,
        "posted_ok": f.posted.acked.len(),
        "post_failures": f.posted.failures.len(),
        "errors": f.errors,
        "events_received": f.event_messages.0,
        "event_messages": f.event_messages.1,
        "verified_in_store": f.verified,
        "timed_out": f.timed_out,
        "post_latency": post,
        "post_to_available": f.post_to_available,
        "events_before_post_answer": f.early,
        "baseline": baseline,
        "baseline_after": f.baseline_after,
        "baseline_msgs_per_s": baseline_rate,
        "baseline_usage": f.baseline.as_ref().map(|(_, u)| u),
        "corral_pct_of_baseline": pct,
        "target_pods_per_s": TARGET_PODS_PER_S,
        "target_met": pods_per_s >= TARGET_PODS_PER_S,
        "target_pct_of_baseline": TARGET_PCT_OF_BASELINE,
        "target_pct_met": pct.map(|p| p >= TARGET_PCT_OF_BASELINE),
        "usage": f.usage,
        "timeline": f.timeline.iter().map(|(t, p, a)| json!({"t_s": t, "posted": p, "available": a})).collect::<Vec<_>>(),
        "first_failures": f.posted.failures.iter().take(5).collect::<Vec<_>>(),
    });
    Outcome { params, results, markdown: md }
}

/// The baseline rate the pipeline is compared with: the mean of the runs before and after
/// it when both exist.
fn bracketing_rate(before: &RawAmqpResult, after: Option<&RawAmqpResult>) -> f64 {
    match after {
        Some(a) => (before.msgs_per_s + a.msgs_per_s) / 2.0,
        None => before.msgs_per_s,
    }
}

/// CPU seconds by process during the Corral part, per pod, and the same per message of
/// the baseline; other processes' share last, since it competes for the same cores.
fn cpu_table(f: &Figures<'_>, wall: f64, pods: f64) -> String {
    let pct = |s: f64| if wall > 0.0 { s / wall * 100.0 } else { 0.0 };
    let per_msg = |name: &str| {
        f.baseline
            .as_ref()
            .and_then(|(b, u)| u.cpu_seconds.get(name).map(|c| format!("{:.0}", c / b.messages.max(1) as f64 * 1e6)))
            .unwrap_or_else(|| "–".into())
    };
    let mut md = String::from(
        "\n### Where the CPU went\n\n| process | CPU s | % of one core | µs per pod | baseline: µs per message |\n\
         |---|---:|---:|---:|---:|\n",
    );
    let mut total = 0.0;
    for (name, s) in f.usage.cpu_seconds.iter().filter(|(n, _)| n.as_str() != OTHER) {
        total += s;
        md.push_str(&format!("| {name} | {s:.1} | {:.0}% | {:.0} | {} |\n", pct(*s), s / pods * 1e6, per_msg(name)));
    }
    md.push_str(&format!("| **Corral + servers** | {total:.1} | {:.0}% | {:.0} | |\n", pct(total), total / pods * 1e6));
    if let Some(other) = f.usage.cpu_seconds.get(OTHER) {
        md.push_str(&format!("| {OTHER} (not Corral) | {other:.1} | {:.0}% | | {} |\n", pct(*other), per_msg(OTHER)));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    md.push_str(&format!(
        "\n`corral-load` is this process: the load generator and the whole in-process stack. The machine \
         has {cores} cores ({}%). CPU times have 10 ms resolution; the broker and Redis may also serve other work.\n",
        cores * 100
    ));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_at(msgs_per_s: f64) -> RawAmqpResult {
        RawAmqpResult {
            messages: 100,
            message_bytes: 64,
            queues: 1,
            queues_delivered: 1,
            seconds: 100.0 / msgs_per_s,
            msgs_per_s,
            publish_seconds: 0.0,
            confirm_latency: Summary::default(),
        }
    }

    #[test]
    fn the_pipeline_is_compared_with_the_mean_of_the_baselines_around_it() {
        let cases =
            [(10_000.0, None, 10_000.0), (10_000.0, Some(14_000.0), 12_000.0), (9_000.0, Some(9_000.0), 9_000.0)];
        for (before, after, want) in cases {
            let after = after.map(run_at);
            assert_eq!(bracketing_rate(&run_at(before), after.as_ref()), want, "{before} then {after:?}");
        }
    }
}
