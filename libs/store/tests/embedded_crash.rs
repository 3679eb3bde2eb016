//! Durability of [`EmbeddedStore`] under `kill -9`: a child process (this same test binary,
//! running [`crash_child_process`]) writes pods and prints each pod id once every write for
//! it has returned `Ok`; the parent SIGKILLs it mid-stream, checks the file's integrity and
//! finds every acknowledged pod complete.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corral_model::{PodKey, PodStatus};
use corral_store::embedded::EmbeddedStore;
use corral_store::{Store, StoreError, Versioned};
use corral_testkit::store_contract::{action, desired, observed};
use tracing::Instrument;

/// Set (to the database path) only in the child process.
const CHILD_ENV: &str = "CORRAL_EMBEDDED_CRASH_CHILD_DB";
/// Marks an acknowledgement line in the child's stdout, apart from the test harness's lines.
const ACK: &str = "ACKED ";
const TENANT: &str = "tenant-crash";
/// Concurrent writers in the child, so the kill is likely to land inside a commit.
const WRITERS: usize = 4;
/// Acknowledgements the parent waits for before the kill.
const ACKS_BEFORE_KILL: usize = 200;
/// Each writer stops by itself after this many pods, should the parent never kill it.
const MAX_PODS_PER_WRITER: usize = 20_000;
const ACTIONS_PER_POD: usize = 3;

fn pod_id(writer: usize, n: usize) -> String {
    format!("pod-{writer}-{n}")
}

fn output_of(pod_id: &str) -> Vec<u8> {
    format!("output of {pod_id}\n").repeat(40).into_bytes()
}

/// Not a test on its own: the child side of [`acknowledged_writes_survive_kill_9`], which
/// runs this binary again with only this test selected and `CHILD_ENV` set. In a normal test
/// run `CHILD_ENV` is unset and there is nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_process() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let store = EmbeddedStore::open(Path::new(&path)).expect("child opens the store");
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let span = tracing::info_span!("crash_child_writer", writer);
        writers.spawn(write_and_acknowledge_pods(store.clone(), writer).instrument(span));
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer task");
    }
}

/// Writes pods one after another; prints a pod's id only after all its writes returned.
async fn write_and_acknowledge_pods(store: EmbeddedStore, writer: usize) {
    for n in 0..MAX_PODS_PER_WRITER {
        let id = pod_id(writer, n);
        let key = PodKey::new(TENANT, &id);
        store.create_pod(&desired(TENANT, &id), &observed(), 7).await.expect("create");
        let mut o = observed();
        o.status = PodStatus::Creating;
        o.instance = 1;
        store.put_observed(&key, &o, 1).await.expect("put observed");
        for a in 0..ACTIONS_PER_POD {
            store.append_action_log(&key, &action(a)).await.expect("append action");
        }
        store.append_output(&key, 1, &output_of(&id)).await.expect("append output");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ACK}{id}").expect("write ack");
        out.flush().expect("flush ack");
    }
}

/// Reads the child's stdout on a thread, sending each acknowledged pod id.
fn forward_acks(stdout: std::process::ChildStdout, acks: mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if let Some(id) = line.strip_prefix(ACK)
            && acks.send(id.to_owned()).is_err()
        {
            return;
        }
    }
}

/// Kills and reaps the child however the parent test ends, so a failed assertion leaves no
/// writer running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _ = self.0.wait();
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("corral.redb");
    let child = Command::new(std::env::current_exe().expect("path of this test binary"))
        .args(["--exact", "crash_child_process", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("child stdout is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("crash-ack-reader".into())
        .spawn(move || forward_acks(stdout, tx))
        .expect("start the ack reader");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut acked = Vec::new();
    while acked.len() < ACKS_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(id) => acked.push(id),
            Err(e) => panic!("child stopped acknowledging after {} pods: {e}", acked.len()),
        }
        if acked.len() == 1 {
            assert_locked_by_child(&path);
        }
    }
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished: {status}");
    reader.join().expect("ack reader thread");
    // Lines the child printed before it died were acknowledged too.
    acked.extend(rx.try_iter());

    let mut db = redb::Database::open(&path).expect("redb opens (and repairs) the crashed file");
    assert!(db.check_integrity().expect("integrity check runs"), "the file is intact after kill -9");
    drop(db);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(verify_acknowledged(&path, &acked));
}

/// While the child holds the file, another process cannot open it.
fn assert_locked_by_child(path: &Path) {
    match EmbeddedStore::open(path) {
        Err(StoreError::Unavailable(msg)) => {
            assert!(msg.contains("the data directory is in use by another corral process"), "message: {msg}");
        }
        other => panic!("opening a file the child holds must be Unavailable, got {other:?}"),
    }
}

async fn verify_acknowledged(path: &Path, acked: &[String]) {
    let store = EmbeddedStore::open(path).expect("reopen after the crash");
    let mut expected_observed = observed();
    expected_observed.status = PodStatus::Creating;
    expected_observed.instance = 1;
    for id in acked {
        let key = PodKey::new(TENANT, id);
        let record = store.get_pod(&key).await.expect("get").unwrap_or_else(|| panic!("acknowledged {id} is lost"));
        assert_eq!(record.desired, Versioned { version: 1, value: desired(TENANT, id) }, "{id}");
        assert_eq!(record.observed, Versioned { version: 2, value: expected_observed.clone() }, "{id}");
        let log = store.action_log(&key).await.expect("action log");
        assert_eq!(log, (0..ACTIONS_PER_POD).map(action).collect::<Vec<_>>(), "{id}");
        assert_eq!(store.output(&key).await.expect("output"), (1, output_of(id)), "{id}");
    }
    let listed = store.list_tenant(TENANT).await.expect("list tenant");
    assert!(listed.len() >= acked.len(), "{} pods listed, {} acknowledged", listed.len(), acked.len());
    let in_shard = store.list_shard(7).await.expect("list shard");
    assert_eq!(in_shard.len(), listed.len(), "tenant and shard indexes agree");
    // The store takes writes again after the crash.
    store.create_pod(&desired(TENANT, "after-crash"), &observed(), 7).await.expect("write after the crash");
}
