//! The lease of a running run: a task of its own renews it, and the run learns from it until
//! when the lease is surely valid ([`LeaseState`]), which is when it must stop at the latest.
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

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::bounds::instant_after;
use super::shared::Shared;
use crate::lease::Lease;

/// How sure a run is of its lease, as the renewal task sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaseState {
    /// Coordination is off: nothing to confirm.
    NotLeased,
    /// Valid at least until this instant.
    ValidUntil(Instant),
    /// Another replica holds it now.
    Lost,
}

/// Renew `lease` every third of the TTL and publish until when it is surely valid.
pub(super) async fn renew_loop(
    shared: Arc<Shared>,
    lease: Lease,
    state: watch::Sender<LeaseState>,
) {
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
pub(super) fn stop_at(state: LeaseState, soon: Duration) -> Option<Instant> {
    match state {
        LeaseState::NotLeased => None,
        LeaseState::ValidUntil(until) => Some(until.checked_sub(soon).unwrap_or(until)),
        LeaseState::Lost => Some(Instant::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn fencing_stops_a_run_before_its_lease_could_lapse() {
        let now = Instant::now();
        let until = now + SECS(30);
        assert_eq!(stop_at(LeaseState::NotLeased, SECS(6)), None);
        assert_eq!(
            stop_at(LeaseState::ValidUntil(until), SECS(6)),
            Some(until - SECS(6))
        );
        assert!(stop_at(LeaseState::Lost, SECS(6)).is_some_and(|at| at <= Instant::now()));
    }
}
