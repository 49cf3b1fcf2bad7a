//! The end of a run: its outcome logged, its row closed (retried through a short outage),
//! its lease given back, its observers told.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::bounds::instant_after;
use super::shared::Shared;
use super::slot::Slot;
use crate::error::Error;
use crate::job::Trigger;
use crate::lease::{Lease, PendingRetry};
use crate::observe::{RunEnded, RunStatus};
use crate::store::{Execution, Outcome, RunEnd};

/// How a run ended: what is logged, recorded, told to observers and handed to waiters.
pub(super) struct Ended {
    pub(super) execution_id: i64,
    pub(super) trigger: Trigger,
    pub(super) started_at: DateTime<Utc>,
    pub(super) outcome: Outcome,
    /// The records reported before a run that did not succeed stopped.
    pub(super) partial: Option<u64>,
    /// Stopped by its timeout (recorded as failed, told to observers as timed out).
    pub(super) timed_out: bool,
    pub(super) duration: Duration,
}

impl Ended {
    pub(super) fn log(&self) {
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

    /// Tell the observers how the run ended; `retry_follows`: another attempt at its tick
    /// is waiting on the lease row.
    pub(super) fn observe(&self, shared: &Shared, slot: &Slot, retry_follows: bool) {
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
            retry_follows,
        });
    }

    /// The row this run wrote, as the runner knows it (for waiters when there is no
    /// history).
    pub(super) fn into_execution(self, shared: &Shared, slot: &Slot) -> Execution {
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
            attempt: self.trigger.attempt(),
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
pub(super) async fn record(shared: &Shared, ended: &Ended) -> bool {
    let budget = if shared.stop_firing.is_cancelled() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    };
    let until = instant_after(Instant::now(), budget);
    let mut backoff = Duration::from_millis(200);
    for attempt in 1.. {
        let left = until.saturating_duration_since(Instant::now());
        let mut end = RunEnd::new(
            ended.execution_id,
            ended.outcome.clone(),
            shared.clock.now(),
        )
        .with_duration(ended.duration);
        end.partial = ended.partial;
        let write = shared.store.record_end(end);
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

/// Give the run's lease back: cleanly, or as unclean when a run of the job may be left open
/// (`open`: its end not written, or an earlier run that could not be closed), so the next
/// holder looks for it. Two tries: a passing fault should not hold the job for a whole TTL;
/// past them, the lease lapses after its TTL.
pub(super) async fn release(
    shared: &Shared,
    lease: Option<&Lease>,
    open: bool,
    retry: Option<PendingRetry>,
) {
    let (Some(leases), Some(lease)) = (&shared.leases, lease) else {
        return;
    };
    let release = || async {
        match (retry, open) {
            // The retry waits on the row, for whichever replica is free when it is due.
            (Some(retry), _) => leases.release_with_retry(lease, !open, retry).await,
            (None, true) => leases.release_unclean(lease).await,
            (None, false) => leases.release(lease).await,
        }
    };
    let mut released = Box::pin(release()).await;
    if released.is_err() {
        released = Box::pin(release()).await;
    }
    if let Err(e) = released {
        tracing::warn!(job = %lease.job_name, error = %e, "could not release lease");
    }
}

/// The end of a run whose path panicked after its start was recorded: record it as failed
/// (a row already closed stays as it is), give the lease back, tell the observers.
pub(super) async fn close_after_panic(
    shared: &Arc<Shared>,
    slot: &Slot,
    lease: Option<Lease>,
    ended: Ended,
) {
    ended.log();
    let open = shared.record_history && !record(shared, &ended).await;
    release(shared, lease.as_ref(), open, None).await;
    ended.observe(shared, slot, false);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::job::JobOutput;
    use crate::lease::ClaimKind;
    use crate::scheduler::claim::claim;
    use crate::scheduler::testing::{Script, parts, started};
    use crate::store::ExecutionStatus;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test]
    async fn the_end_is_recorded_once_and_the_lease_given_back_as_it_was_left() {
        let job = Script::new("ended", |_| async { Ok(JobOutput::processed(0)) });
        let (handle, _dir) = started(job, SECS(60), SECS(5)).await;
        let (shared, slot) = parts(&handle);
        let claimed = claim(&shared, &slot, Trigger::Manual).await.unwrap();
        let ended = Ended {
            execution_id: claimed.execution_id,
            trigger: Trigger::Manual,
            started_at: claimed.started_at,
            outcome: Outcome::Failed {
                message: "boom".into(),
            },
            partial: Some(12),
            timed_out: false,
            duration: Duration::from_millis(1500),
        };
        assert!(record(&shared, &ended).await, "the row is closed");
        let row = shared.store.get(ended.execution_id).await.unwrap().unwrap();
        assert_eq!(row.status, ExecutionStatus::Failed);
        assert_eq!(row.records_processed, Some(12));
        assert_eq!(row.duration_ms, Some(1500));
        // A second write finds the row closed and leaves it as it is.
        let again = Ended {
            outcome: Outcome::Succeeded {
                records_processed: 99,
            },
            ..ended
        };
        assert!(record(&shared, &again).await);
        let row = shared.store.get(again.execution_id).await.unwrap().unwrap();
        assert_eq!(row.status, ExecutionStatus::Failed);
        assert_eq!(
            again.into_execution(&shared, &slot).records_processed,
            Some(99)
        );

        // Released as unclean (a run may be open): the next holder is told so.
        release(&shared, claimed.lease.as_ref(), true, None).await;
        let leases = shared.leases.as_ref().unwrap();
        let next = leases
            .claim("ended", "other#1", ClaimKind::Now, SECS(30))
            .await
            .unwrap()
            .expect("released");
        assert!(next.previous_unreleased);
        // Released cleanly: the next holder is not.
        release(&shared, Some(&next.lease), false, None).await;
        let after = leases
            .claim("ended", "other#2", ClaimKind::Now, SECS(30))
            .await
            .unwrap()
            .expect("released");
        assert!(!after.previous_unreleased);
    }
}
