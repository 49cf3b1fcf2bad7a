//! Recovery at start-up: runs left open by dead processes are closed as abandoned, and a
//! tick missed while no scheduler ran is caught up once.

use std::sync::Arc;

use super::abandoned::close_abandoned;
use super::config::MisfirePolicy;
use super::run;
use super::shared::Shared;
use crate::error::Error;
use crate::job::Trigger;
use crate::lease::ClaimKind;

/// How long a run of a job this scheduler does not know may stay open before a starting
/// scheduler closes it as abandoned: a day, far longer than a run with the default timeout
/// (an hour), so that in a fleet whose replicas register different jobs a live run of
/// another replica's job is not closed; rows left by a module the host replaced (its old
/// hand-written loop, a removed plugin) are closed instead of staying `running` forever.
pub const UNKNOWN_JOB_RUN_BOUND: chrono::Duration = chrono::Duration::hours(24);

/// At start-up: close runs left open by processes that died, for every job nobody is
/// running now, and open runs of unknown jobs older than [`UNKNOWN_JOB_RUN_BOUND`].
pub(super) async fn close_stale_runs(shared: &Shared) {
    let now = shared.clock.now();
    if shared.record_history {
        let known: Vec<&str> = shared.slots.keys().map(String::as_str).collect();
        match shared
            .store
            .close_unknown_abandoned(&known, now - UNKNOWN_JOB_RUN_BOUND, now)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                closed = n,
                "closed runs of jobs this scheduler does not know, open for more than a day, as abandoned"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not check for abandoned runs of unknown jobs")
            }
        }
    }
    for slot in shared.slots.values() {
        let Some(leases) = &shared.leases else {
            let _ = close_abandoned(shared, slot, false, now).await;
            continue;
        };
        match leases
            .claim(
                slot.job.name(),
                &shared.holder,
                ClaimKind::Now,
                shared.lease_ttl,
            )
            .await
        {
            Ok(Some(claimed)) => {
                // Always looked for here, whatever the lease says: rows may be left open by
                // versions that kept no such record, or by another tool.
                let _ = if close_abandoned(shared, slot, true, now).await {
                    leases.release(&claimed.lease).await
                } else {
                    leases.release_unclean(&claimed.lease).await
                };
            }
            Ok(None) => {} // somebody is running it right now
            Err(e) => {
                tracing::warn!(job = %slot.job.name(), error = %e, "could not check for abandoned runs")
            }
        }
    }
}

/// Run once each enabled job whose latest tick is newer than its last recorded run.
pub(super) async fn catch_up(shared: &Arc<Shared>) {
    let now = shared.clock.now();
    for (name, slot) in &shared.slots {
        if !slot.fires() || slot.misfire == MisfirePolicy::Skip {
            continue;
        }
        let Some(tick) = slot.schedule().latest_at_or_before(now) else {
            continue;
        };
        let last = match shared.store.latest(name).await {
            Ok(Some(last)) => last,
            Ok(None) => continue, // never ran: nothing was missed
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "cannot read history for catch-up");
                continue;
            }
        };
        if last.started_at >= tick {
            continue;
        }
        tracing::info!(job = %name, missed_tick = %tick, last_run = %last.started_at, "catching up a missed tick");
        match run::start(shared, slot, Trigger::CatchUp { fire_time: tick }).await {
            Ok(_) | Err(Error::AlreadyRunning(_)) => {}
            Err(e) => tracing::warn!(job = %name, error = %e, "catch-up run not started"),
        }
    }
}
