//! A `corral dev` process for the `cli_*` and `dev_*` tests: started from the built binary,
//! its banner read, stopped gently (SIGTERM) or killed (SIGKILL), and whatever pods it left
//! running removed when the test ends, pass or fail.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corral_runtime::{ContainerInfo, ContainerState, Runtime as _};

pub const BIN: &str = env!("CARGO_BIN_EXE_corral");
/// The runtime namespace `corral dev` uses unless configured otherwise.
pub const DEFAULT_NAMESPACE: &str = "corral";
const BANNER_END: &str = "Ctrl-C stops every service";
const START_WITHIN: Duration = Duration::from_secs(30);
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// A free loopback port (released before use; good enough on a test machine).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// A running `corral dev`.
pub struct Dev {
    child: Option<Child>,
    pub url: String,
    pub token: String,
    pub banner: String,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl Dev {
    /// Starts `corral dev --data-dir DIR --http-addr 127.0.0.1:<free port> EXTRA…` and waits
    /// for its banner. Its log goes to `<DIR>/../dev-<port>.log`.
    pub fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Dev {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = data_dir.with_file_name(format!("dev-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("create the dev log");
        let mut cmd = Command::new(BIN);
        cmd.arg("dev").arg("--data-dir").arg(data_dir).args(["--http-addr", &addr]).args(extra);
        cmd.env("RUST_LOG", "warn").env_remove("CORRAL_JWT_SECRET").env_remove("CORRAL_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file).spawn().expect("start corral dev");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout for the process's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut dev = Dev {
            child: Some(child),
            url: String::new(),
            token: String::new(),
            banner: String::new(),
            data_dir: data_dir.to_owned(),
            log,
        };
        let deadline = Instant::now() + START_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    dev.banner.push_str(&line);
                    dev.banner.push('\n');
                    if line.starts_with(BANNER_END) {
                        break;
                    }
                }
                Err(_) => panic!(
                    "corral dev printed no complete banner within {START_WITHIN:?}\nstdout:\n{}\nlog:\n{}",
                    dev.banner,
                    dev.log_text()
                ),
            }
        }
        for line in dev.banner.lines() {
            if let Some(v) = line.trim().strip_prefix("export CORRAL_URL=") {
                dev.url = v.to_owned();
            }
            if let Some(v) = line.trim().strip_prefix("export CORRAL_TOKEN=") {
                dev.token = v.to_owned();
            }
        }
        assert_eq!(dev.url, format!("http://{addr}"), "banner:\n{}", dev.banner);
        assert!(!dev.token.is_empty(), "no token in the banner:\n{}", dev.banner);
        dev
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `corral ARGS…` against this server with its token.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_token(args, &self.token)
    }

    pub fn cli_with_token(&self, args: &[&str], token: &str) -> Output {
        Command::new(BIN)
            .args(args)
            .env("CORRAL_URL", &self.url)
            .env("CORRAL_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("run the corral CLI")
    }

    /// Runs `corral ARGS…` against this server with `input` on its stdin.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(args)
            .env("CORRAL_URL", &self.url)
            .env("CORRAL_TOKEN", &self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the corral CLI");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("CLI output")
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), "TERM");
        let deadline = Instant::now() + STOP_WITHIN;
        loop {
            if let Some(status) = child.try_wait().expect("wait for corral dev") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("corral dev did not stop within {STOP_WITHIN:?} of SIGTERM\nlog:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL corral dev");
        child.wait().expect("reap corral dev");
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("run kill");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the command succeeded and returns its stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "command failed ({}):\nstdout:\n{}\nstderr:\n{}", o.status, stdout(o), stderr(o));
    stdout(o)
}

/// The process runtime `corral dev` uses for a data directory.
pub fn process_runtime(data_dir: &Path) -> corral_runtime::process::ProcessRuntime {
    corral_runtime::process::ProcessRuntime::new(corral_runtime::process::ProcessOptions {
        namespace: DEFAULT_NAMESPACE.into(),
        state_dir: data_dir.join("process"),
    })
    .expect("open the process runtime")
}

/// Running containers of the dev process runtime, per the state on disk.
pub fn running_processes(data_dir: &Path) -> Vec<ContainerInfo> {
    let rt = process_runtime(data_dir);
    let mut all = block_on(async move { rt.list().await.expect("list process containers") });
    all.retain(|c| c.state == ContainerState::Running);
    all
}

/// Runs a future to completion on a private runtime in its own thread, so it works from
/// sync tests, async tests and `Drop` alike.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(fut)
    })
    .join()
    .expect("helper thread")
}

/// A live process started by the process runtime, found through `/proc` rather than the
/// runtime's records, so processes the records lost are found too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProcess {
    pub pid: u32,
    /// The container directory name (the runtime's container id).
    pub container: String,
}

/// Every live process whose `HOME` (set by the process runtime to `<dir>/<id>/work`, and
/// never changed by the process) lies under `<data_dir>/process/`.
pub fn host_processes(data_dir: &Path) -> Vec<HostProcess> {
    let root = data_dir.join("process").join(DEFAULT_NAMESPACE);
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let home = environ.split(|&b| b == 0).find_map(|kv| kv.strip_prefix(b"HOME="));
        let Some(home) = home.map(|h| PathBuf::from(String::from_utf8_lossy(h).into_owned())) else { continue };
        let Ok(rest) = home.strip_prefix(&root) else { continue };
        if let Some(container) = rest.iter().next().and_then(|c| c.to_str()) {
            found.push(HostProcess { pid, container: container.to_owned() });
        }
    }
    found
}

/// Removes every process-runtime container under a data directory when dropped, and kills
/// the process group of any process of that directory the runtime does not know about.
pub struct ProcessCleanup(pub PathBuf);

impl Drop for ProcessCleanup {
    fn drop(&mut self) {
        let rt = process_runtime(&self.0);
        block_on(async move {
            let all = rt.list().await.unwrap_or_default();
            let removals = all.iter().map(|c| rt.remove(&c.id));
            for r in futures::future::join_all(removals).await {
                if let Err(e) = r {
                    eprintln!("cleanup: removing a process container failed: {e}");
                }
            }
        });
        for p in host_processes(&self.0) {
            // Each pod process leads its own process group.
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", p.pid)]).stderr(Stdio::null()).status();
        }
    }
}

/// Removes every Docker container of a runtime namespace when dropped.
pub struct DockerCleanup(pub String);

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let ids = docker_containers(&self.0, true);
        if !ids.is_empty() {
            let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).status();
        }
    }
}

/// Ids of the Docker containers of a namespace (`all`: stopped ones too).
pub fn docker_containers(ns: &str, all: bool) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.arg("ps").arg("-q").args(["--filter", &format!("label=corral.namespace={ns}")]);
    if all {
        cmd.arg("-a");
    }
    let out = cmd.output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Polls `f` until it returns Some, or panics with `what` after `within`.
#[track_caller]
pub fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pod id unique to this run.
pub fn pod_id(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
