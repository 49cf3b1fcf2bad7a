//! The GraphQL object types: jobs, executions and trigger results.

use async_graphql::{Context, ID, Object, SimpleObject};
use barycenter_jobs_core::{Execution, JobInfo};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{AdminState, internal_error};

/// An ISO 8601 UTC timestamp with second precision, `2026-01-01T00:00:00Z`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A registered job, with its schedule in force (after host overrides) and its state.
pub struct Job(pub(crate) JobInfo);

/// A registered job.
#[Object]
impl Job {
    /// Stable name, e.g. `cleanup_expired_sessions`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// One-line description.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The cron expression in force (six fields with seconds), e.g. `0 30 * * * *`.
    async fn schedule(&self) -> &str {
        self.0.schedule.expression()
    }

    /// The schedule in English, e.g. `Hourly at :30`.
    async fn schedule_description(&self) -> String {
        self.0.schedule.describe()
    }

    /// Whether scheduled runs happen (a disabled job can still be triggered by hand).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Whether a run is in progress in this process.
    async fn running(&self) -> bool {
        self.0.running
    }

    /// Next scheduled fire time (ISO 8601 UTC); null when disabled or shut down.
    async fn next_run_at(&self) -> Option<String> {
        self.0.next_run_at.map(iso)
    }

    /// Run timeout in seconds.
    async fn timeout_secs(&self) -> u64 {
        self.0.timeout.as_secs()
    }

    /// The newest recorded run of this job, if any.
    async fn last_execution(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<JobExecution>> {
        let state = ctx.data_unchecked::<AdminState>();
        state
            .handle
            .store()
            .latest(&self.0.name)
            .await
            .map(|e| e.map(JobExecution))
            .map_err(|e| internal_error("lastExecution", e))
    }
}

/// One run of a job, from the execution history.
pub struct JobExecution(pub(crate) Execution);

/// One run of a job. Rows written by Barycenter itself have no `status`-era extras:
/// `trigger`, `instance`, `durationMs` and `scheduledFor` are null for them.
#[Object]
impl JobExecution {
    /// Execution id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The job's name.
    async fn job_name(&self) -> &str {
        &self.0.job_name
    }

    /// Start time (ISO 8601 UTC).
    async fn started_at(&self) -> String {
        iso(self.0.started_at)
    }

    /// End time (ISO 8601 UTC); null while running.
    async fn completed_at(&self) -> Option<String> {
        self.0.completed_at.map(iso)
    }

    /// Null while running, then whether the run succeeded.
    async fn success(&self) -> Option<bool> {
        self.0.success
    }

    /// Error text of a failed, cancelled or abandoned run.
    async fn error_message(&self) -> Option<&str> {
        self.0.error_message.as_deref()
    }

    /// What the job reported (successful runs only).
    async fn records_processed(&self) -> Option<u64> {
        self.0.records_processed
    }

    /// `running`, `succeeded`, `failed`, `cancelled` or `abandoned`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }

    /// `scheduled`, `catch_up` or `manual`; null for rows Barycenter wrote.
    async fn trigger(&self) -> Option<&str> {
        self.0.trigger.as_deref()
    }

    /// The scheduler instance that ran it.
    async fn instance(&self) -> Option<&str> {
        self.0.instance.as_deref()
    }

    /// Run time in milliseconds.
    async fn duration_ms(&self) -> Option<i64> {
        self.0.duration_ms
    }

    /// The tick a scheduled run belongs to (ISO 8601 UTC).
    async fn scheduled_for(&self) -> Option<String> {
        self.0.scheduled_for.map(iso)
    }
}

/// The answer to `triggerJob`.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct TriggerResult {
    /// Whether a run was started.
    pub success: bool,
    /// What happened, e.g. `Unknown job: NAME`.
    pub message: String,
    /// The job name as given.
    pub job_name: String,
    /// The id of the started run; null when none was started.
    pub execution_id: Option<ID>,
}
