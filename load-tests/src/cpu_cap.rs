//! A fixed CPU budget for a child process, as a deployment gives each replica one (a
//! container's CPU limit): a cgroup of its own with a CFS quota. cgroup v2 (`cpu.max`) and
//! v1 (`cpu.cfs_quota_us`) are both handled; creating one needs root.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Quota period. Short, so a capped process runs in small slices rather than in bursts of a
/// tenth of a second followed by a long stall.
const PERIOD_US: u64 = 10_000;
/// Smallest quota the kernel accepts.
const MIN_QUOTA_US: u64 = 1_000;

/// Which cgroup interface holds the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    V2,
    V1,
}

/// A cgroup with a CPU quota; removed when dropped (once its processes have exited).
#[derive(Debug)]
pub struct CpuCap {
    dir: PathBuf,
}

/// Throttling counters of a cap (`cpu.stat`): how often the quota ran out.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throttling {
    pub periods: u64,
    pub throttled: u64,
}

impl Throttling {
    /// Share of the periods in which the quota ran out: near 1, the budget is what limits.
    pub fn share_since(&self, before: &Throttling) -> Option<f64> {
        let periods = self.periods.saturating_sub(before.periods);
        (periods > 0).then(|| self.throttled.saturating_sub(before.throttled) as f64 / periods as f64)
    }
}

/// The quota for `cores` per period (`cores` of 0.5 is half of one core).
fn quota_us(cores: f64) -> anyhow::Result<u64> {
    anyhow::ensure!(cores.is_finite() && cores > 0.0, "a CPU cap must be a positive number of cores, not {cores}");
    Ok(((cores * PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US))
}

/// `nr_periods` and `nr_throttled` of a `cpu.stat` file (same names in v1 and v2).
fn parse_stat(text: &str) -> Throttling {
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
    };
    Throttling { periods: field("nr_periods "), throttled: field("nr_throttled ") }
}

/// Where new cgroups with a CPU controller can be made, and how.
fn hierarchy() -> anyhow::Result<(PathBuf, Flavour)> {
    let v2 = Path::new("/sys/fs/cgroup");
    if std::fs::read_to_string(v2.join("cgroup.controllers")).is_ok_and(|c| c.split_whitespace().any(|w| w == "cpu")) {
        // Children only get `cpu.max` once the parent hands the controller down.
        let control = v2.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|w| w == "cpu") {
            std::fs::write(&control, "+cpu")
                .with_context(|| format!("enabling the cpu controller in {}", control.display()))?;
        }
        return Ok((v2.to_path_buf(), Flavour::V2));
    }
    for v1 in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"] {
        let v1 = Path::new(v1);
        if v1.join("cpu.cfs_quota_us").is_file() {
            return Ok((v1.to_path_buf(), Flavour::V1));
        }
    }
    anyhow::bail!("no cgroup CPU controller found under /sys/fs/cgroup (cgroup v2 cpu.max or v1 cpu.cfs_quota_us)")
}

impl CpuCap {
    /// A new cgroup named `name` whose processes together get `cores` of CPU time.
    pub fn new(name: &str, cores: f64) -> anyhow::Result<CpuCap> {
        let quota = quota_us(cores)?;
        let (root, flavour) = hierarchy().context("capping a process's CPU needs a writable cgroup (run as root)")?;
        let dir = root.join(name);
        std::fs::create_dir(&dir).with_context(|| format!("creating the cgroup {}", dir.display()))?;
        let cap = CpuCap { dir };
        match flavour {
            Flavour::V2 => cap.write("cpu.max", &format!("{quota} {PERIOD_US}"))?,
            Flavour::V1 => {
                cap.write("cpu.cfs_period_us", &PERIOD_US.to_string())?;
                cap.write("cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        Ok(cap)
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
    }

    /// Moves process `pid` (all its threads) under the cap.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The throttling counters so far.
    pub fn throttling(&self) -> Throttling {
        std::fs::read_to_string(self.dir.join("cpu.stat")).map(|s| parse_stat(&s)).unwrap_or_default()
    }

    /// The cgroup's directory.
    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CpuCap {
    fn drop(&mut self) {
        // Fails while a process is still inside; the group is then left for the operator.
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            tracing::warn!(error = %e, cgroup = %self.dir.display(), "could not remove a CPU cap's cgroup");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn quotas_follow_the_cores_asked_for() {
        let table = [(1.0, 10_000), (0.25, 2_500), (2.0, 20_000), (0.01, MIN_QUOTA_US)];
        for (cores, want) in table {
            assert_eq!(quota_us(cores).expect("a valid cap"), want, "{cores} cores");
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(quota_us(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn cpu_stat_counters_are_read_and_compared() {
        let text = "nr_periods 120\nnr_throttled 90\nthrottled_time 123\nnr_bursts 0\n";
        let now = parse_stat(text);
        assert_eq!(now, Throttling { periods: 120, throttled: 90 });
        let before = Throttling { periods: 20, throttled: 40 };
        assert_eq!(now.share_since(&before), Some(0.5));
        assert_eq!(now.share_since(&now), None);
        assert_eq!(parse_stat("usage_usec 5\n"), Throttling::default());
    }

    /// A busy child under a cap of 5 % of a core runs out of quota, and the group goes away
    /// with the cap once the child is gone.
    #[test]
    fn a_busy_process_under_a_cap_is_throttled_and_the_cap_is_removed() {
        let name = format!("corral-load-test-{}", std::process::id());
        let cap = CpuCap::new(&name, 0.05).expect("creating a cgroup (the suite runs as root)");
        assert!(cap.path().is_dir());
        let mut child =
            std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("starting sh");
        let moved = cap.add(child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stat = cap.throttling();
        while moved.is_ok() && stat.throttled == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            stat = cap.throttling();
        }
        let _ = child.kill();
        let _ = child.wait();
        moved.expect("moving the child under the cap");
        assert!(stat.throttled > 0, "a busy loop at 5 % of a core was never throttled ({stat:?})");
        let dir = cap.path().to_path_buf();
        drop(cap);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
