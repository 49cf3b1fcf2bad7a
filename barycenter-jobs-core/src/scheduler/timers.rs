//! Timers: one task per distinct schedule sleeps until its next fire time and starts the
//! due jobs' runs. Jobs move between groups when their schedule changes at run time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{Shared, Slot, run};
use crate::error::Error;
use crate::job::Trigger;
use crate::observe::TickOutcome;
use crate::schedule::Schedule;

/// Longest pause between two attempts at a tick the database did not take.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// A timer group's identity: the cron expression and its zone.
pub(super) type GroupKey = (String, Option<&'static str>);

/// The jobs of one timer group; read by its task at each fire time, so a job that joins or
/// leaves takes part from the next tick on, without restarting the timer.
type Members = Arc<Mutex<Vec<Arc<Slot>>>>;

struct Group {
    members: Members,
    /// Stops the group's task once its last member has left.
    stop: CancellationToken,
}

/// Every timer group of a scheduler: one task per distinct schedule, created when its first
/// job joins and stopped when its last job leaves, so jobs sharing a schedule (thousands of
/// them, possibly) still cost one timer between them, also after runtime changes.
#[derive(Default)]
pub(super) struct Timers {
    groups: Mutex<BTreeMap<GroupKey, Group>>,
}

impl Timers {
    /// Put `slot` in the group its current settings call for (none when it is neither
    /// scheduled nor paused), leaving the group it was in. The one place that re-groups timers.
    pub(super) fn place(&self, shared: &Arc<Shared>, slot: &Arc<Slot>) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = state.timer_key();
        if state.group == wanted {
            return;
        }
        if let Some(old) = state.group.take()
            && let Some(group) = groups.get(&old)
        {
            let mut members = group.members.lock().unwrap_or_else(|e| e.into_inner());
            members.retain(|s| !Arc::ptr_eq(s, slot));
            if members.is_empty() {
                drop(members);
                if let Some(group) = groups.remove(&old) {
                    group.stop.cancel();
                }
            }
        }
        slot.set_next(None);
        let Some(key) = wanted else { return };
        // Known before the timer task first runs, so `jobs()` shows it at once.
        if state.fires {
            slot.set_next(state.schedule.next_after(shared.clock.now()));
        }
        match groups.get(&key) {
            Some(group) => group
                .members
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot.clone()),
            None => {
                let members: Members = Arc::new(Mutex::new(vec![slot.clone()]));
                let stop = CancellationToken::new();
                shared.tracker.spawn(tick_loop(
                    shared.clone(),
                    state.schedule.clone(),
                    members.clone(),
                    stop.clone(),
                ));
                groups.insert(key.clone(), Group { members, stop });
            }
        }
        state.group = Some(key);
    }

    /// How many timer tasks run (one per distinct schedule in use).
    pub(super) fn len(&self) -> usize {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Sleep until each fire time of a group of jobs sharing one schedule, and start their runs.
async fn tick_loop(
    shared: Arc<Shared>,
    schedule: Schedule,
    members: Members,
    stop: CancellationToken,
) {
    let snapshot = |m: &Members| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut last_tick: Option<DateTime<Utc>> = None;
    loop {
        let now = shared.clock.now();
        // Never fire the same tick twice, even if the wall clock steps back.
        let from = last_tick.filter(|t| *t > now).unwrap_or(now);
        let Some(next) = schedule.next_after(from) else {
            let slots = snapshot(&members);
            let names: Vec<&str> = slots.iter().map(|s| s.job.name()).collect();
            tracing::warn!(jobs = ?names, "schedule has no future fire time");
            break;
        };
        for slot in snapshot(&members) {
            if slot.fires() {
                slot.set_next(Some(next));
            }
        }
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shared.stop_firing.cancelled() => break,
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        last_tick = Some(next);
        // One task per run, so that no job's claim or run delays another's.
        let retry_until = schedule.next_after(next);
        for slot in snapshot(&members) {
            shared
                .tracker
                .spawn(fire(shared.clone(), slot, next, retry_until));
        }
    }
    for slot in snapshot(&members) {
        slot.set_next(None);
    }
}

/// A tick of a paused job came due and was not run. The call point for observers and
/// metrics of skipped ticks (nothing is recorded in the history).
pub(super) fn tick_skipped_paused(slot: &Slot, tick: DateTime<Utc>) {
    tracing::debug!(job = %slot.job.name(), %tick, "tick not run: job paused");
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
        // Boxed, like every wait of this rare path below: a spawned run is as large as the
        // largest state it can be in, and every due job has one.
        let stopped = Box::pin(async {
            tokio::select! {
                _ = shared.stop_firing.cancelled() => true,
                _ = tokio::time::sleep(early) => false,
            }
        })
        .await;
        if stopped {
            return;
        }
    }
    // Checked as late as possible: a pause that lands between the wake-up and here counts.
    let name = slot.job.name();
    // Observers learn what became of the tick (`crate::observe::TickOutcome`).
    let observed = |outcome| shared.observers.tick(name, tick, outcome);
    if slot.is_paused() {
        observed(TickOutcome::SkippedPaused);
        return tick_skipped_paused(&slot, tick);
    }
    // `begin` refuses a job still running here as it refuses a tick the lease does not give
    // us; looking first tells the two apart for observers. (A manual trigger that starts in
    // between is still refused by `begin`, and reported as lost.)
    if slot.running.load(std::sync::atomic::Ordering::Acquire) {
        observed(TickOutcome::SkippedRunning);
        tracing::debug!(job = %name, %tick, "tick not run: job already running here");
        return;
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        match run::begin(&shared, &slot, Trigger::Scheduled { fire_time: tick }).await {
            Ok(prepared) => {
                observed(TickOutcome::Claimed);
                return prepared.execute().await;
            }
            Err(Error::AlreadyRunning(_)) => {
                observed(TickOutcome::Lost);
                tracing::debug!(job = %name, %tick, "tick not run: job already running (here or elsewhere), or tick already taken");
                return;
            }
            Err(Error::ShutDown) => return,
            Err(e @ (Error::Database(_) | Error::Timeout(_)))
                if retry_until.is_none_or(|until| shared.clock.now() + backoff < until) =>
            {
                tracing::warn!(job = %name, %tick, error = %e, "tick not started; retrying");
                let stopped = Box::pin(async {
                    tokio::select! {
                        _ = shared.stop_firing.cancelled() => true,
                        _ = tokio::time::sleep(backoff) => false,
                    }
                })
                .await;
                if stopped {
                    return;
                }
                backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
            }
            Err(e) => {
                observed(TickOutcome::Error);
                tracing::warn!(job = %name, %tick, error = %e, "tick not run");
                return;
            }
        }
    }
}
