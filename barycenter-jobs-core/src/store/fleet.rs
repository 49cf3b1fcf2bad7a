//! What the whole fleet knows about each job, read from the store: when the job was first
//! seen by this database, and when it last succeeded and last failed. Health and metrics are
//! computed from these, so every replica gives the same answer.

use chrono::{DateTime, Utc};
use sea_query::{Alias, Expr, ExprTrait, OnConflict, Order, Query, SelectStatement};

use super::schema::{Exec, JobRegistry};
use super::{ExecutionStore, from_ts, ts};
use crate::error::Result;

/// One job as the store has it (see [`ExecutionStore::job_summaries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSummary {
    /// The job's name.
    pub job_name: String,
    /// When a scheduler first started with this job on this database.
    pub first_seen_at: DateTime<Utc>,
    /// When its newest successful run completed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When its newest run that did not succeed (failed, timed out, cancelled, abandoned)
    /// completed.
    pub last_failure_at: Option<DateTime<Utc>>,
}

impl ExecutionStore {
    /// Note that these jobs exist, first seen `at`; jobs already known keep their first
    /// date. Called by the scheduler at start-up.
    pub async fn register_jobs<S: AsRef<str>>(
        &self,
        job_names: &[S],
        at: DateTime<Utc>,
    ) -> Result<()> {
        for name in job_names {
            let stmt = Query::insert()
                .into_table(self.tables.registry.clone())
                .columns([JobRegistry::JobName, JobRegistry::FirstSeenAt])
                .values_panic([name.as_ref().into(), ts(at).into()])
                .on_conflict(
                    // A no-op update rather than DO NOTHING, as for the lease rows: valid on
                    // SQLite, PostgreSQL, MySQL and MariaDB alike. The first date is kept.
                    OnConflict::column(JobRegistry::JobName)
                        .update_column(JobRegistry::JobName)
                        .to_owned(),
                )
                .to_owned();
            self.db.execute(&stmt).await?;
        }
        Ok(())
    }

    /// First-seen date, last success and last failure of every registered job (or only of
    /// `only`), sorted by name, in one statement: each "last" is a correlated probe of the
    /// `(job_name, success, id)` index, so the cost does not grow with the history.
    pub async fn job_summaries(&self, only: Option<&str>) -> Result<Vec<JobSummary>> {
        let registry = Alias::new("r");
        let mut q = Query::select()
            .column((registry.clone(), JobRegistry::JobName))
            .column((registry.clone(), JobRegistry::FirstSeenAt))
            .expr_as(self.last_completed(true), Alias::new("last_success_at"))
            .expr_as(self.last_completed(false), Alias::new("last_failure_at"))
            .from_as(self.tables.registry.clone(), registry.clone())
            .order_by((registry.clone(), JobRegistry::JobName), Order::Asc)
            .to_owned();
        if let Some(name) = only {
            q.and_where(Expr::col((registry, JobRegistry::JobName)).eq(name));
        }
        self.db
            .fetch_all(&q)
            .await?
            .iter()
            .map(|row| {
                Ok(JobSummary {
                    job_name: row.opt_string("job_name")?.unwrap_or_default(),
                    first_seen_at: from_ts(row.i64("first_seen_at")?),
                    last_success_at: row.opt_i64("last_success_at")?.map(from_ts),
                    last_failure_at: row.opt_i64("last_failure_at")?.map(from_ts),
                })
            })
            .collect()
    }

    /// `(SELECT completed_at FROM job_executions e WHERE e.job_name = r.job_name AND
    /// e.success = ? ORDER BY e.id DESC LIMIT 1)`.
    fn last_completed(&self, success: bool) -> SelectStatement {
        let e = Alias::new("e");
        Query::select()
            .column((e.clone(), Exec::CompletedAt))
            .from_as(self.tables.executions.clone(), e.clone())
            .and_where(
                Expr::col((e.clone(), Exec::JobName))
                    .equals((Alias::new("r"), JobRegistry::JobName)),
            )
            .and_where(Expr::col((e.clone(), Exec::Success)).eq(i64::from(success)))
            .order_by((e, Exec::Id), Order::Desc)
            .limit(1)
            .to_owned()
    }
}
