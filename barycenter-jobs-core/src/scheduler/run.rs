//! The run path: claim, record the start, run beside the lease renewal, record the end,
//! release.
//!
//! # Fencing
//! A run with a lease knows until when the lease is surely valid: the instant the last
//! successful claim or renewal was *sent*, plus the TTL (the database computes the expiry
//! from its own clock when the statement executes, which is later). The renewal runs in a
//! task of its own, beside the run, so a renewal waiting on the database (a lock held by
//! another session, a dead connection, an exhausted pool, or SQLite's write lock held by the
//! run's own statement) never stops the run from being polled, and the run never waits for
//! the renewal. When the lease cannot be confirmed in time, the run is cancelled a fifth of
//! the TTL before the lease would expire, and its future is dropped a tenth of the TTL before
//! it, whatever the job does: no other replica can claim the job before that, so two
//! replicas never work on one job at once. Cancel graces (timeouts, shutdown) never extend
//! past the lease either; the renewal goes on during them.

use std::any::Any;
use std::future::Future as _;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::bounds::instant_after;
use super::handle::TriggeredRun;
use super::{Shared, Slot};
use crate::error::{Error, Result};
use crate::job::{JobContext, JobError, JobOutput, Trigger};
use crate::lease::{ClaimKind, Lease};
use crate::observe::{RunEnded, RunStarted, RunStatus};
use crate::store::{Execution, Finish, NewExecution, Outcome};

/// Clears the slot's running flag however the run ends.
struct Running(Arc<Slot>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// How sure a run is of its lease, as the renewal task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseState {
    /// Coordination is off: nothing to confirm.
    NotLeased,
    /// Valid at least until this instant.
    ValidUntil(Instant),
    /// Another replica holds it now.
    Lost,
}

/// A run whose start is claimed and recorded, ready to execute.
pub(super) struct Prepared {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    execution_id: i64,
    trigger: Trigger,
    started_at: DateTime<Utc>,
    lease: Option<Lease>,
    lease_state: LeaseState,
    /// Runs abandoned by an earlier holder of the lease may still be open (closing them
    /// failed): the lease is given back so that the next holder tries again.
    left_open: bool,
    running: Running,
    done: Option<oneshot::Sender<Execution>>,
}

impl Prepared {
    /// A handle to wait for this run's end.
    pub(super) fn handle(&mut self) -> TriggeredRun {
        let (tx, rx) = oneshot::channel();
        self.done = Some(tx);
        TriggeredRun {
            execution_id: self.execution_id,
            done: rx,
            store: self
                .shared
                .record_history
                .then(|| self.shared.store.clone()),
        }
    }

    /// Run the job and record its end; waiters are woken once the row is written.
    ///
    /// A panic anywhere on this path (not only in the job's own future, which
    /// [`run_job`] catches as the run's failure) is caught here too: the run is recorded as
    /// failed with the panic's message if its row is still open, its lease is given back,
    /// observers (and so the metrics) are told, and the caller (a job's runner, or a manual
    /// trigger's task) goes on.
    pub(super) async fn execute(self) {
        // The job's name is host code too: a panic there must not escape either.
        let span = std::panic::catch_unwind(AssertUnwindSafe(|| {
            tracing::info_span!(
                "job_run",
                job = %self.slot.job.name(),
                execution_id = self.execution_id,
                trigger = self.trigger.as_str(),
            )
        }))
        .unwrap_or_else(|_| tracing::info_span!("job_run", execution_id = self.execution_id));
        let (shared, slot, lease) = (self.shared.clone(), self.slot.clone(), self.lease.clone());
        let (execution_id, trigger, started_at) =
            (self.execution_id, self.trigger, self.started_at);
        let began = Instant::now();
        let caught = AssertUnwindSafe(run_and_record(self).instrument(span.clone()))
            .catch_unwind()
            .await;
        if let Err(panic) = caught {
            let ended = Ended {
                execution_id,
                trigger,
                started_at,
                outcome: Outcome::Failed {
                    message: format!("panicked in the runner: {}", panic_message(panic)),
                },
                partial: None,
                timed_out: false,
                duration: began.elapsed(),
            };
            Box::pin(close_after_panic(&shared, &slot, lease, ended))
                .instrument(span)
                .await;
        }
    }
}

/// The end of a run whose path panicked after its start was recorded: record it as failed
/// (a row already closed stays as it is), give the lease back, tell the observers.
async fn close_after_panic(shared: &Arc<Shared>, slot: &Slot, lease: Option<Lease>, ended: Ended) {
    ended.log();
    let open = shared.record_history && !record(shared, &ended).await;
    if let (Some(leases), Some(lease)) = (&shared.leases, &lease) {
        let released = if open {
            leases.release_unclean(lease).await
        } else {
            leases.release(lease).await
        };
        if let Err(e) = released {
            tracing::warn!(job = %lease.job_name, error = %e, "could not release lease");
        }
    }
    ended.observe(shared, slot);
}

/// Start a run of `slot` and return once its start is recorded; the run goes on in a task
/// of the scheduler's tracker.
pub(super) async fn start(
    shared: &Arc<Shared>,
    slot: &Arc<Slot>,
    trigger: Trigger,
) -> Result<TriggeredRun> {
    // Counted by the tracker from before the shutdown check until the run is spawned into
    // it: a shutdown that begins meanwhile waits for this run instead of missing it.
    let _tracked = shared.tracker.token();
    let mut prepared = begin(shared, slot, trigger).await?;
    let handle = prepared.handle();
    shared.tracker.spawn(prepared.execute());
    Ok(handle)
}

/// Claim a run of `slot`: no overlap in this process, the job's lease when coordinating,
/// runs abandoned by dead processes closed, and the start recorded. A claimed tick whose
/// start cannot be recorded is given back, so the fleet does not lose it.
pub(super) async fn begin(
    shared: &Arc<Shared>,
    slot: &Arc<Slot>,
    trigger: Trigger,
) -> Result<Prepared> {
    if shared.stop_firing.is_cancelled() {
        return Err(Error::ShutDown);
    }
    let name = slot.job.name();
    if slot
        .running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(Error::AlreadyRunning(name.to_owned()));
    }
    let running = Running(slot.clone());

    let (lease, lease_state, previous_unreleased) = match &shared.leases {
        Some(leases) => {
            let kind = match trigger.fire_time() {
                Some(tick) => ClaimKind::Tick(tick),
                None => ClaimKind::Now,
            };
            let sent = Instant::now();
            let app_before = shared.clock.now();
            // Database calls are boxed throughout the run path: their futures are large, and
            // inline they would make every spawned run as large as the largest of them.
            let claimed = Box::pin(leases.claim(name, &shared.holder, kind, shared.lease_ttl))
                .await?
                .ok_or_else(|| Error::AlreadyRunning(name.to_owned()))?;
            if let Some(db_now) = claimed.db_now {
                let app_after = shared.clock.now();
                shared.observe_skew(app_before + (app_after - app_before) / 2 - db_now);
            }
            (
                Some(claimed.lease),
                LeaseState::ValidUntil(instant_after(sent, shared.lease_ttl)),
                claimed.previous_unreleased,
            )
        }
        None => (None, LeaseState::NotLeased, false),
    };

    let now = shared.clock.now();
    let mut left_open = false;
    let execution_id = if shared.record_history {
        // We hold the lease, so any run of this job still open belongs to a dead process.
        // Only a holder that did not release cleanly can have left one: every run records
        // its end before its lease is released, and a lease given back otherwise says so.
        if lease.is_some() && previous_unreleased {
            left_open = !Box::pin(super::recovery::close_abandoned(shared, slot, true, now)).await;
        }
        let new = NewExecution {
            job_name: name.to_owned(),
            started_at: now,
            trigger,
            instance: Some(shared.instance.clone()),
        };
        // Grouped with the starts of other due jobs on SQLite (see `store::group`).
        match Box::pin(shared.store.start_grouped(new)).await {
            Ok(id) => id,
            Err(e) => {
                if let (Some(leases), Some(lease)) = (&shared.leases, &lease) {
                    Box::pin(give_back(shared, leases, lease, trigger.fire_time())).await;
                }
                return Err(e);
            }
        }
    } else {
        // History off: ids only need to be unique within this process.
        shared.local_ids.fetch_add(1, Ordering::Relaxed) + 1
    };
    if let (Some(leases), Some(lease)) = (&shared.leases, &lease)
        && let Err(e) = Box::pin(leases.set_execution(lease, execution_id)).await
    {
        tracing::debug!(job = %name, error = %e, "could not note the execution on the lease");
    }
    Ok(Prepared {
        shared: shared.clone(),
        slot: slot.clone(),
        execution_id,
        trigger,
        started_at: now,
        lease,
        lease_state,
        left_open,
        running,
        done: None,
    })
}

/// Release a lease whose run could not start, with its tick, retrying within the TTL.
async fn give_back(
    shared: &Shared,
    leases: &crate::lease::LeaseStore,
    lease: &Lease,
    tick: Option<DateTime<Utc>>,
) {
    let until = instant_after(Instant::now(), shared.lease_ttl);
    let mut backoff = Duration::from_millis(100);
    loop {
        // The start row may have been written without the answer reaching us: either way
        // the next holder looks for open runs.
        let result = match tick {
            Some(tick) => leases.release_tick(lease, tick).await,
            None => leases.release_unclean(lease).await,
        };
        match result {
            Ok(()) => return,
            Err(e) if Instant::now() + backoff < until => {
                tracing::warn!(job = %lease.job_name, error = %e, "could not give a claimed tick back; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(e) => {
                tracing::error!(job = %lease.job_name, error = %e, ?tick, "could not give a claimed tick back; it is lost once the lease lapses");
                return;
            }
        }
    }
}

async fn run_and_record(prepared: Prepared) {
    let Prepared {
        shared,
        slot,
        execution_id,
        trigger,
        started_at,
        lease,
        lease_state,
        left_open,
        running,
        done,
    } = prepared;
    shared.observers.started(&RunStarted {
        job: slot.job.name(),
        execution_id,
        trigger,
        started_at,
        instance: &shared.instance,
    });
    let started = Instant::now();
    let (outcome, partial, timed_out) =
        run_job(&shared, &slot, execution_id, trigger, &lease, lease_state).await;
    let ended = Ended {
        execution_id,
        trigger,
        started_at,
        outcome,
        partial,
        timed_out,
        duration: started.elapsed(),
    };
    ended.log();

    // Whether a run of this job may be left open: this one's end not written, or an earlier
    // one that could not be closed.
    let mut open = left_open;
    if shared.record_history {
        open |= !Box::pin(record(&shared, &ended)).await;
    }
    if let (Some(leases), Some(lease)) = (&shared.leases, &lease) {
        let release = || async {
            if open {
                leases.release_unclean(lease).await
            } else {
                leases.release(lease).await
            }
        };
        // Two tries: a passing fault should not hold the job for a whole TTL.
        let mut released = Box::pin(release()).await;
        if released.is_err() {
            released = Box::pin(release()).await;
        }
        if let Err(e) = released {
            // Not fatal: the lease lapses after its TTL.
            tracing::warn!(job = %lease.job_name, error = %e, "could not release lease");
        }
    }
    drop(running);
    // After the row is written (an observer may read the history) and before waiters are
    // woken (whoever awaits the run sees its observers already told).
    ended.observe(&shared, &slot);
    if let Some(done) = done {
        let _ = done.send(ended.into_execution(&shared, &slot));
    }
}

/// How a run ended: what is logged, recorded, told to observers and handed to waiters.
struct Ended {
    execution_id: i64,
    trigger: Trigger,
    started_at: DateTime<Utc>,
    outcome: Outcome,
    /// The records reported before a run that did not succeed stopped.
    partial: Option<u64>,
    /// Stopped by its timeout (recorded as failed, told to observers as timed out).
    timed_out: bool,
    duration: Duration,
}

impl Ended {
    fn log(&self) {
        let ms = self.duration.as_millis() as u64;
        let partial = self.partial;
        match &self.outcome {
            Outcome::Succeeded { records_processed } => {
                tracing::info!(records_processed, duration_ms = ms, "job succeeded")
            }
            Outcome::Failed { message } => {
                tracing::error!(error = %message, records_processed = ?partial, duration_ms = ms, "job failed")
            }
            Outcome::Cancelled { message } | Outcome::Abandoned { message } => {
                tracing::warn!(reason = %message, records_processed = ?partial, duration_ms = ms, "job cancelled")
            }
        }
    }

    /// Tell the observers how the run ended.
    fn observe(&self, shared: &Shared, slot: &Slot) {
        let partial = self.partial;
        let (status, message, records_processed) = match &self.outcome {
            Outcome::Succeeded { records_processed } => {
                (RunStatus::Succeeded, None, Some(*records_processed))
            }
            // The history records a timeout as a failure; observers are told apart.
            Outcome::Failed { message } if self.timed_out => {
                (RunStatus::TimedOut, Some(message), partial)
            }
            Outcome::Failed { message } => (RunStatus::Failed, Some(message), partial),
            Outcome::Cancelled { message } => (RunStatus::Cancelled, Some(message), partial),
            Outcome::Abandoned { message } => (RunStatus::Abandoned, Some(message), partial),
        };
        shared.observers.ended(&RunEnded {
            job: slot.job.name(),
            execution_id: self.execution_id,
            trigger: self.trigger,
            status,
            message: message.map(String::as_str),
            duration: self.duration,
            records_processed,
            started_at: self.started_at,
            instance: &shared.instance,
        });
    }

    /// The row this run wrote, as the runner knows it (for waiters when there is no
    /// history).
    fn into_execution(self, shared: &Shared, slot: &Slot) -> Execution {
        let status = self.outcome.status();
        let (success, error_message, records_processed) = match self.outcome {
            Outcome::Succeeded { records_processed } => (true, None, Some(records_processed)),
            Outcome::Failed { message }
            | Outcome::Cancelled { message }
            | Outcome::Abandoned { message } => (false, Some(message), self.partial),
        };
        Execution {
            id: self.execution_id,
            job_name: slot.job.name().to_owned(),
            started_at: self.started_at,
            completed_at: Some(shared.clock.now()),
            success: Some(success),
            error_message,
            records_processed,
            status,
            trigger: Some(self.trigger.as_str().to_owned()),
            instance: Some(shared.instance.clone()),
            duration_ms: Some(i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)),
            scheduled_for: self.trigger.fire_time(),
        }
    }
}

/// The longest one attempt at writing a run's end waits (see [`record`]).
const RECORD_ATTEMPT: Duration = Duration::from_secs(1);
/// The longest pause between two attempts at writing a run's end.
const RECORD_MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Write the end of the run, retrying for a while if the database is unavailable (briefly
/// once shutdown began, so the shutdown keeps its budget). The outcome is in the trace
/// either way. Returns whether the row is closed (by this write, or by another replica).
async fn record(shared: &Shared, ended: &Ended) -> bool {
    let budget = if shared.stop_firing.is_cancelled() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    };
    let until = instant_after(Instant::now(), budget);
    let mut backoff = Duration::from_millis(200);
    for attempt in 1.. {
        let left = until.saturating_duration_since(Instant::now());
        let write = shared.store.finish_grouped(Finish {
            id: ended.execution_id,
            outcome: ended.outcome.clone(),
            completed_at: shared.clock.now(),
            duration: ended.duration,
            partial: ended.partial,
        });
        // Each attempt bounded by a second: a write waiting inside the pool for a server
        // that is down backs off between connection attempts by up to a fifth of the pool's
        // acquire timeout, so a fresh attempt soon after the server answers again gets
        // through sooner than the old one would, and the job's runner is free for its next
        // tick within a tick of the server's return.
        let bound = left.min(RECORD_ATTEMPT).max(Duration::from_millis(100));
        let result = match tokio::time::timeout(bound, write).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(left)),
        };
        match result {
            Ok(true) => return true,
            Ok(false) => {
                tracing::warn!(
                    "run was already closed as abandoned (lease lost?); only its records_processed was filled in"
                );
                return true;
            }
            Err(e) if Instant::now() + backoff < until => {
                tracing::warn!(attempt, error = %e, "could not record the end of the run");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECORD_MAX_BACKOFF);
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    outcome = ?ended.outcome,
                    records_processed = ?ended.partial,
                    "giving up recording the end of the run; it will be closed as abandoned later"
                );
                return false;
            }
        }
    }
    unreachable!("the loop returns")
}

/// Aborts the renewal task when the run is over, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renew `lease` every third of the TTL and publish until when it is surely valid.
async fn renew_loop(shared: Arc<Shared>, lease: Lease, state: watch::Sender<LeaseState>) {
    let Some(leases) = &shared.leases else { return };
    let every = shared.lease_ttl / 3;
    let mut next = instant_after(Instant::now(), every);
    loop {
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        match leases.renew(&lease, shared.lease_ttl).await {
            Ok(true) => {
                state.send_replace(LeaseState::ValidUntil(instant_after(
                    sent,
                    shared.lease_ttl,
                )));
                next = instant_after(sent, every);
            }
            Ok(false) => {
                state.send_replace(LeaseState::Lost);
                // Stay alive (the run watches this channel) until the run is over.
                std::future::pending::<()>().await;
            }
            Err(e) => {
                tracing::warn!(job = %lease.job_name, error = %e, "could not renew lease; retrying");
                next = instant_after(Instant::now(), every / 2);
            }
        }
    }
}

/// When to give up on a run for want of a confirmed lease: `soon` before it expires.
fn stop_at(state: LeaseState, soon: Duration) -> Option<Instant> {
    match state {
        LeaseState::NotLeased => None,
        LeaseState::ValidUntil(until) => Some(until.checked_sub(soon).unwrap_or(until)),
        LeaseState::Lost => Some(Instant::now()),
    }
}

type RunResult = std::result::Result<std::result::Result<JobOutput, JobError>, Box<dyn Any + Send>>;

async fn run_job(
    shared: &Arc<Shared>,
    slot: &Slot,
    execution_id: i64,
    trigger: Trigger,
    lease: &Option<Lease>,
    lease_state: LeaseState,
) -> (Outcome, Option<u64>, bool) {
    // The third value: whether the run was stopped by its timeout (recorded as failed).
    // A token of its own (not a child of `cancel_runs`: thousands of children registering
    // with one parent contend on its lock); shutdown cancels it below.
    let cancel = CancellationToken::new();
    let ctx = JobContext::new(
        shared.db.clone(),
        trigger,
        execution_id,
        shared.clock.clone(),
        cancel.clone(),
    )
    .with_time_source(shared.time_source);
    let progress = ctx.progress_handle();
    tracing::info!("job started");
    // Read once: a timeout changed at run time applies from the next run on.
    let timeout = slot.timeout();
    let deadline = instant_after(Instant::now(), timeout);
    // Polled in this task rather than spawned: one task per run. A panic is caught here,
    // also one raised by `run` itself before it returns its future (a hand-written impl).
    let run = match std::panic::catch_unwind(AssertUnwindSafe(|| slot.job.run(ctx))) {
        Ok(run) => run,
        Err(panic) => return (outcome_of(Err(panic)), progress.get(), false),
    };
    let mut run = AssertUnwindSafe(run).catch_unwind();
    // A first poll before anything else is armed: a run that ends in it (most runs of short
    // jobs) needs no timer, no lease watch and no select, and nothing else could have fired
    // before it (the select below polls the run first too).
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut run).poll(cx))).await;
    if let Poll::Ready(result) = first {
        return (outcome_of(result), progress.get(), false);
    }
    // Boxed: the supervision is larger than all the rest of a run, and only runs that wait
    // need it.
    let outcome = Box::pin(supervise(
        shared,
        run,
        &cancel,
        timeout,
        deadline,
        lease,
        lease_state,
    ))
    .await;
    (outcome.0, progress.get(), outcome.1)
}

/// Drive a run that did not end in its first poll to its outcome, beside its timeout, the
/// shutdown and its lease; the second value: whether the timeout stopped it.
async fn supervise<F>(
    shared: &Arc<Shared>,
    run: F,
    cancel: &CancellationToken,
    timeout: Duration,
    deadline: Instant,
    lease: &Option<Lease>,
    lease_state: LeaseState,
) -> (Outcome, bool)
where
    F: std::future::Future<Output = RunResult>,
{
    let mut timed_out = false;
    tokio::pin!(run);

    let (state_tx, mut state) = watch::channel(lease_state);
    let _renewal = lease
        .clone()
        .map(|lease| AbortOnDrop(tokio::spawn(renew_loop(shared.clone(), lease, state_tx))));
    let fence_margin = shared.lease_ttl / 5;

    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);
    let outcome = loop {
        let fence = stop_at(*state.borrow(), fence_margin);
        tokio::select! {
            biased;
            result = &mut run => break outcome_of(result),
            _ = &mut deadline => {
                timed_out = true;
                cancel.cancel();
                // A job that ignores its token is dropped (cancelled) after the grace period.
                let _ = wind_down(&mut run, shared, &mut state).await;
                break Outcome::Failed {
                    message: format!("timed out after {}s", timeout.as_secs_f64()),
                };
            }
            _ = shared.cancel_runs.cancelled() => {
                // Shutdown past its grace period.
                cancel.cancel();
                break match wind_down(&mut run, shared, &mut state).await {
                    Some(Ok(Ok(out))) => Outcome::Succeeded { records_processed: out.records_processed },
                    _ => Outcome::Cancelled {
                        message: "cancelled: scheduler shut down before the run finished".into(),
                    },
                };
            }
            _ = sleep_until_opt(fence), if fence.is_some() => {
                cancel.cancel();
                let lost = *state.borrow() == LeaseState::Lost;
                let _ = wind_down(&mut run, shared, &mut state).await;
                break Outcome::Failed {
                    message: if lost {
                        "lease lost: another instance took over the job".into()
                    } else {
                        "stopped before its lease expired: the lease could not be renewed (database unreachable or lease row locked)".into()
                    },
                };
            }
            _ = state.changed(), if lease.is_some() => {}
        }
    };
    (outcome, timed_out)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// After cancelling a run: wait for it to return for the cancel grace, but never past a
/// tenth of the TTL before its lease would expire; `None` if it had to be dropped.
async fn wind_down<F>(
    run: &mut std::pin::Pin<&mut F>,
    shared: &Shared,
    state: &mut watch::Receiver<LeaseState>,
) -> Option<RunResult>
where
    F: std::future::Future<Output = RunResult>,
{
    let grace_end = instant_after(Instant::now(), shared.cancel_grace);
    let leased = *state.borrow() != LeaseState::NotLeased;
    loop {
        let hard_stop = stop_at(*state.borrow(), shared.lease_ttl / 10)
            .map_or(grace_end, |at| at.min(grace_end));
        tokio::select! {
            biased;
            result = run.as_mut() => return Some(result),
            _ = tokio::time::sleep_until(hard_stop) => return None,
            _ = state.changed(), if leased => {}
        }
    }
}

fn outcome_of(result: RunResult) -> Outcome {
    match result {
        Ok(Ok(out)) => Outcome::Succeeded {
            records_processed: out.records_processed,
        },
        Ok(Err(JobError::Cancelled)) => Outcome::Cancelled {
            message: "cancelled".into(),
        },
        Ok(Err(e)) => Outcome::Failed {
            message: e.to_string(),
        },
        Err(panic) => Outcome::Failed {
            message: format!("panicked: {}", panic_message(panic)),
        },
    }
}

pub(super) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
