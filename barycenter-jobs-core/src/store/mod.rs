//! The execution history: one row per run in `job_executions`.
//!
//! The table is compatible with Barycenter's (`id`, `job_name`, `started_at` in epoch seconds,
//! `completed_at`, `success` NULL/0/1, `error_message`, `records_processed`); our extra columns
//! (`status`, `trigger_kind`, `instance`, `duration_ms`, `scheduled_for`) are nullable, so rows
//! Barycenter wrote read back fine and Barycenter can keep reading rows we write.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use barycenter_jobs_core::{Database, ExecutionQuery, ExecutionStore, NewExecution, Outcome, RunEnd};
//! use chrono::Utc;
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("h.db").display())).await?;
//! let store = ExecutionStore::new(db);
//! store.migrate().await?;
//!
//! let id = store.start(&NewExecution::manual("cleanup_expired_sessions", Utc::now())).await?;
//! store.record_end(RunEnd::new(id, Outcome::Succeeded { records_processed: 3 }, Utc::now())).await?;
//!
//! let latest = store.list(&ExecutionQuery::new().job("cleanup_expired_sessions")).await?;
//! assert_eq!(latest[0].records_processed, Some(3));
//! # Ok(()) }
//! ```

mod close;
mod execution;
mod fleet;
mod group;
mod logs;
pub(crate) mod migrations;
mod replicas;
pub(crate) mod schema;

use chrono::{DateTime, TimeZone, Utc};
use sea_query::{Cond, Expr, ExprTrait, Order, Query, SelectStatement};

use crate::db::{Database, DbRow};
use crate::error::Result;
use crate::ident::Identifier;
use schema::{Exec, ExecLog};

pub use close::RunEnd;
pub use execution::{Execution, ExecutionQuery, ExecutionStatus, NewExecution, Outcome};
pub use fleet::JobSummary;
pub use logs::LogLine;
pub use migrations::{MIGRATIONS_TABLE, known_versions, latest_version};
pub use replicas::{Replica, ReplicaBeat};

/// Largest `limit` a listing accepts.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Names of the tables the store owns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct TableNames {
    /// The execution history (`job_executions`).
    pub executions: Identifier,
    /// The per-job lease rows used to elect one runner per tick (`job_leases`).
    pub leases: Identifier,
    /// The operators' runtime settings per job: paused, schedule, time zone, timeout
    /// (`job_settings`); see [`crate::settings`].
    pub settings: Identifier,
    /// The audit log of admin mutations (`job_audit`); see [`crate::settings`].
    pub audit: Identifier,
    /// When each job was first seen by this database (`job_registry`); see
    /// [`ExecutionStore::job_summaries`].
    pub registry: Identifier,
    /// One row per running scheduler (`job_fleet`); see [`ExecutionStore::replicas`].
    pub fleet: Identifier,
    /// The runs' logs (`job_execution_logs`): what each run logged at `info` and above; see
    /// [`ExecutionStore::run_log`]. Purged with the history.
    pub logs: Identifier,
    /// The alert deliveries, one row per event (`job_alerts`); see [`crate::alert`].
    pub alerts: Identifier,
}

impl Default for TableNames {
    fn default() -> Self {
        Self {
            executions: Identifier::new("job_executions").expect("valid"),
            leases: Identifier::new("job_leases").expect("valid"),
            settings: Identifier::new("job_settings").expect("valid"),
            audit: Identifier::new("job_audit").expect("valid"),
            registry: Identifier::new("job_registry").expect("valid"),
            fleet: Identifier::new("job_fleet").expect("valid"),
            logs: Identifier::new("job_execution_logs").expect("valid"),
            alerts: Identifier::new("job_alerts").expect("valid"),
        }
    }
}

/// Reads and writes the execution history.
#[derive(Debug, Clone)]
pub struct ExecutionStore {
    db: Database,
    tables: TableNames,
    /// Grouped writes of the scheduler's runs (single-writer databases).
    writes: group::Writes,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl ExecutionStore {
    /// A store over `db` with the default table names.
    pub fn new(db: Database) -> Self {
        Self::with_tables(db, TableNames::default())
    }

    /// A store over `db` with the given table names.
    pub fn with_tables(db: Database, tables: TableNames) -> Self {
        Self {
            db,
            tables,
            writes: group::Writes::default(),
        }
    }

    /// The database handle.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The table names in use.
    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    /// Create or upgrade the tables. Idempotent; safe to run from several replicas at once.
    /// Returns the versions applied by this call.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        migrations::run(&self.db, &self.tables).await
    }

    /// Create only the runtime-control tables (settings, audit), for a scheduler that keeps
    /// no history: its database gets no `job_executions`. Returns the versions applied.
    pub(crate) async fn migrate_control_only(&self) -> Result<Vec<i64>> {
        migrations::run_scope(&self.db, &self.tables, migrations::Scope::ControlOnly).await
    }

    /// Record the start of a run; returns its id.
    pub async fn start(&self, new: &NewExecution) -> Result<i64> {
        let stmt = self
            .start_insert()
            .values_panic(Self::start_values(new))
            .to_owned();
        self.db.insert_returning_id(&stmt, "id").await
    }

    /// `INSERT INTO <executions> (<the start row's columns>)`, values still to add (one row
    /// per run, from [`start_values`](Self::start_values)).
    fn start_insert(&self) -> sea_query::InsertStatement {
        Query::insert()
            .into_table(self.tables.executions.clone())
            .columns([
                Exec::JobName,
                Exec::StartedAt,
                Exec::Status,
                Exec::TriggerKind,
                Exec::Instance,
                Exec::ScheduledFor,
                Exec::Attempt,
            ])
            .to_owned()
    }

    /// The values of a start row, in the column order of [`start_insert`](Self::start_insert).
    fn start_values(new: &NewExecution) -> [Expr; 7] {
        [
            new.job_name.clone().into(),
            ts(new.started_at).into(),
            ExecutionStatus::Running.as_str().into(),
            new.trigger.as_str().into(),
            new.instance.clone().into(),
            new.trigger.fire_time().map(ts).into(),
            i64::from(new.trigger.attempt()).into(),
        ]
    }

    /// The runs of `job_name` that are still open (no `completed_at`), newest first.
    pub async fn open_runs(&self, job_name: &str) -> Result<Vec<Execution>> {
        let mut q = self.select();
        q.and_where(Expr::col(Exec::JobName).eq(job_name))
            .and_where(Expr::col(Exec::CompletedAt).is_null())
            .order_by(Exec::Id, Order::Desc)
            .limit(u64::from(MAX_LIST_LIMIT));
        self.db.fetch_all(&q).await?.iter().map(decode).collect()
    }

    /// One run by id.
    pub async fn get(&self, id: i64) -> Result<Option<Execution>> {
        let mut q = self.select();
        q.and_where(Expr::col(Exec::Id).eq(id));
        match self.db.fetch_optional(&q).await? {
            Some(row) => Ok(Some(decode(&row)?)),
            None => Ok(None),
        }
    }

    /// Runs matching `query`, newest first.
    pub async fn list(&self, query: &ExecutionQuery) -> Result<Vec<Execution>> {
        let mut q = self.select();
        if let Some(name) = &query.job_name {
            q.and_where(Expr::col(Exec::JobName).eq(name.as_str()));
        }
        if query.only_failures {
            q.and_where(Expr::col(Exec::Success).eq(0));
        }
        q.order_by(Exec::Id, Order::Desc)
            .limit(u64::from(query.limit.clamp(1, MAX_LIST_LIMIT)));
        self.db.fetch_all(&q).await?.iter().map(decode).collect()
    }

    /// The outcomes of the newest `n` ticks of `job_name` that ran (scheduled, caught up,
    /// retried), newest first: of a tick with several attempts, its last. Manual runs say
    /// nothing about the schedule's health. Reads at most `n * attempts_per_tick` rows, by
    /// the `(job_name, id)` index.
    pub async fn recent_tick_statuses(
        &self,
        job_name: &str,
        n: u32,
        attempts_per_tick: u32,
    ) -> Result<Vec<ExecutionStatus>> {
        self.tick_statuses_up_to(job_name, n, attempts_per_tick, None)
            .await
    }

    /// [`recent_tick_statuses`](Self::recent_tick_statuses) of the runs up to run `up_to`
    /// (its id) when given: the streak that run ended, not one a later run (already
    /// started) has changed.
    pub(crate) async fn tick_statuses_up_to(
        &self,
        job_name: &str,
        n: u32,
        attempts_per_tick: u32,
        up_to: Option<i64>,
    ) -> Result<Vec<ExecutionStatus>> {
        let rows = n.saturating_mul(Ord::max(attempts_per_tick, 1));
        let mut q = Query::select()
            // Qualified, as in `select`.
            .columns(
                [
                    Exec::Status,
                    Exec::Success,
                    Exec::CompletedAt,
                    Exec::ScheduledFor,
                ]
                .map(|col| (self.tables.executions.clone(), col)),
            )
            .from(self.tables.executions.clone())
            .and_where(Expr::col(Exec::JobName).eq(job_name))
            .and_where(Expr::col(Exec::TriggerKind).is_in(["scheduled", "catch_up", "retry"]))
            .order_by(Exec::Id, Order::Desc)
            .limit(u64::from(rows.clamp(1, MAX_LIST_LIMIT)))
            .to_owned();
        if let Some(id) = up_to {
            q.and_where(Expr::col(Exec::Id).lte(id));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for row in self.db.fetch_all(&q).await? {
            // Newest first: the first row of a tick is its last attempt.
            if seen.insert(row.opt_i64("scheduled_for")?) && out.len() < n as usize {
                out.push(status_of(&row)?);
            }
        }
        Ok(out)
    }

    /// The newest run of `job_name`, if any.
    pub async fn latest(&self, job_name: &str) -> Result<Option<Execution>> {
        Ok(self
            .list(&ExecutionQuery::new().job(job_name).limit(1))
            .await?
            .into_iter()
            .next())
    }

    /// The newest run of each of `job_names` (jobs that never ran are absent).
    pub async fn latest_per_job<S: AsRef<str>>(&self, job_names: &[S]) -> Result<Vec<Execution>> {
        let mut out = Vec::with_capacity(job_names.len());
        for name in job_names {
            // One indexed probe per job beats a GROUP BY over the whole history.
            if let Some(e) = self.latest(name.as_ref()).await? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Delete up to `batch` finished runs that started before `cutoff`, and their logs;
    /// returns how many runs. Call repeatedly until it returns less than `batch`.
    pub async fn purge_batch(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let finished_before = Cond::all()
            .add(Expr::col(Exec::StartedAt).lt(ts(cutoff)))
            .add(Expr::col(Exec::CompletedAt).is_not_null());
        let ids = self
            .db
            .oldest_ids(&self.tables.executions, Exec::Id, finished_before, batch)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        // The logs first: a purge cut short between the two statements leaves runs without
        // their logs (purged again next time), never log lines no run owns.
        self.db
            .execute(
                Query::delete()
                    .from_table(self.tables.logs.clone())
                    .and_where(Expr::col(ExecLog::ExecutionId).is_in(ids.iter().copied())),
            )
            .await?;
        self.db
            .execute(
                Query::delete()
                    .from_table(self.tables.executions.clone())
                    .and_where(Expr::col(Exec::Id).is_in(ids)),
            )
            .await
    }

    fn select(&self) -> SelectStatement {
        // Qualified, for the reason `SettingsStore`'s read gives: an unqualified name a stale
        // SQLite connection does not know would be read as a string literal.
        Query::select()
            .columns(
                [
                    Exec::Id,
                    Exec::JobName,
                    Exec::StartedAt,
                    Exec::CompletedAt,
                    Exec::Success,
                    Exec::ErrorMessage,
                    Exec::RecordsProcessed,
                    Exec::Status,
                    Exec::TriggerKind,
                    Exec::Instance,
                    Exec::DurationMs,
                    Exec::ScheduledFor,
                    Exec::Attempt,
                ]
                .map(|col| (self.tables.executions.clone(), col)),
            )
            .from(self.tables.executions.clone())
            .to_owned()
    }
}

/// A row's status: its `status` column, or (rows Barycenter wrote) what `success` and
/// `completed_at` say.
fn status_of(row: &DbRow) -> Result<ExecutionStatus> {
    let completed_at = row.opt_i64("completed_at")?;
    let success = row.opt_i64("success")?.map(|s| s != 0);
    Ok(row
        .opt_string("status")?
        .as_deref()
        .and_then(ExecutionStatus::parse)
        .unwrap_or(match (success, completed_at) {
            (Some(true), _) => ExecutionStatus::Succeeded,
            (Some(false), _) => ExecutionStatus::Failed,
            (None, None) => ExecutionStatus::Running,
            (None, Some(_)) => ExecutionStatus::Failed,
        }))
}

fn decode(row: &DbRow) -> Result<Execution> {
    let completed_at = row.opt_i64("completed_at")?.map(from_ts);
    let success = row.opt_i64("success")?.map(|s| s != 0);
    let status = status_of(row)?;
    Ok(Execution {
        id: row.i64("id")?,
        job_name: row.opt_string("job_name")?.unwrap_or_default(),
        started_at: from_ts(row.i64("started_at")?),
        completed_at,
        success,
        error_message: row.opt_string("error_message")?,
        records_processed: row
            .opt_i64("records_processed")?
            .map(|n| u64::try_from(n).unwrap_or(0)),
        status,
        trigger: row.opt_string("trigger_kind")?,
        instance: row.opt_string("instance")?,
        duration_ms: row.opt_i64("duration_ms")?,
        scheduled_for: row.opt_i64("scheduled_for")?.map(from_ts),
        attempt: row
            .opt_i64("attempt")?
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
    })
}
