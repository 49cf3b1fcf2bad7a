//! The GraphQL schema over a running scheduler and its execution history.
//!
//! It is compatible with Barycenter's documented `/admin/jobs` API and adds a few fields:
//!
//! ```graphql
//! type Query {
//!   availableJobs: [Job!]!
//!   job(name: String!): Job
//!   jobLogs(jobName: String, limit: Int! = 100, onlyFailures: Boolean! = false): [JobExecution!]!
//!   jobExecution(id: ID!): JobExecution
//!   health: Health!
//!   auditLog(limit: Int! = 50, jobName: String): [AuditEntry!]!
//!   viewer: Viewer
//!   previewSchedule(schedule: String!, timeZone: String, count: Int! = 5): SchedulePreview!
//! }
//! type Mutation {
//!   triggerJob(jobName: String!, dryRun: Boolean! = false): TriggerResult!
//!   pauseJob(jobName: String!): ChangeResult!
//!   resumeJob(jobName: String!): ChangeResult!
//!   rescheduleJob(jobName: String!, schedule: String, timeZone: String, timeoutSecs: Int): ChangeResult!
//!   resetJob(jobName: String!): ChangeResult!
//! }
//! type Job {
//!   name: String!  description: String!  schedule: String!  scheduleDescription: String!
//!   enabled: Boolean!  running: Boolean!  nextRunAt: String  timeoutSecs: Int!
//!   lastExecution: JobExecution
//!   defaultSchedule: String!  timeZone: String  paused: Boolean!
//!   upcomingRuns(count: Int! = 5): [String!]!  changedBy: String  changedAt: String
//!   lastSuccessAt: String  lastFailureAt: String  overdue: Boolean!  overdueSince: String
//! }
//! type Health { status: String!  overdueJobs: [OverdueJob!]!  clockSkewSecs: Float  checkedAt: String! }
//! type OverdueJob { name: String!  overdueSince: String!  missedTick: String! }
//! type JobExecution {
//!   id: ID!  jobName: String!  startedAt: String!  completedAt: String  success: Boolean
//!   errorMessage: String  recordsProcessed: Int  status: String!  trigger: String
//!   instance: String  durationMs: Int  scheduledFor: String
//! }
//! type TriggerResult {
//!   success: Boolean!  message: String!  jobName: String!  executionId: ID  wouldProcess: Int
//! }
//! type ChangeResult { success: Boolean!  message: String!  jobName: String!  job: Job }
//! type Viewer { name: String!  role: String! }
//! type SchedulePreview { valid: Boolean!  message: String!  description: String  upcoming: [String!]! }
//! type AuditEntry { id: ID!  at: String!  actor: String!  action: String!  jobName: String!  detail: String }
//! ```
//!
//! `schedule` is the schedule in force: an operator's runtime setting, else the host's
//! configuration, else `defaultSchedule` (see `barycenter_jobs_core::settings`). Mutations
//! need the `operate` role ([`Role`](crate::Role)); each one is written to `auditLog` with
//! the principal's name, refusals included. Settings changes reach every replica within 2 s.
//!
//! Times are ISO 8601 UTC strings with second precision (`2026-01-01T00:00:00Z`).
//!
//! Errors: caller mistakes (a `limit` outside 1..=1000, a non-numeric id) are GraphQL errors
//! that say what is wrong. Database failures reach the client as `internal error` only; the
//! cause is logged with `tracing` at `ERROR` level, so no SQL or connection string leaks.
//! Mutations report refusals (unknown job, job running, invalid cron or zone, no dry run) in
//! their result (`success: false` and a message) rather than as errors; a principal without
//! the operate role gets a GraphQL error.
//!
//! Most hosts use [`AdminService`](crate::AdminService), which builds this schema with
//! depth and complexity limits. [`builder`] gives the `async_graphql::SchemaBuilder` for hosts
//! that execute the schema themselves (and must then set their own limits). Either way each
//! request reads the store-backed fields once, however many aliases name them.
//!
//! ```no_run
//! # async fn demo(handle: barycenter_jobs_core::SchedulerHandle) {
//! let schema = barycenter_jobs_graphql::schema::builder(handle)
//!     .limit_depth(12)
//!     .limit_complexity(500)
//!     .finish();
//! let response = schema.execute("{ availableJobs { name schedule } }").await;
//! assert!(response.errors.is_empty());
//! # }
//! ```

mod loads;
mod mutation;
mod query;
mod types;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};
use barycenter_jobs_core::SchedulerHandle;

pub(crate) use loads::{Loads, ReadShare};
pub use mutation::MutationRoot;
pub use query::{JOBS_COMPLEXITY_FACTOR, QueryRoot};
pub(crate) use types::iso;
pub use types::{
    AuditEntry, ChangeResult, Health, Job, JobExecution, OverdueJob, SchedulePreview,
    TriggerResult, Viewer,
};

/// The admin schema type.
pub type AdminSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Largest `limit` `jobLogs` accepts.
pub use barycenter_jobs_core::store::MAX_LIST_LIMIT;

/// Message given to clients in place of any database or other internal failure.
pub const INTERNAL_ERROR: &str = "internal error";

/// What the resolvers reach through the schema's data.
pub(crate) struct AdminState {
    pub(crate) handle: SchedulerHandle,
    /// Every store read of a query runs under it.
    pub(crate) reads: ReadShare,
}

/// A schema builder over `handle`, without limits: add `limit_depth`, `limit_complexity`
/// (and `disable_introspection` if wanted) before `finish()`.
///
/// Store reads of its queries run at most a quarter of the pool's connections at once (at
/// least one), whatever the traffic, so that the scheduler always finds a connection to
/// renew its leases with; see
/// [`AdminServiceBuilder::max_store_reads`](crate::AdminServiceBuilder::max_store_reads).
pub fn builder(
    handle: SchedulerHandle,
) -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    let reads = ReadShare::for_pool(handle.store().db().max_connections());
    builder_with(handle, reads)
}

/// [`builder`] with the reads under `reads`.
pub(crate) fn builder_with(
    handle: SchedulerHandle,
    reads: ReadShare,
) -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(QueryRoot::new(), MutationRoot::new(), EmptySubscription)
        .data(AdminState { handle, reads })
        .extension(loads::RequestLoads)
}

/// Log `err` server-side and give the client a generic error.
pub(crate) fn internal_error(
    operation: &'static str,
    err: barycenter_jobs_core::Error,
) -> async_graphql::Error {
    tracing::error!(operation, error = %err, "admin GraphQL request failed");
    async_graphql::Error::new(INTERNAL_ERROR)
}
