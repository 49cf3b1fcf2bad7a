//! Grouped history writes for single-writer databases (SQLite).
//!
//! SQLite admits one writer at a time. A thousand jobs due in the same second each writing
//! their start row, then their end row, in statements of their own, queue on its write lock:
//! every writer that finds it taken sleeps in SQLite's busy handler, in steps that grow to
//! 100 ms, so the last runs of a tick start (and end) long after the first. Here the writes
//! queue in the process instead, and one writer task writes what has queued in one
//! statement: the start rows of a tick in one multi-row `INSERT ... RETURNING`, the end rows
//! in one `UPDATE ... RETURNING`. Nothing waits for a group to fill: a write that finds no
//! writer at work starts one at once, and what queues meanwhile goes into the next statement
//! (group commit). A lone write is the statement [`ExecutionStore::start`] would run, or the
//! one of a lone end.
//!
//! The rows written are the same as one statement per run would write; each caller gets the
//! id (or the "already closed" answer) of its own row.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sea_query::{CaseStatement, Expr, ExprTrait, Query};
use tokio::sync::oneshot;

use super::{ExecutionStore, NewExecution, RunEnd, duration_ms, ts};
use crate::error::{Error, Result};
use crate::store::schema::Exec;

/// Start rows per `INSERT` (7 values each: well inside SQLite's 32,766 variables).
const MAX_STARTS: usize = 1000;
/// End rows per `UPDATE` (13 values each).
const MAX_FINISHES: usize = 200;
/// Rows written, starts and ends, after which the writer checkpoints the WAL once nothing
/// more is queued. A thousand rows are a few hundred WAL frames, below SQLite's automatic
/// checkpoint at 1,000: left to itself, that checkpoint runs inside whichever commit crosses
/// the threshold, and when that is a group of starts, every run of the tick waits for the
/// copy. Once a tick's writes are done, nobody waits for it. (Scheduler bench, 1,000 jobs a
/// second with history, 20 s runs: p99 lateness 29.8 / 31.5 / 94.7 ms before, with one late
/// tick making the 94.7; 18.1 to 28.2 ms in four runs after, every second's latest entry
/// under 29 ms.)
const CHECKPOINT_AFTER_ROWS: usize = 1000;

type Reply<T> = oneshot::Sender<Result<T>>;

type Starts = Vec<(NewExecution, Reply<i64>)>;
type Finishes = Vec<(RunEnd, Reply<bool>)>;

#[derive(Default)]
struct Queue {
    starts: Starts,
    finishes: Finishes,
    /// A writer task is at work and will take what is queued.
    writing: bool,
    /// Rows written since the last checkpoint.
    since_checkpoint: usize,
}

/// The queue of one store (shared by its clones).
#[derive(Default, Clone)]
pub(crate) struct Writes(Arc<Mutex<Queue>>);

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writes")
    }
}

impl Writes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue the end of a run and wait for the group that writes it (see
    /// [`ExecutionStore::record_end`]).
    pub(super) async fn end(&self, store: &ExecutionStore, end: RunEnd) -> Result<bool> {
        let (tx, rx) = oneshot::channel();
        self.push(store, |q| q.finishes.push((end, tx)));
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Queue a write; start the writer if none is at work.
    fn push(&self, store: &ExecutionStore, add: impl FnOnce(&mut Queue)) {
        let start = {
            let mut queue = self.lock();
            add(&mut queue);
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            // A task of its own: a caller that stops waiting (a timeout) does not stop the
            // statement that carries other callers' rows.
            tokio::spawn(writer(store.clone()));
        }
    }
}

/// The answer to a caller whose writer went away (its runtime shut down).
fn gone() -> Error {
    Error::ShutDown
}

/// The error of a grouped statement, for each of its callers.
fn shared_error(e: &Error) -> Error {
    match e {
        Error::Timeout(d) => Error::Timeout(*d),
        other => Error::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

impl ExecutionStore {
    /// [`start`](Self::start), grouped with the starts of other runs on a single-writer
    /// database.
    pub(crate) async fn start_grouped(&self, new: NewExecution) -> Result<i64> {
        if !self.db.backend().single_writer() {
            return self.start(&new).await;
        }
        let (tx, rx) = oneshot::channel();
        self.writes.push(self, |q| q.starts.push((new, tx)));
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    /// Several start rows in one statement; the ids in the order of `rows`.
    async fn start_many(&self, rows: &[&NewExecution]) -> Result<Vec<i64>> {
        if let [one] = rows {
            return Ok(vec![self.start(one).await?]);
        }
        let mut stmt = self.start_insert();
        for new in rows {
            stmt.values_panic(Self::start_values(new));
        }
        stmt.returning(Query::returning().columns([Exec::Id, Exec::JobName]));
        let returned = self.db.fetch_all(&stmt).await?;
        // The order of RETURNING rows is not promised: match them by job name, which is
        // unique within a group (see `writer`).
        let mut ids = std::collections::BTreeMap::new();
        for row in &returned {
            ids.insert(
                row.opt_string("job_name")?.unwrap_or_default(),
                row.i64("id")?,
            );
        }
        rows.iter()
            .map(|new| {
                ids.get(&new.job_name).copied().ok_or_else(|| {
                    Error::Database(sqlx::Error::Protocol(format!(
                        "the grouped INSERT returned no id for {}",
                        new.job_name
                    )))
                })
            })
            .collect()
    }

    /// Several end rows in one statement; for each, whether its row was open (as
    /// [`record_end`](Self::record_end) answers). The outer error is the grouped
    /// statement's, every row's; an inner one is that row's alone (its rare path failed),
    /// so it never fails the others.
    async fn end_many(&self, rows: &[&RunEnd]) -> Result<Vec<Result<bool>>> {
        if let [one] = rows {
            return Ok(vec![self.end_one(one).await]);
        }
        let by_id = |value: &dyn Fn(&RunEnd) -> Expr, otherwise: Expr| {
            let mut case = CaseStatement::new();
            for f in rows {
                case = case.case(Expr::col(Exec::Id).eq(f.id), value(f));
            }
            let expr: Expr = case.finally(otherwise).into();
            expr
        };
        let fields = RunEnd::fields;
        let col = |c: Exec| Expr::col(c);
        let mut stmt = Query::update()
            .table(self.tables.executions.clone())
            .value(
                Exec::CompletedAt,
                by_id(&|f| Expr::val(ts(f.completed_at)), col(Exec::CompletedAt)),
            )
            .value(
                Exec::Success,
                by_id(&|f| Expr::val(fields(f).0), col(Exec::Success)),
            )
            .value(
                Exec::ErrorMessage,
                by_id(&|f| Expr::val(fields(f).1), col(Exec::ErrorMessage)),
            )
            .value(
                Exec::RecordsProcessed,
                by_id(&|f| Expr::val(fields(f).2), col(Exec::RecordsProcessed)),
            )
            .value(
                Exec::Status,
                by_id(
                    &|f| Expr::val(f.outcome.status().as_str()),
                    col(Exec::Status),
                ),
            )
            .value(
                Exec::DurationMs,
                by_id(
                    &|f| match f.duration {
                        Some(d) => Expr::val(duration_ms(d)),
                        None => col(Exec::DurationMs),
                    },
                    col(Exec::DurationMs),
                ),
            )
            .and_where(Expr::col(Exec::Id).is_in(rows.iter().map(|f| f.id)))
            .and_where(Expr::col(Exec::CompletedAt).is_null())
            .to_owned();
        stmt.returning_col(Exec::Id);
        let closed: BTreeSet<i64> = self
            .db
            .fetch_all(&stmt)
            .await?
            .iter()
            .map(|row| row.i64("id"))
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for f in rows {
            if closed.contains(&f.id) {
                out.push(Ok(true));
            } else {
                // Already closed (abandoned by another replica): the rare path, one run at a
                // time, as a lone end handles it (its records filled in).
                out.push(self.end_one(f).await);
            }
        }
        Ok(out)
    }
}

/// Frees the queue if the writer is dropped mid-way (its runtime shut down): the callers
/// still queued are answered [`Error::ShutDown`], and the next write starts a new writer.
struct Stop {
    writes: Writes,
    /// The writer returned normally: nothing to free.
    done: bool,
}

impl Drop for Stop {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = self.writes.lock();
        queue.writing = false;
        queue.starts.clear();
        queue.finishes.clear();
    }
}

/// Write what has queued, group by group, until nothing is left.
async fn writer(store: ExecutionStore) {
    let mut stop = Stop {
        writes: store.writes.clone(),
        done: false,
    };
    let mut ends_waited = false;
    loop {
        let mut checkpoint = false;
        let next = {
            let mut queue = store.writes.lock();
            if queue.starts.is_empty() && queue.finishes.is_empty() {
                queue.writing = false;
                checkpoint = queue.since_checkpoint >= CHECKPOINT_AFTER_ROWS;
                if checkpoint {
                    queue.since_checkpoint = 0;
                }
                None
            } else {
                Some(take_group(&mut queue, &mut ends_waited))
            }
        };
        let Some((starts, finishes)) = next else {
            stop.done = true;
            // After the queue is free: writes that come meanwhile start a writer of their
            // own, which a passive checkpoint does not block.
            if checkpoint && let Err(e) = store.db.passive_checkpoint().await {
                tracing::debug!(error = %e, "checkpoint after grouped history writes failed");
            }
            return;
        };
        if !starts.is_empty() {
            let rows: Vec<&NewExecution> = starts.iter().map(|(new, _)| new).collect();
            let result = store.start_many(&rows).await;
            deliver(starts.into_iter().map(|(_, tx)| tx), result);
        }
        if !finishes.is_empty() {
            let rows: Vec<&RunEnd> = finishes.iter().map(|(f, _)| f).collect();
            match store.end_many(&rows).await {
                Ok(each) => {
                    for ((_, tx), result) in finishes.into_iter().zip(each) {
                        let _ = tx.send(result);
                    }
                }
                Err(e) => deliver::<bool>(finishes.into_iter().map(|(_, tx)| tx), Err(e)),
            }
        }
    }
}

/// The next group to write from `queue`: starts (one per job) and ends.
fn take_group(queue: &mut Queue, ends_waited: &mut bool) -> (Starts, Finishes) {
    // One row per job in a group (ids are matched by job name); another start of
    // the same job waits for the next group.
    let mut names = BTreeSet::new();
    let mut starts = Vec::new();
    let mut later = Vec::new();
    for entry in queue.starts.drain(..) {
        if starts.len() < MAX_STARTS && names.insert(entry.0.job_name.clone()) {
            starts.push(entry);
        } else {
            later.push(entry);
        }
    }
    queue.starts = later;
    // Starts first: a run's start is what keeps its job from being entered, its end
    // only keeps its waiters waiting. Ends wait for at most one group of starts, so a
    // steady stream of starts cannot hold them back.
    let n = if starts.is_empty() || *ends_waited {
        queue.finishes.len().min(MAX_FINISHES)
    } else {
        0
    };
    *ends_waited = n == 0 && !queue.finishes.is_empty();
    let finishes: Vec<_> = queue.finishes.drain(..n).collect();
    queue.since_checkpoint += starts.len() + finishes.len();
    (starts, finishes)
}

/// Give each caller its answer.
fn deliver<T>(replies: impl Iterator<Item = Reply<T>>, result: Result<Vec<T>>) {
    match result {
        Ok(values) => {
            for (tx, value) in replies.zip(values) {
                let _ = tx.send(Ok(value));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "grouped history write failed");
            for tx in replies {
                let _ = tx.send(Err(shared_error(&e)));
            }
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
