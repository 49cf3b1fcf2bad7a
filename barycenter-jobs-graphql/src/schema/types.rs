//! The GraphQL object types: jobs, executions and trigger results.

use async_graphql::{Context, ID, Object, SimpleObject};
use barycenter_jobs_core::JobPolicy;
use barycenter_jobs_core::{Execution, FleetHealth, JobHealth, JobInfo};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{JobsContext, Loads};

/// An ISO 8601 UTC timestamp with second precision, `2026-01-01T00:00:00Z`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `count` argument of `upcomingRuns` and `previewSchedule`: how many fire times to list,
/// refused unless it is between 0 and [`MAX_UPCOMING`](barycenter_jobs_core::scheduler::MAX_UPCOMING).
pub(crate) fn upcoming_count(count: i32) -> async_graphql::Result<usize> {
    let max = barycenter_jobs_core::scheduler::MAX_UPCOMING;
    usize::try_from(count)
        .ok()
        .filter(|c| *c <= max)
        .ok_or_else(|| {
            async_graphql::Error::new(format!("count must be between 0 and {max}, got {count}"))
        })
}

/// An ISO 8601 date and time argument named `key`, or the message refusing it.
pub(crate) fn parse_time(key: &str, value: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|at| at.with_timezone(&Utc))
        .map_err(|e| format!("invalid {key}: {value:?} is not an ISO 8601 date and time ({e})"))
}

/// A registered job, with its schedule in force (after host overrides) and its state.
pub struct Job(pub(crate) JobInfo);

impl Job {
    /// This job's health, from the fleet's health the request reads once for every job.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<JobHealth>> {
        let state = JobsContext::of(ctx)?;
        let fleet = Loads::of(ctx).health(state).await?;
        Ok(fleet.job(&self.0.name).cloned())
    }
}

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

    /// The cron expression in force (six fields with seconds), e.g. `0 30 * * * *`: a
    /// runtime setting, else the host's configuration, else the job's own.
    async fn schedule(&self) -> &str {
        self.0.schedule.expression()
    }

    /// The job's own cron expression, as its code declares it.
    async fn default_schedule(&self) -> &str {
        self.0.default_schedule.expression()
    }

    /// The IANA zone the schedule is evaluated in; null for UTC.
    async fn time_zone(&self) -> Option<&'static str> {
        self.0.schedule.time_zone().map(|tz| tz.name())
    }

    /// Paused by an operator (`pauseJob`): no replica fires it; `triggerJob` still runs it.
    async fn paused(&self) -> bool {
        self.0.paused
    }

    /// Why the job is paused, as its pauser wrote it; null when not paused or no note.
    async fn pause_note(&self) -> Option<&str> {
        let r = &self.0.runtime_settings;
        r.pause_note.as_deref().filter(|_| self.0.paused)
    }

    /// When the pause ends by itself (ISO 8601 UTC); null when not paused or paused until
    /// resumed.
    async fn paused_until(&self) -> Option<String> {
        let r = &self.0.runtime_settings;
        r.paused_until.filter(|_| self.0.paused).map(iso)
    }

    /// Who paused the job (`system` for a pause after failures); null when not paused.
    async fn paused_by(&self) -> Option<&str> {
        let r = &self.0.runtime_settings;
        r.paused_by.as_deref().filter(|_| self.0.paused)
    }

    /// The backfill in progress (`backfillJob`); null when none.
    async fn backfill(&self) -> Option<BackfillInProgress> {
        self.0
            .runtime_settings
            .backfill
            .as_ref()
            .map(|b| BackfillInProgress {
                from: iso(b.from),
                to: iso(b.to),
                requested_by: b.requested_by.clone(),
            })
    }

    /// The scheduling policies in force (`setJobPolicy` > host configuration > defaults).
    async fn policy(&self) -> Policy {
        Policy(self.0.policy.clone())
    }

    /// When the next `count` (0 to 100) scheduled runs start: the fire times of the schedule
    /// in force, evaluated in the job's zone, each plus its jitter offset, as ISO 8601 UTC;
    /// a preview, also for a paused or disabled job.
    async fn upcoming_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 5)] count: i32,
    ) -> async_graphql::Result<Vec<String>> {
        let count = upcoming_count(count)?;
        let state = JobsContext::of(ctx)?;
        Ok(self
            .0
            .upcoming_runs(state.handle.now(), count)
            .into_iter()
            .map(iso)
            .collect())
    }

    /// Who last changed the runtime settings of this job (a reset included: the job is
    /// judged for overdue from that change on); null when nobody ever did.
    async fn changed_by(&self) -> Option<&str> {
        self.0.runtime_settings.changed_by.as_deref()
    }

    /// When a runtime setting of this job was last changed (ISO 8601 UTC).
    async fn changed_at(&self) -> Option<String> {
        self.0.runtime_settings.changed_at.map(iso)
    }

    /// The schedule in English, e.g. `Hourly at :30`.
    async fn schedule_description(&self) -> String {
        self.0.schedule.describe()
    }

    /// Whether the job fires on its schedule: false when disabled by configuration or paused
    /// (either can still be triggered by hand).
    async fn fires_on_schedule(&self) -> bool {
        self.0.fires_on_schedule
    }

    /// The same as `firesOnSchedule`, under its old name.
    #[graphql(
        deprecation = "renamed to firesOnSchedule: false for a paused job too, not only for one disabled by configuration"
    )]
    async fn enabled(&self) -> bool {
        self.0.fires_on_schedule
    }

    /// Whether a run is in progress in this process.
    async fn running(&self) -> bool {
        self.0.running
    }

    /// Next scheduled fire time (ISO 8601 UTC); null when disabled or shut down.
    async fn next_run_at(&self) -> Option<String> {
        self.0.next_run_at.map(iso)
    }

    /// Run timeout in seconds in force: an `Int`, like `rescheduleJob`'s `timeoutSecs`, so a
    /// value shown can be saved back (every timeout is bounded by a year, see
    /// `barycenter_jobs_core::scheduler::bounds`, which an `Int` holds).
    async fn timeout_secs(&self) -> i32 {
        i32::try_from(self.0.timeout.as_secs()).unwrap_or(i32::MAX)
    }

    /// The newest recorded run of this job, if any (read once per request).
    async fn last_execution(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<JobExecution>> {
        let state = JobsContext::of(ctx)?;
        let latest = Loads::of(ctx).latest(state, &self.0.name).await?;
        Ok(latest.map(|e| JobExecution(Execution::clone(&e))))
    }

    /// When the newest successful run of this job (on any replica) completed (ISO 8601 UTC).
    async fn last_success_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self
            .health(ctx)
            .await?
            .and_then(|h| h.last_success_at)
            .map(iso))
    }

    /// When the newest failed, timed-out, cancelled or abandoned run of this job completed.
    async fn last_failure_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self
            .health(ctx)
            .await?
            .and_then(|h| h.last_failure_at)
            .map(iso))
    }

    /// Whether a tick came due more than the job's grace ago with no successful run since
    /// (never for a disabled or paused job; only ticks after the job was first seen count).
    async fn overdue(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.health(ctx).await?.is_some_and(|h| h.is_overdue()))
    }

    /// Since when the job is overdue (the missed tick plus the grace); null when it is not.
    async fn overdue_since(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self
            .health(ctx)
            .await?
            .and_then(|h| h.overdue_since)
            .map(iso))
    }
}

/// The fleet's health, from the store: every replica gives the same answer.
pub struct Health(pub(crate) FleetHealth);

/// The fleet's health: `ok` unless a job is overdue.
#[Object]
impl Health {
    /// `ok` or `overdue`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }

    /// The overdue jobs, sorted by name.
    async fn overdue_jobs(&self) -> Vec<OverdueJob> {
        self.0
            .overdue_jobs()
            .map(|j| OverdueJob {
                name: j.name.clone(),
                overdue_since: j.overdue_since.map(iso).unwrap_or_default(),
                missed_tick: j.missed_tick.map(iso).unwrap_or_default(),
            })
            .collect()
    }

    /// This host's clock minus the database's in seconds, as last measured; null before the
    /// first measurement.
    async fn clock_skew_secs(&self) -> Option<f64> {
        self.0
            .clock_skew
            .map(|s| s.num_milliseconds() as f64 / 1000.0)
    }

    /// The instant the verdict is for (ISO 8601 UTC).
    async fn checked_at(&self) -> String {
        iso(self.0.checked_at)
    }
}

/// A job that is overdue.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct OverdueJob {
    /// The job's name.
    pub name: String,
    /// Since when it is overdue (ISO 8601 UTC): the missed tick plus the grace.
    pub overdue_since: String,
    /// The first tick no successful run followed (ISO 8601 UTC).
    pub missed_tick: String,
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

    /// `scheduled`, `catch_up`, `retry` or `manual`; null for rows Barycenter wrote.
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

    /// The tick a scheduled, caught-up or retried run belongs to (ISO 8601 UTC); a retry
    /// keeps its tick's.
    async fn scheduled_for(&self) -> Option<String> {
        self.0.scheduled_for.map(iso)
    }

    /// Which attempt at its tick the run was: 1, or more for a retry.
    async fn attempt(&self) -> i32 {
        i32::try_from(self.0.attempt).unwrap_or(i32::MAX)
    }

    /// What the run logged at `info` and above, in order: at most 200 lines and 64 KiB,
    /// then one line saying how many more were dropped. Empty while the run is running (its
    /// log is written at its end), for a run that logged nothing, and when the scheduler
    /// captures no logs. One read per run and request, however many aliases name it; its
    /// complexity counts it as
    /// [`LOGS_COMPLEXITY`] fields, so that many aliased runs' logs are refused.
    #[graphql(complexity = "LOGS_COMPLEXITY + child_complexity")]
    async fn logs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LogLine>> {
        let state = JobsContext::of(ctx)?;
        let lines = Loads::of(ctx).run_log(state, self.0.id).await?;
        Ok(lines.iter().cloned().map(LogLine).collect())
    }
}

/// The complexity of a run's `logs` beyond its fields: one read of up to 201 rows.
pub const LOGS_COMPLEXITY: usize = 10;

/// One line of a run's log.
pub struct LogLine(pub(crate) barycenter_jobs_core::LogLine);

/// One line a run logged at `info` and above.
#[Object]
impl LogLine {
    /// When it was logged (ISO 8601 UTC).
    async fn at(&self) -> String {
        iso(self.0.at)
    }

    /// `ERROR`, `WARN` or `INFO`.
    async fn level(&self) -> &str {
        &self.0.level
    }

    /// The message, then ` key=value` for each of the event's other fields.
    async fn message(&self) -> &str {
        &self.0.message
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
    /// The id of the started run; null when none was started (and for dry runs).
    pub execution_id: Option<ID>,
    /// With `dryRun: true`: the rows a real run would process now; null otherwise.
    pub would_process: Option<u64>,
}

/// The answer to `pauseJob`, `resumeJob`, `rescheduleJob` and `resetJob`.
#[derive(SimpleObject)]
pub struct ChangeResult {
    /// Whether the change was made.
    pub success: bool,
    /// What happened, e.g. `Job NAME paused` or `Unknown job: NAME`.
    pub message: String,
    /// The job name as given.
    pub job_name: String,
    /// The job as it now is; null when nothing was changed.
    pub job: Option<Job>,
}

/// One admin mutation, as the audit log has it.
pub struct AuditEntry(pub(crate) barycenter_jobs_core::AuditEntry);

/// One admin mutation (trigger, dry run, pause, resume, reschedule, reset), also when it was
/// refused.
#[Object]
impl AuditEntry {
    /// Entry id; newer entries have larger ids.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// When it was recorded (ISO 8601 UTC, the database's clock).
    async fn at(&self) -> String {
        iso(self.0.at)
    }

    /// The principal that asked, as the authorization named it.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// `trigger`, `dry_run`, `pause`, `resume`, `reschedule` or `reset`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The job name as given.
    async fn job_name(&self) -> &str {
        &self.0.job_name
    }

    /// What came of it: the change, the execution id, the count, or why it was refused.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

/// Who is asking, as the authorization named them (`viewer`).
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The principal's name, as the audit log records it.
    pub name: String,
    /// `read` (queries only) or `operate` (queries and mutations).
    pub role: String,
}

/// A cron expression checked without changing anything (`previewSchedule`).
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct SchedulePreview {
    /// Whether `rescheduleJob` would accept the expression and zone.
    pub valid: bool,
    /// `ok`, or what is wrong with the expression or the zone.
    pub message: String,
    /// The schedule in English, e.g. `Hourly at :30`; null when invalid.
    pub description: Option<String>,
    /// The next fire times after the scheduler's now, evaluated in the zone, as ISO 8601
    /// UTC; empty when invalid.
    pub upcoming: Vec<String>,
}

/// A scheduler of the fleet (`fleet`).
#[derive(Debug)]
pub struct FleetMember(pub(crate) barycenter_jobs_core::Replica);

#[Object(name = "Replica")]
impl FleetMember {
    /// Its instance label (`HOST:PID` unless configured).
    async fn instance(&self) -> &str {
        &self.0.instance
    }

    /// The host it runs on.
    async fn host(&self) -> &str {
        &self.0.host
    }

    /// Its process id.
    async fn pid(&self) -> i32 {
        i32::try_from(self.0.pid).unwrap_or(i32::MAX)
    }

    /// The version of barycenter-jobs it runs.
    async fn version(&self) -> &str {
        &self.0.version
    }

    /// When it started (ISO 8601 UTC).
    async fn started_at(&self) -> String {
        iso(self.0.started_at)
    }

    /// Its last refresh, by the database's clock (every 10 s while it runs).
    async fn last_seen_at(&self) -> String {
        iso(self.0.last_seen_at)
    }

    /// Its clock minus the database's, in seconds; null until measured.
    async fn clock_skew_secs(&self) -> Option<f64> {
        self.0
            .clock_skew
            .map(|d| d.num_milliseconds() as f64 / 1000.0)
    }

    /// Runs in progress in it at its last refresh.
    async fn running(&self) -> i32 {
        i32::try_from(self.0.running).unwrap_or(i32::MAX)
    }
}

/// A backfill in progress (`Job.backfill`).
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
#[graphql(name = "Backfill")]
pub struct BackfillInProgress {
    /// The range's start (ISO 8601 UTC).
    pub from: String,
    /// The range's end, included.
    pub to: String,
    /// Who asked for it.
    pub requested_by: String,
}

/// The answer to `backfillJob`.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct BackfillResult {
    /// Whether the backfill was started.
    pub success: bool,
    /// What happened, or why it was refused.
    pub message: String,
    /// The job name as given.
    pub job_name: String,
    /// How many ticks it runs (0 when refused).
    pub ticks: i32,
}

/// The ticks a backfill would run, computed without changing anything (`previewBackfill`).
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct BackfillPreview {
    /// Whether `backfillJob` would accept the range.
    pub valid: bool,
    /// `ok`, or why the range would be refused.
    pub message: String,
    /// How many ticks it would run.
    pub ticks: i32,
    /// The oldest of them (ISO 8601 UTC), at most `count`.
    pub first: Vec<String>,
}

/// A job's scheduling policies.
#[derive(Debug)]
pub struct Policy(pub(crate) JobPolicy);

#[Object(name = "JobPolicy")]
impl Policy {
    /// Missed ticks at start-up: `skip`, `run_once` (the newest) or `run_all` (every one,
    /// oldest first, at most 100).
    async fn misfire(&self) -> &'static str {
        self.0.misfire.as_str()
    }

    /// A tick that comes due while the job runs: `skip` (not run), `buffer_one` (runs once
    /// right after the run ends) or `cancel_running` (the run is cancelled, on whichever
    /// replica, and the tick runs once it stopped).
    async fn overlap(&self) -> &'static str {
        self.0.overlap.as_str()
    }

    /// Missed ticks older than this many seconds are never caught up; null: no limit.
    async fn catch_up_window_secs(&self) -> Option<i32> {
        self.0
            .catch_up_window
            .map(|w| i32::try_from(w.as_secs()).unwrap_or(i32::MAX))
    }

    /// A scheduled tick starts up to this many seconds after the tick (the same offset on
    /// every replica); 0: at the tick.
    async fn jitter_secs(&self) -> i32 {
        i32::try_from(self.0.jitter.as_secs()).unwrap_or(i32::MAX)
    }

    /// The job is paused by `system` after this many consecutive failed scheduled runs; 0:
    /// never.
    async fn pause_after_failures(&self) -> i32 {
        i32::try_from(self.0.pause_after_failures).unwrap_or(i32::MAX)
    }

    /// Extra attempts at a tick whose scheduled, catch-up or retried run failed or timed
    /// out; 0: none.
    async fn retry_attempts(&self) -> i32 {
        i32::try_from(self.0.retry_attempts).unwrap_or(i32::MAX)
    }

    /// The first retry's delay in seconds; doubled for each later attempt, capped at an
    /// hour; an attempt never starts at or after the job's next tick.
    async fn retry_backoff_secs(&self) -> i32 {
        i32::try_from(self.0.retry_backoff.as_secs()).unwrap_or(i32::MAX)
    }
}
