//! A spawner in its own OS process (`corral serve spawner`), so its resident memory is its
//! own: the `scale` scenario reads it from /proc while the spawner holds many pods.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::procmem::{self, Memory};

/// Bound on a graceful stop (the spawner stops every actor and releases its shards).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Memory counts as settled once two readings a second apart differ by less than this.
const SETTLED_FRACTION: f64 = 0.01;
/// Bound on waiting for memory to settle.
const SETTLE_MAX: Duration = Duration::from_secs(20);

/// The `corral` binary next to this one (both are built into the same target directory).
pub fn default_corral_bin() -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("corral"))).unwrap_or_else(|| "corral".into())
}

/// A running `corral serve spawner`; killed if dropped without [`SpawnerProcess::stop`].
pub struct SpawnerProcess {
    child: tokio::process::Child,
    pub pid: u32,
}

impl SpawnerProcess {
    /// Writes the stack's configuration to `dir` and starts the spawner on it.
    pub async fn start(bin: &Path, config_toml: &str, dir: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bin.is_file(),
            "{} not found: build it with `cargo build --release -p corral` (or pass --corral-bin)",
            bin.display()
        );
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("spawner.toml");
        std::fs::write(&config, config_toml).with_context(|| format!("writing {}", config.display()))?;
        let log = std::fs::File::create(dir.join("spawner.log")).context("creating the spawner log")?;
        let child = tokio::process::Command::new(bin)
            .args(["serve", "spawner", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("spawner log")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the spawner exited at once")?;
        Ok(Self { child, pid })
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        procmem::memory(self.pid).context("the spawner process is gone")
    }

    pub fn cpu_seconds(&self) -> Option<f64> {
        procmem::cpu_seconds(self.pid)
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait().context("checking the spawner")? {
            Some(status) => anyhow::bail!("the spawner process exited ({status})"),
            None => Ok(()),
        }
    }

    /// Waits `at_least`, then until resident memory stops moving; returns it.
    pub async fn settled_memory(&mut self, at_least: Duration) -> anyhow::Result<Memory> {
        tokio::time::sleep(at_least).await;
        let t0 = Instant::now();
        let mut last = self.memory()?;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.check_alive()?;
            let now = self.memory()?;
            let moved = now.rss_kib.abs_diff(last.rss_kib) as f64 / last.rss_kib.max(1) as f64;
            if moved < SETTLED_FRACTION || t0.elapsed() > SETTLE_MAX {
                return Ok(now);
            }
            last = now;
        }
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after a bound); how long it took.
    pub async fn stop(mut self) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for the spawner")?;
                Ok(t0.elapsed())
            }
            Err(_) => {
                self.child.kill().await.context("killing the spawner")?;
                anyhow::bail!("the spawner did not stop within {STOP_TIMEOUT:?}; killed")
            }
        }
    }
}
