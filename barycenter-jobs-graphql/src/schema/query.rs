//! Read-only fields: jobs and their history.

use async_graphql::{Context, ID, Object};
use barycenter_jobs_core::{ExecutionQuery, FleetHealth};

use super::iso;
use super::types::{
    AuditEntry, BackfillPreview, FleetMember, Health, Job, JobExecution, SchedulePreview, Viewer,
    parse_time, upcoming_count,
};
use super::{JobsContext, Loads, MAX_LIST_LIMIT, internal_error};
use crate::service::Principal;

/// The jobs API's queries: the query root of [`AdminSchema`](super::AdminSchema), and an
/// object a host merges into its own query root with `#[derive(MergedObject)]` (see the
/// [module docs](super#merging-into-a-host-schema)). Its resolvers read a [`JobsContext`]
/// and the caller's [`Principal`] from the schema's and the request's data.
#[derive(Debug, Default)]
pub struct QueryRoot {
    _private: (),
}

impl QueryRoot {
    /// The queries, to merge or to build a schema with.
    pub fn new() -> Self {
        Self { _private: () }
    }
}

/// Jobs and their execution history.
#[Object]
impl QueryRoot {
    /// Every registered job, sorted by name. Its complexity counts the fields selected in
    /// each job ten times, as for a list of ten jobs, so that aliases of it add up as the
    /// work they ask for does.
    #[graphql(complexity = "jobs_complexity(child_complexity)")]
    async fn available_jobs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Job>> {
        let state = JobsContext::of(ctx)?;
        Ok(state.handle.jobs().into_iter().map(Job).collect())
    }

    /// One job by name; null when no job has that name.
    async fn job(&self, ctx: &Context<'_>, name: String) -> async_graphql::Result<Option<Job>> {
        let state = JobsContext::of(ctx)?;
        Ok(state.handle.job(&name).map(Job))
    }

    /// Recorded runs, newest first: of one job when `jobName` is given, failures only when
    /// `onlyFailures` is true, at most `limit` (1 to 1000) of them. Its complexity counts one
    /// point per 10 rows of `limit` on top of the fields selected.
    #[graphql(complexity = "row_complexity(limit, child_complexity)")]
    async fn job_logs(
        &self,
        ctx: &Context<'_>,
        job_name: Option<String>,
        #[graphql(default = 100)] limit: i32,
        #[graphql(default = false)] only_failures: bool,
    ) -> async_graphql::Result<Vec<JobExecution>> {
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
            .ok_or_else(|| {
                async_graphql::Error::new(format!(
                    "limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}"
                ))
            })?;
        let mut query = ExecutionQuery::new().limit(limit);
        if let Some(name) = job_name {
            query = query.job(name);
        }
        if only_failures {
            query = query.failures();
        }
        let state = JobsContext::of(ctx)?;
        let rows = state
            .reads
            .run(state.handle.store().list(&query))
            .await
            .map_err(|e| internal_error("jobLogs", e))?;
        Ok(rows.into_iter().map(JobExecution).collect())
    }

    /// The fleet's health: `ok`, or `overdue` with the overdue jobs; computed from the store,
    /// so every replica gives the same answer.
    async fn health(&self, ctx: &Context<'_>) -> async_graphql::Result<Health> {
        let state = JobsContext::of(ctx)?;
        let fleet = Loads::of(ctx).health(state).await?;
        Ok(Health(FleetHealth::clone(&fleet)))
    }

    /// The audit log of admin mutations, newest first: of one job when `jobName` is given, at
    /// most `limit` (1 to 1000) entries. Complexity as `jobLogs`.
    #[graphql(complexity = "row_complexity(limit, child_complexity)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] limit: i32,
        job_name: Option<String>,
    ) -> async_graphql::Result<Vec<AuditEntry>> {
        let max = barycenter_jobs_core::settings::MAX_AUDIT_LIMIT;
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| {
                async_graphql::Error::new(format!("limit must be between 1 and {max}, got {limit}"))
            })?;
        let mut query = barycenter_jobs_core::AuditQuery::new().limit(limit);
        if let Some(name) = job_name {
            query = query.job(name);
        }
        let state = JobsContext::of(ctx)?;
        let rows = state
            .reads
            .run(state.handle.audit_log(&query))
            .await
            .map_err(|e| internal_error("auditLog", e))?;
        Ok(rows.into_iter().map(AuditEntry).collect())
    }

    /// Who is asking: the principal's name and role as the authorization named them (the
    /// dashboard disables its operate buttons for `read`). Null when the schema is executed
    /// without a principal.
    async fn viewer(&self, ctx: &Context<'_>) -> Option<Viewer> {
        ctx.data_opt::<Principal>().map(|p| Viewer {
            name: p.name.clone(),
            role: p.role.as_str().to_owned(),
        })
    }

    /// Check a cron expression and an optional IANA zone as `rescheduleJob` would, changing
    /// nothing: whether they are valid (and why not), the schedule in English and its next
    /// `count` (0 to 100) fire times after the scheduler's now.
    async fn preview_schedule(
        &self,
        ctx: &Context<'_>,
        schedule: String,
        time_zone: Option<String>,
        #[graphql(default = 5)] count: i32,
    ) -> async_graphql::Result<SchedulePreview> {
        let count = upcoming_count(count)?;
        let parsed = barycenter_jobs_core::Schedule::parse(&schedule).and_then(|s| match time_zone
            .as_deref()
            .map(str::trim)
            .filter(|z| !z.is_empty())
        {
            Some(zone) => s.with_time_zone(zone),
            None => Ok(s),
        });
        let state = JobsContext::of(ctx)?;
        Ok(match parsed {
            Ok(s) => SchedulePreview {
                valid: true,
                message: "ok".to_owned(),
                description: Some(s.describe()),
                upcoming: s
                    .upcoming(state.handle.now(), count)
                    .into_iter()
                    .map(iso)
                    .collect(),
            },
            Err(e) => SchedulePreview {
                valid: false,
                message: e.to_string(),
                description: None,
                upcoming: Vec::new(),
            },
        })
    }

    /// The ticks `backfillJob` would run for `jobName` over `[from, to]` (ISO 8601), changing
    /// nothing: whether it would accept the range (and why not), how many ticks, and the
    /// oldest `count` (0 to 100) of them.
    async fn preview_backfill(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        from: String,
        to: String,
        #[graphql(default = 5)] count: i32,
    ) -> async_graphql::Result<BackfillPreview> {
        let count = upcoming_count(count)?;
        let state = JobsContext::of(ctx)?;
        let refused = |message: String| BackfillPreview {
            valid: false,
            message,
            ticks: 0,
            first: Vec::new(),
        };
        let range = parse_time("from", &from).and_then(|f| Ok((f, parse_time("to", &to)?)));
        let (from, to) = match range {
            Ok(range) => range,
            Err(message) => return Ok(refused(message)),
        };
        Ok(match state.handle.backfill_ticks(&job_name, from, to) {
            Ok(ticks) => BackfillPreview {
                valid: true,
                message: "ok".to_owned(),
                ticks: i32::try_from(ticks.len()).unwrap_or(i32::MAX),
                first: ticks.into_iter().take(count).map(iso).collect(),
            },
            Err(e) if e.is_invalid_input() => refused(e.to_string()),
            Err(e) => return Err(internal_error("previewBackfill", e)),
        })
    }

    /// The schedulers of the fleet seen in the last 30 s (each refreshes its row every 10 s;
    /// a clean shutdown removes it), by instance label. Read once per request.
    async fn fleet(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<FleetMember>> {
        let state = JobsContext::of(ctx)?;
        let fleet = Loads::of(ctx).fleet(state).await?;
        Ok(fleet.iter().cloned().map(FleetMember).collect())
    }

    /// One run by id; null when there is no such run.
    async fn job_execution(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<JobExecution>> {
        let Ok(id) = id.parse::<i64>() else {
            return Err(async_graphql::Error::new(format!(
                "invalid execution id {:?}: expected a decimal integer",
                id.as_str()
            )));
        };
        let state = JobsContext::of(ctx)?;
        state
            .reads
            .run(state.handle.store().get(id))
            .await
            .map(|e| e.map(JobExecution))
            .map_err(|e| internal_error("jobExecution", e))
    }
}

/// How many jobs the complexity of `availableJobs` counts its fields for: a fixed bound
/// rather than the registry's size, so that whether a query is accepted does not change as
/// jobs are added (a host with more jobs still gets each field read once per request: the
/// store-backed ones are loaded once for every job).
pub const JOBS_COMPLEXITY_FACTOR: usize = 10;

/// The complexity of `availableJobs`: its fields once per job.
fn jobs_complexity(child_complexity: usize) -> usize {
    child_complexity.saturating_mul(JOBS_COMPLEXITY_FACTOR)
}

/// The complexity of a list with a row limit: its fields, plus one point per 10 rows, so
/// that many aliases of a large `limit` are refused by the complexity limit.
fn row_complexity(limit: i32, child_complexity: usize) -> usize {
    usize::try_from(limit).unwrap_or(0) / 10 + child_complexity
}
