//! Where the CPU went during a run: CPU seconds of this process (client and in-process
//! stack), the broker and Redis, read from /proc; and Redis commands by name, from
//! `INFO commandstats`. Both servers may be shared with other work: these are hints, not
//! exact attributions.

use std::collections::BTreeMap;

use serde::Serialize;

/// Processes whose CPU time is tracked, by `/proc/<pid>/comm`.
const SERVERS: [(&str, &str); 2] = [("rabbitmq", "beam.smp"), ("redis", "redis-server")];

/// Tracked on request: the container engine with the instances it runs, and the JupyterHub
/// baseline (hub and proxy). Processes that exit between two snapshots lose their time to
/// "other processes".
const EXTRA: [(&str, &[&str]); 2] = [
    (
        ENGINE_LABEL,
        &[
            "dockerd",
            "containerd",
            "containerd-shim",
            "containerd-shim-runc-v2",
            "docker-proxy",
            "runc",
            "busybox",
            "httpd",
        ],
    ),
    ("jupyterhub + proxy", &["jupyterhub", "node", "configurable-h"]),
];
/// Label of the engine's CPU time.
pub const ENGINE_LABEL: &str = "docker + instances";

/// CPU ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// A snapshot of cumulative counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    cpu_ticks: BTreeMap<String, u64>,
    /// Busy ticks of all CPUs together (everything but idle and iowait).
    machine_busy: Option<u64>,
    redis_calls: BTreeMap<String, u64>,
}

/// Differences between two snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// CPU seconds by process (`corral-load` is this process: client and in-process stack).
    pub cpu_seconds: BTreeMap<String, f64>,
    /// Redis commands executed, by command.
    pub redis_calls: BTreeMap<String, u64>,
}

impl Snapshot {
    pub async fn take(redis_url: &str) -> Snapshot {
        Self::take_tracking(redis_url, false).await
    }

    /// Like [`Snapshot::take`], also tracking the container engine and instances (so they
    /// are not counted as outside load).
    pub async fn take_with_engine(redis_url: &str) -> Snapshot {
        Self::take_tracking(redis_url, true).await
    }

    async fn take_tracking(redis_url: &str, engine: bool) -> Snapshot {
        let mut cpu_ticks = BTreeMap::new();
        if let Some(t) = stat_ticks("self") {
            cpu_ticks.insert("corral-load".to_string(), t);
        }
        for (label, comm) in SERVERS {
            let total: u64 = pids_named(comm).iter().filter_map(|pid| stat_ticks(pid)).sum();
            cpu_ticks.insert(label.to_string(), total);
        }
        if engine {
            for (label, comms) in EXTRA {
                let total: u64 = comms.iter().flat_map(|c| pids_named(c)).filter_map(|pid| stat_ticks(&pid)).sum();
                cpu_ticks.insert(label.to_string(), total);
            }
        }
        let machine_busy = std::fs::read_to_string("/proc/stat").ok().and_then(|s| parse_machine_busy(&s));
        Snapshot { cpu_ticks, machine_busy, redis_calls: redis_calls(redis_url).await.unwrap_or_default() }
    }

    /// What happened between `self` and `later`.
    pub fn until(&self, later: &Snapshot) -> Usage {
        let mut cpu_seconds: BTreeMap<String, f64> = later
            .cpu_ticks
            .iter()
            .map(|(k, v)| {
                let before = self.cpu_ticks.get(k).copied().unwrap_or(0);
                (k.clone(), v.saturating_sub(before) as f64 / TICKS_PER_SECOND)
            })
            .collect();
        // Whatever else ran meanwhile (builds, other tests) competes for the same cores.
        if let (Some(a), Some(b)) = (self.machine_busy, later.machine_busy) {
            let tracked: f64 = cpu_seconds.values().sum();
            let other = (b.saturating_sub(a) as f64 / TICKS_PER_SECOND - tracked).max(0.0);
            cpu_seconds.insert(OTHER.to_string(), other);
        }
        let redis_calls = later
            .redis_calls
            .iter()
            .filter_map(|(k, v)| {
                let d = v.saturating_sub(self.redis_calls.get(k).copied().unwrap_or(0));
                (d > 0).then(|| (k.clone(), d))
            })
            .collect();
        Usage { cpu_seconds, redis_calls }
    }
}

impl Usage {
    /// CPU of processes outside this run (builds, other tests) over `wall_s` seconds, in
    /// cores (1.0 = one core busy all along).
    pub fn other_cores(&self, wall_s: f64) -> Option<f64> {
        let other = self.cpu_seconds.get(OTHER)?;
        (wall_s > 0.0).then(|| other / wall_s)
    }

    /// One markdown sentence on the outside load during a measurement of `wall_s` seconds.
    pub fn load_note(&self, wall_s: f64) -> String {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let engine = self.cpu_seconds.contains_key(ENGINE_LABEL);
        match self.other_cores(wall_s) {
            Some(c) => format!(
                "Outside load: processes other than this one, RabbitMQ, Redis{} used {:.0}% of one core on \
                 average during the {wall_s:.1} s measured ({cores} cores in all){}. {}\n",
                if engine { ", Docker, the instances, JupyterHub" } else { "" },
                c * 100.0,
                if c >= 0.25 { ": a busy machine" } else { "" },
                if engine {
                    "With Docker this also counts kernel work Docker causes (network namespaces) and short-lived \
                     runc processes; the compile-load line below says how much was other users' builds."
                } else {
                    "The compile-load line below says how much of it was other users' builds."
                }
            ),
            None => String::new(),
        }
    }
}

/// Label of the CPU time of every other process (machine busy time minus the tracked ones).
pub const OTHER: &str = "other processes";

/// Busy ticks from the aggregate `cpu` line of /proc/stat: user, nice, system, irq, softirq
/// and steal (idle and iowait are not busy).
fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// utime + stime of `/proc/<pid>/stat`.
pub(crate) fn stat_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&text)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces: count fields after its closing paren.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn pids_named(comm: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| name.chars().all(|c| c.is_ascii_digit()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm))
        .collect()
}

async fn redis_calls(url: &str) -> Option<BTreeMap<String, u64>> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.ok()?;
    Some(parse_commandstats(&info))
}

/// `cmdstat_get:calls=10,usec=...` lines → command → calls.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_found_after_a_name_with_spaces() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n";
        assert_eq!(parse_machine_busy(stat), Some(161));
    }

    #[test]
    fn commandstats_are_parsed() {
        let info =
            "# Commandstats\r\ncmdstat_evalsha:calls=7,usec=70,usec_per_call=10.00\r\ncmdstat_get:calls=3,usec=1\r\n";
        let m = parse_commandstats(info);
        assert_eq!(m.get("evalsha"), Some(&7));
        assert_eq!(m.get("get"), Some(&3));
        assert_eq!(m.len(), 2);
    }
}
