//! A job as scheduled: what is fixed at start, the settings in force, whether a run is in
//! progress here, its next fire time and the mailbox of its runner task.
//!
//! This module owns a slot's state: every change of it is a method of [`Slot`], and the
//! lock that guards the settings never leaves the module.
//!
//! # Lock order
//! Three locks meet at a slot: the timer groups' registry, a slot's settings, and a
//! group's member list (see [`super::timer_groups`]). The registry comes first; the others
//! are never held together. The types keep it so:
//! - the settings lock is taken only inside the methods below, each of which releases it
//!   before it returns, and none of which calls out while holding it;
//! - the one transition that must follow the registry, [`Slot::regroup`], asks for proof
//!   that it is held ([`RegistryHeld`]);
//! - a timer pass that holds a member list sees each slot as a [`Member`], which reads and
//!   writes only atomics, the next fire time and the runner's mailbox (leaf locks, held for
//!   a copy).

mod member;
mod running;
#[cfg(test)]
pub(super) mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::effective::{Base, GroupKey, Settings};
use super::info::{JobInfo, JobPolicy, jitter_offset};
use super::stop::StopSignal;
use crate::error::Result;
use crate::job::Job;
use crate::schedule::Schedule;
use crate::settings::RuntimeSettings;

pub(super) use member::Member;
pub(super) use running::{CatchingUp, Running};

/// Take `mutex` even if a panicking thread poisoned it: every value guarded here is
/// replaced whole, so a half-done update cannot be observed.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The settings in force and the timer group the slot is in now.
struct State {
    settings: Settings,
    /// Changed only by [`Slot::regroup`], under the registry.
    group: Option<GroupKey>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A tick handed to a job's runner.
#[derive(Debug, Clone, Copy)]
pub(super) struct Due {
    pub(super) tick: DateTime<Utc>,
    /// A tick the database could not be asked about is retried until then (the next tick
    /// of the same schedule).
    pub(super) retry_until: Option<DateTime<Utc>>,
}

/// A job's side of its runner task (see [`super::timers`]): a wake-up and the tick to run.
#[derive(Default)]
struct Mailbox {
    wake: Notify,
    /// The tick to run next; a newer tick replaces one not yet taken.
    due: Mutex<Option<Due>>,
    started: AtomicBool,
}

/// One job as scheduled.
pub(super) struct Slot {
    pub(super) job: Arc<dyn Job>,
    /// Host configuration over the job's defaults.
    base: Base,
    state: Mutex<State>,
    /// `state.settings.paused` and `.fires`, written with them by [`Slot::apply`] alone,
    /// read without the lock at every tick (a timer pass must not take it).
    paused: AtomicBool,
    fires: AtomicBool,
    /// `state.settings.policy.jitter` in milliseconds, likewise (read at every fire).
    jitter_ms: AtomicU64,
    /// `[jobs.NAME] overdue_after_secs`; `None`: the default of health.
    pub(super) overdue_after: Option<Duration>,
    running: AtomicBool,
    /// Missed ticks are being run in order (see `recovery`): scheduled ticks are skipped.
    catching_up: AtomicBool,
    next_run: Mutex<Option<DateTime<Utc>>>,
    mailbox: Mailbox,
    /// How to stop the run in progress here, if any (set with `running`).
    current: Mutex<Option<Arc<StopSignal>>>,
    /// Without coordination: a tick buffered while the job ran here (`overlap`), and the
    /// backfill tick run last (with coordination both live on the lease row).
    buffered: Mutex<Option<DateTime<Utc>>>,
    backfill_tick: Mutex<Option<DateTime<Utc>>>,
}

/// The regrouping a settings change calls for (see [`Slot::regroup`]).
pub(super) struct Regroup {
    /// The group the slot left, if any.
    pub(super) left: Option<GroupKey>,
    /// The group it joins, with the schedule its timer runs on.
    pub(super) joined: Option<(GroupKey, Schedule)>,
}

/// Proof that the timer groups' registry is locked: [`Slot::regroup`] asks for it, so a
/// slot's group changes only in the registry's order. Made by [`super::timer_groups`] alone.
pub(super) struct RegistryHeld<'a, T>(pub(super) MutexGuard<'a, T>);

impl Slot {
    /// A slot with the host's settings in force (runtime settings are applied later).
    /// Fails on an invalid host schedule or zone.
    pub(super) fn new(
        job: Arc<dyn Job>,
        base: Base,
        overdue_after: Option<Duration>,
    ) -> Result<Self> {
        let settings = Settings::derive(&base, RuntimeSettings::default())?;
        Ok(Self {
            job,
            paused: AtomicBool::new(settings.paused),
            fires: AtomicBool::new(settings.fires),
            jitter_ms: AtomicU64::new(millis(settings.policy.jitter)),
            base,
            state: Mutex::new(State {
                settings,
                group: None,
            }),
            overdue_after,
            running: AtomicBool::new(false),
            catching_up: AtomicBool::new(false),
            next_run: Mutex::new(None),
            mailbox: Mailbox::default(),
            current: Mutex::new(None),
            buffered: Mutex::new(None),
            backfill_tick: Mutex::new(None),
        })
    }

    /// The job as the host sees it; `firing` is false once the scheduler stopped firing.
    pub(super) fn info(&self, firing: bool) -> JobInfo {
        let settings = self.settings();
        let fires_on_schedule = settings.fires;
        #[allow(deprecated)]
        JobInfo {
            name: self.job.name().to_owned(),
            description: self.job.description().to_owned(),
            schedule: settings.schedule,
            default_schedule: self.base.default_schedule.clone(),
            fires_on_schedule,
            enabled: fires_on_schedule,
            paused: settings.paused,
            running: self.is_running(),
            // When the next run starts: its tick plus the tick's jitter offset.
            next_run_at: if fires_on_schedule && firing {
                lock(&self.next_run).map(|tick| {
                    let offset = jitter_offset(self.job.name(), tick, settings.policy.jitter);
                    tick + chrono::Duration::from_std(offset).unwrap_or_default()
                })
            } else {
                None
            },
            timeout: settings.timeout,
            policy: settings.policy,
            runtime_settings: settings.runtime,
        }
    }

    /// A copy of the settings in force.
    pub(super) fn settings(&self) -> Settings {
        lock(&self.state).settings.clone()
    }

    /// The settings `runtime` gives this job, without applying them; fails as
    /// [`Settings::derive`].
    pub(super) fn derive(&self, runtime: RuntimeSettings) -> Result<Settings> {
        Settings::derive(&self.base, runtime)
    }

    /// Make `runtime` the job's runtime settings (an invalid stored schedule falls back to
    /// the host's). The timer group follows through [`regroup`](Self::regroup).
    pub(super) fn apply(&self, runtime: RuntimeSettings) {
        let settings = Settings::derive_lenient(&self.base, self.job.name(), runtime);
        let mut state = lock(&self.state);
        self.paused.store(settings.paused, Ordering::Release);
        self.fires.store(settings.fires, Ordering::Release);
        self.jitter_ms
            .store(millis(settings.policy.jitter), Ordering::Release);
        state.settings = settings;
    }

    /// Move the slot to the group its settings call for, under the registry `_held`;
    /// returns what the registry must change. Also resets the next fire time: unknown out
    /// of a group, the schedule's next one (computed from `now`) in a new one.
    pub(super) fn regroup<T>(&self, _held: &RegistryHeld<'_, T>, now: DateTime<Utc>) -> Regroup {
        let mut state = lock(&self.state);
        let wanted = state.settings.timer_key();
        if state.group == wanted {
            return Regroup {
                left: None,
                joined: None,
            };
        }
        let left = std::mem::replace(&mut state.group, wanted.clone());
        let schedule = state.settings.schedule.clone();
        // Known before the timer task first runs, so the job's info shows it at once.
        let next = match &wanted {
            Some(_) if state.settings.fires => schedule.next_after(now),
            _ => None,
        };
        self.set_next(next);
        Regroup {
            left,
            joined: wanted.map(|key| (key, schedule)),
        }
    }

    /// The timeout in force.
    pub(super) fn timeout(&self) -> Duration {
        lock(&self.state).settings.timeout
    }

    /// The runtime settings in force.
    pub(super) fn runtime(&self) -> RuntimeSettings {
        lock(&self.state).settings.runtime.clone()
    }

    /// The policies in force (a copy of a few numbers: read where a run ends, so it does not
    /// clone the whole settings).
    pub(super) fn policy(&self) -> JobPolicy {
        lock(&self.state).settings.policy.clone()
    }

    /// Whether a backfill is in progress (read where every run ends).
    pub(super) fn is_backfilling(&self) -> bool {
        lock(&self.state).settings.runtime.backfill.is_some()
    }

    /// Whether ticks start runs (not disabled, not paused).
    pub(super) fn fires(&self) -> bool {
        self.fires.load(Ordering::Acquire)
    }

    /// The jitter in force.
    pub(super) fn jitter(&self) -> Duration {
        Duration::from_millis(self.jitter_ms.load(Ordering::Acquire))
    }

    /// Paused by an operator.
    pub(super) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// Whether a run of the job is in progress in this process.
    pub(super) fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Whether the job is busy here: a run in progress, or missed ticks being caught up. A
    /// scheduled tick that comes due meanwhile is skipped.
    pub(super) fn is_busy(&self) -> bool {
        self.is_running() || self.catching_up.load(Ordering::Acquire)
    }

    /// Without coordination: keep `tick` to run once the run here ends (the newest wins).
    pub(super) fn buffer(&self, tick: DateTime<Utc>) {
        let mut buffered = lock(&self.buffered);
        if buffered.is_none_or(|t| t < tick) {
            *buffered = Some(tick);
        }
    }

    /// Without coordination: the tick buffered while the job ran, taken.
    pub(super) fn take_buffered(&self) -> Option<DateTime<Utc>> {
        lock(&self.buffered).take()
    }

    /// Without coordination: the backfill tick run last.
    pub(super) fn backfill_tick(&self) -> Option<DateTime<Utc>> {
        *lock(&self.backfill_tick)
    }

    /// Without coordination: note the backfill tick run last (`None`: a new backfill).
    pub(super) fn set_backfill_tick(&self, tick: Option<DateTime<Utc>>) {
        *lock(&self.backfill_tick) = tick;
    }

    pub(super) fn set_next(&self, next: Option<DateTime<Utc>>) {
        *lock(&self.next_run) = next;
    }

    /// Hand `due` to the runner; a newer tick replaces one not yet taken.
    pub(super) fn hand(&self, due: Due) {
        *lock(&self.mailbox.due) = Some(due);
        // Stores a permit when the runner is not waiting yet (still finishing its last
        // fire): it takes the tick as soon as it is back.
        self.mailbox.wake.notify_one();
    }

    /// Wait until the runner is woken: a tick handed, or shutdown.
    pub(super) async fn woken(&self) {
        self.mailbox.wake.notified().await;
    }

    /// Wake the runner without a tick (shutdown).
    pub(super) fn wake(&self) {
        self.mailbox.wake.notify_one();
    }

    /// The tick handed to the runner, if any.
    pub(super) fn take_due(&self) -> Option<Due> {
        lock(&self.mailbox.due).take()
    }

    /// Note that the runner task is started; false if it already was.
    pub(super) fn mark_runner_started(&self) -> bool {
        !self.mailbox.started.swap(true, Ordering::AcqRel)
    }
}
