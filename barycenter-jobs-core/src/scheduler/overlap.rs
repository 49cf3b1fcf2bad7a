//! Ticks that come due while a run of the job is going on, here or on another replica
//! (`overlap`): `skip` drops them (reported as today); `buffer_one` keeps the newest to run
//! once the run ends; `cancel_running` keeps it too and stops the running run, wherever it
//! runs.
//!
//! With coordination the buffered tick lives on the job's lease row
//! ([`LeaseStore::buffer_tick`](crate::LeaseStore::buffer_tick)), written only while the
//! lease is held and the tick unclaimed, so the replica that holds the lease finds it when
//! its run ends, and any replica takes it over if that one dies. The buffered tick is then
//! claimed like any tick ([`ClaimKind::Tick`](crate::lease::ClaimKind::Tick)): once across
//! the fleet, and never after a newer tick was claimed.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::claim::claim;
use super::config::OverlapPolicy;
use super::shared::Shared;
use super::slot::Slot;
use crate::error::Error;
use crate::job::Trigger;

/// How many times a replica goes between claiming a tick and buffering it while the lease
/// changes hands under it: each failed step means another replica moved the row.
const ATTEMPTS: u32 = 3;

/// What the cancelled run's row says.
fn cancel_reason(tick: DateTime<Utc>) -> String {
    format!(
        "cancelled: the tick of {} came due (overlap = cancel_running)",
        tick.to_rfc3339()
    )
}

/// `tick` of `slot`'s job came due while a run of the job is going on (here, or on the
/// replica that holds its lease). Returns false under `overlap = skip`: the caller reports
/// the tick as skipped, as before.
pub(super) async fn tick_while_running(
    shared: &Arc<Shared>,
    slot: &Arc<Slot>,
    tick: DateTime<Utc>,
) -> bool {
    let policy = slot.policy().overlap;
    if policy == OverlapPolicy::Skip {
        return false;
    }
    let cancel = policy == OverlapPolicy::CancelRunning;
    if cancel {
        // Running here: stopped at once, without waiting for the database's round trip.
        slot.stop_running(&cancel_reason(tick));
    }
    let name = slot.job.name();
    let Some(leases) = &shared.leases else {
        slot.buffer(tick);
        // The run may have ended between the caller's look and the buffer: run it now.
        if !slot.is_running() {
            start_buffered(shared, slot);
        }
        return true;
    };
    let reason = cancel.then(|| cancel_reason(tick));
    for _ in 0..ATTEMPTS {
        match leases.buffer_tick(name, tick, reason.as_deref()).await {
            Ok(true) => {
                tracing::info!(job = %name, %tick, policy = policy.as_str(), "tick buffered until the running run ends");
                return true;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job = %name, %tick, error = %e, "could not buffer a tick");
                return true;
            }
        }
        // The lease was free (the run just ended) or the tick is taken: claim it, which
        // tells the two apart.
        match claim(shared, slot, Trigger::Scheduled { fire_time: tick }).await {
            Ok(claimed) => {
                claimed.execute().await;
                return true;
            }
            Err(Error::AlreadyRunning(_)) => {}
            Err(_) => return true,
        }
    }
    true
}

/// After a run of `slot`'s job ended and gave its lease back: start the tick buffered
/// meanwhile, if the policy buffers and one waits. Costs nothing under `overlap = skip`.
pub(super) fn after_run(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    if slot.policy().overlap != OverlapPolicy::Skip {
        start_buffered(shared, slot);
    }
}

/// Look for the buffered tick and run it, in a task of the scheduler's.
fn start_buffered(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    let (shared2, slot) = (shared.clone(), slot.clone());
    shared.tracker.spawn(async move {
        let tick = match &shared2.leases {
            None => slot.take_buffered(),
            Some(leases) => match leases.buffered_tick(slot.job.name()).await {
                Ok(tick) => tick,
                Err(e) => {
                    // Taken over by the look-out for waiting work (see `takeover`).
                    tracing::warn!(job = %slot.job.name(), error = %e, "could not look for a buffered tick");
                    None
                }
            },
        };
        if let Some(tick) = tick {
            run_buffered(&shared2, &slot, tick).await;
        }
    });
}

/// Claim and run the buffered `tick` (once across the fleet: it is claimed as a tick).
pub(super) async fn run_buffered(shared: &Arc<Shared>, slot: &Arc<Slot>, tick: DateTime<Utc>) {
    match claim(shared, slot, Trigger::Scheduled { fire_time: tick }).await {
        Ok(claimed) => {
            tracing::info!(job = %slot.job.name(), %tick, "running the tick buffered while the job ran");
            claimed.execute().await;
        }
        Err(Error::AlreadyRunning(_) | Error::ShutDown) => {}
        Err(e) => {
            tracing::warn!(job = %slot.job.name(), %tick, error = %e, "buffered tick not started")
        }
    }
}
