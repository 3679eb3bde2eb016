use std::time::{Duration, Instant};

use corral_model::session::{SessionRun, SessionType};
use corral_runtime::ContainerSpec;
use corral_runtime::process::{ProcessOptions, ProcessRuntime};

use super::*;
use crate::bootstrap::tests::{desired, spec, with_bootstrap};
use crate::bootstrap::wrap;

/// A process runtime in a fresh directory, removed on drop.
struct Host {
    rt: ProcessRuntime,
    dir: std::path::PathBuf,
}

impl Host {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("corral-exit-{name}-{}", std::process::id()));
        let rt = ProcessRuntime::new(ProcessOptions { namespace: format!("exit-{name}"), state_dir: dir.clone() })
            .expect("process runtime");
        Self { rt, dir }
    }

    /// Spawns `s` and waits (bounded) until the runtime knows its exit code.
    async fn run_to_exit(&self, s: &ContainerSpec) -> (String, i64) {
        let info = self.rt.spawn(s).await.expect("spawned");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // `Exited(None)` is transient: the process is gone, its reaper has not yet
            // recorded the code.
            if let Some(ContainerState::Exited(Some(code))) =
                self.rt.inspect(&info.id).await.expect("inspect").map(|c| c.state)
            {
                return (info.id, code);
            }
            assert!(Instant::now() < deadline, "the process did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn current(id: &str) -> Observed {
    Observed { container_id: Some(id.to_string()), ..Observed::default() }
}

fn exited(id: &str, exit_code: Option<i64>) -> Event {
    Event::Exited { container_id: id.to_string(), exit_code, reason: "exited".into() }
}

/// A failed bootstrap script is named; the command's own failure is not.
#[tokio::test]
async fn a_failed_bootstrap_is_told_from_a_failed_command() {
    let host = Host::new("boot");
    let cases = [("exit 6", 6, FAILED_REASON), ("true", 7, "exited")];
    for (i, (script, want_code, want_reason)) in cases.into_iter().enumerate() {
        let d = with_bootstrap(script);
        let mut s = spec(Some(&["sh", "-c", "exit 7"]), None);
        s.instance = u64::try_from(i).expect("small") + 1;
        wrap(&d, &mut s);
        let (id, code) = host.run_to_exit(&s).await;
        assert_eq!(code, want_code, "{script}");
        let got = explain_exit(&host.rt, &d, &current(&id), exited(&id, Some(code))).await;
        assert_eq!(got, Event::Exited { container_id: id.clone(), exit_code: Some(code), reason: want_reason.into() });
        // A stale container's exit, and other events, pass unchanged.
        let stale = explain_exit(&host.rt, &d, &current("other"), exited(&id, Some(code))).await;
        assert_eq!(stale, exited(&id, Some(code)));
        assert_eq!(explain_exit(&host.rt, &d, &current(&id), Event::Timer).await, Event::Timer);
        host.rt.remove(&id).await.expect("removed");
    }
}

/// A batch run's exit reported without a code gets the code the runtime knows; a report
/// for a container that still runs is stale; a container that is gone has no code.
#[tokio::test]
async fn a_batch_exit_without_a_code_is_checked() {
    let host = Host::new("code");
    let batch = desired(Some(SessionRun { session_type: SessionType::Batch, ..SessionRun::default() }));
    let mut s = spec(Some(&["sh", "-c", "exit 3"]), None);
    let (id, _) = host.run_to_exit(&s).await;
    let got = explain_exit(&host.rt, &batch, &current(&id), exited(&id, None)).await;
    assert_eq!(got, exited(&id, Some(3)), "the code the runtime recorded");
    // Interactive pods are retried anyway: their report passes as it is.
    let got = explain_exit(&host.rt, &desired(None), &current(&id), exited(&id, None)).await;
    assert_eq!(got, exited(&id, None));
    host.rt.remove(&id).await.expect("removed");
    let got = explain_exit(&host.rt, &batch, &current(&id), exited(&id, None)).await;
    assert_eq!(got, exited(&id, None), "gone: no code");

    s.instance = 2;
    s.command = Some(vec!["sleep".into(), "30".into()]);
    let info = host.rt.spawn(&s).await.expect("spawned");
    let got = explain_exit(&host.rt, &batch, &current(&info.id), exited(&info.id, None)).await;
    assert_eq!(got, Event::Reconcile, "still running: the report was stale");
    host.rt.remove(&info.id).await.expect("removed");
}
