//! The core of barycenter-jobs: the [`Job`] trait, the plugin [`Registry`], cron
//! [`Schedule`]s, the [`Scheduler`], the [`ExecutionStore`] and the per-job [`Lease`]s that
//! make a fleet of replicas run each tick once.
//!
//! # Example
//! A job, a registry, a scheduler on SQLite, a manual run:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler, SchedulerConfig, ExecutionQuery};
//!
//! struct CountDown;
//!
//! #[async_trait]
//! impl Job for CountDown {
//!     fn name(&self) -> &str { "count_down" }
//!     fn description(&self) -> &str { "Count to three" }
//!     fn schedule(&self) -> &str { "*/5 * * * *" } // five fields: at second 0
//!     async fn run(&self, ctx: JobContext) -> Result<JobOutput, JobError> {
//!         for _ in 0..3 {
//!             if ctx.is_cancelled() { return Err(JobError::Cancelled); }
//!         }
//!         Ok(JobOutput::processed(3))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await?;
//! let registry = Registry::builder().register(CountDown).build()?;
//! let scheduler = Scheduler::builder(registry, db).config(SchedulerConfig::default()).start().await?;
//!
//! assert_eq!(scheduler.job("count_down").unwrap().schedule.describe(), "Every 5 minutes");
//! scheduler.trigger("count_down").await?.wait().await?;
//! let history = scheduler.store().list(&ExecutionQuery::new().job("count_down")).await?;
//! assert_eq!(history[0].records_processed, Some(3));
//! scheduler.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! # Choice of crates
//! - cron parsing and calendar arithmetic: [`croner`] (seconds field, `L`/`W`/`#`, DST-aware
//!   evaluation through `chrono-tz`, and an English `describe()`);
//! - cancellation: `tokio_util::sync::CancellationToken`;
//! - SQL: statements built with `sea-query`, bound with `sea-query-sqlx`, run by `sqlx`;
//! - plugin registration: `inventory`.
//!
//! # Features
//! `sqlite`, `postgres`, `mysql` (all on by default) select the sqlx drivers compiled in; any
//! one of them alone is enough. Items that exist only with a backend say so in their docs.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Without a backend there is nothing to store leases or history in; say so first, before
// the errors of the code that assumes one.
#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!(
    "barycenter-jobs-core needs at least one database backend: enable the `sqlite`, \
     `postgres` or `mysql` feature"
);

pub mod alert;
mod clock;
mod db;
mod error;
mod ident;
mod job;
pub mod lease;
pub mod observe;
mod registry;
mod schedule;
pub mod scheduler;
pub mod settings;
pub mod store;

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use db::SqliteBulk;
pub use db::{
    Backend, BulkConnection, Database, DbRow, DeleteBatch, Executed, SQLITE_BUSY_TIMEOUT,
    SchemaStatement, Statement,
};
pub use error::{Error, Result};
pub use ident::Identifier;
pub use job::{DryRunOutput, Job, JobContext, JobError, JobOutput, TimeSource, Trigger};
pub use lease::{ClaimKind, Lease, LeaseStore, PendingRetry, Waiting};
pub use registry::{JobRegistration, RegisteredJob, Registry, RegistryBuilder};
pub use schedule::Schedule;
pub use scheduler::{
    ClockConfig, CoordinationConfig, CutoffClock, FleetHealth, HealthStatus, JobConfig, JobHealth,
    JobInfo, JobPolicy, MisfirePolicy, OverlapPolicy, RetentionConfig, Scheduler, SchedulerBuilder,
    SchedulerConfig, SchedulerHandle, TriggeredRun,
};
// Runtime control (issue 15).
pub use scheduler::{DryRun, RuntimeConfig};
// Alerts (issue 26).
pub use alert::{Alert, AlertEvent};
pub use scheduler::AlertsConfig;
pub use settings::{
    AuditAction, AuditEntry, AuditQuery, Backfill, PauseRequest, PolicyRequest, RescheduleRequest,
    RuntimeSettings,
};
pub use store::{
    Execution, ExecutionQuery, ExecutionStatus, ExecutionStore, JobSummary, LogLine, NewExecution,
    Outcome, Replica, ReplicaBeat, RunEnd, TableNames,
};
pub use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use inventory;
/// Re-exported so jobs can build their SQL with the same sea-query the core uses.
pub use sea_query;
