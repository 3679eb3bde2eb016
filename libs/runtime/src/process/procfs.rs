//! Process facts from `/proc` and process-group signalling, without `unsafe`.
//!
//! A pid alone is not an identity (pids are reused), so a process is identified by its pid
//! plus its start time in clock ticks (field 22 of `/proc/<pid>/stat`).

use std::path::Path;

/// The parts of `/proc/<pid>/stat` this runtime needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub state: char,
    pub pgrp: u32,
    pub start_ticks: u64,
}

impl Stat {
    fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses a stat line; the command name may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state) of proc(5); pgrp is field 5, starttime field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

fn read_stat(dir: &Path) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(dir.join("stat")).ok()?)
}

/// Stat of one process, if it exists.
pub(super) fn stat(pid: u32) -> Option<Stat> {
    read_stat(&Path::new("/proc").join(pid.to_string()))
}

/// Whether the process `pid` started at `start_ticks` still runs (a zombie does not).
pub(super) fn is_alive(pid: u32, start_ticks: u64) -> bool {
    stat(pid).is_some_and(|s| s.start_ticks == start_ticks && !s.is_zombie())
}

/// Live members of the process group led by `pgid`, counting only processes started no
/// earlier than the leader: a later, unrelated group cannot reuse the id while ours lives,
/// and this keeps an old recycled id from matching.
pub(super) fn live_group_members(pgid: u32, leader_start_ticks: u64) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|e| read_stat(&e.path()))
        .filter(|s| s.pgrp == pgid && s.start_ticks >= leader_start_ticks && !s.is_zombie())
        .count()
}

/// Whether any member of the group led by `pgid` lives: the leader is checked first, which
/// spares the scan of every process in the common case of a running container.
pub(super) fn group_alive(pgid: u32, leader_start_ticks: u64) -> bool {
    is_alive(pgid, leader_start_ticks) || live_group_members(pgid, leader_start_ticks) > 0
}

/// Process groups of live processes whose environment holds `marker` (a `KEY=value`
/// entry). Used to find a container's processes when its record was never written.
pub(super) fn groups_with_env(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = marker.as_bytes();
    let mut groups: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| {
            std::fs::read(e.path().join("environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle))
        })
        .filter_map(|e| read_stat(&e.path()))
        .filter(|s| !s.is_zombie())
        .map(|s| s.pgrp)
        .collect();
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// SIGKILLs every group holding `marker` and waits (bounded) until they are gone.
pub(super) fn kill_groups_with_env(marker: &str) -> usize {
    let groups = groups_with_env(marker);
    for pgid in &groups {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pgid}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !groups_with_env(marker).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    groups.len()
}

/// Sends `signal` (e.g. "TERM", "KILL") to every process of the group. Uses the `kill`
/// program because signalling from Rust would need `unsafe` (denied in this workspace).
pub(super) async fn signal_group(pgid: u32, signal: &str) {
    let result = tokio::process::Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    if let Err(e) = result {
        tracing::warn!(pgid, signal, error = %e, "could not run kill");
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(Stat { state: 'S', pgrp: 4242, start_ticks: 987_654 }));
    }

    #[test]
    fn finds_and_kills_groups_by_environment_marker() {
        let marker = format!("CORRAL_PROCESS_CONTAINER=test/{}", std::process::id());
        let (key, value) = marker.split_once('=').expect("marker");
        let mut child =
            std::process::Command::new("sleep").arg("30").env(key, value).process_group(0).spawn().expect("sleep");
        let pid = child.id();
        // Until the child has exec'd, /proc shows the parent's environment: poll briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while groups_with_env(&marker).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(groups_with_env(&marker), vec![pid]);
        assert_eq!(kill_groups_with_env(&marker), 1);
        let _ = child.wait();
        assert!(groups_with_env(&marker).is_empty());
    }

    #[test]
    fn a_group_is_alive_while_any_member_is() {
        // A shell leading its group, with a child in the same group.
        let mut leader =
            std::process::Command::new("sh").args(["-c", "sleep 30 & wait"]).process_group(0).spawn().expect("sh");
        let pgid = leader.id();
        let start = stat(pgid).expect("leader stat").start_ticks;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while live_group_members(pgid, start) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(group_alive(pgid, start), "leader and child alive");
        let kill = |target: String| {
            std::process::Command::new("kill").args(["-s", "KILL", "--", &target]).status().expect("kill");
        };
        kill(pgid.to_string());
        let _ = leader.wait();
        assert!(!is_alive(pgid, start), "the leader is gone");
        assert!(group_alive(pgid, start), "its child still runs in the group");
        kill(format!("-{pgid}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while group_alive(pgid, start) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!group_alive(pgid, start), "the whole group is gone");
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id();
        let s = stat(me).expect("own stat");
        assert!(is_alive(me, s.start_ticks));
        assert!(!is_alive(me, s.start_ticks + 1));
    }
}
