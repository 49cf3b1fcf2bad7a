//! The look-out for work left on free leases: every few seconds each replica runs what
//! another replica left and did not start (it died, or shut down): a retry past its time, a
//! tick buffered while the job ran, the next tick of a backfill. Everything it finds is
//! claimed through the job's lease like a tick, so it runs once across the fleet, whichever
//! replicas look. Only when coordinating, and only while some job retries, buffers or
//! backfills: otherwise it reads nothing.

use std::sync::Arc;
use std::time::Duration;

use super::config::OverlapPolicy;
use super::shared::Shared;
use super::{backfill, overlap, retry};

/// How often each replica looks.
const EVERY: Duration = Duration::from_secs(5);
/// How late a retry must be before another replica takes it over from the one that left it.
const RETRY_GRACE: Duration = Duration::from_secs(2);

/// Look for waiting work every [`EVERY`] until shutdown.
pub(super) async fn takeover_loop(shared: Arc<Shared>) {
    let Some(leases) = shared.leases.clone() else {
        return;
    };
    loop {
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let mut backfilling = Vec::new();
        let mut waits = false;
        for (name, slot) in &shared.slots {
            let settings = slot.settings();
            if settings.runtime.backfill.is_some() {
                backfilling.push(name.as_str());
            }
            waits |= settings.policy.retry_attempts > 0
                || settings.policy.overlap != OverlapPolicy::Skip;
        }
        if !waits && backfilling.is_empty() {
            continue;
        }
        let waiting = match leases.waiting(RETRY_GRACE, &backfilling).await {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::debug!(error = %e, "could not look for waiting work");
                continue;
            }
        };
        for work in waiting {
            let Some(slot) = shared.slots.get(&work.job_name) else {
                continue;
            };
            let (shared2, slot) = (shared.clone(), slot.clone());
            // One at a time per job, in this order; each claim fails harmlessly once another
            // replica (or an earlier item here) holds the lease.
            shared.tracker.spawn(async move {
                if let Some(retry) = work.retry {
                    tracing::info!(job = %work.job_name, tick = %retry.tick, attempt = retry.attempt, "taking over a retry another replica left");
                    retry::run(&shared2, &slot, retry).await;
                } else if let Some(tick) = work.buffered {
                    tracing::info!(job = %work.job_name, %tick, "taking over a buffered tick another replica left");
                    overlap::run_buffered(&shared2, &slot, tick).await;
                } else {
                    backfill::advance(&shared2, &slot);
                }
            });
        }
    }
}
