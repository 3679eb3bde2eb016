//! Process runtime: a launch interrupted between starting its process and writing its record
//! leaves a process nobody tracks. Launches look for such processes only when the container
//! directory existed before (a fresh directory cannot have any), and then remove them.

mod common;

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{spec, unique};
use corral_runtime::process::{ProcessOptions, ProcessRuntime};
use corral_runtime::{ContainerState, Runtime};

/// A state directory removed on drop (also when the test fails).
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the stray's group on drop, so a failing test leaves nothing running.
struct Stray(std::process::Child);

impl Drop for Stray {
    fn drop(&mut self) {
        let pgid = self.0.id();
        let _ = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{pgid}")]).status();
        let _ = self.0.wait();
    }
}

fn environ_has(pid: u32, entry: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
}

#[tokio::test]
async fn the_next_launch_removes_the_untracked_process_of_an_interrupted_one() {
    let state = StateDir(std::env::temp_dir().join(unique("corral-relaunch-test-")));
    let namespace = unique("r");
    let runtime = ProcessRuntime::new(ProcessOptions { namespace: namespace.clone(), state_dir: state.0.clone() })
        .expect("runtime");
    let spec = spec("t", "p", &["sleep", "30"], &[]);

    // What an interrupted launch leaves: the container directory, no record, and a process
    // carrying the directory in its environment, in a group of its own.
    let dir = state.0.join(&namespace).join(spec.name());
    std::fs::create_dir_all(&dir).expect("container dir");
    let marker = format!("CORRAL_PROCESS_CONTAINER={}", dir.display());
    let mut stray = Stray(
        std::process::Command::new("sleep")
            .arg("30")
            .env("CORRAL_PROCESS_CONTAINER", &dir)
            .process_group(0)
            .spawn()
            .expect("stray"),
    );
    let pid = stray.0.id();
    // Until the child has exec'd, /proc shows the parent's environment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !environ_has(pid, &marker) {
        assert!(Instant::now() < deadline, "the stray never showed its marker");
        std::thread::sleep(Duration::from_millis(5));
    }

    let info = runtime.spawn(&spec).await.expect("spawn");
    assert_eq!(info.state, ContainerState::Running, "the container was launched");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = stray.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the untracked process survived the relaunch");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status.signal(), Some(9), "killed by the launch: {status:?}");
    runtime.remove(&info.id).await.expect("remove");
    assert!(runtime.list().await.expect("list").is_empty());
}
