//! Group commit. Every write is queued; one blocking task at a time takes everything queued,
//! runs it in one redb write transaction and commits once, then answers each caller. A
//! commit's fsync costs milliseconds whether it carries one small write or hundreds, so
//! concurrent writers (actors, the log collector, the gateway) share fsyncs instead of
//! queueing behind each other's; a lone writer still gets exactly one commit per call.
//!
//! Each operation must return [`StoreError::NotFound`], [`StoreError::AlreadyExists`] or
//! [`StoreError::Conflict`] only before its first write, so such a refusal leaves the shared
//! transaction untouched. Any other error may come after partial writes: the batch is then
//! aborted and its operations rerun one transaction each, so one failing operation never
//! commits half of itself nor takes the others down.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;

use super::codec::db_err;
use crate::StoreError;

/// Most operations in one transaction: bounds a commit's size and a caller's wait.
const MAX_BATCH: usize = 256;

/// An operation on a write transaction. `Fn`, not `FnOnce`, because the operations of an
/// aborted batch are run again one by one.
pub(crate) trait WriteOp<R>: Fn(&WriteTransaction) -> Result<R, StoreError> + Send + 'static {}
impl<R, F: Fn(&WriteTransaction) -> Result<R, StoreError> + Send + 'static> WriteOp<R> for F {}

/// The queue of writes not yet committed, shared by every clone of a store.
pub(crate) struct Writer {
    db: Arc<Database>,
    state: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    /// Whether a drain task is scheduled or running; at most one is.
    draining: bool,
}

impl Writer {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        Self { db, state: Mutex::new(Queue::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs are only pushed and taken under the lock, so a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `op` and waits until it is committed (or refused).
    pub(crate) async fn write<R: Send + 'static>(
        self: &Arc<Self>,
        op_name: &'static str,
        op: impl WriteOp<R>,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start_drain = {
            let mut queue = self.lock();
            queue.jobs.push(Box::new(Pending { op_name, op, result: None, reply }));
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_drain {
            spawn_drain(Arc::clone(self));
        }
        answer.await.map_err(|_| StoreError::Unavailable(format!("embedded store writer stopped before {op_name}")))?
    }

    /// Takes up to [`MAX_BATCH`] of the oldest queued writes.
    fn next_batch(&self) -> Vec<Box<dyn Job>> {
        let mut queue = self.lock();
        let take = queue.jobs.len().min(MAX_BATCH);
        let rest = queue.jobs.split_off(take);
        std::mem::replace(&mut queue.jobs, rest)
    }
}

fn spawn_drain(writer: Arc<Writer>) {
    let token = DrainToken(Some(writer));
    let span = tracing::info_span!("embedded_store_commit");
    tokio::task::spawn_blocking(move || span.in_scope(|| drain(token)));
}

/// Commits one batch, hands the queue on, and only then answers the callers: a caller that
/// drops its last store handle after its write returned must find the database closed, not
/// still held by this task.
fn drain(token: DrainToken) {
    let Some(writer) = token.0.as_ref().map(Arc::clone) else { return };
    let mut batch = writer.next_batch();
    let settled = if batch.is_empty() {
        Vec::new()
    } else {
        tracing::debug!(ops = batch.len(), "committing a batch of writes");
        commit_batch(&writer.db, &mut batch)
    };
    drop(writer);
    drop(token);
    for (job, commit_error) in batch.into_iter().zip(settled) {
        job.answer(commit_error.as_deref());
    }
}

/// Held by the one scheduled drain. However the drain ends (done, panicked inside redb, or
/// discarded unrun by a runtime shutting down), dropping the token hands the queue on: to a
/// new drain if writes are waiting, else the writer is marked idle so the next write starts
/// one. Without it a lost drain would leave every later write waiting forever.
struct DrainToken(Option<Arc<Writer>>);

impl Drop for DrainToken {
    fn drop(&mut self) {
        let Some(writer) = self.0.take() else { return };
        let hand_on = {
            let mut queue = writer.lock();
            queue.draining = !queue.jobs.is_empty() && tokio::runtime::Handle::try_current().is_ok();
            queue.draining
        };
        if hand_on {
            spawn_drain(writer);
        }
    }
}

/// Runs `batch` in one transaction; returns, for each job, the error that kept its writes
/// from being committed, if any.
fn commit_batch(db: &Database, batch: &mut [Box<dyn Job>]) -> Vec<Option<Arc<StoreError>>> {
    let together = run_in_one(db, batch);
    match together {
        Together::Settled => vec![None; batch.len()],
        Together::Failed(err) => vec![Some(Arc::new(err)); batch.len()],
        Together::Rerun => batch
            .iter_mut()
            .map(|job| match run_in_one(db, std::slice::from_mut(job)) {
                Together::Settled | Together::Rerun => None,
                Together::Failed(err) => Some(Arc::new(err)),
            })
            .collect(),
    }
}

enum Together {
    /// Each job's own result stands: all ran and their writes committed, or a lone job
    /// failed and its transaction was aborted.
    Settled,
    /// The transaction could not be started or committed.
    Failed(StoreError),
    /// A job failed after maybe writing part of itself: the transaction was aborted.
    Rerun,
}

fn run_in_one(db: &Database, jobs: &mut [Box<dyn Job>]) -> Together {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return Together::Failed(db_err(e)),
    };
    let dirty = jobs.iter_mut().any(|job| !job.run(&txn));
    if dirty && jobs.len() > 1 {
        if let Err(e) = txn.abort() {
            tracing::warn!(error = %e, "aborting a failed batch of writes failed");
        }
        return Together::Rerun;
    }
    if dirty {
        // A lone job that failed: its own error is its answer, and nothing is committed.
        if let Err(e) = txn.abort() {
            tracing::warn!(error = %e, "aborting a failed write failed");
        }
        return Together::Settled;
    }
    match txn.commit() {
        Ok(()) => Together::Settled,
        Err(e) => Together::Failed(db_err(e)),
    }
}

/// A queued write, with its result kept until the commit settles.
trait Job: Send {
    /// Runs the operation in `txn`; false if it failed in a way that may have written part of
    /// itself.
    fn run(&mut self, txn: &WriteTransaction) -> bool;
    /// Answers the caller: the kept result, or `commit_error` if its writes were not committed.
    fn answer(self: Box<Self>, commit_error: Option<&StoreError>);
}

struct Pending<R, F> {
    op_name: &'static str,
    op: F,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<R: Send + 'static, F: WriteOp<R>> Job for Pending<R, F> {
    fn run(&mut self, txn: &WriteTransaction) -> bool {
        let result = catch_unwind(AssertUnwindSafe(|| (self.op)(txn))).unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!("embedded store operation {} panicked", self.op_name)))
        });
        let clean = matches!(
            result,
            Ok(_) | Err(StoreError::NotFound(_) | StoreError::AlreadyExists(_) | StoreError::Conflict { .. })
        );
        self.result = Some(result);
        clean
    }

    fn answer(self: Box<Self>, commit_error: Option<&StoreError>) {
        let outcome = match (self.result, commit_error) {
            (Some(Ok(_)), Some(err)) => Err(copy_error(err)),
            (Some(result), _) => result,
            (None, _) => Err(StoreError::Unavailable(format!("embedded store operation {} did not run", self.op_name))),
        };
        // The caller may have given up waiting; its write stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// One batch's commit error, for each caller in it.
fn copy_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::AlreadyExists(key) => StoreError::AlreadyExists(key.clone()),
        StoreError::NotFound(key) => StoreError::NotFound(key.clone()),
        StoreError::Conflict { key, expected, found } => {
            StoreError::Conflict { key: key.clone(), expected: *expected, found: *found }
        }
        StoreError::Unavailable(msg) => StoreError::Unavailable(msg.clone()),
        StoreError::Corrupt(msg) => StoreError::Corrupt(msg.clone()),
    }
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const ROWS: TableDefinition<'_, &str, u64> = TableDefinition::new("rows");

    type Answer = oneshot::Receiver<Result<(), StoreError>>;

    fn job(name: &'static str, op: impl WriteOp<()>) -> (Box<dyn Job>, Answer) {
        let (reply, answer) = oneshot::channel();
        (Box::new(Pending { op_name: name, op, result: None, reply }), answer)
    }

    /// Writes row `name`.
    fn put(name: impl Into<String>) -> impl WriteOp<()> {
        let name = name.into();
        move |txn: &WriteTransaction| {
            txn.open_table(ROWS).map_err(db_err)?.insert(name.as_str(), 1).map_err(db_err)?;
            Ok(())
        }
    }

    fn rows(db: &Database) -> Vec<String> {
        let txn = db.begin_read().expect("read");
        let table = txn.open_table(ROWS).expect("table");
        table.iter().expect("iter").map(|row| row.expect("row").0.value().to_owned()).collect()
    }

    fn settle(db: &Database, jobs: Vec<(Box<dyn Job>, Answer)>) -> Vec<Result<(), StoreError>> {
        let (mut batch, answers): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let settled = commit_batch(db, &mut batch);
        for (job, err) in batch.into_iter().zip(settled) {
            job.answer(err.as_deref());
        }
        answers.into_iter().map(|mut a| a.try_recv().expect("every job is answered")).collect()
    }

    fn open() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = Database::create(dir.path().join("w.redb")).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(ROWS).expect("table");
        txn.commit().expect("commit");
        (dir, db)
    }

    #[test]
    fn clean_refusals_share_the_commit_with_successes() {
        let (_dir, db) = open();
        let refuse = |_: &WriteTransaction| -> Result<(), StoreError> {
            Err(StoreError::Conflict { key: "k".into(), expected: 1, found: 2 })
        };
        let answers = settle(&db, vec![job("a", put("a")), job("refused", refuse), job("b", put("b"))]);
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(StoreError::Conflict { expected: 1, found: 2, .. })), "{answers:?}");
        assert_eq!(rows(&db), ["a", "b"]);
    }

    #[test]
    fn a_failure_after_writing_is_rolled_back_alone() {
        let (_dir, db) = open();
        let half = |txn: &WriteTransaction| -> Result<(), StoreError> {
            put("half")(txn)?;
            Err(StoreError::Corrupt("fails after writing".into()))
        };
        let answers = settle(&db, vec![job("a", put("a")), job("half", half), job("b", put("b"))]);
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(answers[1], Err(StoreError::Corrupt(_))), "{answers:?}");
        assert_eq!(rows(&db), ["a", "b"], "the failed job's partial write is not committed");
    }

    #[test]
    fn a_panicking_operation_fails_alone() {
        let (_dir, db) = open();
        let panics = |txn: &WriteTransaction| -> Result<(), StoreError> {
            put("before-panic")(txn)?;
            panic!("operation panics");
        };
        let answers = settle(&db, vec![job("a", put("a")), job("panics", panics), job("b", put("b"))]);
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(&answers[1], Err(StoreError::Unavailable(msg)) if msg.contains("panicked")), "{answers:?}");
        assert_eq!(rows(&db), ["a", "b"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_answered() {
        let (_dir, db) = open();
        let writer = Arc::new(Writer::new(Arc::new(db)));
        let names: Vec<String> = (0..300).map(|n| format!("row-{n:03}")).collect();
        let mut writes = tokio::task::JoinSet::new();
        for name in names.iter().cloned() {
            let writer = Arc::clone(&writer);
            writes.spawn(async move { writer.write("put", put(name)).await });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("write task").expect("write");
        }
        let mut stored = rows(&writer.db);
        stored.sort();
        assert_eq!(stored, names);
        assert!(!writer.lock().draining, "the writer is idle once every write is answered");
    }

    #[test]
    fn a_drain_lost_with_its_runtime_leaves_the_writer_usable() {
        let (_dir, db) = open();
        let writer = Arc::new(Writer::new(Arc::new(db)));
        // A write whose drain was discarded unrun, as by a runtime shutting down.
        let (orphan, mut orphan_answer) = job("orphan", put("orphan"));
        {
            let mut queue = writer.lock();
            queue.jobs.push(orphan);
            queue.draining = true;
        }
        drop(DrainToken(Some(Arc::clone(&writer))));
        assert!(!writer.lock().draining, "with no runtime to drain on, the writer is marked idle");

        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        runtime.block_on(writer.write("next", put("next"))).expect("the next write is committed");
        assert_eq!(rows(&writer.db), ["next", "orphan"], "the next drain also commits the orphaned write");
        assert!(matches!(orphan_answer.try_recv(), Ok(Ok(()))));
    }
}
