//! The scheduler: fires each job on its cron schedule, runs it under the rules below, and
//! records every run in the [`ExecutionStore`].
//!
//! # Semantics
//! - **Concurrency**: one timer task per distinct schedule wakes at each fire time and starts
//!   every due job in a tokio task of its own, so a slow job never delays another job's fire
//!   time (nor the host's request handlers). Jobs must not block the executor: use
//!   `spawn_blocking` for blocking work.
//! - **No overlap**: a tick that fires while the previous run of the same job is still going
//!   is *not run* (it is logged at debug level, not recorded). A manual trigger in that state
//!   gets [`Error::AlreadyRunning`].
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
//!   next process that takes the job's lease (at start-up and before every run); with
//!   coordination off, at start-up.
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

mod config;
mod handle;
mod run;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{
    ClockConfig, CoordinationConfig, CutoffClock, JobConfig, MisfirePolicy, RetentionConfig,
    SchedulerConfig,
};
pub use handle::{JobInfo, SchedulerHandle, TriggeredRun};

use crate::clock::{SharedClock, SystemClock};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::job::{Job, TimeSource, Trigger};
use crate::lease::{ClaimKind, LeaseStore};
use crate::registry::Registry;
use crate::schedule::Schedule;
use crate::store::ExecutionStore;

/// Entry point: `Scheduler::builder(registry, db)...start()`.
#[derive(Debug)]
pub struct Scheduler;

impl Scheduler {
    /// Configure a scheduler for the jobs of `registry`, recording into `db`.
    pub fn builder(registry: Registry, db: Database) -> SchedulerBuilder {
        SchedulerBuilder {
            registry,
            db,
            config: SchedulerConfig::default(),
            clock: Arc::new(SystemClock),
            record_history: true,
        }
    }
}

/// Builder returned by [`Scheduler::builder`].
pub struct SchedulerBuilder {
    registry: Registry,
    db: Database,
    config: SchedulerConfig,
    clock: SharedClock,
    record_history: bool,
}

impl std::fmt::Debug for SchedulerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("registry", &self.registry)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SchedulerBuilder {
    /// Host configuration (schedules, enabled, timeouts, coordination, retention).
    pub fn config(mut self, config: SchedulerConfig) -> Self {
        self.config = config;
        self
    }

    /// The clock handed to jobs and used to compute fire times (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Turn off the execution history: no rows are written, execution ids are only unique
    /// within the process, and misfire catch-up (which reads the history) is off. For hosts
    /// that want pure in-memory scheduling.
    pub fn without_history(mut self) -> Self {
        self.record_history = false;
        self
    }

    /// Validate the configuration, migrate the history, close runs abandoned by dead
    /// processes, catch up missed ticks, and start the timers.
    pub async fn start(self) -> Result<SchedulerHandle> {
        let SchedulerBuilder {
            registry,
            db,
            config,
            clock,
            record_history,
        } = self;

        for name in config.jobs.keys() {
            if registry.get(name).is_none() {
                return Err(Error::UnknownJob(name.clone()));
            }
        }
        let default_timeout = Duration::from_secs(config.default_timeout_secs.max(1));
        let mut slots = BTreeMap::new();
        for reg in registry.iter() {
            let over = config.jobs.get(reg.name()).cloned().unwrap_or_default();
            let mut schedule = match &over.schedule {
                Some(expr) => Schedule::parse(expr)?,
                None => reg.default_schedule().clone(),
            };
            if let Some(tz) = &over.time_zone {
                schedule = schedule.with_time_zone(tz)?;
            }
            slots.insert(
                reg.name().to_owned(),
                Slot {
                    job: reg.job().clone(),
                    schedule,
                    enabled: over.enabled.unwrap_or(true),
                    timeout: over
                        .timeout_secs
                        .map(|s| Duration::from_secs(s.max(1)))
                        .unwrap_or(default_timeout),
                    misfire: over.misfire.unwrap_or_default(),
                    running: AtomicBool::new(false),
                    next_run: Mutex::new(None),
                },
            );
        }

        let store = ExecutionStore::with_tables(db.clone(), config.tables.clone());
        let leases = config
            .coordination
            .enabled
            .then(|| LeaseStore::new(db.clone(), config.tables.leases.clone()));
        if record_history || leases.is_some() {
            store.migrate().await?;
        }
        let names: Vec<&str> = slots.keys().map(String::as_str).collect();
        if let Some(leases) = &leases {
            leases.ensure_rows(&names).await?;
        }

        let shared = Arc::new(Shared {
            slots,
            store,
            leases,
            lease_ttl: Duration::from_secs(config.coordination.lease_ttl_secs.max(3)),
            db,
            clock,
            instance: config
                .coordination
                .instance
                .clone()
                .unwrap_or_else(default_instance),
            stop_firing: CancellationToken::new(),
            cancel_runs: CancellationToken::new(),
            tracker: TaskTracker::new(),
            record_history,
            local_ids: AtomicI64::new(0),
            time_source: match config.clock.cutoffs {
                CutoffClock::Database => TimeSource::Database {
                    max_skew: Duration::from_secs(config.clock.max_skew_secs),
                },
                CutoffClock::App => TimeSource::App,
            },
        });

        if record_history {
            close_stale_runs(&shared).await;
            catch_up(&shared).await;
        }
        // One timer per distinct schedule: jobs that share a cron expression (and zone) wake
        // together, and the next fire time is computed once for all of them.
        let mut groups: BTreeMap<(String, Option<&'static str>), Vec<String>> = BTreeMap::new();
        for (name, slot) in &shared.slots {
            if slot.enabled {
                // Known before the timer task first runs, so `jobs()` shows it at once.
                slot.set_next(slot.schedule.next_after(shared.clock.now()));
                let key = (
                    slot.schedule.expression().to_owned(),
                    slot.schedule.time_zone().map(|tz| tz.name()),
                );
                groups.entry(key).or_default().push(name.clone());
            }
        }
        for names in groups.into_values() {
            shared.tracker.spawn(tick_loop(shared.clone(), names));
        }
        if let (true, Some(days)) = (record_history, config.retention.keep_days) {
            shared.tracker.spawn(retention_loop(
                shared.clone(),
                days,
                config.retention.clone(),
            ));
        }
        tracing::info!(
            instance = %shared.instance,
            jobs = shared.slots.len(),
            coordination = shared.leases.is_some(),
            "scheduler started"
        );
        Ok(SchedulerHandle { shared })
    }
}

/// State shared by the handle, the timers and the runs.
pub(crate) struct Shared {
    slots: BTreeMap<String, Slot>,
    store: ExecutionStore,
    leases: Option<LeaseStore>,
    lease_ttl: Duration,
    db: Database,
    clock: SharedClock,
    instance: String,
    /// Fired by shutdown: no new runs.
    stop_firing: CancellationToken,
    /// Fired when the shutdown grace period is over: running jobs are cancelled.
    cancel_runs: CancellationToken,
    tracker: TaskTracker,
    record_history: bool,
    local_ids: AtomicI64,
    /// Where runs take their cut-offs from.
    time_source: TimeSource,
}

/// One job as scheduled.
pub(crate) struct Slot {
    job: Arc<dyn Job>,
    schedule: Schedule,
    enabled: bool,
    timeout: Duration,
    misfire: MisfirePolicy,
    running: AtomicBool,
    next_run: Mutex<Option<DateTime<Utc>>>,
}

impl Slot {
    fn info(&self, shared: &Shared) -> JobInfo {
        JobInfo {
            name: self.job.name().to_owned(),
            description: self.job.description().to_owned(),
            schedule: self.schedule.clone(),
            enabled: self.enabled,
            running: self.running.load(Ordering::Acquire),
            next_run_at: if self.enabled && !shared.stop_firing.is_cancelled() {
                *self.next_run.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                None
            },
            timeout: self.timeout,
        }
    }

    fn set_next(&self, next: Option<DateTime<Utc>>) {
        *self.next_run.lock().unwrap_or_else(|e| e.into_inner()) = next;
    }
}

fn default_instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Sleep until each fire time of a group of jobs sharing one schedule, and start their runs.
async fn tick_loop(shared: Arc<Shared>, names: Vec<String>) {
    let slots: Vec<&Slot> = names.iter().filter_map(|n| shared.slots.get(n)).collect();
    let Some(schedule) = slots.first().map(|s| s.schedule.clone()) else {
        return;
    };
    let mut last_tick: Option<DateTime<Utc>> = None;
    loop {
        let now = shared.clock.now();
        // Never fire the same tick twice, even if the wall clock steps back.
        let from = last_tick.filter(|t| *t > now).unwrap_or(now);
        let Some(next) = schedule.next_after(from) else {
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
        for name in &names {
            shared
                .tracker
                .spawn(fire(shared.clone(), name.clone(), next));
        }
    }
    for slot in &slots {
        slot.set_next(None);
    }
}

/// Run one scheduled tick of one job.
async fn fire(shared: Arc<Shared>, name: String, tick: DateTime<Utc>) {
    let Some(slot) = shared.slots.get(&name) else {
        return;
    };
    match run::begin(&shared, slot, Trigger::Scheduled { fire_time: tick }).await {
        Ok(prepared) => prepared.execute().await,
        Err(Error::AlreadyRunning(_)) => {
            tracing::debug!(job = %name, %tick, "tick not run: job already running (here or elsewhere)");
        }
        Err(Error::ShutDown) => {}
        Err(e) => tracing::warn!(job = %name, %tick, error = %e, "tick not run"),
    }
}

/// Close runs left open by processes that died, for every job nobody is running now.
async fn close_stale_runs(shared: &Shared) {
    let now = shared.clock.now();
    for name in shared.slots.keys() {
        let result = match &shared.leases {
            Some(leases) => {
                match leases
                    .claim(
                        name,
                        &shared.instance,
                        ClaimKind::Now,
                        now,
                        shared.lease_ttl,
                    )
                    .await
                {
                    Ok(Some(lease)) => {
                        let closed = shared.store.close_abandoned(name, None, now).await;
                        let _ = leases.release(&lease).await;
                        closed
                    }
                    Ok(None) => Ok(0), // somebody is running it right now
                    Err(e) => Err(e),
                }
            }
            None => shared.store.close_abandoned(name, None, now).await,
        };
        match result {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(job = %name, closed = n, "closed runs abandoned by a dead process")
            }
            Err(e) => tracing::warn!(job = %name, error = %e, "could not check for abandoned runs"),
        }
    }
}

/// Run once each enabled job whose latest tick is newer than its last recorded run.
async fn catch_up(shared: &Arc<Shared>) {
    let now = shared.clock.now();
    for (name, slot) in &shared.slots {
        if !slot.enabled || slot.misfire == MisfirePolicy::Skip {
            continue;
        }
        let Some(tick) = slot.schedule.latest_at_or_before(now) else {
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

/// Purge old history now and then, in small batches, off the run path.
async fn retention_loop(shared: Arc<Shared>, keep_days: u32, cfg: RetentionConfig) {
    let interval = Duration::from_secs(cfg.interval_secs.max(1));
    loop {
        let cutoff = shared.clock.now() - chrono::Duration::days(i64::from(keep_days));
        let mut purged = 0u64;
        loop {
            if shared.stop_firing.is_cancelled() {
                return;
            }
            match shared.store.purge_batch(cutoff, cfg.batch_size).await {
                Ok(n) => {
                    purged += n;
                    if n < u64::from(cfg.batch_size.max(1)) {
                        break;
                    }
                    // Let the host's own writes in between batches.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "history purge failed; will retry next interval");
                    break;
                }
            }
        }
        if purged > 0 {
            tracing::info!(purged, %cutoff, "purged old job history");
        }
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
