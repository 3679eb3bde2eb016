//! Where a spawner's memory per pod goes: a child process of `scale` (hidden subcommand
//! `scale-probe`) that holds N of the spawner's real, idle pod actors (`spawner::actor::
//! PodActor`, in a map as the spawner keeps them), then N simulated-runtime containers, and
//! reports how much resident memory each step added. Run in its own process so nothing else
//! moves its RSS.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_model::PodKey;
use corral_runtime::{ContainerSpec, PortSpec, Runtime as _};
use serde::{Deserialize, Serialize};

use crate::procmem;

/// Options of the hidden `scale-probe` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Actors, then containers, to hold.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
}

/// What the probe prints (one JSON line on stdout).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ProbeReport {
    pub count: usize,
    pub rss_start_kib: u64,
    pub rss_actors_kib: u64,
    pub rss_containers_kib: u64,
    /// Resident bytes per idle pod actor, map entry included.
    pub actor_bytes: f64,
    /// Resident bytes per simulated container record.
    pub container_bytes: f64,
}

fn rss() -> anyhow::Result<u64> {
    Ok(procmem::memory(std::process::id()).context("reading this process's memory")?.rss_kib)
}

fn per_item(after: u64, before: u64, n: usize) -> f64 {
    after.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64
}

/// The probe itself (in the child process).
pub async fn main(args: &ProbeArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("corral-load-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure(args.count, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("{}", serde_json::to_string(&result?)?);
    Ok(())
}

async fn measure(n: usize, dir: &Path) -> anyhow::Result<ProbeReport> {
    let cfg = corral_config::Config::from_toml_over_defaults("").context("default config")?;
    let runtime =
        Arc::new(corral_runtime::simulated::SimulatedRuntime::new(corral_runtime::simulated::SimulatedOptions {
            namespace: "probe".into(),
            start_delay: Duration::ZERO,
        }));
    let deps = spawner::Deps {
        store: Arc::new(corral_store::embedded::EmbeddedStore::open(&dir.join("store.redb")).context("store")?),
        bus: Arc::new(corral_bus::memory::MemoryBus::new()),
        runtime: runtime.clone(),
    };
    let ctx = Arc::new(spawner::shard::Context::new(cfg, deps, "probe".into()));
    let keys: Vec<PodKey> = (0..n).map(|i| PodKey::new("dev", format!("pod{i:07}"))).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_start_kib = rss()?;

    let mut actors = HashMap::new();
    for key in &keys {
        let args = spawner::actor::PodArgs { key: key.clone() };
        let (actor, _) = ractor::Actor::spawn(None, spawner::actor::PodActor { ctx: ctx.clone() }, args)
            .await
            .map_err(|e| anyhow::anyhow!("starting an actor: {e}"))?;
        actors.insert(key.clone(), actor);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_actors_kib = rss()?;

    for key in &keys {
        runtime.spawn(&spec(key)).await.context("spawning a simulated container")?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_containers_kib = rss()?;
    for a in actors.values() {
        a.stop(None);
    }
    Ok(ProbeReport {
        count: n,
        rss_start_kib,
        rss_actors_kib,
        rss_containers_kib,
        actor_bytes: per_item(rss_actors_kib, rss_start_kib, n),
        container_bytes: per_item(rss_containers_kib, rss_actors_kib, n),
    })
}

/// The container the spawner asks for a `local_only` pod with default resources.
fn spec(key: &PodKey) -> ContainerSpec {
    ContainerSpec {
        pod: key.clone(),
        generation: 1,
        instance: 1,
        image: "corral-test/busybox".into(),
        command: None,
        args: None,
        env: Default::default(),
        cpu_limit_millis: 2000,
        mem_limit_mib: 3072,
        pids_limit: 512,
        ports: vec![PortSpec { name: "default".into(), container_port: 5000 }],
        files: Vec::new(),
    }
}

/// Runs the probe as a child process of this binary and reads its report.
pub async fn run_child(count: usize) -> anyhow::Result<ProbeReport> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let out = tokio::process::Command::new(exe)
        .args(["--quiet", "scale-probe", "--count", &count.to_string()])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running the scale probe")?;
    anyhow::ensure!(out.status.success(), "the scale probe failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).context("no report from the scale probe")?;
    serde_json::from_str(line).context("reading the scale probe's report")
}
