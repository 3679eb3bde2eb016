//! The crash acceptance test of `corral dev`: SIGKILL while pods are being created, restart
//! on the same data directory, and every acknowledged pod comes back AVAILABLE with exactly
//! one process each (adopted or started, never duplicated), and no orphan process left.

mod dev_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dev_support::{Dev, ProcessCleanup, host_processes, running_processes};
use serde_json::{Value, json};

const PODS: usize = 100;
const KILL_AFTER_ACKS: usize = 30;
/// Creations in flight at once, so that some are always in flight when the kill lands.
const IN_FLIGHT: usize = 10;
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);

fn pod(i: usize) -> Value {
    json!({
        "pod_id": format!("crash{i:03}"),
        "image": "busybox",
        "command": ["sh", "-c", "exec busybox httpd -f -p $PORT -h /tmp"],
    })
}

async fn list(http: &reqwest::Client, url: &str, token: &str) -> Option<Vec<Value>> {
    let resp = http.get(format!("{url}/v3/pods")).header("X-Tapis-Token", token).send().await.ok()?;
    let v: Value = resp.json().await.ok()?;
    v["result"].as_array().cloned()
}

/// Fires every creation (at most `IN_FLIGHT` at a time); acknowledged ids land in `acked`.
fn create_all(
    url: &str,
    token: &str,
    acked: &Arc<Mutex<Vec<String>>>,
    count: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    (0..PODS)
        .map(|i| {
            let (http, gate, acked, count) = (http.clone(), gate.clone(), acked.clone(), count.clone());
            let (url, token) = (url.to_owned(), token.to_owned());
            tokio::spawn(async move {
                let Ok(_permit) = gate.acquire().await else { return };
                let body = pod(i);
                let sent = http.post(format!("{url}/v3/pods")).header("X-Tapis-Token", &token).json(&body).send().await;
                if let Ok(resp) = sent
                    && resp.status().is_success()
                {
                    if let Ok(mut a) = acked.lock() {
                        a.push(body["pod_id"].as_str().unwrap_or_default().to_owned());
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_creation_loses_no_acknowledged_pod_and_duplicates_no_process() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let _cleanup = ProcessCleanup(data.clone());
    let mut dev = tokio::task::block_in_place(|| Dev::start(&data, &["--runtime", "process"], &[]));
    let token = dev.token.clone();

    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let tasks = create_all(&dev.url, &token, &acked, &count);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < KILL_AFTER_ACKS {
        assert!(
            Instant::now() < deadline,
            "fewer than {KILL_AFTER_ACKS} creations acknowledged in 60s\n{}",
            dev.log_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| dev.kill9());
    for t in tasks {
        t.await.expect("creation task");
    }
    let acked: BTreeSet<String> = acked.lock().expect("acked ids").iter().cloned().collect();
    assert!(acked.len() >= KILL_AFTER_ACKS, "{} acknowledged", acked.len());
    assert!(acked.len() < PODS, "the kill must land while creations are in flight ({} acknowledged)", acked.len());

    let mut dev = tokio::task::block_in_place(|| Dev::start(&data, &["--runtime", "process"], &[]));
    let http = reqwest::Client::new();
    // The token from before the crash still works: the dev secret is kept in the data dir.
    let deadline = Instant::now() + CONVERGE_WITHIN;
    let pods: BTreeSet<String> = loop {
        let listed = list(&http, &dev.url, &token).await.unwrap_or_default();
        let ids: BTreeSet<String> = listed.iter().filter_map(|p| p["pod_id"].as_str().map(str::to_owned)).collect();
        let all_available = listed.iter().all(|p| p["status"] == "AVAILABLE");
        if acked.is_subset(&ids) && all_available {
            break ids;
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = acked.difference(&ids).collect();
            let pending: Vec<_> =
                listed.iter().filter(|p| p["status"] != "AVAILABLE").map(|p| (&p["pod_id"], &p["status"])).collect();
            panic!(
                "not converged within {CONVERGE_WITHIN:?}: missing {missing:?}, not AVAILABLE {pending:?}\nlog:\n{}",
                dev.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Exactly one running process per pod, none for anything else. Polled: the spawner may
    // still be removing a duplicate a dead launcher left behind.
    let data_dir = data.clone();
    let counts = tokio::task::block_in_place(|| {
        dev_support::eventually("one running process per pod and no orphans", Duration::from_secs(60), || {
            let mut per_pod: BTreeMap<String, usize> = BTreeMap::new();
            for c in running_processes(&data_dir) {
                *per_pod.entry(c.pod.pod_id).or_default() += 1;
            }
            let exact = per_pod.keys().cloned().collect::<BTreeSet<_>>() == pods && per_pod.values().all(|&n| n == 1);
            exact.then_some(per_pod)
        })
    });
    assert_eq!(counts.len(), pods.len());
    // The runtime's records could miss a process (started by the killed launcher just before
    // it recorded it): count the processes themselves.
    let running_ids: BTreeSet<String> = running_processes(&data).into_iter().map(|c| c.id).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut per_container: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for p in host_processes(&data) {
            per_container.entry(p.container).or_default().push(p.pid);
        }
        let unrecorded: Vec<_> = per_container.iter().filter(|(id, _)| !running_ids.contains(*id)).collect();
        let doubled: Vec<_> = per_container.iter().filter(|(_, pids)| pids.len() > 1).collect();
        if unrecorded.is_empty() && doubled.is_empty() && per_container.len() == running_ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pod processes on the host that the runtime's records do not account for (a restart can \
             neither adopt nor remove them): several processes in one container {doubled:?}, \
             processes of unrecorded containers {unrecorded:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} creations acknowledged before the kill; {} pods after the restart, all AVAILABLE, one process each",
        acked.len(),
        pods.len()
    );

    // Clean up through the API, so the spawner removes the processes it owns.
    for id in &pods {
        let resp = http.delete(format!("{}/v3/pods/{id}", dev.url)).header("X-Tapis-Token", &token).send().await;
        assert!(resp.is_ok_and(|r| r.status().is_success()), "delete {id}");
    }
    let data_dir = data.clone();
    tokio::task::block_in_place(|| {
        dev_support::eventually("every pod process to stop", Duration::from_secs(60), || {
            running_processes(&data_dir).is_empty().then_some(())
        });
        let status = dev.terminate();
        assert!(status.success(), "clean shutdown: {status}");
    });
}
