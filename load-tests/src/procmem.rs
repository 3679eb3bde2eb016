//! One process's resident memory and CPU time, from /proc.

use serde::Serialize;

/// Memory figures of `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Peak resident set size.
    pub hwm_kib: u64,
    /// Resident anonymous memory (heap, stacks): what the process allocated itself.
    pub anon_kib: u64,
}

/// The process's memory, or None once it is gone.
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:").unwrap_or(0),
        anon_kib: field("RssAnon:").unwrap_or(0),
    })
}

/// User + system CPU seconds of the process so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    crate::usage::stat_ticks(&pid.to_string()).map(|t| t as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_memory_lines_are_read() {
        let status =
            "Name:\tspawner\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\nRssAnon:\t   8192 kB\nRssFile:\t 2048 kB\n";
        assert_eq!(parse_status(status), Some(Memory { rss_kib: 10240, hwm_kib: 20480, anon_kib: 8192 }));
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        let me = std::process::id();
        assert!(memory(me).is_some_and(|m| m.rss_kib > 0));
        assert!(cpu_seconds(me).is_some());
    }
}
