//! `scale-out`: does a second spawner add throughput? Pods go gateway → RabbitMQ → spawner →
//! store (simulated runtime) with one spawner, then two, each a `corral serve spawner`
//! process of its own with the same CPU budget (a cgroup quota, as a deployment gives each
//! replica a CPU limit), in alternating rounds (1, 2, 2, 1, …) so that drifts of the
//! machine's speed hit both counts alike. The rounds of the first count are the baseline.
//!
//! Without a budget, the spawners of this 2-core machine share both cores with the rest of
//! the stack, the broker and Redis, which the pipeline already saturates: no count of
//! replicas can add CPU there (`--spawner-cpus 0` shows it). With a budget each, the spawner
//! is what limits, and the run shows whether the work spreads over the replicas.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use corral_bus::amqp::AmqpBus;

use super::scale::{post, tracked, wait_available};
use super::scale_out_report::{Round, summarise};
use super::scale_spawner::{SpawnerProcess, default_corral_bin};
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::cpu_cap::{CpuCap, Throttling};
use crate::progress::Progress;
use crate::stack::{LocalStack, RuntimeChoice, StackOptions, Target};
use crate::usage::{OTHER, Snapshot};

/// Options of `scale-out`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Pods per round.
    #[arg(long, default_value_t = 4_000)]
    pub pods: usize,
    /// Spawner counts compared, each spawner a process of its own (comma-separated; the
    /// first is the baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,2", value_parser = clap::value_parser!(u16).range(1..=8))]
    pub spawners: Vec<u16>,
    /// CPU budget of each spawner process, in cores (a cgroup CPU quota; needs root). 0: no
    /// budget, the spawners take what the machine has left.
    #[arg(long, default_value_t = 0.15)]
    pub spawner_cpus: f64,
    /// Rounds of each count; the order alternates (1, 2, 2, 1, …).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=20))]
    pub rounds: u16,
    /// POSTs in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Shards of the stack.
    #[arg(long, default_value_t = 16)]
    pub shards: u32,
    /// The `corral` binary run as the spawners (default: next to this one).
    #[arg(long, env = "CORRAL_LOAD_CORRAL_BIN")]
    pub corral_bin: Option<PathBuf>,
    /// Give up waiting for a round's pods after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
}

impl Args {
    /// The gateway only: the spawners run as processes, and the health-poller and
    /// log-collector would watch a simulated runtime that lives in another process.
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        let mut o = StackOptions::basic(RuntimeChoice::Simulated, 0, common);
        o.shards = self.shards;
        o
    }

    /// Spawner counts round by round: forwards, then backwards, and so on.
    pub fn schedule(&self) -> Vec<usize> {
        let counts: Vec<usize> = self.spawners.iter().map(|&n| usize::from(n)).collect();
        (0..self.rounds)
            .flat_map(|r| if r % 2 == 0 { counts.clone() } else { counts.iter().rev().copied().collect() })
            .collect()
    }
}

pub async fn run(target: Arc<Target>, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!args.spawners.is_empty(), "--spawners needs at least one count");
    anyhow::ensure!(
        args.spawner_cpus >= 0.0 && args.spawner_cpus.is_finite(),
        "--spawner-cpus must be a number of cores ≥ 0"
    );
    let stack = target.local_stack("scale-out")?;
    let bus = AmqpBus::connect(&common.amqp_url, &stack.ns).await.context("connecting to rabbitmq for events")?;
    let bin = args.corral_bin.clone().unwrap_or_else(default_corral_bin);
    let run = Run { target: &target, stack, bus: &bus, common, args, bin: &bin, progress };
    let mut rounds = Vec::new();
    for (i, n) in args.schedule().into_iter().enumerate() {
        eprintln!("scale-out: round {}, {n} spawner process(es), {} pods", i + 1, args.pods);
        rounds.push(run.round(n).await?);
    }
    Ok(summarise(args, &rounds))
}

/// The spawners of one round.
struct Fleet {
    procs: Vec<SpawnerProcess>,
    caps: Vec<CpuCap>,
    dir: PathBuf,
}

impl Fleet {
    async fn start(stack: &LocalStack, bin: &Path, n: usize, cpus: f64) -> anyhow::Result<Fleet> {
        let tag = run_tag();
        let mut fleet = Fleet {
            procs: Vec::new(),
            caps: Vec::new(),
            dir: std::env::temp_dir().join(format!("corral-load-scale-out-{tag}")),
        };
        for i in 0..n {
            let p = SpawnerProcess::start(bin, &stack.config_toml, &fleet.dir.join(format!("s{i}"))).await?;
            let pid = p.pid;
            fleet.procs.push(p);
            if cpus > 0.0 {
                let cap = CpuCap::new(&format!("corral-load-{tag}-s{i}"), cpus)?;
                cap.add(pid).with_context(|| format!("capping spawner process {pid}"))?;
                fleet.caps.push(cap);
            }
        }
        Ok(fleet)
    }

    fn cpu_seconds(&self) -> Vec<f64> {
        self.procs.iter().map(|p| p.cpu_seconds().unwrap_or(0.0)).collect()
    }

    fn throttling(&self) -> Vec<Throttling> {
        self.caps.iter().map(CpuCap::throttling).collect()
    }

    /// Stops every spawner gracefully (they release their shards), then removes the caps.
    async fn stop(self) -> anyhow::Result<()> {
        let stopped = futures::future::join_all(self.procs.into_iter().map(SpawnerProcess::stop)).await;
        drop(self.caps);
        let _ = std::fs::remove_dir_all(&self.dir);
        for s in stopped {
            s?;
        }
        Ok(())
    }
}

/// What every round of the run shares.
struct Run<'a> {
    target: &'a Arc<Target>,
    stack: &'a LocalStack,
    bus: &'a AmqpBus,
    common: &'a Common,
    args: &'a Args,
    bin: &'a Path,
    progress: Progress,
}

impl Run<'_> {
    /// One round with `n` spawners: started, measured, stopped, and their pods purged.
    async fn round(&self, n: usize) -> anyhow::Result<Round> {
        let mut fleet = Fleet::start(self.stack, self.bin, n, self.args.spawner_cpus).await?;
        let measured = self.measure(&mut fleet, n).await;
        let stopped = fleet.stop().await;
        // Cleanup, not measured: the next round's spawners must adopt none of these pods.
        let purged = self.stack.purge_pods().await;
        let round = measured?;
        stopped.context("stopping the round's spawners")?;
        purged.context("purging the round's pods")?;
        Ok(round)
    }

    async fn measure(&self, fleet: &mut Fleet, n: usize) -> anyhow::Result<Round> {
        let (args, common) = (self.args, self.common);
        self.stack.wait_for_shard_owners(n).await?;
        for p in &mut fleet.procs {
            p.check_alive()?;
        }
        let prefix = format!("o{}", run_tag());
        let (tracker, stop_tracking) = tracked(self.bus, &common.tenant, &prefix).await?;
        let (cpu0, throttled0) = (fleet.cpu_seconds(), fleet.throttling());
        let before = Snapshot::take(&common.redis_url).await;
        let t0 = Instant::now();
        let timeout = Duration::from_secs(args.timeout_s);
        let label = format!("{n} spawner(s)");
        let outcome = tokio::try_join!(
            post(self.target, &prefix, args.pods, args.concurrency),
            wait_available(&tracker, args.pods, timeout, self.progress, &label),
        );
        stop_tracking();
        let (_, last) = outcome?;
        let wall = last.saturating_duration_since(t0);
        let mut usage = before.until(&Snapshot::take(&common.redis_url).await);
        let spawner_cpu: Vec<f64> = fleet.cpu_seconds().iter().zip(&cpu0).map(|(b, a)| (b - a).max(0.0)).collect();
        // The spawner processes are part of the run, not outside load.
        if let Some(other) = usage.cpu_seconds.get_mut(OTHER) {
            *other = (*other - spawner_cpu.iter().sum::<f64>()).max(0.0);
        }
        let throttled = fleet.throttling().iter().zip(&throttled0).filter_map(|(b, a)| b.share_since(a)).collect();
        Ok(Round { spawners: n, pods: args.pods, wall, spawner_cpu, throttled, usage })
    }
}

/// Parsing the scenario's arguments, for tests here and in the report.
#[cfg(test)]
pub(super) mod tests_support {
    use clap::Parser as _;

    use crate::cli::{Cli, Scenario};

    pub(in crate::scenarios) fn args(cli: &[&str]) -> super::Args {
        let all = ["corral-load", "scale-out"].into_iter().chain(cli.iter().copied());
        match Cli::try_parse_from(all).expect("valid arguments").scenario {
            Scenario::ScaleOut(a) => a,
            other => panic!("not scale-out: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::tests_support::args;
    use crate::cli::Cli;

    #[test]
    fn rounds_alternate_their_order() {
        assert_eq!(args(&[]).schedule(), vec![1, 2, 2, 1]);
        assert_eq!(args(&["--rounds", "3"]).schedule(), vec![1, 2, 2, 1, 1, 2]);
        assert_eq!(args(&["--spawners", "1,2,4", "--rounds", "2"]).schedule(), vec![1, 2, 4, 4, 2, 1]);
        assert_eq!(args(&["--rounds", "1", "--spawners", "3"]).schedule(), vec![3]);
    }

    #[test]
    fn spawner_counts_and_rounds_are_bounded() {
        for bad in [&["--spawners", "0"][..], &["--spawners", "9"], &["--rounds", "0"]] {
            let all = ["corral-load", "scale-out"].into_iter().chain(bad.iter().copied());
            assert!(Cli::try_parse_from(all).is_err(), "{bad:?} must be refused");
        }
    }
}
