//! Run controls on the lease row: a tick buffered while the job ran (`overlap =
//! buffer_one`), a cancel asked of the run that holds the lease (`overlap =
//! cancel_running`, and operators), the backfill tick claimed last, and what work waits on
//! free leases for any replica to take over.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_query::{Cond, Expr, ExprTrait, Query};

use super::{Lease, LeaseStore, PendingRetry, ttl_ms};
use crate::db::from_millis;
use crate::error::Result;
use crate::store::schema::Lease as Col;

/// Work waiting on one job's free lease row, for whichever replica takes it (see
/// [`LeaseStore::waiting`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waiting {
    /// The job.
    pub job_name: String,
    /// A retry due at least the grace ago.
    pub retry: Option<PendingRetry>,
    /// A tick buffered while the job ran and not run since.
    pub buffered: Option<DateTime<Utc>>,
    /// The backfill tick claimed last, if the job is among those asked about.
    pub backfill_tick: Option<DateTime<Utc>>,
}

fn tick_of(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

impl LeaseStore {
    /// Buffer `tick` of `job_name` to run once the run that holds the lease now ends (a
    /// newer buffered tick replaces an older one); with `cancel_by`, also ask that run to
    /// stop. Only while the lease is held and `tick` was not claimed: `Ok(false)` when the
    /// lease is free (the caller claims the tick itself) or the tick is taken. (MySQL counts
    /// an identical write as no change: `false` there may also mean another replica
    /// buffered this very tick first.)
    pub async fn buffer_tick(
        &self,
        job_name: &str,
        tick: DateTime<Utc>,
        cancel_by: Option<&str>,
    ) -> Result<bool> {
        let mut stmt = Query::update()
            .table(self.table.clone())
            .value(Col::BufferedTick, tick.timestamp())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::ExpiresAtMs).gt(self.now_ms()))
            .and_where(Expr::col(Col::LastTick).lt(tick.timestamp()))
            .to_owned();
        if let Some(by) = cancel_by {
            stmt.value(Col::CancelToken, Expr::col(Col::Token))
                .value(Col::CancelBy, by.chars().take(255).collect::<String>());
        }
        Ok(self.bounded(self.db.execute(&stmt)).await? == 1)
    }

    /// The tick buffered for `job_name` and not run since, if any.
    pub async fn buffered_tick(&self, job_name: &str) -> Result<Option<DateTime<Utc>>> {
        let stmt = Query::select()
            .column((self.table.clone(), Col::BufferedTick))
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::BufferedTick).gt(Expr::col(Col::LastTick)))
            .to_owned();
        let row = self.bounded(self.db.fetch_optional(&stmt)).await?;
        Ok(match row {
            Some(row) => row.opt_i64("buffered_tick")?.map(tick_of),
            None => None,
        })
    }

    /// Ask the run holding `job_name`'s lease to stop, naming `by`; with `execution_id`,
    /// only if that is the run holding it. `Ok(false)`: no such run holds the lease.
    pub async fn request_cancel(
        &self,
        job_name: &str,
        execution_id: Option<i64>,
        by: &str,
    ) -> Result<bool> {
        let mut stmt = Query::update()
            .table(self.table.clone())
            .value(Col::CancelToken, Expr::col(Col::Token))
            .value(Col::CancelBy, by.chars().take(255).collect::<String>())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::ExpiresAtMs).gt(self.now_ms()))
            .to_owned();
        if let Some(id) = execution_id {
            stmt.and_where(Expr::col(Col::ExecutionId).eq(id));
        }
        if self.bounded(self.db.execute(&stmt)).await? == 1 {
            return Ok(true);
        }
        // MySQL counts an identical write as no change: asked twice is asked.
        let mut check = Query::select()
            .column(Col::JobName)
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .and_where(Expr::col(Col::ExpiresAtMs).gt(self.now_ms()))
            .and_where(Expr::col(Col::CancelToken).eq(Expr::col(Col::Token)))
            .to_owned();
        if let Some(id) = execution_id {
            check.and_where(Expr::col(Col::ExecutionId).eq(id));
        }
        Ok(self
            .bounded(self.db.fetch_optional(&check))
            .await?
            .is_some())
    }

    /// Who asked the run holding `lease` to stop, if anybody did. One primary-key read.
    pub async fn cancel_requested(&self, lease: &Lease) -> Result<Option<String>> {
        let stmt = Query::select()
            .column((self.table.clone(), Col::CancelBy))
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(lease.job_name.as_str()))
            .and_where(Expr::col(Col::Token).eq(lease.token))
            .and_where(Expr::col(Col::CancelToken).eq(lease.token))
            .to_owned();
        let row = self.bounded(self.db.fetch_optional(&stmt)).await?;
        Ok(match row {
            Some(row) => Some(row.opt_string("cancel_by")?.unwrap_or_default()),
            None => None,
        })
    }

    /// Give a lease back whose backfill run of `tick` could not start: the tick is
    /// claimable again, and the next holder looks for a run left open (as after
    /// [`release_unclean`](Self::release_unclean)).
    pub async fn release_backfill_tick(&self, lease: &Lease, tick: DateTime<Utc>) -> Result<()> {
        let mut stmt = self.unclaim_statement(
            &lease.job_name,
            &lease.holder,
            Some(lease.token),
            None,
            false,
        );
        stmt.value(Col::BackfillTick, tick.timestamp() - 1)
            .and_where(Expr::col(Col::BackfillTick).eq(tick.timestamp()));
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// Forget the backfill tick claimed last: a new backfill begins.
    pub async fn reset_backfill(&self, job_name: &str) -> Result<()> {
        let stmt = Query::update()
            .table(self.table.clone())
            .value(Col::BackfillTick, Expr::val(Option::<i64>::None))
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .to_owned();
        self.bounded(self.db.execute(&stmt)).await?;
        Ok(())
    }

    /// The backfill tick of `job_name` claimed last, and whether its lease is held now.
    pub async fn backfill_state(&self, job_name: &str) -> Result<(Option<DateTime<Utc>>, bool)> {
        let stmt = Query::select()
            .column((self.table.clone(), Col::BackfillTick))
            .expr_as(
                Expr::case(Expr::col(Col::ExpiresAtMs).gt(self.now_ms()), 1).finally(0),
                sea_query::Alias::new("held"),
            )
            .from(self.table.clone())
            .and_where(Expr::col(Col::JobName).eq(job_name))
            .to_owned();
        let row = self.bounded(self.db.fetch_optional(&stmt)).await?;
        Ok(match row {
            Some(row) => (
                row.opt_i64("backfill_tick")?.map(tick_of),
                row.opt_i64("held")?.unwrap_or(0) != 0,
            ),
            None => (None, false),
        })
    }

    /// The work waiting on free leases for any replica: retries due at least `grace` ago
    /// (the replica that left one runs it at its time; the others take over only one it did
    /// not), ticks buffered while a job ran, and the backfill cursors of `backfilling` jobs.
    /// One statement.
    pub async fn waiting(&self, grace: Duration, backfilling: &[&str]) -> Result<Vec<Waiting>> {
        let mut any = Cond::any()
            .add(Expr::col(Col::RetryDueMs).lte(self.now_ms().sub(ttl_ms(grace))))
            .add(Expr::col(Col::BufferedTick).gt(Expr::col(Col::LastTick)));
        if !backfilling.is_empty() {
            any = any.add(Expr::col(Col::JobName).is_in(backfilling.iter().copied()));
        }
        let stmt = Query::select()
            // Qualified: see the settings store's read (SQLite's legacy quoting).
            .columns(
                [
                    Col::JobName,
                    Col::RetryTick,
                    Col::RetryAttempt,
                    Col::RetryDueMs,
                    Col::RetryUntilMs,
                    Col::BufferedTick,
                    Col::LastTick,
                    Col::BackfillTick,
                ]
                .map(|col| (self.table.clone(), col)),
            )
            .expr_as(
                Expr::case(
                    Expr::col(Col::RetryDueMs).lte(self.now_ms().sub(ttl_ms(grace))),
                    1,
                )
                .finally(0),
                sea_query::Alias::new("retry_overdue"),
            )
            .from(self.table.clone())
            .and_where(Expr::col(Col::ExpiresAtMs).lte(self.now_ms()))
            .cond_where(any)
            .to_owned();
        let rows = self.bounded(self.db.fetch_all(&stmt)).await?;
        rows.iter()
            .map(|row| {
                let job_name = row.opt_string("job_name")?.unwrap_or_default();
                let retry = match (
                    row.opt_i64("retry_overdue")?.unwrap_or(0) != 0,
                    row.opt_i64("retry_tick")?,
                    row.opt_i64("retry_attempt")?,
                ) {
                    (true, Some(tick), Some(attempt)) => Some(PendingRetry {
                        tick: tick_of(tick),
                        attempt: u32::try_from(attempt).unwrap_or(0),
                        due: from_millis(row.opt_i64("retry_due_ms")?.unwrap_or(0)),
                        until: row.opt_i64("retry_until_ms")?.map(from_millis),
                    }),
                    _ => None,
                };
                let last = row.opt_i64("last_tick")?.unwrap_or(0);
                let buffered = row
                    .opt_i64("buffered_tick")?
                    .filter(|t| *t > last)
                    .map(tick_of);
                let backfill_tick = row.opt_i64("backfill_tick")?.map(tick_of);
                Ok(Waiting {
                    job_name,
                    retry,
                    buffered,
                    backfill_tick,
                })
            })
            .collect()
    }
}
