//! How the in-process stack is configured: the options a scenario chooses, the TOML given to
//! every service (also written to a file for a spawner run as its own process), and the
//! runtime the in-process services share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use corral_runtime::Runtime;

/// Which runtime the in-process spawners drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// Containers through the local Docker engine.
    Docker,
    /// Commands run as local process groups (busybox httpd on the host).
    Process,
    /// Nothing runs: in-memory containers, for throughput and scale figures.
    Simulated,
}

impl RuntimeChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Process => "process",
            Self::Simulated => "simulated",
        }
    }
}

/// How to build the in-process stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub runtime: RuntimeChoice,
    /// In-process spawners. 0: the scenario runs its spawner elsewhere (its own process).
    pub spawners: usize,
    pub shards: u32,
    pub probe_interval_ms: u64,
    /// Also run the health-poller and log-collector (a deployment always does).
    pub auxiliaries: bool,
    /// Also run the pool-manager (Binder pools).
    pub pool_manager: bool,
    /// `tenant:user` made a tenant admin (Binder operator endpoints), if any.
    pub admin: Option<String>,
    pub amqp_url: String,
    pub redis_url: String,
    /// `amqp.max_kicks_per_message` of the stack (Corral's default when not given).
    pub max_kicks_per_message: Option<u16>,
    /// `amqp.max_events_per_message` of the stack (Corral's default when not given).
    pub max_events_per_message: Option<u16>,
    /// `amqp.kick_interval_ms` of the stack (Corral's default when not given).
    pub kick_interval_ms: Option<u64>,
}

impl StackOptions {
    /// The options most scenarios start from: no auxiliaries, no pool-manager, no admin.
    pub fn basic(runtime: RuntimeChoice, spawners: usize, common: &crate::cli::Common) -> Self {
        Self {
            runtime,
            spawners,
            shards: 16,
            probe_interval_ms: 50,
            auxiliaries: false,
            pool_manager: false,
            admin: None,
            amqp_url: common.amqp_url.clone(),
            redis_url: common.redis_url.clone(),
            max_kicks_per_message: None,
            max_events_per_message: None,
            kick_interval_ms: None,
        }
    }
}

/// Where the process runtime of namespace `ns` keeps its state (removed at shutdown).
pub fn process_state_dir(ns: &str) -> PathBuf {
    std::env::temp_dir().join(format!("corral-load-{ns}"))
}

/// The stack's configuration, laid over Corral's defaults by every service.
pub fn config_text(ns: &str, o: &StackOptions) -> String {
    // Only written when asked for, so scenarios that need no admin do not depend on the key.
    let admin = o.admin.as_ref().map(|a| format!("admin_users = \"{a}\"\n")).unwrap_or_default();
    let mut kicks = o.max_kicks_per_message.map(|n| format!("max_kicks_per_message = {n}\n")).unwrap_or_default();
    if let Some(n) = o.max_events_per_message {
        kicks.push_str(&format!("max_events_per_message = {n}\n"));
    }
    if let Some(ms) = o.kick_interval_ms {
        kicks.push_str(&format!("kick_interval_ms = {ms}\n"));
    }
    format!(
        r#"
[amqp]
url = "{amqp}"
namespace = "{ns}"
{kicks}[redis]
url = "{redis}"
namespace = "{ns}"
[http]
addr = "127.0.0.1:0"
[auth]
{admin}[runtime]
kind = "{kind}"
namespace = "{ns}"
process_state_dir = "{state}"
simulated_start_delay_ms = 0
[spawner]
shards = {shards}
[health]
probe_interval_ms = {probe}
[telemetry]
log_filter = "warn"
[images]
allow = ["corral-test/*", "sim/*", "busybox*"]
"#,
        amqp = o.amqp_url,
        redis = o.redis_url,
        kind = o.runtime.as_str(),
        // The state directory's parent: the runtime adds the namespace itself.
        state = process_state_root(ns).display(),
        shards = o.shards,
        probe = o.probe_interval_ms,
    )
}

fn process_state_root(ns: &str) -> PathBuf {
    process_state_dir(ns).join("state")
}

/// The runtime the in-process services share (the simulated one lives in memory, so every
/// in-process service must use the same value).
pub async fn make_runtime(ns: &str, kind: RuntimeChoice) -> anyhow::Result<Arc<dyn Runtime>> {
    Ok(match kind {
        RuntimeChoice::Docker => Arc::new(
            corral_runtime::docker::DockerRuntime::connect(corral_runtime::docker::DockerOptions::new(ns.to_string()))
                .await
                .context("connecting to docker")?,
        ),
        RuntimeChoice::Process => Arc::new(
            corral_runtime::process::ProcessRuntime::new(corral_runtime::process::ProcessOptions {
                namespace: ns.to_string(),
                state_dir: process_state_root(ns),
            })
            .context("preparing the process runtime")?,
        ),
        RuntimeChoice::Simulated => {
            Arc::new(corral_runtime::simulated::SimulatedRuntime::new(corral_runtime::simulated::SimulatedOptions {
                namespace: ns.to_string(),
                start_delay: Duration::ZERO,
            }))
        }
    })
}

/// Removes the process runtime's state directory (after its processes are gone).
pub fn remove_state_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(runtime: RuntimeChoice, admin: Option<&str>) -> StackOptions {
        StackOptions {
            runtime,
            spawners: 1,
            shards: 4,
            probe_interval_ms: 50,
            auxiliaries: false,
            pool_manager: false,
            admin: admin.map(str::to_string),
            amqp_url: "amqp://127.0.0.1:5672/%2f".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            max_kicks_per_message: None,
            max_events_per_message: None,
            kick_interval_ms: None,
        }
    }

    #[test]
    fn the_config_names_the_runtime_and_an_admin_only_when_asked() {
        let plain = config_text("lns", &options(RuntimeChoice::Process, None));
        assert!(plain.contains("kind = \"process\""), "{plain}");
        assert!(!plain.contains("admin_users"), "{plain}");
        let cfg = corral_config::Config::from_toml_over_defaults(&plain).expect("a valid config");
        assert_eq!(cfg.spawner.shards, 4);
        assert_eq!(cfg.redis.namespace, "lns");
        let admin = config_text("lns", &options(RuntimeChoice::Docker, Some("dev:loadtest")));
        assert!(admin.contains("admin_users = \"dev:loadtest\""), "{admin}");
        corral_config::Config::from_toml_over_defaults(&admin).expect("a valid config with an admin");
    }
}
