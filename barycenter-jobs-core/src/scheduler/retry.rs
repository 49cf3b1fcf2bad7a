//! Retries of a failed tick (`retry_attempts`, `retry_backoff_secs`): the next attempt is
//! left on the job's lease row when the failed run gives the lease back, started at its time
//! by the replica that ran the failure, and taken over by any other replica if that one is
//! gone. Each attempt is claimed through the lease like a tick ([`ClaimKind::Retry`]), so
//! it runs once across the fleet, never beside another run of the job, and never once the
//! job's next tick is due (the tick wins).
//!
//! [`ClaimKind::Retry`]: crate::lease::ClaimKind::Retry

use std::sync::Arc;

use super::shared::Shared;
use super::slot::Slot;
use crate::error::Error;
use crate::job::Trigger;
use crate::lease::PendingRetry;
use crate::store::Outcome;

/// The retry a run that ended with `outcome` leaves, if any: after a failed (or timed-out)
/// scheduled, catch-up, backfill or retried run with attempts left, when the delay ends
/// before the job's next tick (the next after the failed tick, or after now for a past tick
/// such as a backfill's). Never after a cancel or a manual trigger.
pub(super) fn after(
    shared: &Shared,
    slot: &Slot,
    trigger: Trigger,
    outcome: &Outcome,
) -> Option<PendingRetry> {
    if !matches!(outcome, Outcome::Failed { .. }) || shared.stop_firing.is_cancelled() {
        return None;
    }
    let tick = match trigger {
        Trigger::Scheduled { fire_time }
        | Trigger::CatchUp { fire_time }
        | Trigger::Retry { fire_time, .. }
        | Trigger::Backfill { fire_time } => fire_time,
        Trigger::Manual => return None,
    };
    let settings = slot.settings();
    let attempt = trigger.attempt();
    if attempt > settings.policy.retry_attempts {
        return None;
    }
    let delay = chrono::Duration::from_std(settings.policy.retry_delay(attempt)).ok()?;
    let now = shared.clock.now();
    let due = now + delay;
    let until = settings.schedule.next_after(tick.max(now));
    if until.is_some_and(|next| due >= next) {
        tracing::info!(job = %slot.job.name(), %tick, attempt, "no retry: the next tick comes first");
        return None;
    }
    tracing::info!(job = %slot.job.name(), %tick, next_attempt = attempt + 1, %due, "run failed; retrying");
    Some(PendingRetry {
        tick,
        attempt: attempt + 1,
        due,
        until,
    })
}

/// Start `retry` of `slot`'s job at its time, in a task of the scheduler's.
pub(super) fn start_at_its_time(shared: &Arc<Shared>, slot: &Arc<Slot>, retry: PendingRetry) {
    let (shared2, slot) = (shared.clone(), slot.clone());
    shared.tracker.spawn(async move {
        let wait = (retry.due - shared2.clock.now())
            .to_std()
            .unwrap_or_default();
        tokio::select! {
            _ = shared2.stop_firing.cancelled() => {}
            _ = tokio::time::sleep(wait) => run(&shared2, &slot, retry).await,
        }
    });
}

/// Claim and run `retry`, unless the job's next tick is due by now or the retry is gone
/// (taken by another replica, or dropped for a newer tick).
pub(super) async fn run(shared: &Arc<Shared>, slot: &Arc<Slot>, retry: PendingRetry) {
    if retry.until.is_some_and(|until| shared.clock.now() >= until) {
        return;
    }
    let trigger = Trigger::Retry {
        fire_time: retry.tick,
        attempt: retry.attempt,
    };
    match super::claim::claim(shared, slot, trigger).await {
        Ok(claimed) => claimed.execute().await,
        Err(Error::AlreadyRunning(_) | Error::ShutDown) => {}
        Err(e) => {
            tracing::warn!(job = %slot.job.name(), tick = %retry.tick, attempt = retry.attempt, error = %e, "retry not started")
        }
    }
}
