//! What a running scheduler gives its host: job information, manual triggers, shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::backfill;
use super::change::Change;
use super::info::JobInfo;
use super::run::{self, TriggeredRun};
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::job::{JobContext, JobError, Trigger};
use crate::settings::{
    AuditEntry, AuditQuery, Backfill, NewAuditEntry, PauseRequest, PolicyRequest, RescheduleRequest,
};
use crate::store::{ExecutionStore, Replica};

/// A handle on a started [`Scheduler`](super::Scheduler). Cheap to clone; every clone
/// controls the same scheduler.
#[derive(Clone)]
pub struct SchedulerHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("instance", &self.shared.instance)
            .field("jobs", &self.shared.slots.len())
            .finish()
    }
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DryRun {
    /// The job.
    pub job_name: String,
    /// The rows a real run would process now.
    pub would_process: u64,
}

impl SchedulerHandle {
    /// Every job, sorted by name.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.shared
            .slots
            .values()
            .map(|s| self.shared.job_info(s))
            .collect()
    }

    /// One job.
    pub fn job(&self, name: &str) -> Option<JobInfo> {
        self.shared.slots.get(name).map(|s| self.shared.job_info(s))
    }

    /// The execution history.
    pub fn store(&self) -> &ExecutionStore {
        &self.shared.store
    }

    /// How far this host's clock is ahead of the database's (negative: behind), as last
    /// measured (at start-up and at each claim); `None` before the first measurement
    /// succeeded. Ticks fire and leases run by the database's clock.
    pub fn clock_skew(&self) -> Option<chrono::Duration> {
        self.shared.clock_skew()
    }

    /// How many timer tasks run: one per distinct schedule (expression and zone) among the
    /// jobs that fire or are paused. For tests and diagnostics.
    #[doc(hidden)]
    pub fn timer_groups(&self) -> usize {
        self.shared.timers.len()
    }

    /// The scheduler's clock (the system clock unless the host gave another): the "now" of
    /// [`JobInfo::upcoming_runs`] previews.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Attach a run observer to this running scheduler: it is told of every run and tick
    /// from now on, after the observers attached before it (see [`crate::observe`]).
    pub fn attach_observer(&self, observer: impl crate::observe::RunObserver) {
        self.shared.observers.attach(Arc::new(observer));
    }

    /// This scheduler's instance label (history, logs, metrics): `[coordination] instance`,
    /// or `HOST:PID` by default. Not necessarily unique: see [`lease_holder`](Self::lease_holder).
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// This scheduler's identity in the lease table: the instance label plus a random
    /// value drawn at start, unique to this scheduler even when several share one label.
    pub fn lease_holder(&self) -> &str {
        &self.shared.holder
    }

    /// Start a run of `name` now and return at once with its execution id.
    ///
    /// Errors: [`Error::UnknownJob`]; [`Error::AlreadyRunning`] when a run is in progress here
    /// or, with coordination on, on another replica; [`Error::ShutDown`] after
    /// [`shutdown`](Self::shutdown) began; [`Error::Database`] when the run could not be
    /// recorded.
    pub async fn trigger(&self, name: &str) -> Result<TriggeredRun> {
        let slot = self.shared.slot(name)?;
        run::start(&self.shared, slot, Trigger::Manual).await
    }

    /// Pause `name` on every replica: no tick of it is fired until it is resumed or reset
    /// (manual triggers still run). Persisted, so it survives restarts; in force here at
    /// once and on the other replicas within 2 s. Recorded in the audit log as done by
    /// `actor`. Returns the job as it now is.
    ///
    /// Errors: [`Error::UnknownJob`]; [`Error::Database`] when the setting could not be
    /// written (nothing changed then).
    pub async fn pause(&self, name: &str, actor: &str) -> Result<JobInfo> {
        self.change(name, actor, Change::Pause(PauseRequest::new()))
            .await
    }

    /// [`pause`](Self::pause), saying why (`request.note`, shown to the next operator) and
    /// until when (`request.until`: the job resumes by itself then, on whichever replica
    /// sees it first, recorded in the audit log as done by `system`). A note past
    /// [`MAX_PAUSE_NOTE_CHARS`](crate::scheduler::bounds::MAX_PAUSE_NOTE_CHARS) characters or
    /// an end not in the future is refused with [`Error::InvalidSetting`], and nothing
    /// changes. Otherwise errors as [`pause`](Self::pause).
    pub async fn pause_with(
        &self,
        name: &str,
        request: PauseRequest,
        actor: &str,
    ) -> Result<JobInfo> {
        self.change(name, actor, Change::Pause(request)).await
    }

    /// Change the scheduling policies of `name` at run time (misfire, catch-up window,
    /// jitter, pause after failures); fields of `request` left `None` keep the policy in
    /// force. Persisted, applied by every replica within 2 s, audited (`policy`). A value
    /// past its bound is refused with [`Error::OutOfBounds`] and nothing changes; otherwise
    /// errors as [`pause`](Self::pause).
    pub async fn set_policy(
        &self,
        name: &str,
        request: PolicyRequest,
        actor: &str,
    ) -> Result<JobInfo> {
        self.change(name, actor, Change::Policy(request)).await
    }

    /// Resume a paused job: scheduled runs again, on every replica. This is a runtime
    /// setting, so it also outranks a host's `enabled = false`; [`reset`](Self::reset)
    /// returns to the host's configuration. Errors as [`pause`](Self::pause).
    pub async fn resume(&self, name: &str, actor: &str) -> Result<JobInfo> {
        self.change(name, actor, Change::Resume).await
    }

    /// Change the cron expression, the time zone and/or the timeout of `name` at run time;
    /// fields of `request` left `None` keep the setting in force. Validated before anything
    /// is written: [`Error::InvalidCron`] or [`Error::UnknownTimeZone`] change nothing.
    /// Otherwise errors as [`pause`](Self::pause).
    pub async fn reschedule(
        &self,
        name: &str,
        request: RescheduleRequest,
        actor: &str,
    ) -> Result<JobInfo> {
        self.change(name, actor, Change::Reschedule(request)).await
    }

    /// Drop every runtime setting of `name`: host configuration and the job's defaults
    /// apply again. Errors as [`pause`](Self::pause).
    pub async fn reset(&self, name: &str, actor: &str) -> Result<JobInfo> {
        self.change(name, actor, Change::Reset).await
    }

    /// Run every tick of `name`'s schedule in force within `[from, to]` once, oldest first,
    /// one at a time, each recorded with the trigger `backfill` and its tick as
    /// `scheduled_for` (the job sees [`Trigger::Backfill`]). Persisted: it goes on if the
    /// replica running it dies, and stops when the job is paused or reset, or with
    /// [`cancel_backfill`](Self::cancel_backfill); a new backfill replaces one in progress.
    /// Audited (`backfill`). Returns how many ticks it runs.
    ///
    /// Refused with [`Error::InvalidSetting`] (and nothing changes) for a range that is
    /// empty, reaches into the future, holds no tick or more than
    /// [`MAX_BACKFILL_TICKS`](crate::scheduler::bounds::MAX_BACKFILL_TICKS), or for a
    /// paused job; otherwise errors as [`pause`](Self::pause).
    pub async fn backfill(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        actor: &str,
    ) -> Result<usize> {
        let shared = &self.shared;
        let slot = shared.slot(name)?.clone();
        // Refused below, through the change, so that the refusal is audited too.
        let ticks = backfill::validate(&slot, from, to, shared.clock.now()).map(|t| t.len());
        if ticks.is_ok() {
            // A new backfill starts from its first tick, whatever an earlier one reached.
            match &shared.leases {
                Some(leases) => leases.reset_backfill(name).await?,
                None => slot.set_backfill_tick(None),
            }
        }
        let request = Backfill {
            from,
            to,
            requested_by: actor.to_owned(),
        };
        shared
            .change(name, actor, Change::Backfill(request))
            .await?;
        backfill::advance(shared, &slot);
        ticks
    }

    /// Stop `name`'s backfill in progress (a run already started finishes). Audited
    /// (`backfill`); [`Error::InvalidSetting`] when none is in progress; otherwise errors as
    /// [`pause`](Self::pause).
    pub async fn cancel_backfill(&self, name: &str, actor: &str) -> Result<JobInfo> {
        self.change(name, actor, Change::CancelBackfill).await
    }

    /// The ticks a [`backfill`](Self::backfill) of `name` over `[from, to]` would run,
    /// oldest first, changing nothing; refused as `backfill` would refuse it.
    pub fn backfill_ticks(
        &self,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>> {
        let slot = self.shared.slot(name)?;
        backfill::validate(slot, from, to, self.shared.clock.now())
    }

    /// Cancel the running run `execution_id`, whichever replica runs it: it stops within
    /// about two seconds, recorded `cancelled` with the records it reported and "cancelled
    /// by ACTOR", and its lease is given back. Audited (`cancel`), refusals included. Returns
    /// the run's job.
    ///
    /// Errors: [`Error::ExecutionNotFound`] for an id the history does not hold;
    /// [`Error::RunNotRunning`] for a run that ended, or that no scheduler holds;
    /// [`Error::Database`].
    pub async fn cancel_run(&self, execution_id: i64, actor: &str) -> Result<String> {
        super::cancel::cancel_run(&self.shared, execution_id, actor).await
    }

    async fn change(&self, name: &str, actor: &str, change: Change) -> Result<JobInfo> {
        let slot = self.shared.change(name, actor, change).await?;
        Ok(self.shared.job_info(&slot))
    }

    /// Ask `name` what a run would process now, without changing anything
    /// ([`Job::dry_run`](crate::Job::dry_run)). Runs beside a real run if there is one (it
    /// only reads), under the job's timeout. It is not recorded in the history; record it
    /// in the audit log with [`record_audit`](Self::record_audit).
    ///
    /// Errors: [`Error::UnknownJob`]; [`Error::DryRunNotSupported`] for a job without a dry
    /// run; [`Error::DryRunFailed`] when it failed, timed out or panicked;
    /// [`Error::Database`]; [`Error::ShutDown`].
    pub async fn dry_run(&self, name: &str) -> Result<DryRun> {
        use futures_util::FutureExt as _;
        let shared = &self.shared;
        let slot = shared.slot(name)?;
        // Counted by the tracker, so a shutdown waits for it.
        let _tracked = shared.tracker.token();
        if shared.stop_firing.is_cancelled() {
            return Err(Error::ShutDown);
        }
        let cancel = tokio_util::sync::CancellationToken::new();
        // Execution id 0: a dry run has no row in the history.
        let ctx = JobContext::new(
            shared.db.clone(),
            Trigger::Manual,
            0,
            shared.clock.clone(),
            cancel.clone(),
        )
        .with_time_source(shared.time_source);
        let timeout = slot.timeout();
        let run = std::panic::AssertUnwindSafe(slot.job.dry_run(ctx)).catch_unwind();
        let failed = |message: String| Error::DryRunFailed {
            job: name.to_owned(),
            message,
        };
        let result = tokio::select! {
            r = run => r,
            _ = tokio::time::sleep(timeout) => {
                cancel.cancel();
                return Err(failed(format!("timed out after {}s", timeout.as_secs())));
            }
            _ = shared.cancel_runs.cancelled() => {
                cancel.cancel();
                return Err(Error::ShutDown);
            }
        };
        match result {
            Ok(Ok(out)) => Ok(DryRun {
                job_name: name.to_owned(),
                would_process: out.would_process,
            }),
            Ok(Err(JobError::DryRunNotSupported)) => {
                Err(Error::DryRunNotSupported(name.to_owned()))
            }
            Ok(Err(JobError::Database(e))) => Err(Error::Database(e)),
            Ok(Err(JobError::Core(e))) => Err(e),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(failed("panicked".to_owned())),
        }
    }

    /// The audit log, newest first (empty when the scheduler keeps no tables).
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        match &self.shared.settings {
            Some(store) => store.audit_log(query).await,
            None => Ok(Vec::new()),
        }
    }

    /// Record an admin action that is not a settings change (a trigger, a dry run, a
    /// refusal) in the audit log. A failure to write it is logged, not returned: the action
    /// has happened (or been refused) either way.
    pub async fn record_audit(&self, entry: NewAuditEntry) {
        self.shared.audit(entry).await;
    }

    /// Stop firing, let running jobs finish for up to `grace`, then cancel what is left and
    /// record it as cancelled. Returns once every run has been recorded. Calling it again
    /// (from any clone) waits for the same shutdown.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        let shared = &self.shared;
        shared.stop_firing.cancel();
        shared.timers.stop_runners();
        shared.tracker.close();
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "grace period over: cancelling running jobs");
            shared.cancel_runs.cancel();
            shared.tracker.wait().await;
        }
        if shared.record_history {
            super::heartbeat::leave(shared).await;
        }
        Ok(())
    }

    /// The schedulers of the fleet seen in the last 30 s (each refreshes its row every
    /// 10 s; a clean shutdown removes it), by instance label. Empty without history.
    pub async fn fleet(&self) -> Result<Vec<Replica>> {
        if !self.shared.record_history {
            return Ok(Vec::new());
        }
        self.shared
            .store
            .replicas(super::heartbeat::ALIVE_WITHIN)
            .await
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shared.stop_firing.is_cancelled()
    }
}
