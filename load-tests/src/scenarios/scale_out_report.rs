//! The figures of `scale-out` and their markdown summary.

use std::time::Duration;

use serde_json::json;

use super::scale_out::Args;
use super::{Outcome, median};
use crate::usage::{OTHER, Usage};

/// One round: `spawners` processes took `pods` pods from the first POST to the last AVAILABLE.
pub struct Round {
    pub spawners: usize,
    pub pods: usize,
    pub wall: Duration,
    /// CPU seconds of each spawner process during the round.
    pub spawner_cpu: Vec<f64>,
    /// For each capped spawner, the share of quota periods in which its budget ran out.
    pub throttled: Vec<f64>,
    /// This process (gateway, client), the broker, Redis, and anything else.
    pub usage: Usage,
}

impl Round {
    fn pods_per_s(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 { self.pods as f64 / s } else { 0.0 }
    }
}

/// Median pods/s of each spawner count, in the order the counts were given.
fn medians(rounds: &[Round], counts: &[usize]) -> Vec<(usize, f64)> {
    counts
        .iter()
        .map(|&n| {
            let mut rates: Vec<f64> = rounds.iter().filter(|r| r.spawners == n).map(Round::pods_per_s).collect();
            (n, median(&mut rates))
        })
        .collect()
}

/// Whether `more` spawners added throughput over `base`: every round with `more` was faster
/// than every round with `base` (a claim that holds through the machine's drifts, not just
/// on average).
fn adds_throughput(rounds: &[Round], base: usize, more: usize) -> Option<bool> {
    let rates = |n: usize| rounds.iter().filter(move |r| r.spawners == n).map(Round::pods_per_s);
    let slowest_more = rates(more).reduce(f64::min)?;
    let fastest_base = rates(base).reduce(f64::max)?;
    Some(slowest_more > fastest_base)
}

fn cpu(usage: &Usage, name: &str) -> f64 {
    usage.cpu_seconds.get(name).copied().unwrap_or(0.0)
}

pub fn summarise(args: &Args, rounds: &[Round]) -> Outcome {
    let mut counts: Vec<usize> = args.spawners.iter().map(|&n| usize::from(n)).collect();
    counts.dedup();
    let base = counts.first().copied().unwrap_or(1);
    let budget = if args.spawner_cpus > 0.0 {
        format!("capped at {} cores each (a cgroup CPU quota, 10 ms period)", args.spawner_cpus)
    } else {
        "with no CPU budget (they share the machine with everything else)".to_owned()
    };
    let order: Vec<String> = rounds.iter().map(|r| r.spawners.to_string()).collect();
    let mut md = format!(
        "{} pods per round posted to `POST /v3/pods` with {} in flight, through gateway → RabbitMQ → spawner → \
         store on the simulated runtime ({} shards, no health-poller or log-collector); each spawner is a \
         `corral serve spawner` process of its own, {budget}. Rounds in the order {}; a round ends at its last \
         AVAILABLE event.\n\n",
        args.pods,
        args.concurrency,
        args.shards,
        order.join(", ")
    );
    md.push_str(
        "| round | spawners | pods/s | wall s | spawner CPU s (each) | spawner budget used | quota ran out in | \
         corral-load CPU s | RabbitMQ CPU s | Redis CPU s | other CPU s |\n|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, r) in rounds.iter().enumerate() {
        let wall = r.wall.as_secs_f64();
        let each: Vec<String> = r.spawner_cpu.iter().map(|c| format!("{c:.2}")).collect();
        let used = if args.spawner_cpus > 0.0 && wall > 0.0 {
            let budget = args.spawner_cpus * wall * r.spawners as f64;
            format!("{:.0}%", r.spawner_cpu.iter().sum::<f64>() / budget * 100.0)
        } else {
            "–".to_owned()
        };
        let mut shares = r.throttled.clone();
        let throttled = if shares.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.0}% of periods", median(&mut shares) * 100.0)
        };
        md.push_str(&format!(
            "| {} | {} | {:.0} | {wall:.2} | {} | {used} | {throttled} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            i + 1,
            r.spawners,
            r.pods_per_s(),
            each.join(" + "),
            cpu(&r.usage, "corral-load"),
            cpu(&r.usage, "rabbitmq"),
            cpu(&r.usage, "redis"),
            cpu(&r.usage, OTHER),
        ));
    }
    let meds = medians(rounds, &counts);
    let base_rate = meds.first().map_or(0.0, |m| m.1);
    md.push_str("\n| spawners | median pods/s | × the first count |\n|---:|---:|---:|\n");
    for (n, rate) in &meds {
        let x = if base_rate > 0.0 { rate / base_rate } else { 0.0 };
        md.push_str(&format!("| {n} | **{rate:.0}** | {x:.2}× |\n"));
    }
    let verdicts: Vec<(usize, Option<bool>)> =
        counts.iter().skip(1).map(|&n| (n, adds_throughput(rounds, base, n))).collect();
    for (n, verdict) in &verdicts {
        let word = match verdict {
            Some(true) => "**met**: every round with it beat every round with",
            Some(false) => "**NOT met**: not every round with it beat every round with",
            None => "not measured against",
        };
        md.push_str(&format!("\nTarget: {n} spawners add throughput over {base} — {word} {base}.\n"));
    }
    md.push_str(
        "\n`spawner budget used`: the spawners' CPU over their quota for the round's wall time; `quota ran out \
         in`: the median spawner's share of 10 ms periods in which it used up its quota (near 100%: the budget is \
         what limits). `corral-load` is this process: the client and the gateway.\n",
    );

    let params = json!({
        "pods": args.pods,
        "spawners": args.spawners,
        "spawner_cpus": args.spawner_cpus,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "shards": args.shards,
    });
    let results = json!({
        "rounds": rounds.iter().map(|r| json!({
            "spawners": r.spawners,
            "pods": r.pods,
            "pods_per_s": r.pods_per_s(),
            "wall_s": r.wall.as_secs_f64(),
            "spawner_cpu_s": r.spawner_cpu,
            "throttled_share": r.throttled,
            "usage": r.usage,
        })).collect::<Vec<_>>(),
        "median_pods_per_s": meds.iter().map(|(n, rate)| json!({"spawners": n, "pods_per_s": rate})).collect::<Vec<_>>(),
        "adds_throughput": verdicts.iter().map(|(n, v)| json!({"spawners": n, "over": base, "met": v})).collect::<Vec<_>>(),
    });
    Outcome { params, results, markdown: md }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(spawners: usize, pods_per_s: f64) -> Round {
        Round {
            spawners,
            pods: 1000,
            wall: Duration::from_secs_f64(1000.0 / pods_per_s),
            spawner_cpu: vec![1.0; spawners],
            throttled: vec![0.9; spawners],
            usage: Usage::default(),
        }
    }

    #[test]
    fn more_spawners_add_throughput_only_when_every_round_is_faster() {
        type Case = (&'static [(usize, f64)], Option<bool>);
        let table: [Case; 4] = [
            (&[(1, 500.0), (2, 950.0), (2, 900.0), (1, 520.0)], Some(true)),
            // Faster on average, but one round with two was slower than one with one.
            (&[(1, 500.0), (2, 950.0), (2, 510.0), (1, 520.0)], Some(false)),
            (&[(1, 500.0), (2, 500.0)], Some(false)),
            (&[(1, 500.0), (1, 520.0)], None),
        ];
        for (rates, want) in table {
            let rounds: Vec<Round> = rates.iter().map(|&(n, r)| round(n, r)).collect();
            assert_eq!(adds_throughput(&rounds, 1, 2), want, "{rates:?}");
        }
    }

    #[test]
    fn the_summary_gives_medians_ratios_and_the_verdict() {
        let rounds = vec![round(1, 400.0), round(2, 780.0), round(2, 820.0), round(1, 420.0)];
        let meds = medians(&rounds, &[1, 2]);
        assert_eq!(meds.len(), 2);
        assert!((meds[0].1 - 410.0).abs() < 1e-6, "{meds:?}");
        assert!((meds[1].1 - 800.0).abs() < 1e-6, "{meds:?}");
        let args = crate::scenarios::scale_out::tests_support::args(&[]);
        let out = summarise(&args, &rounds);
        assert!(out.markdown.contains("| 2 | **800** | 1.95× |"), "{}", out.markdown);
        assert!(out.markdown.contains("2 spawners add throughput over 1 — **met**"), "{}", out.markdown);
        assert_eq!(out.results["adds_throughput"][0]["met"], json!(true));
        assert_eq!(out.results["rounds"].as_array().map(Vec::len), Some(4));
    }
}
