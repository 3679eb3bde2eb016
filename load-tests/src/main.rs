//! `corral-load`: Corral's load generator and benchmarks (see `load-tests/README.md`).

mod api;
mod cli;
mod compile_load;
mod cpu_cap;
mod facts;
mod procmem;
mod progress;
mod report;
mod scenarios;
mod stack;
mod stats;
mod usage;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser as _;

use cli::{Cli, Common, Scenario};
use facts::{Facts, Servers};
use progress::Progress;
use report::{Destination, RunReport, redact};
use stack::Target;

// The allocator the service binaries use, so the in-process stack allocates as they do
// (`--features system-allocator` for the experiment in the README).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Token lifetime for `--jwt-secret`.
const TOKEN_TTL_S: u64 = 24 * 3600;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(Box::pin(run(cli)))
}

fn reproduce_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p corral-load -- {}", redact(&args).join(" "))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The memory probe is a bare child process of `scale`: no stack, no report.
    if let Scenario::ScaleProbe(args) = &cli.scenario {
        return scenarios::scale_probe::main(args).await;
    }
    let common = cli.common;
    let _telemetry = corral_telemetry::init(&corral_telemetry::Settings {
        service: "corral-load".into(),
        json: false,
        filter: "warn".into(),
        otlp_endpoint: String::new(),
    })?;
    anyhow::ensure!(
        !cfg!(debug_assertions) || common.allow_debug,
        "this is a debug build: its figures mean nothing; use `cargo run --release -p corral-load` (or --allow-debug)"
    );
    let progress = Progress::new(!common.quiet);
    let name = cli.scenario.name();
    let compile_watch = compile_load::CompileWatch::start();
    let facts = Facts::collect(Servers { redis_url: &common.redis_url }).await;
    let started = Instant::now();
    let target = Arc::new(target_for(&cli.scenario, &common).await?);
    eprintln!("{name}: target {}", target.base);
    let scenario = async {
        match &cli.scenario {
            Scenario::SpawnLatency(args) => {
                Box::pin(scenarios::spawn_latency::run(&target, args, &common, progress)).await
            }
            Scenario::Pipeline(args) => {
                Box::pin(scenarios::pipeline::run(target.clone(), args, &common, progress)).await
            }
            Scenario::Claims(args) => Box::pin(scenarios::claims::run(&target, args, &common, progress)).await,
            Scenario::SpawnStorm(args) => Box::pin(scenarios::spawn_storm::run(&target, args, &common, progress)).await,
            Scenario::Requests(args) => Box::pin(scenarios::requests::run(&target, args, &common, progress)).await,
            Scenario::Scale(args) => Box::pin(scenarios::scale::run(target.clone(), args, &common, progress)).await,
            Scenario::ScaleOut(args) => {
                Box::pin(scenarios::scale_out::run(target.clone(), args, &common, progress)).await
            }
            Scenario::ScaleProbe(_) => Err(anyhow::anyhow!("scale-probe runs without a target")),
        }
    };
    // Ctrl-C still tears the in-process stack down (keys, queues, containers).
    let outcome = tokio::select! {
        r = scenario => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let shutdown = match sole_owner(target).await {
        Some(t) => t.shutdown().await,
        None => Err(anyhow::anyhow!("the target is still in use; its namespace was not cleaned up")),
    };
    let outcome = outcome?;
    let compile_load = compile_watch.finish().await;
    let report = RunReport {
        scenario: name.clone(),
        command: reproduce_command(),
        facts,
        compile_load,
        duration_s: started.elapsed().as_secs_f64(),
        params: outcome.params,
        results: outcome.results,
        markdown: outcome.markdown,
    };
    println!("{}", report.markdown_section());
    if !common.no_write {
        let dest = Destination { results_dir: common.results_dir.clone(), results_md: common.results_md.clone() };
        let (json, md) = report::write(&report, &dest)?;
        eprintln!("wrote {} and {}; refreshed {}", json.display(), md.display(), dest.results_md.display());
    }
    // Figures are kept even when cleanup failed; the failure still fails the run.
    shutdown
}

/// The target once every task of the scenario has let go of it (aborted tasks release it
/// asynchronously), or None after a few seconds.
async fn sole_owner(mut target: Arc<Target>) -> Option<Target> {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Arc::try_unwrap(target) {
            Ok(t) => return Some(t),
            Err(shared) if Instant::now() < deadline => {
                target = shared;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(_) => return None,
        }
    }
}

async fn target_for(scenario: &Scenario, common: &Common) -> anyhow::Result<Target> {
    if let Some(url) = &common.url {
        let token = match (&common.token, &common.jwt_secret) {
            (Some(t), _) => t.clone(),
            (None, Some(secret)) => api_gateway::auth::issue_token(secret, &common.tenant, &common.user, TOKEN_TTL_S)
                .context("issuing a token with --jwt-secret")?,
            (None, None) => anyhow::bail!("--url needs --token or --jwt-secret"),
        };
        return Target::remote(url, token);
    }
    let options = match scenario {
        Scenario::SpawnLatency(args) => args.stack_options(common),
        Scenario::Pipeline(args) => args.stack_options(common),
        Scenario::Claims(args) => args.stack_options(common),
        Scenario::SpawnStorm(args) => args.stack_options(common),
        Scenario::Requests(args) => args.stack_options(common),
        Scenario::Scale(args) => args.stack_options(common),
        Scenario::ScaleOut(args) => args.stack_options(common),
        Scenario::ScaleProbe(_) => anyhow::bail!("scale-probe runs without a target"),
    };
    eprintln!("{}: starting an in-process stack", scenario.name());
    Target::local(&options, &common.tenant, &common.user).await
}
