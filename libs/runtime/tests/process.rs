//! Process runtime against real local processes.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{connects, eventually, next_matching, read_output, spec, unique};
use corral_runtime::process::{ProcessOptions, ProcessRuntime};
use corral_runtime::{ContainerState, Runtime, RuntimeError, RuntimeEvent};

/// Owns a temporary state directory; on drop (also when a test fails) kills every process
/// group recorded in it and deletes it.
struct StateDir(PathBuf);

impl StateDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("corral-process-test-"));
        std::fs::create_dir_all(&dir).expect("create state dir");
        Self(dir)
    }

    fn runtime(&self, namespace: &str) -> ProcessRuntime {
        ProcessRuntime::new(ProcessOptions { namespace: namespace.to_owned(), state_dir: self.0.clone() })
            .expect("runtime")
    }
}

fn recorded_pids(dir: &Path) -> Vec<u64> {
    let mut pids = Vec::new();
    for ns in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for c in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read_to_string(c.path().join("info.json")) else {
                continue;
            };
            let pid = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("\"pid\":").map(|v| v.trim().trim_end_matches(',').to_owned()));
            if let Some(pid) = pid.and_then(|p| p.parse().ok()) {
                pids.push(pid);
            }
        }
    }
    pids
}

impl Drop for StateDir {
    fn drop(&mut self) {
        for pid in recorded_pids(&self.0) {
            let _ = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status();
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Processes (any state but zombie) whose environment holds `marker`.
fn processes_with_marker(marker: &str) -> usize {
    let needle = format!("CORRAL_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter(|e| {
            let zombie = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
                .unwrap_or(true);
            !zombie
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .count()
}

#[tokio::test]
async fn serves_on_the_allocated_port_and_captures_output() {
    let state = StateDir::new();
    let rt = state.runtime(&unique("ns"));
    let s = spec(
        "t",
        "web",
        &["sh", "-c", "echo started on $PORT; echo oops >&2; exec busybox httpd -f -p 127.0.0.1:$PORT -h /tmp"],
        &[("default", 8000)],
    );
    let info = rt.spawn(&s).await.expect("spawn");
    assert_eq!(info.state, ContainerState::Running);
    let addr = info.ports["default"].clone();
    assert_eq!(addr.host, "127.0.0.1");
    assert_ne!(addr.port, 8000, "the container port is not used");
    assert!(connects(&addr.host, addr.port, Duration::from_secs(5)).await, "httpd answers on {addr:?}");

    let expected = format!("started on {}", addr.port);
    let text = read_output(rt.output(&info.id, false).await.expect("output"), Duration::from_secs(2), |_| false).await;
    assert!(text.contains(&expected) && text.contains("oops"), "output was {text:?}");

    assert_eq!(rt.spawn(&s).await.expect("spawn again"), info, "spawn is idempotent");
    assert_eq!(rt.list().await.expect("list"), vec![info.clone()]);

    rt.remove(&info.id).await.expect("remove");
    assert_eq!(rt.inspect(&info.id).await.expect("inspect"), None);
    assert!(!connects(&addr.host, addr.port, Duration::from_millis(200)).await, "httpd is gone");
}

#[tokio::test]
async fn remove_kills_the_whole_process_group() {
    let state = StateDir::new();
    let rt = state.runtime(&unique("ns"));
    let marker = unique("m");
    let mut s = spec("t", "group", &["sh", "-c", "trap '' TERM; sleep 300 & sleep 301 & wait"], &[]);
    s.env.insert("CORRAL_TEST_MARKER".into(), marker.clone());
    let info = rt.spawn(&s).await.expect("spawn");
    let three =
        eventually(Duration::from_secs(5), || async { (processes_with_marker(&marker) == 3).then_some(()) }).await;
    assert!(three.is_some(), "shell and two sleeps run");

    // Every member ignores SIGTERM, so this also covers the SIGKILL escalation.
    rt.remove(&info.id).await.expect("remove");
    assert_eq!(processes_with_marker(&marker), 0);
    assert_eq!(rt.inspect(&info.id).await.expect("inspect"), None);
    rt.remove(&info.id).await.expect("removing again is fine");
}

#[tokio::test]
async fn exit_code_is_recorded_and_seen_by_another_instance() {
    let state = StateDir::new();
    let ns = unique("ns");
    let spawner = state.runtime(&ns);
    let watcher = state.runtime(&ns);
    let mut events = watcher.events().await.expect("events");

    let info = spawner.spawn(&spec("t", "batch", &["sh", "-c", "sleep 0.3; exit 3"], &[])).await.expect("spawn");
    let started = next_matching(&mut events, Duration::from_secs(3), |_| true).await;
    assert_eq!(started, Some(RuntimeEvent::Started { id: info.id.clone(), pod: info.pod.clone() }));
    let exited = next_matching(&mut events, Duration::from_secs(3), |_| true).await;
    assert_eq!(
        exited,
        Some(RuntimeEvent::Exited {
            id: info.id.clone(),
            pod: info.pod.clone(),
            exit_code: Some(3),
            reason: "exited".into()
        })
    );
    let seen = watcher.inspect(&info.id).await.expect("inspect").map(|i| i.state);
    assert_eq!(seen, Some(ContainerState::Exited(Some(3))));

    spawner.remove(&info.id).await.expect("remove");
    let removed = next_matching(&mut events, Duration::from_secs(3), |_| true).await;
    assert_eq!(removed, Some(RuntimeEvent::Removed { id: info.id.clone(), pod: info.pod.clone() }));
}

#[tokio::test]
async fn follow_ends_after_the_process_exits_and_drains() {
    let state = StateDir::new();
    let rt = state.runtime(&unique("ns"));
    let info = rt.spawn(&spec("t", "talk", &["sh", "-c", "echo one; sleep 0.3; echo two"], &[])).await.expect("spawn");
    let text = read_output(rt.output(&info.id, true).await.expect("output"), Duration::from_secs(5), |_| false).await;
    assert_eq!(text, "one\ntwo\n");
    rt.remove(&info.id).await.expect("remove");
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let state = StateDir::new();
    let a = state.runtime(&unique("a"));
    let b = state.runtime(&unique("b"));
    let ia = a.spawn(&spec("t", "pa", &["sleep", "30"], &[])).await.expect("spawn a");
    let ib = b.spawn(&spec("t", "pb", &["sleep", "30"], &[])).await.expect("spawn b");
    assert_eq!(a.list().await.expect("list a"), vec![ia.clone()]);
    assert_eq!(b.list().await.expect("list b"), vec![ib.clone()]);
    assert_eq!(a.inspect(&ib.id).await.expect("inspect"), None);
    a.remove(&ia.id).await.expect("remove a");
    b.remove(&ib.id).await.expect("remove b");
}

#[tokio::test]
async fn a_command_is_required_and_must_exist() {
    let state = StateDir::new();
    let rt = state.runtime(&unique("ns"));
    let mut s = spec("t", "nocmd", &[], &[]);
    s.command = None;
    let err = rt.spawn(&s).await.expect_err("no command");
    assert!(matches!(&err, RuntimeError::Invalid(m) if m == "the process runtime needs a command"), "{err}");
    let err = rt.spawn(&spec("t", "missing", &["corral-no-such-program"], &[])).await.expect_err("missing program");
    assert!(matches!(err, RuntimeError::Invalid(_)), "{err}");
    assert!(matches!(rt.output("nope", false).await, Err(RuntimeError::NotFound(_))));
    rt.ping().await.expect("ping");
}
