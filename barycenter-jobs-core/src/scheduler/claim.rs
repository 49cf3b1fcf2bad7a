//! The claim of a run: no overlap in this process, the job's lease when coordinating, runs
//! abandoned by dead processes closed, and the start row written. A claimed tick whose
//! start cannot be recorded is given back, so the fleet does not lose it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::abandoned::close_abandoned;
use super::bounds::instant_after;
use super::renew::LeaseState;
use super::shared::Shared;
use super::slot::{Running, Slot};
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::lease::{ClaimKind, Lease, LeaseStore};
use crate::store::{Execution, NewExecution};

/// A run whose start is claimed and recorded, ready to execute (see [`super::run`]).
pub(super) struct Claimed {
    pub(super) shared: Arc<Shared>,
    pub(super) slot: Arc<Slot>,
    pub(super) execution_id: i64,
    pub(super) trigger: Trigger,
    pub(super) started_at: DateTime<Utc>,
    pub(super) lease: Option<Lease>,
    pub(super) lease_state: LeaseState,
    /// Runs abandoned by an earlier holder of the lease may still be open (closing them
    /// failed): the lease is given back so that the next holder tries again.
    pub(super) left_open: bool,
    pub(super) running: Running,
    pub(super) done: Option<oneshot::Sender<Execution>>,
}

/// Claim a run of `slot`: no overlap in this process, the job's lease when coordinating,
/// runs abandoned by dead processes closed, and the start recorded. A claimed tick whose
/// start cannot be recorded is given back, so the fleet does not lose it.
pub(super) async fn claim(
    shared: &Arc<Shared>,
    slot: &Arc<Slot>,
    trigger: Trigger,
) -> Result<Claimed> {
    if shared.stop_firing.is_cancelled() {
        return Err(Error::ShutDown);
    }
    let name = slot.job.name();
    let Some(running) = slot.start_running() else {
        return Err(Error::AlreadyRunning(name.to_owned()));
    };

    let held = Box::pin(take_lease(shared, name, trigger)).await?;
    let now = shared.clock.now();
    let (execution_id, left_open) = if shared.record_history {
        Box::pin(record_start(shared, slot, trigger, &held, now)).await?
    } else {
        // History off: ids only need to be unique within this process.
        (shared.local_ids.fetch_add(1, Ordering::Relaxed) + 1, false)
    };
    running.stop_signal().set_execution(execution_id);
    if let (Some(leases), Some(lease)) = (&shared.leases, &held.lease)
        && let Err(e) = Box::pin(leases.set_execution(lease, execution_id)).await
    {
        tracing::debug!(job = %name, error = %e, "could not note the execution on the lease");
    }
    Ok(Claimed {
        shared: shared.clone(),
        slot: slot.clone(),
        execution_id,
        trigger,
        started_at: now,
        lease: held.lease,
        lease_state: held.state,
        left_open,
        running,
        done: None,
    })
}

/// The job's lease as a claim left it.
struct Held {
    /// `None` with coordination off.
    lease: Option<Lease>,
    state: LeaseState,
    /// The previous holder did not release it cleanly: it may have left a run open.
    previous_unreleased: bool,
}

/// Take `name`'s lease for `trigger` (its tick, or now for a manual trigger) when
/// coordinating, measuring the clock skew on the way; [`Error::AlreadyRunning`] when another
/// holder has it or the tick is taken.
async fn take_lease(shared: &Shared, name: &str, trigger: Trigger) -> Result<Held> {
    let Some(leases) = &shared.leases else {
        return Ok(Held {
            lease: None,
            state: LeaseState::NotLeased,
            previous_unreleased: false,
        });
    };
    let kind = match trigger {
        Trigger::Retry { fire_time, attempt } => ClaimKind::Retry {
            tick: fire_time,
            attempt,
        },
        Trigger::Backfill { fire_time } => ClaimKind::Backfill(fire_time),
        _ => match trigger.fire_time() {
            Some(tick) => ClaimKind::Tick(tick),
            None => ClaimKind::Now,
        },
    };
    let sent = Instant::now();
    let app_before = shared.clock.now();
    // Database calls are boxed throughout the run path: their futures are large, and inline
    // they would make every spawned run as large as the largest of them.
    let claimed = Box::pin(leases.claim(name, &shared.holder, kind, shared.lease_ttl))
        .await?
        .ok_or_else(|| Error::AlreadyRunning(name.to_owned()))?;
    if let Some(db_now) = claimed.db_now {
        let app_after = shared.clock.now();
        shared.observe_skew(app_before + (app_after - app_before) / 2 - db_now);
    }
    Ok(Held {
        lease: Some(claimed.lease),
        state: LeaseState::ValidUntil(instant_after(sent, shared.lease_ttl)),
        previous_unreleased: claimed.previous_unreleased,
    })
}

/// Write the run's start row, first closing the runs a dead holder of the lease left open;
/// on failure, give the claimed tick back. Returns the row's id, and whether runs abandoned
/// earlier may still be open.
async fn record_start(
    shared: &Shared,
    slot: &Slot,
    trigger: Trigger,
    held: &Held,
    now: DateTime<Utc>,
) -> Result<(i64, bool)> {
    let mut left_open = false;
    // We hold the lease, so any run of this job still open belongs to a dead process. Only
    // a holder that did not release cleanly can have left one: every run records its end
    // before its lease is released, and a lease given back otherwise says so.
    if held.lease.is_some() && held.previous_unreleased {
        left_open = !Box::pin(close_abandoned(shared, slot, true, now)).await;
    }
    let new = NewExecution {
        job_name: slot.job.name().to_owned(),
        started_at: now,
        trigger,
        instance: Some(shared.instance.clone()),
    };
    // Grouped with the starts of other due jobs on SQLite (see `store::group`).
    match Box::pin(shared.store.start_grouped(new)).await {
        Ok(id) => Ok((id, left_open)),
        Err(e) => {
            if let (Some(leases), Some(lease)) = (&shared.leases, &held.lease) {
                Box::pin(give_back(shared, leases, lease, trigger)).await;
            }
            Err(e)
        }
    }
}

/// Release a lease whose run could not start, with its tick (a backfill's too), retrying
/// within the TTL.
async fn give_back(shared: &Shared, leases: &LeaseStore, lease: &Lease, trigger: Trigger) {
    let tick = trigger.fire_time();
    let until = instant_after(Instant::now(), shared.lease_ttl);
    let mut backoff = Duration::from_millis(100);
    loop {
        // The start row may have been written without the answer reaching us: either way
        // the next holder looks for open runs.
        let result = match (trigger, tick) {
            (Trigger::Backfill { fire_time }, _) => {
                leases.release_backfill_tick(lease, fire_time).await
            }
            (_, Some(tick)) => leases.release_tick(lease, tick).await,
            (_, None) => leases.release_unclean(lease).await,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::Database;
    use crate::job::JobOutput;
    use crate::scheduler::testing::{Script, parts, started};
    use crate::store::ExecutionStatus;

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    fn idle() -> Script {
        Script::new("claimed", |_| async { Ok(JobOutput::processed(0)) })
    }

    #[tokio::test]
    async fn a_claim_holds_the_lease_writes_the_start_row_and_excludes_a_second() {
        let (handle, _dir) = started(idle(), SECS(60), SECS(5)).await;
        let (shared, slot) = parts(&handle);
        let claimed = claim(&shared, &slot, Trigger::Manual).await.unwrap();
        let row = shared
            .store
            .get(claimed.execution_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, ExecutionStatus::Running);
        assert_eq!(row.instance.as_deref(), Some(shared.instance.as_str()));
        let leases = shared.leases.as_ref().unwrap();
        assert!(leases.is_held("claimed").await.unwrap());
        assert!(matches!(claimed.lease_state, LeaseState::ValidUntil(_)));
        assert!(matches!(
            claim(&shared, &slot, Trigger::Manual).await,
            Err(Error::AlreadyRunning(_))
        ));
        handle.shutdown(SECS(1)).await.unwrap();
        assert!(matches!(
            claim(&shared, &slot, Trigger::Manual).await,
            Err(Error::ShutDown)
        ));
    }

    #[tokio::test]
    async fn a_tick_whose_start_cannot_be_written_is_given_back() {
        let (handle, _dir) = started(idle(), SECS(60), SECS(5)).await;
        let (shared, slot) = parts(&handle);
        let Database::Sqlite(pool) = &shared.db else {
            unreachable!("the test scheduler runs on SQLite")
        };
        sqlx::raw_sql("DROP TABLE job_executions")
            .execute(pool)
            .await
            .unwrap();
        let tick = shared.clock.now() - chrono::Duration::seconds(5);
        let refused = claim(&shared, &slot, Trigger::Scheduled { fire_time: tick }).await;
        assert!(
            matches!(refused, Err(Error::Database(_))),
            "{:?}",
            refused.err()
        );
        assert!(!slot.is_running(), "the slot is free again");
        // Given back with its tick: another replica can claim that very tick, and is told
        // that a run may have been left open.
        let leases = shared.leases.as_ref().unwrap();
        assert!(!leases.is_held("claimed").await.unwrap());
        let other = leases
            .claim("claimed", "other#1", ClaimKind::Tick(tick), SECS(30))
            .await
            .unwrap()
            .expect("the tick is claimable again");
        assert!(other.previous_unreleased);
    }
}
