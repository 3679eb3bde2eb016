//! `claims`: a Binder pool of busybox httpd instances, claimed by 1, 10 and 100 concurrent
//! clients (`POST /api/applications/{template}`), next to cold spawns of the same template
//! (`POST /v3/pods` → AVAILABLE) in the same run; then a sustained claim rate with the pool's
//! `available` sampled, to see whether refills keep up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::claims_engine;
use super::claims_pool::{ClaimResult, Pool};
use super::claims_refill::{self, RefillPlan};
use super::claims_report::{Level, Measured, summarise};
use super::corral_pod::CorralPods;
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target};
use crate::usage::Snapshot;

const PORT: u16 = 8000;
/// Claimed instances are given back by the pool's own culling: idle (no proxy traffic) for
/// this long, so the claim rounds measure claims alone, not the clients' DELETEs too.
const CULL_TIMEOUT_S: u64 = 1;

/// Options of `claims`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runtime of the pool's instances: docker (image corral-test/busybox) or process
    /// (busybox httpd on the host).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Docker)]
    pub runtime: RuntimeChoice,
    /// Pool size: instances kept ready. At least the largest client count, so every claim
    /// of a round finds a ready instance.
    #[arg(long, default_value_t = 100)]
    pub size: u32,
    /// Cap on the pool's running instances (ready + warming + claimed); default 2 × size,
    /// room for one round of claims plus their refills.
    #[arg(long)]
    pub cap: Option<u32>,
    /// Concurrent clients of each claim round (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    pub clients: Vec<usize>,
    /// Claims per round; the pool is refilled to `size` before each round.
    #[arg(long, default_value_t = 100)]
    pub claims_per_round: usize,
    /// Cold spawns of the same template (one at a time) for the baseline.
    #[arg(long, default_value_t = 10)]
    pub cold_spawns: usize,
    /// Claims per second in the refill phase (0 skips it).
    #[arg(long, default_value_t = 20.0)]
    pub refill_rate: f64,
    /// Length of the refill phase, in seconds.
    #[arg(long, default_value_t = 30)]
    pub refill_seconds: u64,
    /// Length of the refill phase's baseline on Docker (the engine turning containers over by
    /// itself), in seconds; 0 skips it.
    #[arg(long, default_value_t = 10)]
    pub engine_seconds: u64,
    /// How often the refill phase samples `GET /api/pools/{template}`, in ms.
    #[arg(long, default_value_t = 250)]
    pub sample_ms: u64,
    /// Quiet time before each round, in ms: once the pool is full, the engine is still
    /// finishing the last instances' starts (overlay mounts, port proxies, first probes) for a
    /// second or so, and that work competes with the claims for the same cores. The round
    /// starts after this long, if the pool is still full. 0 starts at once.
    #[arg(long, default_value_t = 2000)]
    pub settle_ms: u64,
    /// Give up waiting for the pool to fill after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub fill_timeout_s: u64,
    /// Client poll interval of the cold baseline (`GET /v3/pods/{id}`), in ms.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Image of the docker instances (must exist locally).
    #[arg(long, default_value = "corral-test/busybox")]
    pub image: String,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions {
            auxiliaries: true,
            pool_manager: true,
            admin: Some(format!("{}:{}", common.tenant, common.user)),
            ..StackOptions::basic(self.runtime, 1, common)
        }
    }

    pub fn cap(&self) -> u32 {
        self.cap.unwrap_or(self.size.saturating_mul(2))
    }

    /// The template's image and shell command: busybox httpd on the instance's port.
    fn template(&self) -> (String, String) {
        match self.runtime {
            // The process runtime hands each instance a free port in $PORT.
            RuntimeChoice::Process => ("busybox".into(), "exec busybox httpd -f -p 127.0.0.1:$PORT -h /tmp".into()),
            // The shell (PID 1) stops on SIGTERM, so culled instances go at once rather than
            // after Docker's stop grace period (httpd as PID 1 ignores SIGTERM): fewer
            // containers linger on a 2-core machine.
            _ => (self.image.clone(), "httpd -f -p {port} -h /www & trap 'kill $!; exit 0' TERM; wait".into()),
        }
    }

    /// The pod a cold spawn of the template creates (what `member_pod` makes of it).
    fn cold_body(&self) -> Value {
        let (image, command) = self.template();
        let command = command.replace("{port}", &PORT.to_string());
        json!({
            "image": image,
            "command": ["/bin/sh", "-c", command],
            "networking": {"default": {"protocol": "http", "port": PORT}},
        })
    }
}

/// Runs the cold baseline, the claim rounds and the refill phase.
pub async fn run(target: &Target, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.runtime != RuntimeChoice::Simulated, "claims runs on the docker or process runtime");
    let max_clients = args.clients.iter().copied().max().unwrap_or(1);
    anyhow::ensure!(
        args.claims_per_round <= args.size as usize && max_clients <= args.size as usize,
        "--claims-per-round and every --clients value must be at most --size, so every claim of a round finds a ready instance"
    );
    anyhow::ensure!(
        args.cap() >= args.size.saturating_mul(2),
        "--cap must be at least 2 × --size (a round plus its refill)"
    );
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to docker")?
        .negotiate_version()
        .await
        .context("negotiating the docker api version")?;
    let tag = run_tag();
    let before = Snapshot::take_with_engine(&common.redis_url).await;
    let t0 = std::time::Instant::now();

    eprintln!("claims: cold baseline, {} spawns of the template's pod", args.cold_spawns);
    let poll = Duration::from_millis(args.poll_ms.max(1));
    let docker_again = docker.clone();
    let pods = CorralPods {
        target,
        docker,
        tenant: common.tenant.clone(),
        body: args.cold_body(),
        poll,
        timeout: Duration::from_secs(60),
    };
    pods.once(&format!("coldw{tag}")).await.context("warm-up cold spawn")?;
    let bar = progress.bar(args.cold_spawns as u64, "cold spawns");
    let mut cold = Vec::new();
    for i in 0..args.cold_spawns {
        cold.push(pods.once(&format!("cold{tag}{i}")).await.with_context(|| format!("cold spawn {i}"))?);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // The refill phase's baseline, while the engine has nothing else to do (no pool yet).
    let engine = if args.refill_rate > 0.0
        && args.refill_seconds > 0
        && args.runtime == RuntimeChoice::Docker
        && args.engine_seconds > 0
    {
        eprintln!("claims: refill baseline, the Docker engine alone for {} s", args.engine_seconds);
        let in_flight = args.refill_rate.ceil().max(1.0) as usize;
        let (image, command) = args.template();
        let command = command.replace("{port}", &PORT.to_string());
        let seconds = Duration::from_secs(args.engine_seconds);
        Some(
            claims_engine::measure(docker_again, &image, &command, PORT, format!("churn{tag}"), in_flight, seconds)
                .await?,
        )
    } else {
        None
    };

    let pool = Pool { target, template: format!("ld{tag}") };
    let (image, command) = args.template();
    pool.register(&image, &command, PORT, CULL_TIMEOUT_S).await?;
    pool.resize(args.size, args.cap()).await?;
    let fill_timeout = Duration::from_secs(args.fill_timeout_s);
    eprintln!("claims: filling a pool of {} (cap {})", args.size, args.cap());
    let initial_fill = pool.wait_full(u64::from(args.size), fill_timeout, progress, "initial fill").await?;

    let mut levels = Vec::new();
    for &clients in &args.clients {
        eprintln!("claims: {} claims by {clients} concurrent clients", args.claims_per_round);
        if args.settle_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
            pool.wait_full(u64::from(args.size), fill_timeout, progress, "settle").await?;
        }
        warm_connections(&pool, clients).await;
        let results = round(&pool, clients, args.claims_per_round, progress).await;
        let refill = pool.wait_full(u64::from(args.size), fill_timeout, progress, "refill").await?;
        levels.push(Level { clients, results, refill_after: refill });
    }

    let refill = if args.refill_rate > 0.0 && args.refill_seconds > 0 {
        eprintln!("claims: refill phase, {} claims/s for {} s", args.refill_rate, args.refill_seconds);
        let plan = RefillPlan {
            rate: args.refill_rate,
            duration: Duration::from_secs(args.refill_seconds),
            sample: Duration::from_millis(args.sample_ms.max(10)),
        };
        Some(claims_refill::run(&pool, &plan, progress).await?)
    } else {
        None
    };
    let wall = t0.elapsed();
    let usage = before.until(&Snapshot::take_with_engine(&common.redis_url).await);
    let measured = Measured { cold, initial_fill, levels, refill, engine, usage, wall };
    Ok(summarise(args, target, &measured))
}

/// Opens `clients` connections to the gateway first, so no claim pays for a TCP handshake.
async fn warm_connections(pool: &Pool<'_>, clients: usize) {
    let gets = (0..clients).map(|_| pool.counts());
    for r in futures::future::join_all(gets).await {
        if let Err(e) = r {
            tracing::warn!(error = %e, "warming a connection failed");
        }
    }
}

/// `total` claims by `clients` concurrent clients, each claiming again as soon as answered.
async fn round(pool: &Pool<'_>, clients: usize, total: usize, progress: Progress) -> Vec<ClaimResult> {
    let next = AtomicUsize::new(0);
    let bar = progress.bar(total as u64, "claims");
    let client = |_: usize| async {
        let mut mine = Vec::new();
        while next.fetch_add(1, Ordering::Relaxed) < total {
            mine.push(pool.claim().await);
            bar.inc(1);
        }
        mine
    };
    let all: Vec<ClaimResult> =
        futures::future::join_all((0..clients.max(1)).map(client)).await.into_iter().flatten().collect();
    bar.finish_and_clear();
    all
}
