//! The state a scheduler's handle, timers and runs share.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::info::JobInfo;
use super::slot::{Slot, lock};
use super::timer_groups::TimerGroups;
use crate::clock::SharedClock;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::job::TimeSource;
use crate::lease::LeaseStore;
use crate::observe::Observers;
use crate::settings::SettingsStore;
use crate::store::ExecutionStore;

/// State shared by the handle, the timers and the runs.
pub(super) struct Shared {
    pub(super) slots: BTreeMap<String, Arc<Slot>>,
    pub(super) store: ExecutionStore,
    /// Runtime settings and the audit log; `None` when the scheduler keeps no tables.
    pub(super) settings: Option<SettingsStore>,
    /// The timer groups.
    pub(super) timers: TimerGroups,
    pub(super) leases: Option<LeaseStore>,
    pub(super) lease_ttl: Duration,
    /// How long a cancelled run may take to return before it is dropped.
    pub(super) cancel_grace: Duration,
    /// When the skew was last warned about.
    pub(super) skew: Mutex<SkewState>,
    /// The last measured application-minus-database clock difference in microseconds
    /// ([`NO_SKEW`]: not measured yet); an atomic, because every fire reads it.
    pub(super) skew_us: AtomicI64,
    /// Skew past which a warning is logged.
    pub(super) warn_skew: chrono::Duration,
    pub(super) db: Database,
    pub(super) clock: SharedClock,
    /// The human label of this scheduler (history, logs, metrics); configurable, so not
    /// necessarily unique.
    pub(super) instance: String,
    /// This process's identity in every lease decision: the label plus a random value drawn
    /// at start, so two schedulers configured with one `instance` never take each other's
    /// claims (see [`super::identity::lease_holder`]).
    pub(super) holder: String,
    /// Fired by shutdown: no new runs.
    pub(super) stop_firing: CancellationToken,
    /// Fired when the shutdown grace period is over: running jobs are cancelled.
    pub(super) cancel_runs: CancellationToken,
    pub(super) tracker: TaskTracker,
    pub(super) record_history: bool,
    /// Whether runs' logs are captured (see `run_log/`).
    pub(super) capture_run_logs: bool,
    pub(super) local_ids: AtomicI64,
    /// Where runs take their cut-offs from.
    pub(super) time_source: TimeSource,
    /// The host's run observers (see [`crate::observe`]).
    pub(super) observers: Observers,
    /// The alerts' task's queue (`None`: no webhook), for the events that are not a run's
    /// end (the system's pauses).
    pub(super) alerts: Option<tokio::sync::mpsc::Sender<crate::alert::Signal>>,
}

/// `Shared::skew_us` before the first measurement.
pub(super) const NO_SKEW: i64 = i64::MIN;

/// When a warning about the clock skew was last logged.
#[derive(Debug, Default)]
pub(super) struct SkewState {
    warned_at: Option<Instant>,
}

impl Shared {
    /// Note a measurement of the application clock minus the database's; warn (at most once
    /// a minute) when it is past the configured bound.
    pub(super) fn observe_skew(&self, skew: chrono::Duration) {
        let mut state = lock(&self.skew);
        self.skew_us.store(
            skew.num_microseconds().unwrap_or(i64::MAX).max(NO_SKEW + 1),
            Ordering::Release,
        );
        if skew.abs() > self.warn_skew
            && state
                .warned_at
                .is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        {
            state.warned_at = Some(Instant::now());
            tracing::warn!(
                skew_ms = skew.num_milliseconds(),
                "this host's clock differs from the database's by more than {} s; ticks fire and leases run by the database's clock, and cleanups refuse to run past [clock] max_skew_secs",
                self.warn_skew.num_seconds()
            );
        }
    }

    /// The application clock minus the database's, as last measured.
    pub(super) fn clock_skew(&self) -> Option<chrono::Duration> {
        match self.skew_us.load(Ordering::Acquire) {
            NO_SKEW => None,
            us => Some(chrono::Duration::microseconds(us)),
        }
    }

    /// What the host is told about `slot`'s job.
    pub(super) fn job_info(&self, slot: &Slot) -> JobInfo {
        slot.info(!self.stop_firing.is_cancelled())
    }

    /// The slot of job `name`.
    pub(super) fn slot(&self, name: &str) -> Result<&Arc<Slot>> {
        self.slots
            .get(name)
            .ok_or_else(|| Error::UnknownJob(name.to_owned()))
    }
}
