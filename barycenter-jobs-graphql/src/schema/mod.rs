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
//!   previewBackfill(jobName: String!, from: String!, to: String!, count: Int! = 5): BackfillPreview!
//!   fleet: [Replica!]!
//! }
//! type Mutation {
//!   triggerJob(jobName: String!, dryRun: Boolean! = false): TriggerResult!
//!   pauseJob(jobName: String!): ChangeResult!
//!   resumeJob(jobName: String!): ChangeResult!
//!   rescheduleJob(jobName: String!, schedule: String, timeZone: String, timeoutSecs: Int): ChangeResult!
//!   resetJob(jobName: String!): ChangeResult!
//!   setJobPolicy(jobName: String!, retryAttempts: Int, retryBackoffSecs: Int, overlap: String,
//!     misfire: String, catchUpWindowSecs: Int, jitterSecs: Int, pauseAfterFailures: Int): ChangeResult!
//!   backfillJob(jobName: String!, from: String!, to: String!): BackfillResult!
//!   cancelBackfill(jobName: String!): ChangeResult!
//!   cancelRun(executionId: ID!): ChangeResult!
//! }
//! type Job {
//!   name: String!  description: String!  schedule: String!  scheduleDescription: String!
//!   firesOnSchedule: Boolean!  running: Boolean!  nextRunAt: String  timeoutSecs: Int!
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
//!   logs: [LogLine!]!
//! }
//! type LogLine { at: String!  level: String!  message: String! }
//! type TriggerResult {
//!   success: Boolean!  message: String!  jobName: String!  executionId: ID  wouldProcess: Int
//! }
//! type ChangeResult { success: Boolean!  message: String!  jobName: String!  job: Job }
//! type Viewer { name: String!  role: String! }
//! type SchedulePreview { valid: Boolean!  message: String!  description: String  upcoming: [String!]! }
//! type BackfillResult { success: Boolean!  message: String!  jobName: String!  ticks: Int! }
//! type BackfillPreview { valid: Boolean!  message: String!  ticks: Int!  first: [String!]! }
//! type Backfill { from: String!  to: String!  requestedBy: String! }
//! type Replica {
//!   instance: String!  host: String!  pid: Int!  version: String!  startedAt: String!
//!   lastSeenAt: String!  clockSkewSecs: Float  running: Int!
//! }
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

//!
//! # Merging into a host schema
//!
//! [`QueryRoot`] and [`MutationRoot`] are ordinary async-graphql objects: a host that has an
//! admin schema of its own merges them into its roots with `#[derive(MergedObject)]`, serves
//! the result at its own path, and keeps its own authorization. It puts two things in:
//!
//! - in the schema's data, a [`JobsContext`] (the scheduler), and the [`JobsExtension`] (one
//!   set of store reads per request, at most 10 mutations per request);
//! - in each request's data, the caller's [`Principal`](crate::Principal): the host maps its
//!   own users onto [`Role::Read`](crate::Role::Read) / [`Role::Operate`](crate::Role::Operate),
//!   mutations need the latter, and the audit log records the principal's name.
//!
//! Complexity attributes travel with the fields; the host sets the limits on its schema.
//! `examples/merged_schema.rs` serves such a schema with axum.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use async_graphql::{EmptySubscription, MergedObject, Object, Schema};
//! use barycenter_jobs_core::{Database, Registry, Scheduler};
//! use barycenter_jobs_graphql::schema::{JobsContext, JobsExtension, MutationRoot, QueryRoot};
//! use barycenter_jobs_graphql::{Principal, Role};
//!
//! #[derive(Default)]
//! struct HostQuery;
//! #[Object]
//! impl HostQuery {
//!     async fn host_version(&self) -> &str { "1.0" }
//! }
//!
//! #[derive(MergedObject, Default)]
//! struct Query(HostQuery, QueryRoot);
//! #[derive(MergedObject, Default)]
//! struct Mutation(MutationRoot);
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display())).await?;
//! let handle = Scheduler::builder(Registry::builder().build()?, db).start().await?;
//! let schema = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
//!     .data(JobsContext::new(handle.clone()))
//!     .extension(JobsExtension::default())
//!     .limit_complexity(500)
//!     .finish();
//! let request = async_graphql::Request::new("{ hostVersion availableJobs { name } }")
//!     .data(Principal::new("alice", Role::Read));
//! let response = schema.execute(request).await;
//! assert!(response.errors.is_empty(), "{:?}", response.errors);
//! assert_eq!(response.data.to_string(), r#"{hostVersion: "1.0", availableJobs: []}"#);
//! handle.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

mod extension;
mod loads;
mod mutation;
mod query;
mod types;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};
use barycenter_jobs_core::SchedulerHandle;

pub(crate) use extension::mutations_in;
pub use extension::{DEFAULT_MAX_MUTATIONS, JobsExtension};
pub(crate) use loads::{Loads, ReadShare};
pub use mutation::MutationRoot;
pub use query::{JOBS_COMPLEXITY_FACTOR, QueryRoot};
pub(crate) use types::iso;
pub use types::{
    AuditEntry, BackfillInProgress, BackfillPreview, BackfillResult, ChangeResult, FleetMember,
    Health, Job, JobExecution, LOGS_COMPLEXITY, LogLine, OverdueJob, SchedulePreview,
    TriggerResult, Viewer,
};

/// The admin schema type.
pub type AdminSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Largest `limit` `jobLogs` accepts.
pub use barycenter_jobs_core::store::MAX_LIST_LIMIT;

/// Message given to clients in place of any database or other internal failure.
pub const INTERNAL_ERROR: &str = "internal error";

/// What the jobs API's resolvers read from the schema's data: the scheduler they act on,
/// and the share of its pool their store reads may take. The one type a host that merges
/// [`QueryRoot`] / [`MutationRoot`] into its own schema puts there (with
/// `Schema::build(..).data(JobsContext::new(handle))`, and the [`JobsExtension`]).
pub struct JobsContext {
    pub(crate) handle: SchedulerHandle,
    /// Every store read of a query runs under it.
    pub(crate) reads: ReadShare,
}

impl std::fmt::Debug for JobsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsContext")
            .field("max_store_reads", &self.reads.size())
            .finish_non_exhaustive()
    }
}

impl JobsContext {
    /// The context of `handle`'s scheduler; its store reads take at most a quarter of the
    /// pool's connections at once (at least one), so that the scheduler always finds a
    /// connection to renew its leases with.
    pub fn new(handle: SchedulerHandle) -> Self {
        let reads = ReadShare::for_pool(handle.store().db().max_connections());
        Self { handle, reads }
    }

    /// At most `n` (at least 1) store reads of the jobs API at once, instead.
    pub fn with_max_store_reads(mut self, n: usize) -> Self {
        self.reads = ReadShare::new(n);
        self
    }

    /// The scheduler the jobs API acts on.
    pub fn handle(&self) -> &SchedulerHandle {
        &self.handle
    }

    /// The context in `ctx`'s schema data, or a GraphQL error saying how to provide it
    /// (never a panic: a host schema may have been built without it).
    pub(crate) fn of<'a>(ctx: &'a async_graphql::Context<'_>) -> async_graphql::Result<&'a Self> {
        ctx.data_opt::<Self>().ok_or_else(|| {
            tracing::error!("the jobs API was asked without a JobsContext in the schema's data");
            async_graphql::Error::new(
                "the jobs API is not set up: put JobsContext::new(handle) in the schema's data",
            )
        })
    }
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
    builder_with(JobsContext::new(handle), JobsExtension::default())
}

/// [`builder`] over a context and an extension made by the caller.
pub(crate) fn builder_with(
    context: JobsContext,
    extension: JobsExtension,
) -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(QueryRoot::new(), MutationRoot::new(), EmptySubscription)
        .data(context)
        .extension(extension)
}

/// Log `err` server-side and give the client a generic error.
pub(crate) fn internal_error(
    operation: &'static str,
    err: barycenter_jobs_core::Error,
) -> async_graphql::Error {
    tracing::error!(operation, error = %err, "admin GraphQL request failed");
    async_graphql::Error::new(INTERNAL_ERROR)
}
