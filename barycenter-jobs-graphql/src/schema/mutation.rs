//! Mutations: manual triggers and dry runs, and the runtime settings (pause, resume,
//! reschedule, policies, reset). Each one needs a principal with the operate role and is written to
//! the audit log, refusals included.

use async_graphql::{Context, ID, Object};
use barycenter_jobs_core::settings::{AuditAction, NewAuditEntry};
use barycenter_jobs_core::{
    Error, JobInfo, MisfirePolicy, OverlapPolicy, PauseRequest, PolicyRequest, RescheduleRequest,
};

use super::types::{BackfillResult, ChangeResult, Job, TriggerResult, parse_time};
use super::{INTERNAL_ERROR, JobsContext, Loads};
use crate::service::Principal;

/// The jobs API's mutations: the mutation root of [`AdminSchema`](super::AdminSchema), and an
/// object a host merges into its own mutation root with `#[derive(MergedObject)]` (see the
/// [module docs](super#merging-into-a-host-schema)). Each needs a [`Principal`] with the
/// operate role in the request's data and is written to the audit log under its name.
#[derive(Debug, Default)]
pub struct MutationRoot {
    _private: (),
}

impl MutationRoot {
    /// The mutations, to merge or to build a schema with.
    pub fn new() -> Self {
        Self { _private: () }
    }
}

async fn audit(state: &JobsContext, actor: &str, action: AuditAction, job: &str, detail: String) {
    state
        .handle
        .record_audit(NewAuditEntry {
            actor: actor.to_owned(),
            action,
            job_name: job.to_owned(),
            detail: Some(detail),
        })
        .await;
}

/// The principal of the request if it may run mutations. A refusal is a GraphQL error and
/// is audited; nothing else happens.
async fn operator(
    ctx: &Context<'_>,
    action: AuditAction,
    job: &str,
) -> async_graphql::Result<Principal> {
    let state = JobsContext::of(ctx)?;
    match ctx.data_opt::<Principal>() {
        Some(p) if p.role.may_operate() => Ok(p.clone()),
        Some(p) => {
            audit(
                state,
                &p.name,
                action,
                job,
                format!("denied: the {} role may not run mutations", p.role.as_str()),
            )
            .await;
            Err(async_graphql::Error::new(format!(
                "forbidden: {} has the {} role; mutations need the operate role",
                p.name,
                p.role.as_str()
            )))
        }
        None => {
            audit(state, "unknown", action, job, "denied: no principal".into()).await;
            Err(async_graphql::Error::new(
                "forbidden: no principal (serve the schema through AdminService, or give each request a Principal)",
            ))
        }
    }
}

/// A change refused before it reached the scheduler (an argument that does not parse):
/// audited, answered with its reason, nothing changed.
async fn refused(
    state: &JobsContext,
    principal: &Principal,
    action: AuditAction,
    job_name: String,
    message: String,
) -> ChangeResult {
    let detail = format!("refused: {message}");
    audit(state, &principal.name, action, &job_name, detail).await;
    ChangeResult {
        success: false,
        message,
        job_name,
        job: None,
    }
}

/// The answer to a settings change.
fn change_result(job_name: String, done: &str, result: Result<JobInfo, Error>) -> ChangeResult {
    match result {
        Ok(info) => ChangeResult {
            success: true,
            message: format!("Job {job_name} {done}"),
            job_name,
            job: Some(Job(info)),
        },
        Err(e) => {
            let message = if e.is_invalid_input() {
                e.to_string()
            } else {
                tracing::error!(job = %job_name, error = %e, "admin settings change failed");
                INTERNAL_ERROR.to_owned()
            };
            ChangeResult {
                success: false,
                message,
                job_name,
                job: None,
            }
        }
    }
}

/// Operations that change state. Each needs the operate role; a principal with the read role
/// gets a GraphQL error, and the refusal is in the audit log.
#[Object]
impl MutationRoot {
    /// Start a run of `jobName` now and return at once (the run goes on in the background;
    /// follow it with `jobExecution(id: executionId)`). A paused or disabled job runs too.
    ///
    /// With `dryRun: true` nothing is run or deleted: the job counts what a run would process
    /// and the answer carries it in `wouldProcess` (`success: false` with a message for a job
    /// without a dry run).
    ///
    /// Refusals are reported in the result, not as errors: an unknown name gives
    /// `success: false` and `Unknown job: NAME`; a job with a run in progress gives
    /// `success: false` and `job NAME is already running`.
    async fn trigger_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        #[graphql(default = false)] dry_run: bool,
    ) -> async_graphql::Result<TriggerResult> {
        let action = if dry_run {
            AuditAction::DryRun
        } else {
            AuditAction::Trigger
        };
        let principal = operator(ctx, action, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let result = |success: bool, message: String, job_name: String| TriggerResult {
            success,
            message,
            job_name,
            execution_id: None,
            would_process: None,
        };
        let (answer, detail) = if dry_run {
            match state.handle.dry_run(&job_name).await {
                Ok(dry) => (
                    TriggerResult {
                        would_process: Some(dry.would_process),
                        ..result(
                            true,
                            format!("Dry run of {job_name}: would process {}", dry.would_process),
                            job_name.clone(),
                        )
                    },
                    format!("would process {}", dry.would_process),
                ),
                Err(
                    e @ (Error::UnknownJob(_)
                    | Error::DryRunNotSupported(_)
                    | Error::DryRunFailed { .. }
                    | Error::ShutDown),
                ) => (
                    result(false, e.to_string(), job_name.clone()),
                    format!("refused: {e}"),
                ),
                Err(e) => {
                    tracing::error!(job = %job_name, error = %e, "admin dry run failed");
                    (
                        result(false, INTERNAL_ERROR.to_owned(), job_name.clone()),
                        "failed: internal error".to_owned(),
                    )
                }
            }
        } else {
            match state.handle.trigger(&job_name).await {
                // Dropping the `TriggeredRun` does not stop the run; it only stops waiting.
                Ok(run) => (
                    TriggerResult {
                        execution_id: Some(ID(run.execution_id.to_string())),
                        ..result(true, format!("Job {job_name} triggered"), job_name.clone())
                    },
                    format!("execution {}", run.execution_id),
                ),
                Err(e @ (Error::UnknownJob(_) | Error::AlreadyRunning(_) | Error::ShutDown)) => (
                    result(false, e.to_string(), job_name.clone()),
                    format!("refused: {e}"),
                ),
                Err(e) => {
                    tracing::error!(job = %job_name, error = %e, "admin triggerJob failed");
                    (
                        result(false, INTERNAL_ERROR.to_owned(), job_name.clone()),
                        "failed: internal error".to_owned(),
                    )
                }
            }
        };
        Loads::of(ctx).invalidate();
        audit(state, &principal.name, action, &job_name, detail).await;
        Ok(answer)
    }

    /// Stop scheduled runs of `jobName` on every replica (within 2 s), until `resumeJob`,
    /// `resetJob` or `until` (ISO 8601, in the future: the job then resumes by itself, on
    /// whichever replica sees it first, audited as `system`); persisted across restarts.
    /// `note` (at most 500 characters) says why, for the next operator. `triggerJob` still
    /// runs the job.
    async fn pause_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        note: Option<String>,
        until: Option<String>,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Pause, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let mut request = PauseRequest::new();
        request.note = note;
        if let Some(until) = until {
            match parse_time("until", &until) {
                Ok(at) => request.until = Some(at),
                Err(message) => {
                    return Ok(refused(state, &p, AuditAction::Pause, job_name, message).await);
                }
            }
        }
        let result = state.handle.pause_with(&job_name, request, &p.name).await;
        // Fields read after this one (its `job`, the next mutation's) see the change.
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "paused", result))
    }

    /// Start scheduled runs of `jobName` again on every replica (also one disabled by the
    /// host's configuration: a runtime setting outranks it).
    async fn resume_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Resume, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let result = state.handle.resume(&job_name, &p.name).await;
        // Fields read after this one (its `job`, the next mutation's) see the change.
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "resumed", result))
    }

    /// Change the cron expression (`schedule`, five or six fields), the IANA `timeZone`
    /// and/or the `timeoutSecs` of `jobName` at run time, on every replica; a null argument
    /// keeps that setting. An invalid expression or zone is refused with its reason
    /// (`success: false`) and changes nothing.
    async fn reschedule_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        schedule: Option<String>,
        time_zone: Option<String>,
        timeout_secs: Option<i32>,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Reschedule, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let mut request = RescheduleRequest::new();
        request.schedule = schedule;
        request.time_zone = time_zone;
        if let Some(secs) = timeout_secs {
            match u64::try_from(secs).ok().filter(|s| *s >= 1) {
                Some(secs) => request.timeout_secs = Some(secs),
                None => {
                    let message = format!("timeoutSecs must be at least 1, got {secs}");
                    return Ok(
                        refused(state, &p, AuditAction::Reschedule, job_name, message).await,
                    );
                }
            }
        }
        let result = state.handle.reschedule(&job_name, request, &p.name).await;
        // Fields read after this one (its `job`, the next mutation's) see the change.
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "rescheduled", result))
    }

    /// Change the scheduling policies of `jobName` at run time, on every replica (within
    /// 2 s), persisted and audited; a null argument keeps that policy. `retryAttempts` (0 to
    /// 100): extra attempts at a tick whose scheduled, catch-up or retried run failed or
    /// timed out, the first `retryBackoffSecs` (1 to 3600) later, doubling, never at or
    /// after the next tick; `overlap`: what a tick that comes due while the job runs does,
    /// `skip`, `buffer_one` (runs once right after) or `cancel_running` (the run is
    /// cancelled fleet-wide, then the tick runs); `misfire`: `skip`,
    /// `run_once` or `run_all`; `catchUpWindowSecs`: missed ticks older than this are never
    /// caught up; `jitterSecs` (0 to 3600): a scheduled tick starts up to this late, the same
    /// on every replica; `pauseAfterFailures` (0 to 1000, 0 never): consecutive failed
    /// scheduled runs after which `system` pauses the job. A bad value is refused with its
    /// reason (`success: false`) and changes nothing.
    // One argument per policy: the mutation's GraphQL signature.
    #[allow(clippy::too_many_arguments)]
    async fn set_job_policy(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        retry_attempts: Option<i32>,
        retry_backoff_secs: Option<i32>,
        overlap: Option<String>,
        misfire: Option<String>,
        catch_up_window_secs: Option<i32>,
        jitter_secs: Option<i32>,
        pause_after_failures: Option<i32>,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Policy, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let mut request = PolicyRequest::new();
        if let Some(name) = misfire {
            match MisfirePolicy::parse(name.trim()) {
                Some(policy) => request.misfire = Some(policy),
                None => {
                    let message =
                        format!("invalid misfire: {name:?} (expected skip, run_once or run_all)");
                    return Ok(refused(state, &p, AuditAction::Policy, job_name, message).await);
                }
            }
        }
        if let Some(name) = overlap {
            match OverlapPolicy::parse(name.trim()) {
                Some(policy) => request.overlap = Some(policy),
                None => {
                    let message = format!(
                        "invalid overlap: {name:?} (expected skip, buffer_one or cancel_running)"
                    );
                    return Ok(refused(state, &p, AuditAction::Policy, job_name, message).await);
                }
            }
        }
        let count = |key: &str, n: Option<i32>| match n.map(u64::try_from) {
            None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(format!("invalid {key}: must not be negative")),
        };
        let counts = count("catchUpWindowSecs", catch_up_window_secs).and_then(|window| {
            Ok((
                window,
                count("jitterSecs", jitter_secs)?,
                count("pauseAfterFailures", pause_after_failures)?,
                count("retryAttempts", retry_attempts)?,
                count("retryBackoffSecs", retry_backoff_secs)?,
            ))
        });
        let small = |n: Option<u64>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        match counts {
            Ok((window, jitter, failures, attempts, backoff)) => {
                request.catch_up_window_secs = window;
                request.jitter_secs = jitter;
                request.pause_after_failures = small(failures);
                request.retry_attempts = small(attempts);
                request.retry_backoff_secs = backoff;
            }
            Err(message) => {
                return Ok(refused(state, &p, AuditAction::Policy, job_name, message).await);
            }
        }
        let result = state.handle.set_policy(&job_name, request, &p.name).await;
        // Fields read after this one (its `job`, the next mutation's) see the change.
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "policy changed", result))
    }

    /// Run every tick of `jobName`'s schedule in force within `[from, to]` (ISO 8601) once,
    /// oldest first, one at a time, recorded with `trigger: "backfill"` and the tick as
    /// `scheduledFor`. At most 1,000 ticks; persisted (it goes on if its replica dies),
    /// stopped by a pause, a reset or `cancelBackfill`. A range in the future, with no tick
    /// or too many, or a paused job is refused with its reason (`success: false`).
    async fn backfill_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
        from: String,
        to: String,
    ) -> async_graphql::Result<BackfillResult> {
        let p = operator(ctx, AuditAction::Backfill, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let range = parse_time("from", &from).and_then(|f| Ok((f, parse_time("to", &to)?)));
        let result = match range {
            Ok((from, to)) => {
                let started = state.handle.backfill(&job_name, from, to, &p.name).await;
                Loads::of(ctx).invalidate();
                started
            }
            Err(message) => {
                let r = refused(state, &p, AuditAction::Backfill, job_name, message).await;
                return Ok(BackfillResult {
                    success: false,
                    message: r.message,
                    job_name: r.job_name,
                    ticks: 0,
                });
            }
        };
        Ok(match result {
            Ok(ticks) => BackfillResult {
                success: true,
                message: format!("Job {job_name}: backfill of {ticks} ticks started"),
                job_name,
                ticks: i32::try_from(ticks).unwrap_or(i32::MAX),
            },
            Err(e) => {
                let r = change_result(job_name, "", Err(e));
                BackfillResult {
                    success: false,
                    message: r.message,
                    job_name: r.job_name,
                    ticks: 0,
                }
            }
        })
    }

    /// Stop `jobName`'s backfill in progress (a run already started finishes);
    /// `success: false` when none is in progress.
    async fn cancel_backfill(
        &self,
        ctx: &Context<'_>,
        job_name: String,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Backfill, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let result = state.handle.cancel_backfill(&job_name, &p.name).await;
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "backfill cancelled", result))
    }

    /// Cancel the running run `executionId`, whichever replica runs it: it stops within
    /// about two seconds, recorded `cancelled` with the records it reported and "cancelled
    /// by NAME", and its lease is released. An unknown id, a run that ended or one no
    /// scheduler holds gives `success: false` with the reason. Audited (`cancel`).
    async fn cancel_run(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Cancel, "").await?;
        let state = JobsContext::of(ctx)?;
        let Ok(id) = execution_id.parse::<i64>() else {
            let message = format!(
                "invalid executionId {:?}: expected a decimal integer",
                execution_id.as_str()
            );
            return Ok(refused(state, &p, AuditAction::Cancel, String::new(), message).await);
        };
        let result = state.handle.cancel_run(id, &p.name).await;
        Loads::of(ctx).invalidate();
        Ok(match result {
            Ok(job_name) => ChangeResult {
                success: true,
                message: format!("Run {id} of {job_name}: cancel asked"),
                job: state.handle.job(&job_name).map(Job),
                job_name,
            },
            Err(e) => change_result(String::new(), "", Err(e)),
        })
    }

    /// Drop every runtime setting of `jobName`: the host's configuration and the job's
    /// defaults apply again, on every replica.
    async fn reset_job(
        &self,
        ctx: &Context<'_>,
        job_name: String,
    ) -> async_graphql::Result<ChangeResult> {
        let p = operator(ctx, AuditAction::Reset, &job_name).await?;
        let state = JobsContext::of(ctx)?;
        let result = state.handle.reset(&job_name, &p.name).await;
        // Fields read after this one (its `job`, the next mutation's) see the change.
        Loads::of(ctx).invalidate();
        Ok(change_result(job_name, "reset", result))
    }
}
