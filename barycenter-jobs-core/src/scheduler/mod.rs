//! The scheduler: fires each job on its cron schedule, runs it under the rules below, and
//! records every run in the [`ExecutionStore`](crate::ExecutionStore).
//!
//! # Semantics
//! - **Concurrency**: one timer task per distinct schedule wakes at each fire time and hands
//!   the tick to each due job's runner, a tokio task of the job's own, so a slow job never
//!   delays another job's fire time (nor the host's request handlers). Jobs must not block the executor: use
//!   `spawn_blocking` for blocking work.
//! - **No overlap**: a tick that fires while the previous run of the same job is still going
//!   is *not run* (it is logged at debug level, not recorded). A manual trigger in that state
//!   gets [`Error::AlreadyRunning`](crate::Error::AlreadyRunning).
//! - **One run per tick across replicas**: with coordination on (the default), a run starts
//!   only after claiming the job's lease row in the database; see [`crate::lease`]. Manual
//!   triggers take the same lease, so they also answer "already running" while another
//!   replica runs the job.
//! - **Timeouts**: past its timeout a run's cancellation token fires; the job gets 5 s to
//!   return, then its future is dropped; the run is recorded as failed, "timed out after N s".
//! - **Panics**: a panicking job is recorded as failed with the panic message; the scheduler
//!   and the other jobs carry on.
//! - **Misfires**: at start-up, a job whose most recent tick is newer than its last recorded
//!   run is run once ([`MisfirePolicy::RunOnce`], the default), however many ticks were
//!   missed; a job that never ran is not caught up. [`MisfirePolicy::Skip`] waits for the
//!   next tick.
//! - **Stale runs**: a run left open by a process that died is closed as abandoned by the
//!   next process that takes the job's lease (at start-up, and before a run whose claim
//!   reports that the previous holder did not release the lease cleanly: it died, lost the
//!   lease, or could not write its run's start or end); with coordination off, at start-up.
//! - **Disabled jobs** are not fired but can still be triggered by hand.
//! - **Shutdown**: [`SchedulerHandle::shutdown`] stops firing, waits for running jobs up to a
//!   grace period, then cancels them and records them as cancelled. No row is left open.
//! - **No busy polling**: each timer task sleeps until its schedule's next fire time.
//! - **Database outages** never stop the scheduler: a tick whose lease or start row cannot be
//!   written is skipped with a warning; the end of a run is retried for about 8 s, and the
//!   outcome is in the trace either way.
//!
//! # Example
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler, SchedulerConfig, ExecutionStatus};
//!
//! struct Hello;
//! #[async_trait]
//! impl Job for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn description(&self) -> &str { "Say hello" }
//!     fn schedule(&self) -> &str { "0 0 * * * *" }
//!     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
//!         Ok(JobOutput::processed(1))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await?;
//! let registry = Registry::builder().register(Hello).build()?;
//! let handle = Scheduler::builder(registry, db).config(SchedulerConfig::default()).start().await?;
//!
//! let run = handle.trigger("hello").await?;
//! let row = run.wait().await?;
//! assert_eq!(row.status, ExecutionStatus::Succeeded);
//! assert_eq!(row.records_processed, Some(1));
//!
//! handle.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

// The run path, one concept per module: claim -> supervise -> end, put together by `run`.
mod abandoned;
mod backfill;
mod beside;
mod cancel;
mod claim;
mod end;
mod heartbeat;
mod overlap;
mod renew;
mod retry;
mod run;
mod run_log;
mod stop;
mod supervise;
mod takeover;
#[cfg(test)]
mod testing;

// A job as scheduled and what its runs share.
mod effective;
mod identity;
mod shared;
mod slot;

// Time: the timer groups and their tasks, start-up recovery, history retention, alerts.
mod alerts;
mod recovery;
mod retention;
mod timer_groups;
mod timers;

// Operators' changes at run time.
mod change;
mod runtime;

// What the host sees and calls.
pub mod bounds;
mod builder;
mod config;
mod handle;
mod health;
mod info;

pub use builder::{Scheduler, SchedulerBuilder};
pub use config::{
    AlertsConfig, ClockConfig, CoordinationConfig, CutoffClock, JobConfig, MisfirePolicy,
    OverlapPolicy, RetentionConfig, RuntimeConfig, SchedulerConfig,
};
pub use handle::{DryRun, SchedulerHandle};
pub use health::{FleetHealth, HealthStatus, JobHealth, default_overdue_after};
pub use info::{
    DEFAULT_RETRY_BACKOFF, JobInfo, JobPolicy, MAX_RETRY_DELAY, MAX_UPCOMING, jitter_offset,
};
pub use run::TriggeredRun;
