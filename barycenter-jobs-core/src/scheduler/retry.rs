//! Retries of a failed tick (`retry_attempts`, `retry_backoff_secs`): the next attempt is
//! left on the job's lease row when the failed run gives the lease back, started at its time
//! by the replica that ran the failure, and taken over by any other replica if that one is
//! gone. Each attempt is claimed through the lease like a tick ([`ClaimKind::Retry`]), so
//! it runs once across the fleet, never beside another run of the job, and never once the
//! job's next tick is due (the tick wins).
//!
//! [`ClaimKind::Retry`]: crate::lease::ClaimKind::Retry

use std::sync::Arc;
use std::time::Duration;

use super::shared::Shared;
use super::slot::Slot;
use crate::error::Error;
use crate::job::Trigger;
use crate::lease::PendingRetry;
use crate::store::Outcome;

/// How often each replica looks for retries another replica left and did not start.
const TAKEOVER_EVERY: Duration = Duration::from_secs(5);
/// How late a retry must be before another replica takes it over from the one that left it.
const TAKEOVER_GRACE: Duration = Duration::from_secs(2);

/// The retry a run that ended with `outcome` leaves, if any: after a failed (or timed-out)
/// scheduled, catch-up or retried run with attempts left, when the delay ends before the
/// job's next tick. Never after a cancel or a manual trigger.
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
        | Trigger::Retry { fire_time, .. } => fire_time,
        _ => return None,
    };
    let settings = slot.settings();
    let attempt = trigger.attempt();
    if attempt > settings.policy.retry_attempts {
        return None;
    }
    let delay = chrono::Duration::from_std(settings.policy.retry_delay(attempt)).ok()?;
    let due = shared.clock.now() + delay;
    if settings
        .schedule
        .next_after(tick)
        .is_some_and(|next| due >= next)
    {
        tracing::info!(job = %slot.job.name(), %tick, attempt, "no retry: the next tick comes first");
        return None;
    }
    tracing::info!(job = %slot.job.name(), %tick, next_attempt = attempt + 1, %due, "run failed; retrying");
    Some(PendingRetry {
        tick,
        attempt: attempt + 1,
        due,
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
async fn run(shared: &Arc<Shared>, slot: &Arc<Slot>, retry: PendingRetry) {
    if slot
        .settings()
        .schedule
        .next_after(retry.tick)
        .is_some_and(|next| shared.clock.now() >= next)
    {
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

/// Every few seconds, run the retries other replicas left and did not start (they died, or
/// shut down), until shutdown. Only when coordinating and some job retries.
pub(super) async fn takeover_loop(shared: Arc<Shared>) {
    let Some(leases) = shared.leases.clone() else {
        return;
    };
    loop {
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(TAKEOVER_EVERY) => {}
        }
        if !shared
            .slots
            .values()
            .any(|slot| slot.settings().policy.retry_attempts > 0)
        {
            continue;
        }
        let waiting = match leases.overdue_retries(TAKEOVER_GRACE).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::debug!(error = %e, "could not look for waiting retries");
                continue;
            }
        };
        for (name, retry) in waiting {
            if let Some(slot) = shared.slots.get(&name) {
                tracing::info!(job = %name, tick = %retry.tick, attempt = retry.attempt, "taking over a retry another replica left");
                let (shared, slot) = (shared.clone(), slot.clone());
                shared
                    .clone()
                    .tracker
                    .spawn(async move { run(&shared, &slot, retry).await });
            }
        }
    }
}
