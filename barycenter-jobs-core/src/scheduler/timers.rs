//! Timers: one task per distinct schedule sleeps until its next fire time and wakes the
//! due jobs' runners. Jobs move between groups ([`super::timer_groups`]) when their
//! schedule changes at run time.
//!
//! Each job that fires has a runner: a task of its own, started when the job first joins a
//! group and kept until shutdown, that waits to be handed a tick and runs it. A tick costs
//! a wake-up per job, not a new task: with thousands of jobs due in the same second, tasks
//! spawned per fire were allocated, faulted in and freed again every second, and the
//! lateness of the last job of a tick grew with that churn.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::claim;
use super::config::OverlapPolicy;
use super::info::jitter_offset;
use super::overlap;
use super::shared::Shared;
use super::slot::{Due, Slot};
use super::supervise::panic_message;
use super::timer_groups::{Members, NewTimer};
use crate::error::Error;
use crate::job::Trigger;
use crate::observe::TickOutcome;
use crate::schedule::Schedule;

/// Longest pause between two attempts at a tick the database did not take.
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(5);

/// Put `slot` in the timer group its settings call for, and start what that needs: the
/// group's timer task when the group is new, the slot's runner when it has none yet.
pub(super) fn place(shared: &Arc<Shared>, slot: &Arc<Slot>) {
    let placed = shared.timers.place(slot, shared.clock.now());
    if placed.start_runner {
        shared.tracker.spawn(run_loop(shared.clone(), slot.clone()));
    }
    if let Some(NewTimer {
        schedule,
        members,
        stop,
    }) = placed.timer
    {
        shared
            .tracker
            .spawn(tick_loop(shared.clone(), schedule, members, stop));
    }
}

/// Sleep until each fire time of a group of jobs sharing one schedule, and hand the tick
/// to their runners.
async fn tick_loop(
    shared: Arc<Shared>,
    schedule: Schedule,
    members: Members,
    stop: CancellationToken,
) {
    // A pass over the members holds their list's lock: it must not call observers (host
    // code), so what they are told is collected and told after it.
    let mut last_tick: Option<DateTime<Utc>> = None;
    loop {
        let now = shared.clock.now();
        // Never fire the same tick twice, even if the wall clock steps back.
        let from = last_tick.filter(|t| *t > now).unwrap_or(now);
        let Some(next) = schedule.next_after(from) else {
            let mut names = Vec::new();
            members.each(|m| names.push(m.name().to_owned()));
            tracing::warn!(jobs = ?names, "schedule has no future fire time");
            break;
        };
        members.each(|m| {
            if m.fires() {
                m.set_next(Some(next));
            }
        });
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = shared.stop_firing.cancelled() => break,
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        last_tick = Some(next);
        let due = Due {
            tick: next,
            retry_until: schedule.next_after(next),
        };
        let mut skipped = Vec::new();
        members.each(|m| {
            // A job still running here skips the tick now, rather than running it late
            // once its runner is back (a paused one is reported as paused, by the runner).
            if !m.is_paused() && m.is_busy() {
                skipped.push(m.after_pass());
            } else {
                m.hand(due);
            }
        });
        for slot in skipped {
            if slot.policy().overlap == OverlapPolicy::Skip {
                tick_skipped_running(&shared, &slot, next);
            } else {
                // Buffered (and the running run perhaps cancelled) off the timer.
                let shared2 = shared.clone();
                shared.tracker.spawn(async move {
                    overlap::tick_while_running(&shared2, &slot, next).await;
                });
            }
        }
    }
    members.each(|m| m.set_next(None));
}

/// A job's runner: run each tick handed to it, one at a time, until firing stops.
///
/// A panic while firing a tick (host code on the path: the job's name, the clock) is caught
/// and logged, and the runner goes on with the next tick: an uncaught one would end this
/// task for good, and every later tick would be handed to a runner that is gone. (A panic
/// once the run's start is recorded is recorded with the run: see `run`.)
async fn run_loop(shared: Arc<Shared>, slot: Arc<Slot>) {
    while !shared.stop_firing.is_cancelled() {
        slot.woken().await;
        if let Some(due) = slot.take_due() {
            let fired = AssertUnwindSafe(fire(&shared, &slot, due))
                .catch_unwind()
                .await;
            if let Err(panic) = fired {
                let message = panic_message(panic);
                tracing::error!(tick = %due.tick, panic = %message, "a job's runner panicked before its run started; the tick is lost, the runner goes on");
                let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let name = slot.job.name();
                    shared.observers.tick(name, due.tick, TickOutcome::Error);
                }));
                if caught.is_err() {
                    tracing::error!(
                        "the job's name panicked again; tick not reported to observers"
                    );
                }
            }
        }
    }
}

/// A tick of a paused job came due and was not run. The call point for observers and
/// metrics of skipped ticks (nothing is recorded in the history).
pub(super) fn tick_skipped_paused(slot: &Slot, tick: DateTime<Utc>) {
    tracing::debug!(job = %slot.job.name(), %tick, "tick not run: job paused");
}

/// A tick came due while the job's last run here was still going, and was not run.
fn tick_skipped_running(shared: &Shared, slot: &Slot, tick: DateTime<Utc>) {
    let name = slot.job.name();
    shared
        .observers
        .tick(name, tick, TickOutcome::SkippedRunning);
    tracing::debug!(job = %name, %tick, "tick not run: job already running here");
}

/// Run one scheduled tick of one job. A tick the database could not be asked about (an
/// outage, a statement timeout) is tried again with a growing pause until the next tick of
/// the same schedule is due, so a short outage at fire time does not lose it.
async fn fire(shared: &Arc<Shared>, slot: &Arc<Slot>, due: Due) {
    let Due { tick, retry_until } = due;
    // Fire when the tick is due by the database's clock as last measured: a replica whose
    // clock runs ahead would otherwise ask too early and be refused. Only the lease claim
    // compares the tick with that clock: without coordination nothing refuses a tick, and
    // waiting out a skew measured as a fraction of a millisecond (noise, for a database on
    // the same host) would put every fire through a timer of its own.
    // A jittered tick starts at its offset (the same on every replica: see `jitter_offset`).
    let offset = jitter_offset(slot.job.name(), tick, slot.jitter());
    let skew = shared.leases.as_ref().and_then(|_| shared.clock_skew());
    let start = tick + chrono::Duration::from_std(offset).unwrap_or_default();
    if (skew.is_some() || !offset.is_zero())
        && let Some(early) = (start + skew.unwrap_or_default() - shared.clock.now())
            .to_std()
            .ok()
    {
        // Boxed, like every wait of this rare path below: a runner is as large as the
        // largest state it can be in, and every job that fires has one.
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
        return tick_skipped_paused(slot, tick);
    }
    // The claim refuses a job still running here as it refuses a tick the lease does not
    // give us; looking first tells the two apart for observers. (A manual trigger that
    // starts in between is still refused by the claim, and reported as lost.)
    if slot.is_busy() {
        if Box::pin(overlap::tick_while_running(shared, slot, tick)).await {
            return;
        }
        return tick_skipped_running(shared, slot, tick);
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        match claim::claim(shared, slot, Trigger::Scheduled { fire_time: tick }).await {
            Ok(claimed) => {
                observed(TickOutcome::Claimed);
                return claimed.execute().await;
            }
            Err(Error::AlreadyRunning(_)) => {
                observed(TickOutcome::Lost);
                // Held by a run elsewhere: buffered under `overlap` (a tick another
                // replica took is left alone: the buffer writes only an unclaimed tick).
                if slot.policy().overlap != OverlapPolicy::Skip {
                    Box::pin(overlap::tick_while_running(shared, slot, tick)).await;
                    return;
                }
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
