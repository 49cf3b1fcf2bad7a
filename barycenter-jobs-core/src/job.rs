//! The [`Job`] trait and what a run is given and returns.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock::SharedClock;
use crate::db::Database;

/// A periodic background job.
///
/// Implement it for a struct, then register the struct either globally with
/// [`register_job!`](crate::register_job) (an `inventory::submit!` underneath) or explicitly
/// with [`RegistryBuilder::register`](crate::RegistryBuilder::register).
///
/// A job must be idempotent: a tick missed while no replica was up is caught up once, and a run
/// cut short by a timeout or a crash is not resumed, so the next run has to finish the work.
///
/// ```
/// use barycenter_jobs_core::{async_trait, Job, JobContext, JobError, JobOutput};
///
/// struct Heartbeat;
///
/// #[async_trait]
/// impl Job for Heartbeat {
///     fn name(&self) -> &str { "heartbeat" }
///     fn description(&self) -> &str { "Log that the scheduler is alive" }
///     fn schedule(&self) -> &str { "0 * * * * *" }
///     async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
///         tracing::info!(execution = ctx.execution_id(), "alive");
///         Ok(JobOutput::processed(0))
///     }
/// }
/// ```
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Stable, unique name (`cleanup_expired_sessions`). It keys the execution history, so
    /// renaming a job starts a new history.
    fn name(&self) -> &str;

    /// One-line description shown by the admin API.
    fn description(&self) -> &str;

    /// Default cron expression (six fields with seconds, or five fields meaning "at second 0").
    /// Host configuration may override it at run time.
    fn schedule(&self) -> &str;

    /// Do one run. Long runs should check [`JobContext::cancellation`] between units of work.
    async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError>;
}

/// What a successful run reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobOutput {
    /// Rows (or other units) the run processed; recorded in `records_processed`.
    pub records_processed: u64,
}

impl JobOutput {
    /// An output reporting `records_processed` units of work.
    pub fn processed(records_processed: u64) -> Self {
        Self { records_processed }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The run noticed its cancellation token and stopped early.
    #[error("cancelled")]
    Cancelled,
    /// A database operation failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A core operation failed.
    #[error(transparent)]
    Core(#[from] crate::Error),
    /// Anything else, with a message for the execution history.
    #[error("{0}")]
    Failed(String),
}

impl JobError {
    /// A failure carrying `message`.
    pub fn failed(message: impl fmt::Display) -> Self {
        JobError::Failed(message.to_string())
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// The schedule fired at `fire_time` (the tick, not the moment the run started).
    Scheduled {
        /// The tick this run belongs to.
        fire_time: DateTime<Utc>,
    },
    /// A tick missed while no scheduler was up, run once at start-up.
    CatchUp {
        /// The most recent missed tick.
        fire_time: DateTime<Utc>,
    },
    /// Somebody asked for a run now (admin API, [`SchedulerHandle::trigger`](crate::SchedulerHandle::trigger)).
    Manual,
}

impl Trigger {
    /// The short label stored in the `trigger_kind` column: `scheduled`, `catch_up` or `manual`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::Scheduled { .. } => "scheduled",
            Trigger::CatchUp { .. } => "catch_up",
            Trigger::Manual => "manual",
        }
    }

    /// The tick, for scheduled and catch-up runs.
    pub fn fire_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Scheduled { fire_time } | Trigger::CatchUp { fire_time } => Some(*fire_time),
            Trigger::Manual => None,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a run is given.
#[derive(Debug, Clone)]
pub struct JobContext {
    db: Database,
    trigger: Trigger,
    execution_id: i64,
    clock: SharedClock,
    cancel: CancellationToken,
}

impl JobContext {
    /// Assemble a context. The scheduler does this; tests and hosts that run a job by hand
    /// may too.
    pub fn new(
        db: Database,
        trigger: Trigger,
        execution_id: i64,
        clock: SharedClock,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            db,
            trigger,
            execution_id,
            clock,
            cancel,
        }
    }

    /// The database the scheduler was given (the host's own tables live there too).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// What started this run.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// The id of this run's row in the execution history.
    pub fn execution_id(&self) -> i64 {
        self.execution_id
    }

    /// The scheduler's clock; use it instead of `Utc::now()` so tests can control time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The clock itself.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Fires on shutdown past the grace deadline, or when the run exceeds its timeout.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Shorthand for `self.cancellation().is_cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
