//! Timers: one task per distinct schedule sleeps until its next fire time and wakes the
//! due jobs' runners. Jobs move between groups when their schedule changes at run time.
//!
//! Each job that fires has a runner: a task of its own, started when the job first joins a
//! group and kept until shutdown, that waits to be handed a tick and runs it. A tick costs
//! a wake-up per job, not a new task: with thousands of jobs due in the same second, tasks
//! spawned per fire were allocated, faulted in and freed again every second, and the
//! lateness of the last job of a tick grew with that churn.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt as _;
use tokio::sync::Notify;
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
    /// The jobs whose runner has been started, to wake them for shutdown.
    runners: Mutex<Vec<Arc<Slot>>>,
}

/// A tick handed to a job's runner.
#[derive(Debug, Clone, Copy)]
struct Due {
    tick: DateTime<Utc>,
    /// A tick the database could not be asked about is retried until then (the next tick
    /// of the same schedule).
    retry_until: Option<DateTime<Utc>>,
}

/// A job's side of its runner task (see the module docs).
#[derive(Default)]
pub(crate) struct Runner {
    wake: Notify,
    /// The tick to run next; a newer tick replaces one not yet taken.
    due: Mutex<Option<Due>>,
    started: AtomicBool,
}

impl Runner {
    fn hand(&self, due: Due) {
        *self.due.lock().unwrap_or_else(|e| e.into_inner()) = Some(due);
        // Stores a permit when the runner is not waiting yet (still finishing its last
        // fire): it takes the tick as soon as it is back.
        self.wake.notify_one();
    }

    fn take(&self) -> Option<Due> {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
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
        self.start_runner(shared, slot);
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

    /// Start `slot`'s runner unless it runs already.
    fn start_runner(&self, shared: &Arc<Shared>, slot: &Arc<Slot>) {
        if slot.runner.started.swap(true, Ordering::AcqRel) {
            return;
        }
        // Listed before it is spawned: a shutdown that lists the runners after this wakes
        // it, and one that listed them before has already stopped firing, which the runner
        // sees before it first waits.
        self.runners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot.clone());
        shared.tracker.spawn(run_loop(shared.clone(), slot.clone()));
    }

    /// Wake every runner so that it sees that firing has stopped and ends; called once
    /// [`Shared::stop_firing`] is cancelled.
    pub(super) fn stop_runners(&self) {
        for slot in self
            .runners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            slot.runner.wake.notify_one();
        }
    }

    /// How many timer tasks run (one per distinct schedule in use).
    pub(super) fn len(&self) -> usize {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).len()
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
    // Under the members' lock, without copying the list (a job that joins or leaves
    // meanwhile waits for the one pass). A pass reads only a slot's atomics and hands
    // ticks: `Timers::place` takes a slot's state before this lock, so a pass must not
    // take it, nor call observers (host code).
    let each = |m: &Members, f: &mut dyn FnMut(&Arc<Slot>)| {
        m.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .for_each(f)
    };
    let mut last_tick: Option<DateTime<Utc>> = None;
    loop {
        let now = shared.clock.now();
        // Never fire the same tick twice, even if the wall clock steps back.
        let from = last_tick.filter(|t| *t > now).unwrap_or(now);
        let Some(next) = schedule.next_after(from) else {
            let mut names = Vec::new();
            each(&members, &mut |s| names.push(s.job.name().to_owned()));
            tracing::warn!(jobs = ?names, "schedule has no future fire time");
            break;
        };
        each(&members, &mut |slot| {
            if slot.fires() {
                slot.set_next(Some(next));
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
        each(&members, &mut |slot| {
            // A job still running here skips the tick now, rather than running it late
            // once its runner is back (a paused one is reported as paused, by the runner).
            if !slot.is_paused() && slot.running.load(Ordering::Acquire) {
                skipped.push(slot.clone());
            } else {
                slot.runner.hand(due);
            }
        });
        for slot in skipped {
            tick_skipped_running(&shared, &slot, next);
        }
    }
    each(&members, &mut |slot| slot.set_next(None));
}

/// A job's runner: run each tick handed to it, one at a time, until firing stops.
///
/// A panic while firing a tick (host code on the path: the job's name, the clock) is caught
/// and logged, and the runner goes on with the next tick: an uncaught one would end this
/// task for good, and every later tick would be handed to a runner that is gone. (A panic
/// once the run's start is recorded is recorded with the run: see `run::Prepared::execute`.)
async fn run_loop(shared: Arc<Shared>, slot: Arc<Slot>) {
    while !shared.stop_firing.is_cancelled() {
        slot.runner.wake.notified().await;
        if let Some(due) = slot.runner.take() {
            let fired = AssertUnwindSafe(fire(&shared, &slot, due))
                .catch_unwind()
                .await;
            if let Err(panic) = fired {
                let message = run::panic_message(panic);
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
    if shared.leases.is_some()
        && let Some(early) = shared
            .clock_skew()
            .and_then(|skew| (tick + skew - shared.clock.now()).to_std().ok())
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
    // `begin` refuses a job still running here as it refuses a tick the lease does not give
    // us; looking first tells the two apart for observers. (A manual trigger that starts in
    // between is still refused by `begin`, and reported as lost.)
    if slot.running.load(Ordering::Acquire) {
        return tick_skipped_running(shared, slot, tick);
    }
    let mut backoff = Duration::from_millis(250);
    loop {
        match run::begin(shared, slot, Trigger::Scheduled { fire_time: tick }).await {
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
