//! The run path, end to end: a run is [claimed](super::claim), [supervised](super::supervise)
//! to its outcome, and [ended](super::end); this module puts the three together for the
//! timers (a claimed tick) and for manual triggers and catch-up (a started run), and keeps
//! the run's row closed even when this path itself panics.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt as _;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use super::claim::{Claimed, claim};
use super::end::{Ended, close_after_panic, record, release};
use super::shared::Shared;
use super::slot::Slot;
use super::supervise::{panic_message, run_job};
use super::{backfill, overlap, retry, run_log};
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::observe::RunStarted;
use crate::store::{Execution, ExecutionStore, Outcome};

/// A run started by [`SchedulerHandle::trigger`](super::SchedulerHandle::trigger).
#[derive(Debug)]
pub struct TriggeredRun {
    /// The id of its row in the history.
    pub execution_id: i64,
    /// The runner sends the run's end here once it is recorded.
    pub(super) done: oneshot::Receiver<Execution>,
    /// `None` when the scheduler keeps no history.
    pub(super) store: Option<ExecutionStore>,
}

impl TriggeredRun {
    /// Wait until the run has finished and been recorded; returns its row as the history
    /// has it, or (without history, or when the row cannot be read back) as the runner
    /// recorded it. [`Error::ShutDown`] if the run was dropped without an end (its runtime
    /// went away).
    pub async fn wait(self) -> Result<Execution> {
        // Sent only after the row was written (or writing it was given up).
        let ended = self.done.await.map_err(|_| Error::ShutDown)?;
        let Some(store) = self.store else {
            return Ok(ended);
        };
        match store.get(self.execution_id).await {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(Error::ExecutionNotFound(self.execution_id)),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the run back; answering with what the runner recorded");
                Ok(ended)
            }
        }
    }
}

impl Claimed {
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
    let mut claimed = claim(shared, slot, trigger).await?;
    let handle = claimed.handle();
    shared.tracker.spawn(claimed.execute());
    Ok(handle)
}

/// Supervise the claimed run to its end, then record it, release its lease, tell the
/// observers and wake the waiters, in that order.
async fn run_and_record(claimed: Claimed) {
    let Claimed {
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
    } = claimed;
    shared.observers.started(&RunStarted {
        job: slot.job.name(),
        execution_id,
        trigger,
        started_at,
        instance: &shared.instance,
    });
    let started = Instant::now();
    let supervised = run_job(
        &shared,
        &slot,
        execution_id,
        trigger,
        &lease,
        lease_state,
        running.stop_signal(),
    )
    .await;
    let log = supervised.log;
    let ended = Ended {
        execution_id,
        trigger,
        started_at,
        outcome: supervised.outcome,
        partial: supervised.partial,
        timed_out: supervised.timed_out,
        duration: started.elapsed(),
    };
    ended.log();

    // Whether a run of this job may be left open: this one's end not written, or an earlier
    // one that could not be closed.
    let mut open = left_open;
    if shared.record_history {
        open |= !Box::pin(record(&shared, &ended)).await;
    }
    // A failed attempt at a tick may leave the next one on the lease row (`retry_attempts`).
    let retry = retry::after(&shared, &slot, trigger, &ended.outcome);
    release(&shared, lease.as_ref(), open, retry).await;
    drop(running);
    // After the release (no lease is held through this write) and before observers and
    // waiters are told (whoever awaits the run can read its log at once).
    run_log::write(&shared, execution_id, log).await;
    // After the row is written (an observer may read the history) and before waiters are
    // woken (whoever awaits the run sees its observers already told).
    ended.observe(&shared, &slot, retry.is_some());
    if let Some(retry) = retry {
        retry::start_at_its_time(&shared, &slot, retry);
    }
    // The lease is free: a tick buffered meanwhile runs, then a backfill goes on.
    overlap::after_run(&shared, &slot);
    backfill::advance(&shared, &slot);
    // A failed scheduled run (not a backfill's) whose retries are over may pause the job
    // (`pause_after_failures`): judged in a task of its own, off the runner, which is free
    // for the next tick at once.
    let scheduled = !matches!(trigger, Trigger::Manual | Trigger::Backfill { .. });
    if let (Outcome::Failed { message }, true, None) = (&ended.outcome, scheduled, retry) {
        let after = slot.policy().pause_after_failures;
        if after > 0 {
            let (shared, slot, message) = (shared.clone(), slot.clone(), message.clone());
            shared.clone().tracker.spawn(async move {
                shared
                    .pause_after_failures(&slot, execution_id, after, &message)
                    .await;
            });
        }
    }
    if let Some(done) = done {
        let _ = done.send(ended.into_execution(&shared, &slot));
    }
}
