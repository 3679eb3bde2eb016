//! Concurrent compile load: the machine is shared with people compiling, so every run
//! records how much CPU compilers and linkers used while it ran. Sampled from /proc every
//! half second (per process, so compilers that start and finish between two snapshots of a
//! scenario are still counted; ones living less than a sample are missed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

const EVERY: Duration = Duration::from_millis(500);
/// Process names (`/proc/<pid>/comm`, at most 15 characters) counted as compiling.
const COMPILERS: [&str; 12] = [
    "rustc",
    "cargo",
    "clippy-driver",
    "rustdoc",
    "cc1",
    "cc1plus",
    "cc",
    "ld",
    "ld.lld",
    "rust-lld",
    "collect2",
    "build-script-bu",
];
/// From this share of a core on, a run counts as taken under compile load.
pub const LOADED_FROM: f64 = 0.10;

/// CPU used by compilers during a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CompileLoad {
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    /// Average cores busy compiling.
    pub cores: f64,
    /// Most compiler processes seen at once.
    pub peak_processes: usize,
}

impl CompileLoad {
    /// A line for the report's machine facts.
    pub fn markdown(&self) -> String {
        let verdict = if self.cores >= LOADED_FROM { " — **measured under concurrent compile load**" } else { "" };
        format!(
            "- concurrent compile load: compilers and linkers (rustc, cargo, cc, ld, …) used {:.0} CPU-s over the \
             {:.0} s run, {:.0}% of one core on average (up to {} processes){verdict}\n",
            self.cpu_seconds,
            self.wall_seconds,
            self.cores * 100.0,
            self.peak_processes
        )
    }
}

/// A background sampler of compiler CPU time.
pub struct CompileWatch {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<CompileLoad>,
}

impl CompileWatch {
    pub fn start() -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(sample(token).instrument(tracing::info_span!("task", name = "compile-watch")));
        Self { stop, task }
    }

    /// Stops sampling; None if the sampler failed.
    pub async fn finish(self) -> Option<CompileLoad> {
        self.stop.cancel();
        self.task.await.ok()
    }
}

async fn sample(stop: CancellationToken) -> CompileLoad {
    let t0 = Instant::now();
    // pid → (start time, CPU ticks at the last sample), so a reused pid is a new process.
    let mut seen: HashMap<u32, (u64, u64)> =
        compilers().into_iter().map(|(pid, start, ticks)| (pid, (start, ticks))).collect();
    let (mut ticks_total, mut peak) = (0u64, seen.len());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(EVERY) => {}
        }
        let now = compilers();
        peak = peak.max(now.len());
        for (pid, start, ticks) in now {
            let before = match seen.get(&pid) {
                Some(&(s, t)) if s == start => t,
                _ => 0,
            };
            ticks_total += ticks.saturating_sub(before);
            seen.insert(pid, (start, ticks));
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = ticks_total as f64 / 100.0;
    CompileLoad {
        cpu_seconds: cpu,
        wall_seconds: wall,
        cores: if wall > 0.0 { cpu / wall } else { 0.0 },
        peak_processes: peak,
    }
}

/// (pid, start time, utime + stime) of every compiler process.
fn compilers() -> Vec<(u32, u64, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            if !COMPILERS.contains(&comm.trim()) {
                return None;
            }
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (start, ticks) = parse_stat(&stat)?;
            Some((pid, start, ticks))
        })
        .collect()
}

/// (start time, utime + stime) from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: utime and stime are the 12th and 13th fields, starttime the 20th.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    Some((start, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_start_time_and_cpu() {
        let stat = "42 (rustc) R 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 12345 0 0";
        assert_eq!(parse_stat(stat), Some((12345, 300)));
        assert_eq!(parse_stat("nonsense"), None);
    }

    #[test]
    fn a_loaded_run_says_so() {
        let quiet = CompileLoad { cpu_seconds: 1.0, wall_seconds: 100.0, cores: 0.01, peak_processes: 1 };
        assert!(!quiet.markdown().contains("under concurrent compile load"));
        let busy = CompileLoad { cpu_seconds: 90.0, wall_seconds: 100.0, cores: 0.9, peak_processes: 3 };
        assert!(busy.markdown().contains("under concurrent compile load"), "{}", busy.markdown());
    }
}
