//! Change events of the process runtime: the shared state directory is polled, so containers
//! started by any process on the host are seen.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use corral_model::PodKey;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::mpsc;

use super::state;
use crate::docker::exit_reason;
use crate::{ContainerState, RuntimeEvent};

const EVENT_POLL: Duration = Duration::from_millis(200);
/// Polls a dead process may go without an exit file before it is reported with an unknown
/// code: its reaper usually writes the file right after it dies.
const DEAD_POLLS_BEFORE_UNKNOWN: u8 = 3;
const EVENT_BUFFER: usize = 1024;

/// What one poll saw of a container.
#[derive(Debug, Clone)]
struct Seen {
    pod: PodKey,
    pid: u32,
    exited_reported: bool,
    dead_polls: u8,
}

/// Current view of the namespace: id → (pod, pid, state). Entries still being launched
/// (no record yet) are skipped.
fn scan(root: &std::path::Path) -> HashMap<String, (PodKey, u32, ContainerState)> {
    state::entries(root)
        .into_iter()
        .filter_map(|(id, dir)| {
            let record = state::load(&dir)?;
            let st = state::state_of(&dir, &record);
            Some((id, (record.pod, record.pid, st)))
        })
        .collect()
}

/// Baseline taken when a subscriber arrives: existing containers produce no events.
fn baseline(root: &std::path::Path) -> HashMap<String, Seen> {
    scan(root)
        .into_iter()
        .map(|(id, (pod, pid, st))| {
            (id, Seen { pod, pid, exited_reported: matches!(st, ContainerState::Exited(_)), dead_polls: 0 })
        })
        .collect()
}

/// Events turning `seen` into `now`, updating `seen`.
fn diff(seen: &mut HashMap<String, Seen>, now: HashMap<String, (PodKey, u32, ContainerState)>) -> Vec<RuntimeEvent> {
    let mut events = Vec::new();
    seen.retain(|id, s| {
        if now.contains_key(id) {
            return true;
        }
        if !s.exited_reported {
            events.push(RuntimeEvent::Exited {
                id: id.clone(),
                pod: s.pod.clone(),
                exit_code: None,
                reason: "removed".into(),
            });
        }
        events.push(RuntimeEvent::Removed { id: id.clone(), pod: s.pod.clone() });
        false
    });
    for (id, (pod, pid, st)) in now {
        let entry = seen.entry(id.clone()).or_insert_with(|| {
            events.push(RuntimeEvent::Started { id: id.clone(), pod: pod.clone() });
            Seen { pod: pod.clone(), pid, exited_reported: false, dead_polls: 0 }
        });
        if entry.pid != pid {
            // Relaunched under the same name between two polls.
            if !entry.exited_reported {
                events.push(RuntimeEvent::Exited {
                    id: id.clone(),
                    pod: pod.clone(),
                    exit_code: None,
                    reason: "exited".into(),
                });
            }
            events.push(RuntimeEvent::Started { id: id.clone(), pod: pod.clone() });
            *entry = Seen { pod: pod.clone(), pid, exited_reported: false, dead_polls: 0 };
        }
        if entry.exited_reported {
            continue;
        }
        let exit_code = match st {
            ContainerState::Exited(Some(code)) => Some(code),
            ContainerState::Exited(None) => {
                entry.dead_polls = entry.dead_polls.saturating_add(1);
                if entry.dead_polls < DEAD_POLLS_BEFORE_UNKNOWN {
                    continue;
                }
                None
            }
            ContainerState::Running | ContainerState::Created => continue,
        };
        entry.exited_reported = true;
        events.push(RuntimeEvent::Exited { id, pod, exit_code, reason: exit_reason(exit_code) });
    }
    events
}

/// Event stream for one subscriber: a poll task diffing the state directory.
pub(super) async fn subscribe(root: PathBuf) -> BoxStream<'static, RuntimeEvent> {
    let scan_root = root.clone();
    let seen = tokio::task::spawn_blocking(move || baseline(&scan_root)).await.unwrap_or_default();
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let span = tracing::info_span!("process_events", root = %root.display());
    tokio::spawn(tracing::Instrument::instrument(watch_state_dir(root, seen, tx), span));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }).boxed()
}

/// Polls until the subscriber drops its stream.
async fn watch_state_dir(root: PathBuf, mut seen: HashMap<String, Seen>, tx: mpsc::Sender<RuntimeEvent>) {
    loop {
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(EVENT_POLL) => {}
        }
        let scan_root = root.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || scan(&scan_root)).await else {
            return;
        };
        for event in diff(&mut seen, now) {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodKey {
        PodKey::new("t", "p")
    }

    fn now(entries: &[(&str, u32, ContainerState)]) -> HashMap<String, (PodKey, u32, ContainerState)> {
        entries.iter().map(|(id, pid, st)| ((*id).to_owned(), (pod(), *pid, *st))).collect()
    }

    #[test]
    fn start_exit_and_removal_are_reported_once() {
        let mut seen = HashMap::new();
        let ev = diff(&mut seen, now(&[("a", 10, ContainerState::Running)]));
        assert_eq!(ev, vec![RuntimeEvent::Started { id: "a".into(), pod: pod() }]);
        assert!(diff(&mut seen, now(&[("a", 10, ContainerState::Running)])).is_empty());
        let ev = diff(&mut seen, now(&[("a", 10, ContainerState::Exited(Some(3)))]));
        assert_eq!(
            ev,
            vec![RuntimeEvent::Exited { id: "a".into(), pod: pod(), exit_code: Some(3), reason: "exited".into() }]
        );
        assert!(diff(&mut seen, now(&[("a", 10, ContainerState::Exited(Some(3)))])).is_empty());
        assert_eq!(diff(&mut seen, now(&[])), vec![RuntimeEvent::Removed { id: "a".into(), pod: pod() }]);
    }

    #[test]
    fn unknown_exit_waits_for_the_reaper_before_reporting() {
        let mut seen = HashMap::new();
        diff(&mut seen, now(&[("a", 10, ContainerState::Running)]));
        for _ in 1..DEAD_POLLS_BEFORE_UNKNOWN {
            assert!(diff(&mut seen, now(&[("a", 10, ContainerState::Exited(None))])).is_empty());
        }
        let ev = diff(&mut seen, now(&[("a", 10, ContainerState::Exited(None))]));
        assert_eq!(
            ev,
            vec![RuntimeEvent::Exited { id: "a".into(), pod: pod(), exit_code: None, reason: "exited".into() }]
        );
    }

    #[test]
    fn relaunch_under_the_same_name_is_a_new_start() {
        let mut seen = HashMap::new();
        diff(&mut seen, now(&[("a", 10, ContainerState::Running)]));
        let ev = diff(&mut seen, now(&[("a", 11, ContainerState::Running)]));
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[1], RuntimeEvent::Started { id: "a".into(), pod: pod() });
    }
}
