//! The scheduler: fires each job on its cron schedule, runs it under the rules below, and
//! records every run in the [`ExecutionStore`].
//!
//! # Semantics
//! - **Concurrency**: one timer task per distinct schedule wakes at each fire time and hands
//!   the tick to each due job's runner, a tokio task of the job's own, so a slow job never
//!   delays another job's fire time (nor the host's request handlers). Jobs must not block the executor: use
//!   `spawn_blocking` for blocking work.
//! - **No overlap**: a tick that fires while the previous run of the same job is still going
//!   is *not run* (it is logged at debug level, not recorded). A manual trigger in that state
//!   gets [`Error::AlreadyRunning`](crate::Error::AlreadyRunning).
//! - **One run per tick across replicas**: with coordination on (the default), a run starts
//!   only after claiming the job's lease row in the database; see [`crate::lease`]. Manual
//!   triggers take the same lease, so they also answer "already running" while another
//!   replica runs the job.
//! - **Timeouts**: past its timeout a run's cancellation token fires; the job gets 5 s to
//!   return, then its future is dropped; the run is recorded as failed, "timed out after N s".
//! - **Panics**: a panicking job is recorded as failed with the panic message; the scheduler
//!   and the other jobs carry on.
//! - **Misfires**: at start-up, a job whose most recent tick is newer than its last recorded
//!   run is run once ([`MisfirePolicy::RunOnce`], the default), however many ticks were
//!   missed; a job that never ran is not caught up. [`MisfirePolicy::Skip`] waits for the
//!   next tick.
//! - **Stale runs**: a run left open by a process that died is closed as abandoned by the
//!   next process that takes the job's lease (at start-up, and before a run whose claim
//!   reports that the previous holder did not release the lease cleanly: it died, lost the
//!   lease, or could not write its run's start or end); with coordination off, at start-up.
//! - **Disabled jobs** are not fired but can still be triggered by hand.
//! - **Shutdown**: [`SchedulerHandle::shutdown`] stops firing, waits for running jobs up to a
//!   grace period, then cancels them and records them as cancelled. No row is left open.
//! - **No busy polling**: each timer task sleeps until its schedule's next fire time.
//! - **Database outages** never stop the scheduler: a tick whose lease or start row cannot be
//!   written is skipped with a warning; the end of a run is retried for about 8 s, and the
//!   outcome is in the trace either way.
//!
//! # Example
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler, SchedulerConfig, ExecutionStatus};
//!
//! struct Hello;
//! #[async_trait]
//! impl Job for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn description(&self) -> &str { "Say hello" }
//!     fn schedule(&self) -> &str { "0 0 * * * *" }
//!     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
//!         Ok(JobOutput::processed(1))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await?;
//! let registry = Registry::builder().register(Hello).build()?;
//! let handle = Scheduler::builder(registry, db).config(SchedulerConfig::default()).start().await?;
//!
//! let run = handle.trigger("hello").await?;
//! let row = run.wait().await?;
//! assert_eq!(row.status, ExecutionStatus::Succeeded);
//! assert_eq!(row.records_processed, Some(1));
//!
//! handle.shutdown(Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

pub mod bounds;
mod builder;
mod config;
mod handle;
mod health;
mod recovery;
mod retention;
mod run;
mod runtime;
mod timers;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use builder::{Scheduler, SchedulerBuilder};
pub use config::{
    ClockConfig, CoordinationConfig, CutoffClock, JobConfig, MisfirePolicy, RetentionConfig,
    RuntimeConfig, SchedulerConfig,
};
pub use handle::{DryRun, JobInfo, MAX_UPCOMING, SchedulerHandle, TriggeredRun};
pub use health::{FleetHealth, HealthStatus, JobHealth, default_overdue_after};

use crate::clock::SharedClock;
use crate::db::Database;
use crate::job::{Job, TimeSource};
use crate::lease::LeaseStore;
use crate::observe::Observers;
use crate::settings::SettingsStore;
use crate::store::ExecutionStore;

/// State shared by the handle, the timers and the runs.
pub(crate) struct Shared {
    slots: BTreeMap<String, Arc<Slot>>,
    store: ExecutionStore,
    /// Runtime settings and the audit log; `None` when the scheduler keeps no tables.
    settings: Option<SettingsStore>,
    /// The timer groups.
    timers: timers::Timers,
    leases: Option<LeaseStore>,
    lease_ttl: Duration,
    /// How long a cancelled run may take to return before it is dropped.
    cancel_grace: Duration,
    /// When the skew was last warned about.
    skew: Mutex<SkewState>,
    /// The last measured application-minus-database clock difference in microseconds
    /// ([`NO_SKEW`]: not measured yet); an atomic, because every fire reads it.
    skew_us: AtomicI64,
    /// Skew past which a warning is logged.
    warn_skew: chrono::Duration,
    db: Database,
    clock: SharedClock,
    /// The human label of this scheduler (history, logs, metrics); configurable, so not
    /// necessarily unique.
    instance: String,
    /// This process's identity in every lease decision: the label plus a random value drawn
    /// at start, so two schedulers configured with one `instance` never take each other's
    /// claims (see [`lease_holder`]).
    holder: String,
    /// Fired by shutdown: no new runs.
    stop_firing: CancellationToken,
    /// Fired when the shutdown grace period is over: running jobs are cancelled.
    cancel_runs: CancellationToken,
    tracker: TaskTracker,
    record_history: bool,
    local_ids: AtomicI64,
    /// Where runs take their cut-offs from.
    time_source: TimeSource,
    /// The host's run observers (see [`crate::observe`]).
    observers: Observers,
}

/// One job as scheduled. Its schedule, timeout and paused state change at run time
/// ([`crate::settings`]); everything else is fixed at start.
pub(crate) struct Slot {
    job: Arc<dyn Job>,
    /// Host configuration over the job's defaults.
    base: runtime::Base,
    /// The settings in force.
    state: Mutex<runtime::SlotState>,
    /// `state.paused`, readable without the lock at every tick.
    paused: AtomicBool,
    /// `state.fires`, likewise (the timer task reads it under its group's lock, which
    /// must not be held while a slot's state is taken).
    fires: AtomicBool,
    misfire: MisfirePolicy,
    /// `[jobs.NAME] overdue_after_secs`; `None`: [`default_overdue_after`].
    overdue_after: Option<Duration>,
    running: AtomicBool,
    next_run: Mutex<Option<DateTime<Utc>>>,
    /// The task that runs its ticks (see [`timers`]).
    runner: timers::Runner,
}

impl Slot {
    fn info(&self, shared: &Shared) -> JobInfo {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        JobInfo {
            name: self.job.name().to_owned(),
            description: self.job.description().to_owned(),
            schedule: state.schedule,
            default_schedule: self.base.default_schedule.clone(),
            enabled: state.fires,
            paused: state.paused,
            running: self.running.load(Ordering::Acquire),
            next_run_at: if state.fires && !shared.stop_firing.is_cancelled() {
                *self.next_run.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                None
            },
            timeout: state.timeout,
            runtime_settings: state.runtime,
        }
    }

    /// The timeout in force.
    fn timeout(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).timeout
    }

    /// Whether ticks start runs (not disabled, not paused).
    fn fires(&self) -> bool {
        self.fires.load(Ordering::Acquire)
    }

    /// Make `new` the settings in force (in `state`, this slot's locked state), with the
    /// flags read without the lock.
    fn set_state(&self, state: &mut runtime::SlotState, new: runtime::SlotState) {
        self.paused.store(new.paused, Ordering::Release);
        self.fires.store(new.fires, Ordering::Release);
        *state = new;
    }

    /// Paused by an operator.
    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// The schedule in force.
    fn schedule(&self) -> crate::schedule::Schedule {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .schedule
            .clone()
    }

    fn set_next(&self, next: Option<DateTime<Utc>>) {
        *self.next_run.lock().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

/// `Shared::skew_us` before the first measurement.
const NO_SKEW: i64 = i64::MIN;

/// When a warning about the clock skew was last logged.
#[derive(Debug, Default)]
struct SkewState {
    warned_at: Option<Instant>,
}

impl Shared {
    /// Note a measurement of the application clock minus the database's; warn (at most once
    /// a minute) when it is past the configured bound.
    fn observe_skew(&self, skew: chrono::Duration) {
        let mut state = self.skew.lock().unwrap_or_else(|e| e.into_inner());
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
    fn clock_skew(&self) -> Option<chrono::Duration> {
        match self.skew_us.load(Ordering::Acquire) {
            NO_SKEW => None,
            us => Some(chrono::Duration::microseconds(us)),
        }
    }
}

/// This host's name, as it appears in default instance ids (`HOST:PID`).
pub(super) fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The lease holder of a scheduler labelled `instance`: the label, `#`, and 64 random bits
/// drawn now. The label is operator-chosen and may be shared (one configuration file
/// shipped to every replica, containers that share a hostname and run as PID 1); a lease
/// decision that compared labels would let one such replica re-take another's claim. The
/// random part comes from the standard library's per-process hash keys (seeded by the
/// operating system), mixed with the time and a per-process counter, so schedulers of one
/// process differ too.
pub(super) fn lease_holder(instance: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static DRAWN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(DRAWN.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    // The lease table's holder column holds 255 characters: keep the label's start.
    let label: String = instance.chars().take(200).collect();
    format!("{label}#{:016x}", hasher.finish())
}

/// `HOST:PID` for the first scheduler of a process, `HOST:PID/2`, `HOST:PID/3` ... for the
/// next ones: every scheduler needs an identity of its own, since a lease names its holder and
/// a holder may re-take a claim of its own whose answer was lost.
fn default_instance() -> String {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, Ordering::Relaxed) + 1;
    let base = format!("{}:{}", this_host(), std::process::id());
    if n == 1 { base } else { format!("{base}/{n}") }
}
