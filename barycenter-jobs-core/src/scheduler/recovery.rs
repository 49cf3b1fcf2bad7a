//! Recovery at start-up: runs left open by dead processes are closed as abandoned, and a
//! tick missed while no scheduler ran is caught up once.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::abandoned::close_abandoned;
use super::bounds::MAX_CATCH_UP_TICKS;
use super::claim::claim;
use super::config::MisfirePolicy;
use super::run;
use super::shared::Shared;
use super::slot::{CatchingUp, Slot};
use crate::error::Error;
use crate::job::Trigger;
use crate::lease::ClaimKind;
use crate::schedule::Schedule;

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

/// Catch up the ticks each enabled job missed since its last recorded run, as its misfire
/// policy says and within its catch-up window: the newest missed tick once (`run_once`,
/// started here), or every missed tick, oldest first, one at a time (`run_all`, in a task
/// of its own, so start-up does not wait for them). A job that never ran missed nothing.
pub(super) async fn catch_up(shared: &Arc<Shared>) {
    let now = shared.clock.now();
    for (name, slot) in &shared.slots {
        let settings = slot.settings();
        let policy = &settings.policy;
        if !slot.fires() || policy.misfire == MisfirePolicy::Skip {
            continue;
        }
        let last = match shared.store.latest(name).await {
            Ok(Some(last)) => last,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "cannot read history for catch-up");
                continue;
            }
        };
        let window_start = policy
            .catch_up_window
            .and_then(|w| chrono::Duration::from_std(w).ok())
            .map(|w| now - w);
        let most = match policy.misfire {
            MisfirePolicy::RunAll => MAX_CATCH_UP_TICKS,
            _ => 1,
        };
        let missed = missed_ticks(&settings.schedule, last.started_at, window_start, now, most);
        let Some(newest) = missed.last().copied() else {
            continue;
        };
        tracing::info!(job = %name, missed = missed.len(), newest_missed = %newest, last_run = %last.started_at, "catching up missed ticks");
        if missed.len() == 1 {
            match run::start(shared, slot, Trigger::CatchUp { fire_time: newest }).await {
                Ok(_) | Err(Error::AlreadyRunning(_)) => {}
                Err(e) => tracing::warn!(job = %name, error = %e, "catch-up run not started"),
            }
        } else {
            let busy = slot.start_catching_up();
            shared
                .tracker
                .spawn(run_in_order(shared.clone(), slot.clone(), missed, busy));
        }
    }
}

/// The ticks of `schedule` after `last_run` and at or before `now`, none before
/// `window_start`: the newest `most` of them, oldest first.
fn missed_ticks(
    schedule: &Schedule,
    last_run: DateTime<Utc>,
    window_start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    most: usize,
) -> Vec<DateTime<Utc>> {
    let oldest = window_start.map_or(last_run, |start| start.max(last_run));
    let mut ticks = Vec::new();
    let mut at = now;
    while ticks.len() < most {
        let Some(tick) = schedule.latest_at_or_before(at) else {
            break;
        };
        // The window's start is a tick still caught up; the last run's tick is not missed.
        if tick <= last_run || tick < oldest {
            break;
        }
        ticks.push(tick);
        // Cron resolves seconds: a second before the tick is strictly before it.
        at = tick - chrono::Duration::seconds(1);
    }
    ticks.reverse();
    ticks
}

/// Run `ticks` of `slot`'s job one after the other, each claimed like its tick (so a tick
/// another replica ran is not run again). While they run, the job's scheduled ticks are
/// skipped as if it were running (`_busy`): a newer tick claimed meanwhile would make the
/// older ones unclaimable.
async fn run_in_order(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    ticks: Vec<DateTime<Utc>>,
    _busy: CatchingUp,
) {
    for tick in ticks {
        match claim(&shared, &slot, Trigger::CatchUp { fire_time: tick }).await {
            Ok(claimed) => claimed.execute().await,
            Err(Error::AlreadyRunning(_)) => {
                tracing::debug!(job = %slot.job.name(), %tick, "missed tick already taken");
            }
            Err(Error::ShutDown) => return,
            Err(e) => {
                tracing::warn!(job = %slot.job.name(), %tick, error = %e, "missed tick not caught up");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn missed_ticks_are_the_newest_within_the_window_oldest_first() {
        let hourly = Schedule::parse("0 0 * * * *").unwrap();
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 7, h, 0, 0).unwrap();
        let now = at(10) + chrono::Duration::minutes(30);
        // Last run at 04:00: 05:00 to 10:00 were missed.
        let all = missed_ticks(&hourly, at(4), None, now, 100);
        assert_eq!(all, (5..=10).map(at).collect::<Vec<_>>());
        // The newest three only.
        assert_eq!(
            missed_ticks(&hourly, at(4), None, now, 3),
            vec![at(8), at(9), at(10)]
        );
        // A window starting at 07:30: 08:00 on.
        let window = Some(at(7) + chrono::Duration::minutes(30));
        assert_eq!(
            missed_ticks(&hourly, at(4), window, now, 100),
            vec![at(8), at(9), at(10)]
        );
        // A window starting at 08:00 keeps 08:00.
        assert_eq!(missed_ticks(&hourly, at(4), Some(at(8)), now, 100).len(), 3);
        // Nothing missed since a run at 10:00, nor in a window that starts after the tick.
        assert!(missed_ticks(&hourly, at(10), None, now, 100).is_empty());
        assert!(
            missed_ticks(
                &hourly,
                at(4),
                Some(at(10) + chrono::Duration::minutes(1)),
                now,
                1
            )
            .is_empty()
        );
    }
}
