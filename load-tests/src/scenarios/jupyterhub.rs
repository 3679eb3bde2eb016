//! The JupyterHub baseline of `spawn-storm`: JupyterHub (from PyPI, in a venv) with
//! configurable-http-proxy and SimpleLocalProcessSpawner, set up as in
//! `shared/reference/pools.md` §7 (all loopback, throttles off, token hashing off), each
//! single-user "server" being busybox httpd on the port the hub chose. This module starts
//! and stops the hub; `jupyterhub_storm` drives it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Bound on the hub answering its API after start.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on the hub stopping (it stops its servers and the proxy first).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where JupyterHub and the proxy are.
#[derive(Debug, Clone)]
pub struct HubPaths {
    pub jupyterhub: PathBuf,
    pub proxy: PathBuf,
}

impl HubPaths {
    /// Why the baseline cannot run here, if it cannot.
    pub fn missing(&self) -> Option<String> {
        if !self.jupyterhub.is_file() {
            return Some(format!(
                "JupyterHub not found at {} (create it with `load-tests/jupyterhub-setup.sh`: a venv with \
                 `pip install jupyterhub==6.1.1`)",
                self.jupyterhub.display()
            ));
        }
        if !self.proxy.exists() {
            return Some(format!(
                "configurable-http-proxy not found at {} (Debian package node-configurable-http-proxy)",
                self.proxy.display()
            ));
        }
        None
    }
}

/// A running hub; stopped (with everything it started) by [`Hub::stop`] or on drop.
pub struct Hub {
    child: Option<tokio::process::Child>,
    pub dir: PathBuf,
    pub api: String,
    pub token: String,
    pub version: String,
    proxy_api: u16,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(l.local_addr().context("finding a free port")?.port())
}

fn secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// `jupyterhub_config.py` of §7.3, with this run's ports, directory and web root.
fn config(dir: &Path, www: &Path, public: u16, hub: u16, proxy_api: u16, proxy: &Path) -> String {
    let d = dir.display();
    format!(
        r#"import os
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = ["{proxy}"]
c.ConfigurableHTTPProxy.auth_token = os.environ["CONFIGPROXY_AUTH_TOKEN"]
c.JupyterHub.authenticator_class = "null"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{d}/home/{{username}}"
c.Spawner.cmd = ["/bin/sh", "-c",
    'p=${{JUPYTERHUB_SERVICE_URL##*:}}; exec /bin/busybox httpd -f -p 127.0.0.1:${{p%%/*}} -h {www}']
c.Spawner.args = []
c.JupyterHub.services = [{{"name": "bench", "api_token": os.environ["BENCH_TOKEN"]}}]
c.JupyterHub.load_roles = [{{"name": "bench-role",
    "scopes": ["admin:users", "admin:servers", "list:users", "read:metrics"],
    "services": ["bench"]}}]
c.JupyterHub.trust_user_provided_tokens = True
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30
c.JupyterHub.db_url = "sqlite:///{d}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{d}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{d}/jupyterhub.pid"
c.ConfigurableHTTPProxy.pid_file = "{d}/proxy.pid"
"#,
        proxy = proxy.display(),
        www = www.display(),
    )
}

impl Hub {
    /// Starts the hub in `dir` (created; its servers serve the empty `dir/www`), and waits
    /// for its API.
    pub async fn start(paths: &HubPaths, dir: &Path, http: &reqwest::Client) -> anyhow::Result<Hub> {
        let www = dir.join("www");
        for d in [dir.join("home"), www.clone()] {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        let (public, hub_port, proxy_api) = (free_port()?, free_port()?, free_port()?);
        let cfg = dir.join("jupyterhub_config.py");
        std::fs::write(&cfg, config(dir, &www, public, hub_port, proxy_api, &paths.proxy))
            .with_context(|| format!("writing {}", cfg.display()))?;
        let log = std::fs::File::create(dir.join("hub.log")).context("creating the hub log")?;
        let token = secret();
        let child = tokio::process::Command::new(&paths.jupyterhub)
            .arg("-f")
            .arg(&cfg)
            .current_dir(dir)
            .env("BENCH_TOKEN", &token)
            .env("CONFIGPROXY_AUTH_TOKEN", secret())
            // Debian's proxy with a NodeSource node: the recipe's workaround (§7.1).
            .env("NODE_PATH", "/usr/share/nodejs")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("hub log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", paths.jupyterhub.display()))?;
        let mut hub = Hub {
            child: Some(child),
            dir: dir.to_path_buf(),
            api: format!("http://127.0.0.1:{hub_port}/hub/api"),
            token,
            version: String::new(),
            proxy_api,
        };
        match hub.wait_up(http).await {
            Ok(v) => hub.version = v,
            Err(e) => {
                hub.stop().await;
                return Err(e.context(format!("see {}", dir.join("hub.log").display())));
            }
        }
        Ok(hub)
    }

    async fn wait_up(&mut self, http: &reqwest::Client) -> anyhow::Result<String> {
        let t0 = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking the hub")?
            {
                anyhow::bail!("jupyterhub exited at start ({status})");
            }
            if let Ok(resp) = http.get(format!("{}/", self.api)).send().await
                && resp.status().is_success()
            {
                let v: serde_json::Value = resp.json().await.unwrap_or_default();
                return Ok(v["version"].as_str().unwrap_or("unknown").to_string());
            }
            anyhow::ensure!(t0.elapsed() < START_TIMEOUT, "jupyterhub did not answer within {START_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The hub's process id (for its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// Stops the hub with SIGTERM (it then stops its servers and the proxy), SIGKILL if it
    /// does not exit in time; then stops whatever it left behind.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            signal(pid, "TERM");
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
            tracing::warn!("jupyterhub did not stop within {STOP_TIMEOUT:?}; killing it");
            let _ = child.kill().await;
        }
        self.sweep();
    }

    /// Kills, by pid, the proxy (its pid file) and any single-user server still serving
    /// from this run's directory.
    fn sweep(&self) {
        if let Some(pid) = std::fs::read_to_string(self.dir.join("proxy.pid")).ok().and_then(|s| s.trim().parse().ok())
            && process_mentions(pid, &format!("--api-port {}", self.proxy_api)).is_some_and(|m| m)
        {
            signal(pid, "KILL");
        }
        for pid in pids_mentioning(&self.dir.display().to_string()) {
            signal(pid, "KILL");
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        // Interrupted runs (Ctrl-C) still leave no hub, proxy or servers behind.
        if let Some(child) = &self.child
            && let Some(pid) = child.id()
        {
            signal(pid, "TERM");
            std::thread::sleep(Duration::from_secs(2));
            self.sweep();
        }
    }
}

/// Sends a signal with `kill(1)` (this crate has no unsafe code for `kill(2)`).
fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

/// Whether the process's command line (arguments joined by spaces) contains `needle`.
fn process_mentions(pid: u32, needle: &str) -> Option<bool> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " ").contains(needle))
}

fn pids_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && process_mentions(pid, needle).unwrap_or(false))
        .collect()
}
