//! Facts about the machine and the software under test, recorded with every run so figures
//! can be compared (or not) across machines and commits.

use std::time::Duration;

use serde::Serialize;

/// Bound on each external command (`rabbitmqctl` starts an Erlang VM).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
const UNKNOWN: &str = "unknown";
/// The crate's own directory: git is asked about the repository this tool was built from,
/// whatever the current directory.
const REPO_DIR: &str = env!("CARGO_MANIFEST_DIR");

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// UTC, RFC 3339.
    pub date: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages when the run started (other work on the machine).
    pub load_average: String,
    pub os: String,
    pub rabbitmq_version: String,
    pub redis_version: String,
    pub docker_version: String,
    pub git_commit: String,
    /// Whether the work tree had uncommitted changes when the run started.
    pub git_dirty: bool,
    pub rustc: String,
    /// `release` or `debug`: figures only mean something in release.
    pub build_profile: String,
    /// Global allocator of this process (and so of the in-process stack).
    pub allocator: String,
}

/// Where to ask the servers for their versions.
pub struct Servers<'a> {
    pub redis_url: &'a str,
}

impl Facts {
    /// Gathers every fact; one that cannot be found reads "unknown" rather than failing
    /// the run.
    pub async fn collect(servers: Servers<'_>) -> Facts {
        let (rabbitmq, redis, docker, git, rustc) = tokio::join!(
            rabbitmq_version(),
            redis_version(servers.redis_url),
            docker_version(),
            run_command("git", &["-C", REPO_DIR, "rev-parse", "HEAD"]),
            run_command("rustc", &["--version"]),
        );
        let dirty = run_command("git", &["-C", REPO_DIR, "status", "--porcelain", "--untracked-files=no"])
            .await
            .is_some_and(|s| !s.trim().is_empty());
        Facts {
            date: now_rfc3339(),
            nproc: std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            cpu_model: cpu_model().unwrap_or_else(|| UNKNOWN.into()),
            mem_total_mib: mem_total_kib().map_or(0, |k| k / 1024),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| UNKNOWN.into()),
            load_average: read_trimmed("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| UNKNOWN.into()),
            os: os_name().unwrap_or_else(|| UNKNOWN.into()),
            rabbitmq_version: rabbitmq.unwrap_or_else(|| UNKNOWN.into()),
            redis_version: redis.unwrap_or_else(|| UNKNOWN.into()),
            docker_version: docker.unwrap_or_else(|| UNKNOWN.into()),
            git_commit: git.unwrap_or_else(|| UNKNOWN.into()),
            git_dirty: dirty,
            rustc: rustc.unwrap_or_else(|| UNKNOWN.into()),
            build_profile: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
            allocator: if cfg!(feature = "system-allocator") { "system (glibc malloc)" } else { "mimalloc" }.into(),
        }
    }

    /// A markdown bullet list.
    pub fn markdown(&self) -> String {
        let dirty = if self.git_dirty { " (uncommitted changes)" } else { "" };
        format!(
            "- date: {}\n- machine: {} cores ({}), {} MiB RAM, kernel {}, {}; load average at start {}\n- servers: RabbitMQ {}, Redis {}, Docker Engine {}\n- build: {} profile, {} allocator, {}, commit {}{dirty}\n",
            self.date,
            self.nproc,
            self.cpu_model,
            self.mem_total_mib,
            self.kernel,
            self.os,
            self.load_average,
            self.rabbitmq_version,
            self.redis_version,
            self.docker_version,
            self.build_profile,
            self.allocator,
            self.rustc,
            self.git_commit,
        )
    }
}

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| UNKNOWN.into())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// `MemTotal` from /proc/meminfo, in KiB.
fn mem_total_kib() -> Option<u64> {
    parse_mem_total(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let line = text.lines().find(|l| l.starts_with("PRETTY_NAME="))?;
    Some(line.trim_start_matches("PRETTY_NAME=").trim_matches('"').to_string())
}

/// First line of a command's stdout, if it ran and succeeded within the time bound.
async fn run_command(program: &str, args: &[&str]) -> Option<String> {
    let out = tokio::time::timeout(COMMAND_TIMEOUT, tokio::process::Command::new(program).args(args).output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

async fn rabbitmq_version() -> Option<String> {
    if let Some(v) = run_command("rabbitmqctl", &["version"]).await {
        return Some(v);
    }
    // Without the CLI's cookie, the installed package still says which broker this is.
    run_command("dpkg-query", &["-W", "-f", "${Version}", "rabbitmq-server"]).await.map(|v| format!("{v} (package)"))
}

async fn redis_version(url: &str) -> Option<String> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = tokio::time::timeout(COMMAND_TIMEOUT, client.get_multiplexed_async_connection()).await.ok()?.ok()?;
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await.ok()?;
    info.lines().find_map(|l| l.strip_prefix("redis_version:")).map(|v| v.trim().to_string())
}

async fn docker_version() -> Option<String> {
    let docker = bollard::Docker::connect_with_local_defaults().ok()?;
    let v = tokio::time::timeout(COMMAND_TIMEOUT, docker.version()).await.ok()?.ok()?;
    let api = v.api_version.map(|a| format!(" (API {a})")).unwrap_or_default();
    v.version.map(|ver| format!("{ver}{api}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_read_from_meminfo() {
        let text = "MemFree:  100 kB\nMemTotal:       25165824 kB\n";
        assert_eq!(parse_mem_total(text), Some(25_165_824));
        assert_eq!(parse_mem_total("nothing"), None);
    }
}
