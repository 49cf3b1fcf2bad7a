//! The [`Job`] trait and what a run is given and returns.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    /// Say what [`run`](Self::run) would process now, changing nothing: count with the
    /// same filters the run uses. The default answers [`JobError::DryRunNotSupported`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use barycenter_jobs_core::{async_trait, CancellationToken, Database, DryRunOutput, Job,
    ///     JobContext, JobError, JobOutput, SystemClock, Trigger};
    ///
    /// struct Inbox;
    /// #[async_trait]
    /// impl Job for Inbox {
    ///     fn name(&self) -> &str { "inbox" }
    ///     fn description(&self) -> &str { "Empty the inbox" }
    ///     fn schedule(&self) -> &str { "0 0 * * * *" }
    ///     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
    ///         Ok(JobOutput::processed(3))
    ///     }
    ///     async fn dry_run(&self, _ctx: JobContext) -> Result<DryRunOutput, JobError> {
    ///         Ok(DryRunOutput::would_process(3))
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
    /// let ctx = JobContext::new(db, Trigger::Manual, 0, std::sync::Arc::new(SystemClock), CancellationToken::new());
    /// assert_eq!(Inbox.dry_run(ctx).await?.would_process, 3);
    /// # Ok(()) }
    /// ```
    async fn dry_run(&self, ctx: JobContext) -> Result<DryRunOutput, JobError> {
        let _ = ctx;
        Err(JobError::DryRunNotSupported)
    }
}

/// What a dry run reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DryRunOutput {
    /// Rows (or other units) a run would process now.
    pub would_process: u64,
}

impl DryRunOutput {
    /// A dry run that found `n` units of work.
    pub fn would_process(n: u64) -> Self {
        Self { would_process: n }
    }
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
    /// The application's clock and the database's disagree by more than the bound the run
    /// allows (see [`TimeSource::Database`]); the run refused to compute a cut-off from
    /// either of them.
    #[error(
        "refusing to run: the application clock is {skew_secs:.1} s {direction} the database clock, more than the {bound_secs} s allowed ([clock] max_skew_secs); fix the host's time synchronisation"
    )]
    ClockSkew {
        /// Application time minus database time, in seconds, as an absolute value.
        skew_secs: f64,
        /// `"ahead of"` or `"behind"`.
        direction: &'static str,
        /// The bound, in seconds.
        bound_secs: u64,
    },
    /// Anything else, with a message for the execution history.
    #[error("{0}")]
    Failed(String),
    /// The job has no dry run ([`Job::dry_run`]'s default).
    #[error("dry run not supported")]
    DryRunNotSupported,
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
    /// Another attempt at a tick whose run failed or timed out (`retry_attempts`).
    Retry {
        /// The tick the attempt serves (the failed run's).
        fire_time: DateTime<Utc>,
        /// Which attempt at the tick this is: 2 for the first retry.
        attempt: u32,
    },
    /// A past tick an operator asked to run
    /// ([`SchedulerHandle::backfill`](crate::SchedulerHandle::backfill)).
    Backfill {
        /// The tick this run serves.
        fire_time: DateTime<Utc>,
    },
}

impl Trigger {
    /// The short label stored in the `trigger_kind` column: `scheduled`, `catch_up`,
    /// `manual`, `retry` or `backfill`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::Scheduled { .. } => "scheduled",
            Trigger::CatchUp { .. } => "catch_up",
            Trigger::Manual => "manual",
            Trigger::Retry { .. } => "retry",
            Trigger::Backfill { .. } => "backfill",
        }
    }

    /// The tick, for scheduled, catch-up, retried and backfill runs.
    pub fn fire_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Trigger::Scheduled { fire_time }
            | Trigger::CatchUp { fire_time }
            | Trigger::Retry { fire_time, .. }
            | Trigger::Backfill { fire_time } => Some(*fire_time),
            Trigger::Manual => None,
        }
    }

    /// Which attempt at its tick the run is: 1, or more for a retry.
    pub fn attempt(&self) -> u32 {
        match self {
            Trigger::Retry { attempt, .. } => *attempt,
            _ => 1,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the "now" that a run compares stored times with comes from; see
/// [`JobContext::cutoff_now`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeSource {
    /// The context's [`Clock`](crate::Clock) (the application server's time, or a test's
    /// manual clock). The default of [`JobContext::new`].
    App,
    /// The database's clock, read when the run asks. The run is refused with
    /// [`JobError::ClockSkew`] when the application clock differs from it by more than
    /// `max_skew`: a host whose clock is that far off writes expiry times that are off too.
    /// The default for runs the scheduler starts.
    Database {
        /// The largest difference between the two clocks a run accepts.
        max_skew: Duration,
    },
}

/// Everything a run is given.
#[derive(Debug, Clone)]
pub struct JobContext {
    db: Database,
    trigger: Trigger,
    execution_id: i64,
    clock: SharedClock,
    cancel: CancellationToken,
    time_source: TimeSource,
    progress: Arc<Progress>,
}

/// Units of work a run reported as done so far.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// `u64::MAX` until the first report: "never reported" is not "zero".
    done: AtomicU64,
}

impl Progress {
    const UNREPORTED: u64 = u64::MAX;

    pub(crate) fn new() -> Self {
        Self {
            done: AtomicU64::new(Self::UNREPORTED),
        }
    }

    fn add(&self, n: u64) {
        let _ = self
            .done
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(if v == Self::UNREPORTED {
                    n.min(Self::UNREPORTED - 1)
                } else {
                    v.saturating_add(n).min(Self::UNREPORTED - 1)
                })
            });
    }

    pub(crate) fn get(&self) -> Option<u64> {
        match self.done.load(Ordering::Acquire) {
            Self::UNREPORTED => None,
            n => Some(n),
        }
    }
}

impl JobContext {
    /// Assemble a context. The scheduler does this; tests and hosts that run a job by hand
    /// may too. Cut-offs come from `clock` ([`TimeSource::App`]) unless
    /// [`with_time_source`](Self::with_time_source) says otherwise.
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
            time_source: TimeSource::App,
            progress: Arc::new(Progress::new()),
        }
    }

    /// Take cut-offs from `source` instead.
    pub fn with_time_source(mut self, source: TimeSource) -> Self {
        self.time_source = source;
        self
    }

    /// What the run has reported, shared with the runner, which reads it once the job's
    /// future is gone (a run cut off half-way).
    pub(crate) fn progress_handle(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// The database the scheduler was given (the host's own tables live there too).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// What started this run.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// Which attempt at its tick this run is: 1, or more when it retries a failed run
    /// (`retry_attempts`).
    pub fn attempt(&self) -> u32 {
        self.trigger.attempt()
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

    /// Where [`cutoff_now`](Self::cutoff_now) takes its time from.
    pub fn time_source(&self) -> TimeSource {
        self.time_source
    }

    /// The instant to compare stored expiry times with ("delete what expired before now").
    ///
    /// With [`TimeSource::Database`] (what the scheduler hands out by default) this is the
    /// database's clock, so a replica whose own clock runs ahead cannot delete rows that are
    /// still live; it fails with [`JobError::ClockSkew`] when the application clock is off by
    /// more than the bound. With [`TimeSource::App`] it is [`now`](Self::now).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use barycenter_jobs_core::{CancellationToken, Database, JobContext, JobError, ManualClock,
    ///     TimeSource, Trigger};
    /// use chrono::Utc;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
    /// // A host clock two minutes ahead of the database's.
    /// let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::seconds(120)));
    /// let ctx = JobContext::new(db, Trigger::Manual, 1, clock, CancellationToken::new())
    ///     .with_time_source(TimeSource::Database { max_skew: Duration::from_secs(30) });
    /// assert!(matches!(ctx.cutoff_now().await, Err(JobError::ClockSkew { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn cutoff_now(&self) -> Result<DateTime<Utc>, JobError> {
        match self.time_source {
            TimeSource::App => Ok(self.clock.now()),
            TimeSource::Database { max_skew } => {
                let skew = self.db.clock_skew(self.clock.as_ref()).await?;
                let db_now = self.clock.now() - skew;
                let abs = skew.abs().to_std().unwrap_or(Duration::MAX);
                if abs > max_skew {
                    return Err(JobError::ClockSkew {
                        skew_secs: abs.as_secs_f64(),
                        direction: if skew > chrono::Duration::zero() {
                            "ahead of"
                        } else {
                            "behind"
                        },
                        bound_secs: max_skew.as_secs(),
                    });
                }
                Ok(db_now)
            }
        }
    }

    /// Report `n` more units of work done (rows deleted, say). The scheduler records the
    /// total as `records_processed` even when the run then fails, times out or is
    /// cancelled, so the history says what a cut-short run did.
    pub fn report_processed(&self, n: u64) {
        self.progress.add(n);
    }

    /// The total reported with [`report_processed`](Self::report_processed) so far; `None`
    /// if the run never reported.
    pub fn processed_so_far(&self) -> Option<u64> {
        self.progress.get()
    }

    /// Fires on shutdown past the grace deadline, when the run exceeds its timeout, or when
    /// its lease can no longer be confirmed.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Shorthand for `self.cancellation().is_cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
