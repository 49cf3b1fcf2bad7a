//! The core of barycenter-jobs: the [`Job`] trait, the plugin [`Registry`], cron
//! [`Schedule`]s, the [`Scheduler`], the [`ExecutionStore`] and the per-job [`Lease`]s that
//! make a fleet of replicas run each tick once.
//!
//! # Choice of crates
//! - cron parsing and calendar arithmetic: [`croner`] (seconds field, `L`/`W`/`#`, DST-aware
//!   evaluation through `chrono-tz`, and an English `describe()`);
//! - cancellation: `tokio_util::sync::CancellationToken`;
//! - SQL: statements built with `sea-query`, bound with `sea-query-sqlx`, run by `sqlx`;
//! - plugin registration: `inventory`.
//!
//! # Features
//! `sqlite`, `postgres`, `mysql` (all on by default) select the sqlx drivers compiled in.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod db;
mod error;
mod ident;
mod job;
pub mod lease;
mod registry;
mod schedule;
pub mod scheduler;
pub mod store;

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use db::{Backend, BulkConnection, Database, DbRow, SQLITE_BUSY_TIMEOUT};
pub use error::{Error, Result};
pub use ident::Identifier;
pub use job::{Job, JobContext, JobError, JobOutput, Trigger};
pub use lease::{ClaimKind, Lease, LeaseStore};
pub use registry::{JobRegistration, RegisteredJob, Registry, RegistryBuilder};
pub use schedule::Schedule;
pub use scheduler::{
    CoordinationConfig, JobConfig, JobInfo, MisfirePolicy, RetentionConfig, Scheduler,
    SchedulerBuilder, SchedulerConfig, SchedulerHandle, TriggeredRun,
};
pub use store::{
    Execution, ExecutionQuery, ExecutionStatus, ExecutionStore, NewExecution, Outcome, TableNames,
};
pub use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use inventory;
/// Re-exported so jobs can build their SQL with the same sea-query the core uses.
pub use sea_query;
