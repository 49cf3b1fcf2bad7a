//! Closing a run's row: its end as its runner reports it (one path, [`ExecutionStore::record_end`],
//! grouped with other runs' ends on a single-writer database), or abandoned when the process
//! running it is gone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Query};

use super::schema::Exec;
use super::{ExecutionStatus, ExecutionStore, Outcome, duration_ms, ts};
use crate::error::Result;

/// The end of one run, as [`ExecutionStore::record_end`] writes it.
///
/// ```
/// use std::time::Duration;
/// use barycenter_jobs_core::{Outcome, RunEnd};
/// use chrono::Utc;
///
/// let end = RunEnd::new(7, Outcome::Failed { message: "timed out after 60s".into() }, Utc::now())
///     .with_duration(Duration::from_secs(60))
///     .with_partial(1_200);
/// assert_eq!(end.partial, Some(1_200));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunEnd {
    /// The run's id.
    pub id: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// When it ended.
    pub completed_at: DateTime<Utc>,
    /// How long it ran, as its runner measured it (`duration_ms`); `None` leaves the column
    /// as it is.
    pub duration: Option<Duration>,
    /// The units of work a run that did not succeed had done before it stopped
    /// (`records_processed`); a successful run records its own count and ignores this.
    pub partial: Option<u64>,
}

impl RunEnd {
    /// The end of run `id`, without a duration or a partial count.
    pub fn new(id: i64, outcome: Outcome, completed_at: DateTime<Utc>) -> Self {
        Self {
            id,
            outcome,
            completed_at,
            duration: None,
            partial: None,
        }
    }

    /// With the run time, recorded in `duration_ms` by the same statement.
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// With the units of work done by a run that did not succeed.
    pub fn with_partial(mut self, records: u64) -> Self {
        self.partial = Some(records);
        self
    }

    /// The values of its row: `success`, `error_message`, `records_processed`.
    pub(super) fn fields(&self) -> (i64, Option<String>, Option<i64>) {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match &self.outcome {
            Outcome::Succeeded { records_processed } => (1, None, Some(count(*records_processed))),
            Outcome::Failed { message }
            | Outcome::Cancelled { message }
            | Outcome::Abandoned { message } => (0, Some(message.clone()), self.partial.map(count)),
        }
    }
}

impl ExecutionStore {
    /// Record the end of a run: the one way a run's row is closed with its outcome. Returns
    /// false if the row was already closed (for example as abandoned by another replica);
    /// it then keeps its status, and only its `records_processed`, if empty, is filled in,
    /// so the history still says what the run did.
    ///
    /// On a single-writer database (SQLite) the ends of runs that finish together are
    /// written in one statement (see the `group` module); each caller still gets its own
    /// row's answer.
    pub async fn record_end(&self, end: RunEnd) -> Result<bool> {
        if self.db.backend().single_writer() {
            self.writes.end(self, end).await
        } else {
            self.end_one(&end).await
        }
    }

    /// Record the end of run `id`.
    #[deprecated(note = "use `record_end(RunEnd::new(id, outcome, completed_at))`")]
    pub async fn finish(
        &self,
        id: i64,
        outcome: &Outcome,
        completed_at: DateTime<Utc>,
    ) -> Result<bool> {
        self.record_end(RunEnd::new(id, outcome.clone(), completed_at))
            .await
    }

    /// Record the end of run `id` with its run time.
    #[deprecated(note = "use `record_end(RunEnd::new(..).with_duration(..))`")]
    pub async fn finish_timed(
        &self,
        id: i64,
        outcome: &Outcome,
        completed_at: DateTime<Utc>,
        duration: Option<Duration>,
    ) -> Result<bool> {
        let mut end = RunEnd::new(id, outcome.clone(), completed_at);
        end.duration = duration;
        self.record_end(end).await
    }

    /// Record the end of run `id` with its run time and partial count.
    #[deprecated(note = "use `record_end(RunEnd::new(..).with_duration(..).with_partial(..))`")]
    pub async fn finish_run(
        &self,
        id: i64,
        outcome: &Outcome,
        completed_at: DateTime<Utc>,
        duration: Option<Duration>,
        partial: Option<u64>,
    ) -> Result<bool> {
        let mut end = RunEnd::new(id, outcome.clone(), completed_at);
        end.duration = duration;
        end.partial = partial;
        self.record_end(end).await
    }

    /// The statement of one run's end, and the fill-in of a row already closed: what
    /// [`record_end`](Self::record_end) does for a lone run, and what the grouped statement
    /// leaves to each row it did not close.
    pub(super) async fn end_one(&self, end: &RunEnd) -> Result<bool> {
        let (success, message, records) = end.fields();
        let mut stmt = Query::update()
            .table(self.tables.executions.clone())
            .value(Exec::CompletedAt, ts(end.completed_at))
            .value(Exec::Success, success)
            .value(Exec::ErrorMessage, message)
            .value(Exec::RecordsProcessed, records)
            .value(Exec::Status, end.outcome.status().as_str())
            .and_where(Expr::col(Exec::Id).eq(end.id))
            .and_where(Expr::col(Exec::CompletedAt).is_null())
            .to_owned();
        if let Some(duration) = end.duration {
            // Measured by the runner: the second-precision start column would be too coarse.
            stmt.value(Exec::DurationMs, duration_ms(duration));
        }
        if self.db.execute(&stmt).await? == 1 {
            return Ok(true);
        }
        // Already closed: another replica took the job over while this runner could not reach
        // the database, and closed the run as abandoned without knowing what it did. The
        // outcome stays abandoned, but the rows the run processed are filled in, so the
        // history still says exactly what was done.
        if let Some(records) = records {
            let fill = Query::update()
                .table(self.tables.executions.clone())
                .value(Exec::RecordsProcessed, records)
                .and_where(Expr::col(Exec::Id).eq(end.id))
                .and_where(Expr::col(Exec::Status).eq(ExecutionStatus::Abandoned.as_str()))
                .and_where(Expr::col(Exec::RecordsProcessed).is_null())
                .to_owned();
            self.db.execute(&fill).await?;
        }
        Ok(false)
    }

    /// Close as abandoned the runs of jobs *not* in `known` that are still open and started
    /// before `started_before` (left by a job this scheduler does not run: a module the host
    /// replaced, a plugin removed). Returns how many rows were closed.
    pub async fn close_unknown_abandoned(
        &self,
        known: &[&str],
        started_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut stmt = self
            .abandon()
            .value(Exec::CompletedAt, ts(now))
            .and_where(Expr::col(Exec::StartedAt).lt(ts(started_before)))
            .to_owned();
        if !known.is_empty() {
            stmt.and_where(Expr::col(Exec::JobName).is_not_in(known.iter().copied()));
        }
        self.db.execute(&stmt).await
    }

    /// Note that open run `id` has processed `records` so far (live progress, while it
    /// runs); a closed row is left as it is. One `UPDATE` by primary key.
    pub async fn record_progress(&self, id: i64, records: u64) -> Result<()> {
        let stmt = Query::update()
            .table(self.tables.executions.clone())
            .value(
                Exec::RecordsProcessed,
                i64::try_from(records).unwrap_or(i64::MAX),
            )
            .and_where(Expr::col(Exec::Id).eq(id))
            .and_where(Expr::col(Exec::CompletedAt).is_null())
            .to_owned();
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// Close the open runs with these ids as abandoned (rows already closed are left as they
    /// are). Returns how many rows were closed.
    pub async fn close_abandoned_ids(&self, ids: &[i64], now: DateTime<Utc>) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let stmt = self
            .abandon()
            .value(Exec::CompletedAt, ts(now))
            .and_where(Expr::col(Exec::Id).is_in(ids.iter().copied()))
            .to_owned();
        self.db.execute(&stmt).await
    }

    /// The UPDATE that marks open rows abandoned; callers add the rows it applies to.
    fn abandon(&self) -> sea_query::UpdateStatement {
        Query::update()
            .table(self.tables.executions.clone())
            .value(Exec::Success, 0)
            .value(
                Exec::ErrorMessage,
                "abandoned: the process running it stopped before it finished",
            )
            .value(Exec::Status, ExecutionStatus::Abandoned.as_str())
            .and_where(Expr::col(Exec::CompletedAt).is_null())
            .to_owned()
    }

    /// Close every open run of `job_name` other than `except` as abandoned. The caller must
    /// hold the job's lease, which proves nobody else is running it. Returns how many rows
    /// were closed.
    pub async fn close_abandoned(
        &self,
        job_name: &str,
        except: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut stmt = self
            .abandon()
            .value(Exec::CompletedAt, ts(now))
            .and_where(Expr::col(Exec::JobName).eq(job_name))
            .to_owned();
        if let Some(id) = except {
            stmt.and_where(Expr::col(Exec::Id).ne(id));
        }
        self.db.execute(&stmt).await
    }
}
