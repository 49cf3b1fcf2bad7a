//! Timers: one task per distinct schedule sleeps until its next fire time and starts the
//! due jobs' runs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Shared, Slot, run};
use crate::error::Error;
use crate::job::Trigger;

/// Longest pause between two attempts at a tick the database did not take.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Sleep until each fire time of a group of jobs sharing one schedule, and start their runs.
pub(super) async fn tick_loop(shared: Arc<Shared>, slots: Vec<Arc<Slot>>) {
    let Some(schedule) = slots.first().map(|s| s.schedule.clone()) else {
        return;
    };
    let mut last_tick: Option<DateTime<Utc>> = None;
    loop {
        let now = shared.clock.now();
        // Never fire the same tick twice, even if the wall clock steps back.
        let from = last_tick.filter(|t| *t > now).unwrap_or(now);
        let Some(next) = schedule.next_after(from) else {
            let names: Vec<&str> = slots.iter().map(|s| s.job.name()).collect();
            tracing::warn!(jobs = ?names, "schedule has no future fire time");
            break;
        };
        for slot in &slots {
            slot.set_next(Some(next));
        }
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shared.stop_firing.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        last_tick = Some(next);
        // One task per run, so that no job's claim or run delays another's.
        let retry_until = schedule.next_after(next);
        for slot in &slots {
            shared
                .tracker
                .spawn(fire(shared.clone(), slot.clone(), next, retry_until));
        }
    }
    for slot in &slots {
        slot.set_next(None);
    }
}

/// Run one scheduled tick of one job. A tick the database could not be asked about (an
/// outage, a statement timeout) is tried again with a growing pause until the next tick of
/// the same schedule is due, so a short outage at fire time does not lose it.
async fn fire(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    tick: DateTime<Utc>,
    retry_until: Option<DateTime<Utc>>,
) {
    // Fire when the tick is due by the database's clock as last measured: a replica whose
    // clock runs ahead would otherwise ask too early and be refused.
    if let Some(early) = shared
        .clock_skew()
        .and_then(|skew| (tick + skew - shared.clock.now()).to_std().ok())
    {
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(early) => {}
        }
    }
    let name = slot.job.name();
    let mut backoff = Duration::from_millis(250);
    loop {
        match run::begin(&shared, &slot, Trigger::Scheduled { fire_time: tick }).await {
            Ok(prepared) => return prepared.execute().await,
            Err(Error::AlreadyRunning(_)) => {
                tracing::debug!(job = %name, %tick, "tick not run: job already running (here or elsewhere), or tick already taken");
                return;
            }
            Err(Error::ShutDown) => return,
            Err(e @ (Error::Database(_) | Error::Timeout(_)))
                if retry_until.is_none_or(|until| shared.clock.now() + backoff < until) =>
            {
                tracing::warn!(job = %name, %tick, error = %e, "tick not started; retrying");
                tokio::select! {
                    _ = shared.stop_firing.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
            }
            Err(e) => {
                tracing::warn!(job = %name, %tick, error = %e, "tick not run");
                return;
            }
        }
    }
}
