//! `spawn-storm`: N pods requested at once, time until all are AVAILABLE and spawns per
//! second. With the process runtime (busybox httpd on the host) next to JupyterHub with
//! SimpleLocalProcessSpawner starting the same servers; with the Docker runtime next to the
//! same N containers started in parallel through the Docker API.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::jupyterhub::{Hub, HubPaths};
use super::jupyterhub_storm::{self, HubStorm};
use super::raw_docker::{RawDocker, RawSpec};
use super::storm_corral::{self, CorralStorm, StormSetup};
use super::storm_raw::{self, RawStorm};
use super::storm_report::{Measured, summarise};
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target};
use crate::usage::Snapshot;

/// busybox httpd in the foreground on the image's (empty) /www, as in spawn-latency.
const DOCKER_COMMAND: [&str; 6] = ["httpd", "-f", "-p", "8000", "-h", "/www"];
const PORT: u16 = 8000;

/// Options of `spawn-storm`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runtime: process (busybox httpd on the host, JupyterHub baseline) or docker (raw
    /// Docker baseline).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Process)]
    pub runtime: RuntimeChoice,
    /// Pods requested at once, one storm per value (comma-separated). Default: 100,500 with
    /// the process runtime, 50 with docker.
    #[arg(long, value_delimiter = ',')]
    pub pods: Vec<usize>,
    /// Servers of the JupyterHub baseline (process runtime; 0 skips it). Measured right
    /// after Corral's storm of the same size.
    #[arg(long, default_value_t = 100)]
    pub jupyterhub_servers: usize,
    /// The `jupyterhub` program of a venv with JupyterHub 6.1 (see jupyterhub-setup.sh).
    #[arg(long, env = "CORRAL_LOAD_JUPYTERHUB")]
    pub jupyterhub: Option<PathBuf>,
    /// configurable-http-proxy (Debian's node-configurable-http-proxy).
    #[arg(long, default_value = "/usr/bin/configurable-http-proxy")]
    pub proxy: PathBuf,
    /// Image of the docker pods and containers (must exist locally).
    #[arg(long, default_value = "corral-test/busybox")]
    pub image: String,
    /// Unrecorded pods (and servers, containers) started and stopped first, on each side.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Give up on one storm after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout_s: u64,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions { auxiliaries: true, ..StackOptions::basic(self.runtime, 1, common) }
    }

    pub fn sizes(&self) -> Vec<usize> {
        match (self.pods.is_empty(), self.runtime) {
            (false, _) => self.pods.clone(),
            (true, RuntimeChoice::Docker) => vec![50],
            (true, _) => vec![100, 500],
        }
    }

    fn jupyterhub_paths(&self) -> HubPaths {
        let default = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/corral-jupyterhub-venv/bin/jupyterhub");
        HubPaths { jupyterhub: self.jupyterhub.clone().unwrap_or(default), proxy: self.proxy.clone() }
    }

    fn body(&self, www: &std::path::Path) -> Value {
        let command: Vec<String> = match self.runtime {
            RuntimeChoice::Docker => DOCKER_COMMAND.iter().map(|s| s.to_string()).collect(),
            // The process runtime hands each pod a free loopback port in $PORT.
            _ => vec![
                "/bin/sh".into(),
                "-c".into(),
                format!("exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h {}", www.display()),
            ],
        };
        let image = if self.runtime == RuntimeChoice::Docker { self.image.as_str() } else { "busybox" };
        json!({"image": image, "command": command, "networking": {"default": {"protocol": "http", "port": PORT}}})
    }
}

/// The JupyterHub side: running, or why it is not.
enum HubState {
    Running(Box<Hub>),
    Unavailable(String),
    NotWanted,
}

pub async fn run(target: &Target, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    anyhow::ensure!(args.runtime != RuntimeChoice::Simulated, "spawn-storm runs on the process or docker runtime");
    let tag = run_tag();
    let dir = std::env::temp_dir().join(format!("corral-load-storm-{tag}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).with_context(|| format!("creating {}", www.display()))?;
    let result = measure(target, args, common, progress, &tag, &dir).await;
    let cleanup = std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()));
    let outcome = result?;
    cleanup?;
    Ok(outcome)
}

async fn measure(
    target: &Target,
    args: &Args,
    common: &Common,
    progress: Progress,
    tag: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let setup = StormSetup {
        target,
        tenant: &common.tenant,
        amqp_url: &common.amqp_url,
        body: args.body(&dir.join("www")),
        timeout: Duration::from_secs(args.timeout_s),
    };
    let raw = match args.runtime {
        RuntimeChoice::Docker => Some(raw_docker(args, tag).await?),
        _ => None,
    };
    let hub_http = reqwest::Client::builder().pool_max_idle_per_host(1024).build().context("http client")?;
    let mut hub = start_hub(args, dir, &hub_http).await;
    let before = Snapshot::take_with_engine(&common.redis_url).await;
    let t0 = std::time::Instant::now();
    if args.warmup > 0 {
        storm_corral::storm(&setup, &format!("w{tag}"), args.warmup, Progress::new(false)).await.context("warm-up")?;
        if let Some(raw) = &raw {
            storm_raw::storm(raw, 900_000, args.warmup, Progress::new(false)).await;
        }
    }
    let mut corral: Vec<CorralStorm> = Vec::new();
    let mut docker: Vec<RawStorm> = Vec::new();
    let mut jupyterhub: Option<HubStorm> = None;
    for (round, &n) in args.sizes().iter().enumerate() {
        eprintln!("spawn-storm: {n} pods at once ({})", args.runtime.as_str());
        corral.push(storm_corral::storm(&setup, &format!("s{tag}r{round}p"), n, progress).await?);
        if let Some(raw) = &raw {
            eprintln!("spawn-storm: {n} raw docker containers at once");
            docker.push(storm_raw::storm(raw, round * 10_000, n, progress).await);
        }
        if let HubState::Running(h) = &hub
            && n == args.jupyterhub_servers
            && jupyterhub.is_none()
        {
            eprintln!("spawn-storm: {n} jupyterhub servers at once");
            jupyterhub = Some(hub_storm(h, &hub_http, args, tag, progress).await?);
        }
    }
    let wall = t0.elapsed();
    let usage = before.until(&Snapshot::take_with_engine(&common.redis_url).await);
    let (hub_version, hub_missing) = match &mut hub {
        HubState::Running(h) => {
            let v = h.version.clone();
            h.stop().await;
            (Some(v), None)
        }
        HubState::Unavailable(why) => (None, Some(why.clone())),
        HubState::NotWanted => (None, None),
    };
    if let Some(raw) = &raw {
        raw.remove_leftovers().await?;
    }
    let measured = Measured { corral, docker, jupyterhub, hub_version, hub_missing, usage, wall };
    Ok(summarise(args, &measured))
}

async fn raw_docker(args: &Args, tag: &str) -> anyhow::Result<RawDocker> {
    let docker = bollard::Docker::connect_with_local_defaults()
        .context("connecting to docker")?
        .negotiate_version()
        .await
        .context("negotiating the docker api version")?;
    // Corral's default pod resources and pids limit, as in spawn-latency.
    let spec = RawSpec {
        image: args.image.clone(),
        command: DOCKER_COMMAND.iter().map(|s| s.to_string()).collect(),
        container_port: PORT,
        cpu_millis: 2000,
        mem_mib: 3072,
        pids_limit: 512,
    };
    Ok(RawDocker::new(
        docker,
        spec,
        format!("storm{tag}"),
        Duration::from_millis(5),
        Duration::from_secs(args.timeout_s),
    ))
}

async fn start_hub(args: &Args, dir: &std::path::Path, http: &reqwest::Client) -> HubState {
    if args.runtime == RuntimeChoice::Docker || args.jupyterhub_servers == 0 {
        return HubState::NotWanted;
    }
    let paths = args.jupyterhub_paths();
    if let Some(why) = paths.missing() {
        eprintln!("spawn-storm: JupyterHub baseline not run: {why}");
        return HubState::Unavailable(why);
    }
    match Hub::start(&paths, &dir.join("jupyterhub"), http).await {
        Ok(h) => HubState::Running(Box::new(h)),
        Err(e) => {
            let why = format!("JupyterHub did not start: {e:#}");
            eprintln!("spawn-storm: {why}");
            HubState::Unavailable(why)
        }
    }
}

/// JupyterHub: users created, one warm-up server, then the storm.
async fn hub_storm(
    hub: &Hub,
    http: &reqwest::Client,
    args: &Args,
    tag: &str,
    progress: Progress,
) -> anyhow::Result<HubStorm> {
    let timeout = Duration::from_secs(args.timeout_s);
    let warm: Vec<String> = (0..args.warmup).map(|i| format!("w{tag}{i}")).collect();
    let names: Vec<String> = (0..args.jupyterhub_servers).map(|i| format!("b{tag}{i}")).collect();
    jupyterhub_storm::create_users(hub, http, &[warm.clone(), names.clone()].concat()).await?;
    if !warm.is_empty() {
        jupyterhub_storm::storm(hub, http, &warm, timeout, Progress::new(false)).await.context("jupyterhub warm-up")?;
    }
    jupyterhub_storm::storm(hub, http, &names, timeout, progress).await
}
