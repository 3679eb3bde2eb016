//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::scenarios::{claims, pipeline, requests, scale, scale_out, scale_probe, spawn_latency, spawn_storm};
use crate::stack::RuntimeChoice;

/// Corral's load generator and benchmarks.
///
/// Each scenario starts a whole Corral stack in this process, in a fresh namespace on the
/// local RabbitMQ, Redis and Docker (removed again at the end), or drives an already
/// running gateway given with `--url`. Every run measures a baseline in the same run,
/// prints a markdown summary, writes `results/<scenario>-<timestamp>.{json,md}` and
/// refreshes the scenario's section of `RESULTS.md`.
///
/// Build and run in release: `cargo run --release -p corral-load -- <scenario>`.
#[derive(Debug, Parser)]
#[command(name = "corral-load", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Options every scenario shares.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Options of every scenario")]
pub struct Common {
    /// Drive the gateway at this URL (e.g. http://127.0.0.1:8080) instead of starting a stack
    /// in this process. Needs `--token` or `--jwt-secret` for that deployment.
    #[arg(long, global = true, env = "CORRAL_LOAD_URL")]
    pub url: Option<String>,
    /// Token for `--url` (sent as X-Tapis-Token).
    #[arg(long, global = true, env = "CORRAL_LOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Signing key of the `--url` deployment: a token for `--tenant`/`--user` is made with it.
    #[arg(long, global = true, env = "CORRAL_LOAD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Tenant the pods are created in.
    #[arg(long, global = true, default_value = "dev")]
    pub tenant: String,
    /// User the pods are created as.
    #[arg(long, global = true, default_value = "loadtest")]
    pub user: String,
    /// RabbitMQ (in-process stack, baselines, pod events).
    #[arg(long, global = true, env = "CORRAL_TEST_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Redis (in-process stack, server facts).
    #[arg(long, global = true, env = "CORRAL_TEST_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Directory for the per-run JSON and markdown files.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub results_dir: PathBuf,
    /// Markdown file holding the latest figures of each scenario.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md"))]
    pub results_md: PathBuf,
    /// Write nothing to disk (print the summary only).
    #[arg(long, global = true)]
    pub no_write: bool,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Allow running a debug build (its figures are not comparable).
    #[arg(long, global = true)]
    pub allow_debug: bool,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Cold spawn latency on Docker: POST → AVAILABLE through Corral vs create → answering
    /// through the Docker API, interleaved, one at a time.
    SpawnLatency(spawn_latency::Args),
    /// Pipeline throughput on the simulated runtime: pods/s from the first POST to the last
    /// AVAILABLE, vs raw RabbitMQ publish→consume throughput of the same broker, measured
    /// before and after the pipeline. Targets: ≥ 2000 pods/s and ≥ 25% of the broker's rate.
    Pipeline(pipeline::Args),
    /// Binder pool claims (`POST /api/applications/{template}`) by 1, 10 and 100 concurrent
    /// clients vs cold spawns of the same template; then whether refills keep `available`
    /// at ≥ 80% of the pool's size under 20 claims/s.
    ///
    /// A template (busybox httpd) is registered and its pool sized (`--size`, `--cap`) as an
    /// admin; once `GET /api/pools/{template}` shows `--size` available, each round sends
    /// `--claims-per-round` claims from `--clients` concurrent clients (connections opened
    /// beforehand) and times each answer; the claimed instances are given back (the
    /// template's `cull-timeout` is 1 s) and the pool refilled before the next round. Baseline, in the same run: `--cold-spawns` cold spawns
    /// of the same template's pod (`POST /v3/pods` → AVAILABLE). Refill phase: claims at
    /// `--refill-rate` per second for `--refill-seconds` (instances culled a second later),
    /// with `available` sampled. Targets: claim p99 ≤ 10 ms at 100 clients; available ≥ 80%
    /// of size in every sample.
    ///
    /// Example: `corral-load claims --size 20 --clients 1,10 --claims-per-round 20`.
    Claims(claims::Args),
    /// N pods requested at once (100 and 500 on the process runtime, 50 on docker): time
    /// until all are AVAILABLE and spawns/s, vs JupyterHub (SimpleLocalProcessSpawner) or
    /// the same containers started in parallel through the Docker API.
    ///
    /// All N `POST /v3/pods` are in flight together; a pod counts when its AVAILABLE event
    /// reaches this client on `corral.events` (readiness = busybox httpd answered HTTP), and
    /// `GET /v3/pods` must show all N AVAILABLE afterwards. Process runtime: right after
    /// Corral's storm of `--jupyterhub-servers` pods, JupyterHub 6.1 (venv from
    /// `load-tests/jupyterhub-setup.sh`, Debian's configurable-http-proxy, recipe of
    /// `shared/reference/pools.md` §7) starts as many busybox httpd servers through its REST
    /// API, each followed on its progress stream. Docker runtime: the same N containers
    /// created and started in parallel through the Docker API until their ports answer.
    /// Targets (process runtime): 100 pods all AVAILABLE in ≤ 0.6 s, ≥ 5× faster than
    /// JupyterHub.
    ///
    /// Examples: `corral-load spawn-storm --pods 20 --jupyterhub-servers 20`,
    /// `corral-load spawn-storm --runtime docker --pods 10`.
    SpawnStorm(spawn_storm::Args),
    /// Spawn requests published straight to `corral.requests` by an outside AMQP client,
    /// requests/s with replies, vs raw publish → consume → ack of the same bytes.
    ///
    /// A plain lapin client (no Corral code; `docs/amqp-requests.md`) publishes `--requests`
    /// spawn requests (JSON envelope, token header, `reply_to` its own exclusive queue),
    /// persistent and confirmed, `--in-flight` unconfirmed at once, and consumes and acks the
    /// replies; the stack runs the simulated runtime. Baseline first, on the same broker:
    /// the same client publishes the same bytes to a durable queue and consumes and acks
    /// them.
    ///
    /// Example: `corral-load requests --requests 1000`.
    Requests(requests::Args),
    /// Spawner memory holding 10,000 and 100,000 idle pods (simulated runtime, spawner in
    /// its own process), bytes per pod with a breakdown; time of a full resync of 10,000.
    ///
    /// Resync: `--resync-pods` pods are created, their spawner stopped gracefully and a
    /// fresh one started over the same runtime; timed until every pod was re-adopted and
    /// re-announced AVAILABLE. Memory: `corral serve spawner` (the binary next to this one;
    /// `cargo build --release -p corral`) runs as its own process; its resident set is read
    /// from /proc with no pods, then holding each of `--sizes` pods once idle. A child
    /// process then measures the spawner's real idle pod actors and simulated containers on
    /// their own (`--probe-count`). Target: ≤ 10 KB per idle pod at 100,000 pods.
    ///
    /// Example: `corral-load scale --sizes 1000,5000 --resync-pods 1000 --probe-count 5000`.
    Scale(scale::Args),
    /// Whether a second spawner adds throughput: pods through the pipeline (simulated
    /// runtime) with 1 and 2 spawners, each a process of its own with the same CPU budget.
    ///
    /// Every spawner runs as `corral serve spawner` (the binary next to this one; `cargo
    /// build --release -p corral`), placed in a cgroup of its own whose CPU quota is
    /// `--spawner-cpus` cores, as a deployment gives each replica a CPU limit (needs root and
    /// a cgroup CPU controller). Each round starts its spawners, waits until they share the
    /// shards, posts `--pods` pods and times them to the last AVAILABLE event, then stops
    /// the spawners and purges the pods. Rounds alternate (1, 2, 2, 1, …); the first count's
    /// rounds are the baseline. Target: every round with 2 spawners beats every round with 1.
    ///
    /// Without a budget (`--spawner-cpus 0`) the spawners share this machine's cores with a
    /// stack that already saturates them, which no count of replicas can change.
    ///
    /// Example: `corral-load scale-out --pods 2000 --spawner-cpus 0.2 --rounds 1`.
    ScaleOut(scale_out::Args),
    /// Internal: the memory breakdown probe `scale` runs as a child process.
    #[command(hide = true)]
    ScaleProbe(scale_probe::ProbeArgs),
}

impl Scenario {
    /// The scenario's name in reports (with the runtime when it is not the default one, so
    /// runs on different runtimes keep their own section of RESULTS.md).
    pub fn name(&self) -> String {
        match self {
            Self::SpawnLatency(_) => "spawn-latency".into(),
            Self::Pipeline(_) => "pipeline".into(),
            Self::Claims(a) => with_runtime("claims", a.runtime, RuntimeChoice::Docker),
            Self::SpawnStorm(a) => format!("spawn-storm-{}", a.runtime.as_str()),
            Self::Requests(_) => "requests".into(),
            Self::Scale(_) => "scale".into(),
            Self::ScaleOut(_) => "scale-out".into(),
            Self::ScaleProbe(_) => "scale-probe".into(),
        }
    }
}

fn with_runtime(base: &str, runtime: RuntimeChoice, default: RuntimeChoice) -> String {
    if runtime == default { base.to_string() } else { format!("{base}-{}", runtime.as_str()) }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("corral-load").chain(args.iter().copied())).expect("valid arguments")
    }

    #[test]
    fn reports_are_named_by_scenario_and_non_default_runtime() {
        let table: [(&[&str], &str); 7] = [
            (&["claims"], "claims"),
            (&["claims", "--runtime", "process"], "claims-process"),
            (&["spawn-storm"], "spawn-storm-process"),
            (&["spawn-storm", "--runtime", "docker"], "spawn-storm-docker"),
            (&["scale"], "scale"),
            (&["scale-out"], "scale-out"),
            (&["--quiet", "requests"], "requests"),
        ];
        for (args, name) in table {
            assert_eq!(parse(args).scenario.name(), name, "{args:?}");
        }
    }

    #[test]
    fn storm_sizes_default_by_runtime() {
        let sizes = |args: &[&str]| match parse(args).scenario {
            Scenario::SpawnStorm(a) => a.sizes(),
            other => panic!("not a storm: {other:?}"),
        };
        assert_eq!(sizes(&["spawn-storm"]), vec![100, 500]);
        assert_eq!(sizes(&["spawn-storm", "--runtime", "docker"]), vec![50]);
        assert_eq!(sizes(&["spawn-storm", "--pods", "7,9"]), vec![7, 9]);
    }
}
