//! The refill phase of `claims`: claims at a fixed rate (open loop: a claim is sent on every
//! tick whether or not earlier ones were answered), each instance given back by the pool's
//! culling about a second later, while the pool's counts are sampled. Shows whether the pool-manager refills as fast as users
//! take instances.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde::Serialize;

use super::claims_pool::{ClaimResult, Counts, Pool};
use crate::progress::Progress;

/// Bound on waiting for the claims still in flight when the phase ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the phase does.
#[derive(Debug, Clone, Copy)]
pub struct RefillPlan {
    /// Claims per second.
    pub rate: f64,
    pub duration: Duration,
    /// Interval between samples of the pool's counts.
    pub sample: Duration,
}

/// One sample of the pool's counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    pub t_s: f64,
    #[serde(flatten)]
    pub counts: Counts,
}

/// What the phase measured.
#[derive(Debug, Clone)]
pub struct Refill {
    pub plan: RefillPlan,
    pub claims: Vec<ClaimResult>,
    pub samples: Vec<Sample>,
    /// First tick → last claim answered.
    pub wall: Duration,
}

/// Runs the phase against a full pool.
pub async fn run(pool: &Pool<'_>, plan: &RefillPlan, progress: Progress) -> anyhow::Result<Refill> {
    let t0 = Instant::now();
    let end = t0 + plan.duration;
    let bar = progress.bar(plan.duration.as_secs().max(1), "refill (s)");
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate.max(0.001)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut in_flight = FuturesUnordered::new();
    let mut claims = Vec::new();
    // The claims and the sampler run side by side, so a slow sample never delays reading a
    // claim's answer (which would inflate its latency).
    let claiming = async {
        while Instant::now() < end {
            tokio::select! {
                _ = ticker.tick() => in_flight.push(pool.claim()),
                Some(r) = in_flight.next(), if !in_flight.is_empty() => claims.push(r),
            }
        }
        tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(r) = in_flight.next().await {
                claims.push(r);
            }
        })
        .await
        .is_ok()
    };
    let (drained, samples) = tokio::join!(claiming, sample_until(pool, plan.sample, t0, end, &bar));
    anyhow::ensure!(drained, "claims of the refill phase still unanswered after {DRAIN_TIMEOUT:?}");
    let mut samples = samples?;
    let wall = t0.elapsed();
    let counts = pool.counts().await?;
    samples.push(Sample { t_s: wall.as_secs_f64(), counts });
    bar.finish_and_clear();
    Ok(Refill { plan: *plan, claims, samples, wall })
}

/// Samples the pool's counts every `every` until `end`.
async fn sample_until(
    pool: &Pool<'_>,
    every: Duration,
    t0: Instant,
    end: Instant,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Sample>> {
    let mut sampler = tokio::time::interval(every);
    sampler.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples = Vec::new();
    while Instant::now() < end {
        sampler.tick().await;
        let counts = pool.counts().await?;
        samples.push(Sample { t_s: t0.elapsed().as_secs_f64(), counts });
        bar.set_position(t0.elapsed().as_secs());
        bar.set_message(format!("available {}", counts.available));
    }
    Ok(samples)
}

/// Figures of a refill phase for the report.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RefillFigures {
    /// Samples with `available` ≥ 80% of `size`, as a fraction of all samples.
    pub fraction_at_80pct: f64,
    pub min_available: u64,
    pub median_available: f64,
    /// Ready instances the pool produced per second: ready claims plus the change in
    /// `available`, over the phase.
    pub produced_per_s: f64,
    pub claims_per_s: f64,
}

/// The phase's figures given the pool `size`.
pub fn figures(r: &Refill, size: u64) -> RefillFigures {
    let threshold = (size as f64 * 0.8).ceil() as u64;
    let n = r.samples.len().max(1) as f64;
    let at = r.samples.iter().filter(|s| s.counts.available >= threshold).count() as f64;
    let mut avail: Vec<f64> = r.samples.iter().map(|s| s.counts.available as f64).collect();
    let median_available = super::median(&mut avail);
    let min_available = r.samples.iter().map(|s| s.counts.available).min().unwrap_or(0);
    let ready = r.claims.iter().filter(|c| c.outcome == super::claims_pool::Outcome::Ready).count() as f64;
    let first = r.samples.first().map_or(0.0, |s| s.counts.available as f64);
    let last = r.samples.last().map_or(0.0, |s| s.counts.available as f64);
    let secs = r.wall.as_secs_f64().max(f64::EPSILON);
    RefillFigures {
        fraction_at_80pct: at / n,
        min_available,
        median_available,
        produced_per_s: (ready + last - first) / secs,
        claims_per_s: r.claims.len() as f64 / secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::claims_pool::Outcome;

    fn refill(available: &[u64], ready_claims: usize, other_claims: usize) -> Refill {
        let sample =
            |i: usize, a: u64| Sample { t_s: i as f64, counts: Counts { available: a, size: 10, ..Counts::default() } };
        let claim = |outcome| ClaimResult { latency: Duration::from_millis(1), outcome, error: None };
        Refill {
            plan: RefillPlan { rate: 1.0, duration: Duration::from_secs(10), sample: Duration::from_secs(1) },
            claims: std::iter::repeat_n(claim(Outcome::Ready), ready_claims)
                .chain(std::iter::repeat_n(claim(Outcome::NotReady), other_claims))
                .collect(),
            samples: available.iter().enumerate().map(|(i, a)| sample(i, *a)).collect(),
            wall: Duration::from_secs(10),
        }
    }

    /// Available samples, ready claims, other claims → share of samples ≥ 8 (of size 10),
    /// min, median, ready instances produced per second.
    type Case = (&'static [u64], usize, usize, f64, u64, f64, f64);

    #[test]
    fn refill_figures_count_samples_at_80_percent_and_what_the_pool_produced() {
        let table: [Case; 3] = [
            (&[10, 9, 8, 8], 20, 0, 1.0, 8, 8.5, 1.8),
            (&[10, 7, 0, 0], 10, 10, 0.25, 0, 3.5, 0.0),
            (&[10, 10, 10, 10], 0, 0, 1.0, 10, 10.0, 0.0),
        ];
        for (available, ready, other, fraction, min, median, produced) in table {
            let f = figures(&refill(available, ready, other), 10);
            assert_eq!(f.fraction_at_80pct, fraction, "{available:?}");
            assert_eq!(f.min_available, min, "{available:?}");
            assert_eq!(f.median_available, median, "{available:?}");
            assert!((f.produced_per_s - produced).abs() < 1e-9, "{available:?}: {f:?}");
            assert!((f.claims_per_s - (ready + other) as f64 / 10.0).abs() < 1e-9);
        }
    }
}
