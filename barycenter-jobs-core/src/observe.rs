//! Run observers: the hook hosts attach their own telemetry to (metrics, OpenTelemetry,
//! Sentry, a webhook) without touching the scheduler.
//!
//! An observer is registered on [`SchedulerBuilder::observer`](crate::SchedulerBuilder::observer)
//! (several may be) and sees, for every job of that scheduler:
//! - [`on_start`](RunObserver::on_start) when a run has been claimed and its start recorded;
//! - [`on_end`](RunObserver::on_end) once its end is recorded (or recording was given up),
//!   with its [`RunStatus`], duration and records; always after its `on_start`;
//! - [`on_abandoned`](RunObserver::on_abandoned) when this scheduler closes runs that a dead
//!   process left open (they never had an `on_end` anywhere);
//! - [`on_tick`](RunObserver::on_tick) for every scheduled fire time, with what became of it.
//!
//! Observers run inline on the scheduler's tasks, so they must be quick and must not block:
//! hand anything slow (an HTTP call) to a channel or a task of your own. A panicking observer
//! is caught and logged; the run and the other observers are not affected. The `tracing`
//! spans and events of the run path are unchanged by observers.
//!
//! # Examples
//!
//! Count outcomes:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{Arc, Mutex};
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler};
//! use barycenter_jobs_core::observe::{RunEnded, RunObserver, RunStatus};
//!
//! #[derive(Default)]
//! struct Outcomes(Mutex<Vec<(String, RunStatus, Option<u64>)>>);
//!
//! impl RunObserver for Outcomes {
//!     fn on_end(&self, run: &RunEnded<'_>) {
//!         self.0.lock().unwrap().push((run.job.to_owned(), run.status, run.records_processed));
//!     }
//! }
//!
//! struct Hello;
//! #[async_trait]
//! impl Job for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn description(&self) -> &str { "Say hello" }
//!     fn schedule(&self) -> &str { "0 0 * * * *" }
//!     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
//!         Ok(JobOutput::processed(2))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display())).await?;
//! let outcomes = Arc::new(Outcomes::default());
//! let handle = Scheduler::builder(Registry::builder().register(Hello).build()?, db)
//!     .observer(outcomes.clone())
//!     .start()
//!     .await?;
//! handle.trigger("hello").await?.wait().await?;
//! assert_eq!(
//!     *outcomes.0.lock().unwrap(),
//!     vec![("hello".to_owned(), RunStatus::Succeeded, Some(2))]
//! );
//! handle.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::Trigger;

/// How a run ended, as observers see it: the stored [`ExecutionStatus`] with timeouts told
/// apart from other failures (the history records a timeout as `failed`, "timed out after
/// N s").
///
/// [`ExecutionStatus`]: crate::ExecutionStatus
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// The job returned `Ok`.
    Succeeded,
    /// The job returned an error or panicked, or the run stopped because its lease could not
    /// be kept.
    Failed,
    /// The run went past its timeout and was cancelled.
    TimedOut,
    /// Shutdown cancelled it, or the job returned [`JobError::Cancelled`](crate::JobError).
    Cancelled,
    /// Its process died; another process closed it (see [`RunObserver::on_abandoned`]).
    Abandoned,
}

impl RunStatus {
    /// Every status, in a stable order (for initialising per-status series).
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
        RunStatus::Abandoned,
    ];

    /// `succeeded`, `failed`, `timed_out`, `cancelled` or `abandoned`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

/// What became of one scheduled fire time of one job on this replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TickOutcome {
    /// This replica claimed the tick and started its run.
    Claimed,
    /// The database gave the tick to someone else: another replica took this tick, or holds
    /// the job's lease because it is running the job.
    Lost,
    /// A run of the job was still going in this process: the tick was not run.
    SkippedRunning,
    /// The job is paused: the tick was not run.
    SkippedPaused,
    /// The tick could not be claimed or its start not recorded (the database was unreachable
    /// until the next tick was due); it is not run by this replica.
    Error,
}

impl TickOutcome {
    /// Every outcome, in a stable order (for initialising per-outcome series).
    pub const ALL: [TickOutcome; 5] = [
        TickOutcome::Claimed,
        TickOutcome::Lost,
        TickOutcome::SkippedRunning,
        TickOutcome::SkippedPaused,
        TickOutcome::Error,
    ];

    /// `claimed`, `lost`, `skipped_running`, `skipped_paused` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TickOutcome::Claimed => "claimed",
            TickOutcome::Lost => "lost",
            TickOutcome::SkippedRunning => "skipped_running",
            TickOutcome::SkippedPaused => "skipped_paused",
            TickOutcome::Error => "error",
        }
    }
}

/// A run that has started: claimed, and its start recorded.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RunStarted<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The run's id in the history.
    pub execution_id: i64,
    /// What started it.
    pub trigger: Trigger,
    /// When it started, by the scheduler's clock.
    pub started_at: DateTime<Utc>,
    /// The scheduler instance running it.
    pub instance: &'a str,
}

/// A run that has ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RunEnded<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The run's id in the history.
    pub execution_id: i64,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub status: RunStatus,
    /// The error text of a run that did not succeed.
    pub message: Option<&'a str>,
    /// How long it ran (monotonic clock).
    pub duration: Duration,
    /// What the job reported: its count for a successful run, its reported progress (if
    /// any) for one that did not succeed.
    pub records_processed: Option<u64>,
    /// When it started, by the scheduler's clock.
    pub started_at: DateTime<Utc>,
    /// The scheduler instance that ran it.
    pub instance: &'a str,
    /// Another attempt at the same tick follows (`retry_attempts`): a failure that is not
    /// the tick's last word.
    pub retry_follows: bool,
}

/// Runs that a dead process left open, closed as abandoned by this scheduler.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RunsAbandoned<'a> {
    /// The job's name.
    pub job: &'a str,
    /// How many runs were closed.
    pub count: u64,
}

/// One scheduled fire time of one job, and what this replica made of it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TickObserved<'a> {
    /// The job's name.
    pub job: &'a str,
    /// The fire time.
    pub tick: DateTime<Utc>,
    /// What became of it.
    pub outcome: TickOutcome,
}

/// Sees runs start and end, and ticks fire. Every method has an empty default, so an
/// observer implements only what it needs. See the [module docs](self).
pub trait RunObserver: Send + Sync + 'static {
    /// A run started.
    fn on_start(&self, _run: &RunStarted<'_>) {}
    /// A run ended.
    fn on_end(&self, _run: &RunEnded<'_>) {}
    /// Runs left open by a dead process were closed as abandoned.
    fn on_abandoned(&self, _runs: &RunsAbandoned<'_>) {}
    /// A scheduled fire time came.
    fn on_tick(&self, _tick: &TickObserved<'_>) {}
    /// This observer was attached to a scheduler (at start, or by
    /// [`SchedulerHandle::attach_observer`](crate::SchedulerHandle::attach_observer)), before
    /// it is told anything: an observer that must count every event can note that it is
    /// wired (the admin service's metrics do, so that they attach themselves only when the
    /// host did not).
    fn on_attach(&self) {}
}

impl<T: RunObserver + ?Sized> RunObserver for Arc<T> {
    fn on_start(&self, run: &RunStarted<'_>) {
        (**self).on_start(run)
    }
    fn on_end(&self, run: &RunEnded<'_>) {
        (**self).on_end(run)
    }
    fn on_abandoned(&self, runs: &RunsAbandoned<'_>) {
        (**self).on_abandoned(runs)
    }
    fn on_tick(&self, tick: &TickObserved<'_>) {
        (**self).on_tick(tick)
    }
    fn on_attach(&self) {
        (**self).on_attach()
    }
}

/// The observers of one scheduler, called in registration order; a panic in one is caught
/// and logged so it can neither break a run nor starve the others.
/// The list is replaced whole when an observer is attached at run time, so a call reads it
/// with one uncontended read lock and an `Arc` clone.
///
/// Most schedulers have none: `attached` says so with one relaxed load, so a run or tick then
/// costs no lock and no reference-count traffic on a line every runner shares.
#[derive(Default)]
pub(crate) struct Observers {
    list: std::sync::RwLock<Arc<[Arc<dyn RunObserver>]>>,
    attached: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.list().len())
            .finish()
    }
}

impl Observers {
    pub(crate) fn new(list: Vec<Arc<dyn RunObserver>>) -> Self {
        for observer in &list {
            observer.on_attach();
        }
        Self {
            attached: std::sync::atomic::AtomicBool::new(!list.is_empty()),
            list: std::sync::RwLock::new(list.into()),
        }
    }

    fn list(&self) -> Arc<[Arc<dyn RunObserver>]> {
        self.list.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Add `observer` after those already there.
    pub(crate) fn attach(&self, observer: Arc<dyn RunObserver>) {
        observer.on_attach();
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        let mut new: Vec<Arc<dyn RunObserver>> = list.iter().cloned().collect();
        new.push(observer);
        *list = new.into();
        self.attached
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn each(&self, what: &'static str, call: impl Fn(&dyn RunObserver)) {
        if !self.attached.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        for observer in self.list().iter() {
            if std::panic::catch_unwind(AssertUnwindSafe(|| call(observer.as_ref()))).is_err() {
                tracing::error!(callback = what, "a run observer panicked; ignored");
            }
        }
    }

    pub(crate) fn started(&self, run: &RunStarted<'_>) {
        self.each("on_start", |o| o.on_start(run));
    }

    pub(crate) fn ended(&self, run: &RunEnded<'_>) {
        self.each("on_end", |o| o.on_end(run));
    }

    pub(crate) fn abandoned(&self, runs: &RunsAbandoned<'_>) {
        self.each("on_abandoned", |o| o.on_abandoned(runs));
    }

    pub(crate) fn tick(&self, job: &str, tick: DateTime<Utc>, outcome: TickOutcome) {
        let event = TickObserved { job, tick, outcome };
        self.each("on_tick", |o| o.on_tick(&event));
    }
}
