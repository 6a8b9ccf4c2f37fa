//! The writer: the one connection that writes to an embedded SQLite
//! database (and, when configured, to PostgreSQL), fed by a bounded queue,
//! committing the units that wait together (group commit).
//!
//! Why: SQLite admits one writer at a time. Pooled connections competing
//! for that lock through `busy_timeout` back off with sleeps, which gave
//! second-long latency tails under a handful of users. One writer thread
//! never competes with itself, and committing every waiting unit in one
//! transaction pays the `synchronous=FULL` fsync once per batch instead of
//! once per request. On PostgreSQL the same trade is optional
//! (`LEEWAY_GROUP_COMMIT_POSTGRES`): one commit per batch instead of one per
//! request, at the price that a unit waiting on a row lock held by another
//! process holds up the units behind it (bounded by the statement timeout).
//!
//! How a batch runs: the writer takes the first unit from the queue, then
//! whatever else is already waiting (up to the batch maximum), opens one
//! write transaction (`BEGIN IMMEDIATE` on SQLite), runs each unit inside a
//! SAVEPOINT of its own (a unit that fails rolls back alone; its neighbours
//! keep their work), commits once, and only then answers every unit. No
//! request hears "done" before its commit is durable; if the commit fails,
//! every unit of the batch hears that it failed and nothing of it is stored.
//!
//! A full queue refuses at once with [`Error::Unavailable`] (503 with
//! `Retry-After`), so a burst never hangs requests.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use diesel::Connection;
use diesel::connection::TransactionManager;

use super::{DbConnection, Error, begin_write};

/// Units that may wait for the writer before new ones are refused with 503.
pub const WRITE_QUEUE_CAPACITY: usize = 1_024;
/// Most units committed together in one transaction, by default.
pub const GROUP_COMMIT_UNITS_DEFAULT: usize = 64;
/// Most units an operator may ask to commit together: a larger batch only
/// makes every request in it wait for the slowest.
pub const GROUP_COMMIT_UNITS_MAX: usize = 1_024;

/// Diesel's transaction manager for the connection enum: at depth 0 it
/// begins and commits the batch, below that it sets and releases savepoints.
type Manager = <DbConnection as Connection>::TransactionManager;

/// One unit of work handed to the writer.
trait Unit: Send {
    /// Runs the work on the writer's connection, inside its savepoint.
    fn run(self: Box<Self>, connection: &mut DbConnection) -> Box<dyn Finished>;
    /// Answers without running: the writer could not start a transaction.
    fn refuse(self: Box<Self>, error: Error);
}

/// A unit that ran and waits for its batch's commit before it answers.
trait Finished: Send {
    /// Whether the work succeeded (its savepoint is kept) or failed (rolled back).
    fn succeeded(&self) -> bool;
    /// Answers the request: the work's own result if the batch committed
    /// or the work failed; the commit's failure otherwise.
    fn answer(self: Box<Self>, commit: Result<(), &Error>);
}

/// A unit's work and where its answer goes.
struct Job<F, T, E> {
    work: F,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

/// A job's result, held until the batch commits.
struct Done<T, E> {
    result: Result<T, E>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Unit for Job<F, T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &mut DbConnection) -> Box<dyn Finished> {
        let result = (self.work)(connection);
        Box::new(Done {
            result,
            reply: self.reply,
        })
    }

    fn refuse(self: Box<Self>, error: Error) {
        // The request may have gone away; nobody is left to tell.
        let _ = self.reply.send(Err(E::from(error)));
    }
}

impl<T: Send, E: From<Error> + Send> Finished for Done<T, E> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn answer(self: Box<Self>, commit: Result<(), &Error>) {
        let answer = match (self.result, commit) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(error)) => Err(E::from(error.clone())),
            (Err(error), _) => Err(error),
        };
        let _ = self.reply.send(answer);
    }
}

/// The handle requests use to reach the writer thread. Cloning it is cheap;
/// the thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Box<dyn Unit>>,
    depth: Arc<AtomicUsize>,
}

impl Writer {
    /// Starts the writer thread. It opens its connection with `connect` at
    /// its first unit, and again after a batch that failed.
    pub fn start(
        connect: impl Fn() -> Result<DbConnection, Error> + Send + 'static,
        units_per_commit_max: usize,
    ) -> Result<Self, Error> {
        let (queue, units) = sync_channel(WRITE_QUEUE_CAPACITY);
        let depth = Arc::new(AtomicUsize::new(0));
        let thread_depth = Arc::clone(&depth);
        let units_per_commit_max = units_per_commit_max.clamp(1, GROUP_COMMIT_UNITS_MAX);
        std::thread::Builder::new()
            .name("leeway-writer".to_owned())
            .spawn(move || write_loop(&units, &thread_depth, &connect, units_per_commit_max))
            .map_err(|error| Error::Internal(format!("cannot start the writer: {error}")))?;
        Ok(Self { queue, depth })
    }

    /// Units waiting for the writer now.
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Queues `work` and waits for its answer, which comes only after the
    /// batch it ran in has committed (or failed).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.queue.try_send(Box::new(Job { work, reply })) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                return Err(E::from(Error::Unavailable(format!(
                    "the write queue is full ({WRITE_QUEUE_CAPACITY} units waiting)"
                ))));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                return Err(E::from(Error::Internal(
                    "the writer has stopped".to_owned(),
                )));
            }
        }
        // A dropped reply means the unit panicked; its savepoint was rolled back.
        answer
            .await
            .map_err(|_| E::from(Error::Internal("a write unit panicked".to_owned())))?
    }
}

/// The writer thread: takes batches until every handle is gone.
fn write_loop(
    units: &Receiver<Box<dyn Unit>>,
    depth: &AtomicUsize,
    connect: &dyn Fn() -> Result<DbConnection, Error>,
    units_per_commit_max: usize,
) {
    let mut connection: Option<DbConnection> = None;
    let mut batch: Vec<Box<dyn Unit>> = Vec::with_capacity(units_per_commit_max);
    while let Ok(first) = units.recv() {
        batch.push(first);
        while batch.len() < units_per_commit_max {
            match units.try_recv() {
                Ok(unit) => batch.push(unit),
                Err(_) => break,
            }
        }
        let waiting = depth.fetch_sub(batch.len(), Ordering::Relaxed) - batch.len();
        crate::metrics::write_queue_depth(waiting);
        crate::metrics::commit_batch(batch.len());
        let open = match connection.take() {
            Some(open) => Ok(open),
            None => connect(),
        };
        match open {
            Ok(mut open) => {
                if run_batch(&mut open, batch.drain(..)) {
                    connection = Some(open);
                }
            }
            Err(error) => batch.drain(..).for_each(|unit| unit.refuse(error.clone())),
        }
    }
}

/// Runs one batch in one transaction; answers every unit after the commit.
/// Returns whether the connection is still fit to use.
fn run_batch(connection: &mut DbConnection, batch: impl Iterator<Item = Box<dyn Unit>>) -> bool {
    if let Err(error) = begin_write(connection) {
        batch.for_each(|unit| unit.refuse(error.clone()));
        return false;
    }
    let mut finished: Vec<Box<dyn Finished>> = Vec::new();
    let mut failure: Option<Error> = None;
    for unit in batch {
        if let Some(error) = &failure {
            unit.refuse(error.clone());
            continue;
        }
        let (done, broke) = run_in_savepoint(connection, unit);
        finished.extend(done);
        failure = broke;
    }
    let commit = match failure {
        None => Manager::commit_transaction(connection).map_err(Error::from),
        Some(error) => {
            if let Err(rollback) = Manager::rollback_transaction(connection) {
                tracing::error!(%rollback, "rollback of a failed batch failed");
            }
            Err(error)
        }
    };
    for done in finished {
        done.answer(commit.as_ref().copied());
    }
    commit.is_ok()
}

/// Runs one unit inside a savepoint: kept if it succeeded, rolled back if it
/// failed or panicked (a panicking unit leaves nothing to answer: its reply
/// is dropped). An error beside it means the transaction itself broke.
fn run_in_savepoint(
    connection: &mut DbConnection,
    unit: Box<dyn Unit>,
) -> (Option<Box<dyn Finished>>, Option<Error>) {
    if let Err(error) = Manager::begin_transaction(connection) {
        let error = Error::from(error);
        unit.refuse(error.clone());
        return (None, Some(error));
    }
    let ran = catch_unwind(AssertUnwindSafe(|| unit.run(connection))).ok();
    let ended = if ran.as_ref().is_some_and(|done| done.succeeded()) {
        Manager::commit_transaction(connection)
    } else {
        Manager::rollback_transaction(connection)
    };
    (ran, ended.err().map(Error::from))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        value: i64,
    }

    /// A writer on a fresh SQLite file with one table of numbers.
    fn writer(dir: &tempfile::TempDir, units_per_commit_max: usize) -> Writer {
        let path = dir.path().join("writer.db").to_string_lossy().into_owned();
        let mut setup = SqliteConnection::establish(&path).unwrap();
        setup
            .batch_execute("PRAGMA journal_mode = WAL; CREATE TABLE numbers (n INTEGER NOT NULL)")
            .unwrap();
        let connect = move || {
            SqliteConnection::establish(&path)
                .map(DbConnection::Sqlite)
                .map_err(|error| Error::Unavailable(error.to_string()))
        };
        Writer::start(connect, units_per_commit_max).unwrap()
    }

    fn insert(n: i64) -> impl FnOnce(&mut DbConnection) -> Result<i64, Error> + Send {
        move |connection| {
            connection.batch_execute(&format!("INSERT INTO numbers (n) VALUES ({n})"))?;
            Ok(n)
        }
    }

    async fn numbers(writer: &Writer) -> i64 {
        writer
            .write(|connection| {
                let count: Count =
                    diesel::sql_query("SELECT COALESCE(SUM(n), 0) AS value FROM numbers")
                        .get_result(connection)?;
                Ok::<_, Error>(count.value)
            })
            .await
            .unwrap()
    }

    /// Holds the writer inside a unit until the returned sender is used or
    /// dropped, so the units queued meanwhile are committed as one batch.
    async fn hold_writer(writer: &Writer) -> (mpsc::Sender<()>, impl Future<Output = ()>) {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let held = writer.clone();
        let holding = async move {
            held.write(move |_| {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
        };
        let holding = tokio::spawn(holding);
        let wait = async move {
            holding.await.unwrap();
        };
        started_rx.await.unwrap();
        (release_tx, wait)
    }

    #[tokio::test]
    async fn a_failing_unit_rolls_back_alone_and_its_neighbours_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, GROUP_COMMIT_UNITS_DEFAULT);
        let (release, held) = hold_writer(&writer).await;
        let good_first = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(insert(1)).await }
        });
        let failing = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|connection| {
                        connection.batch_execute("INSERT INTO numbers (n) VALUES (100)")?;
                        Err::<i64, _>(Error::Internal("refused after writing".to_owned()))
                    })
                    .await
            }
        });
        let panicking = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write(|connection| -> Result<i64, Error> {
                        connection
                            .batch_execute("INSERT INTO numbers (n) VALUES (1000)")
                            .unwrap();
                        panic!("a bug inside a unit");
                    })
                    .await
            }
        });
        let good_last = tokio::spawn({
            let writer = writer.clone();
            async move { writer.write(insert(10)).await }
        });
        // Let all four reach the queue before the writer takes its next batch.
        while writer.queue_depth() < 4 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await;
        assert_eq!(good_first.await.unwrap().unwrap(), 1);
        assert!(matches!(failing.await.unwrap(), Err(Error::Internal(_))));
        assert!(matches!(panicking.await.unwrap(), Err(Error::Internal(_))));
        assert_eq!(good_last.await.unwrap().unwrap(), 10);
        assert_eq!(numbers(&writer).await, 11, "only the two good units stay");
    }

    #[tokio::test]
    async fn queued_units_commit_together_and_answer_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, GROUP_COMMIT_UNITS_DEFAULT);
        let (release, held) = hold_writer(&writer).await;
        let units: Vec<_> = (1..=20)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(insert(n)).await })
            })
            .collect();
        while writer.queue_depth() < 20 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await;
        for (n, unit) in (1..=20).zip(units) {
            assert_eq!(unit.await.unwrap().unwrap(), n);
        }
        // Every answer came after its commit: a separate connection sees all.
        let path = dir.path().join("writer.db").to_string_lossy().into_owned();
        let mut reader = SqliteConnection::establish(&path).unwrap();
        let seen: Count = diesel::sql_query("SELECT COALESCE(SUM(n), 0) AS value FROM numbers")
            .get_result(&mut reader)
            .unwrap();
        assert_eq!(seen.value, (1..=20).sum::<i64>());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir, 1);
        let (release, held) = hold_writer(&writer).await;
        let waiting: Vec<_> = (0..WRITE_QUEUE_CAPACITY)
            .map(|_| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(insert(0)).await })
            })
            .collect();
        while writer.queue_depth() < WRITE_QUEUE_CAPACITY {
            tokio::task::yield_now().await;
        }
        let refused = writer.write(insert(1)).await;
        assert!(matches!(refused, Err(Error::Unavailable(_))), "{refused:?}");
        release.send(()).unwrap();
        held.await;
        for unit in waiting {
            unit.await.unwrap().unwrap();
        }
        assert_eq!(numbers(&writer).await, 0);
    }
}
