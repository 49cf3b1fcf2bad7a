//! Building and starting a scheduler: configuration is validated, the tables migrated,
//! abandoned runs closed and missed ticks caught up before the timers start.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alerts;
use super::config::{AlertsConfig, CutoffClock, SchedulerConfig};
use super::effective::Base;
use super::handle::SchedulerHandle;
use super::identity::{default_instance, lease_holder};
use super::info::{DEFAULT_RETRY_BACKOFF, JobPolicy};
use super::shared::{NO_SKEW, Shared, SkewState};
use super::slot::Slot;
use super::timer_groups::TimerGroups;
use super::{backfill, heartbeat, recovery, retention, runtime, takeover, timers};
use crate::clock::{SharedClock, SystemClock};
use crate::db::Database;
use crate::error::{Error, Result};
use crate::job::TimeSource;
use crate::lease::LeaseStore;
use crate::observe::{Observers, RunObserver};
use crate::registry::Registry;
use crate::settings::SettingsStore;
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
            observers: Vec::new(),
            alerts: None,
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
    observers: Vec<Arc<dyn RunObserver>>,
    /// Set by [`SchedulerBuilder::alerts`]: wins over the configuration's `[alerts]`.
    alerts: Option<AlertsConfig>,
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

    /// Attach a [`RunObserver`] that sees every run start and end and every tick (metrics,
    /// tracing exporters, webhooks); call it again to attach more. Observers are called in
    /// the order they were attached. See [`crate::observe`].
    pub fn observer(mut self, observer: impl RunObserver) -> Self {
        self.observers.push(Arc::new(observer));
        self
    }

    /// Where alerts go (see [`crate::alert`]), whatever [`config`](Self::config) says.
    pub fn alerts(mut self, alerts: AlertsConfig) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Send alerts to `url` (`[alerts] webhook_url`); checked at [`start`](Self::start).
    pub fn webhook_url(self, url: impl Into<String>) -> Self {
        self.alerts(AlertsConfig::webhook(url))
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
            mut observers,
            alerts,
        } = self;
        let mut config = config;
        if let Some(alerts) = alerts {
            config.alerts = alerts;
        }

        config.validate()?;
        let alerting = alerts::parts(&config, record_history, &db)?;
        for name in config.jobs.keys() {
            if registry.get(name).is_none() {
                return Err(Error::UnknownJob(name.clone()));
            }
        }
        let default_timeout = Duration::from_secs(config.default_timeout_secs.max(1));
        let mut slots = BTreeMap::new();
        for reg in registry.iter() {
            let over = config.jobs.get(reg.name()).cloned().unwrap_or_default();
            let base = Base {
                default_schedule: reg.default_schedule().clone(),
                expression: over
                    .schedule
                    .clone()
                    .unwrap_or_else(|| reg.default_schedule().expression().to_owned()),
                time_zone: over.time_zone.clone(),
                enabled: over.enabled.unwrap_or(true),
                timeout: over
                    .timeout_secs
                    .map(|s| Duration::from_secs(s.max(1)))
                    .unwrap_or(default_timeout),
                policy: JobPolicy {
                    misfire: over.misfire.unwrap_or_default(),
                    overlap: over.overlap.unwrap_or_default(),
                    catch_up_window: over.catch_up_window_secs.map(Duration::from_secs),
                    jitter: Duration::from_secs(over.jitter_secs.unwrap_or(0)),
                    pause_after_failures: over.pause_after_failures.unwrap_or(0),
                    retry_attempts: over.retry_attempts.unwrap_or(0),
                    retry_backoff: over
                        .retry_backoff_secs
                        .map_or(DEFAULT_RETRY_BACKOFF, Duration::from_secs),
                },
            };
            // A bad host schedule or zone is an error here; runtime settings come later.
            let slot = Slot::new(
                reg.job().clone(),
                base,
                over.overdue_after_secs.map(Duration::from_secs),
            )?;
            slots.insert(reg.name().to_owned(), Arc::new(slot));
        }

        let store = ExecutionStore::with_tables(db.clone(), config.tables.clone());
        let lease_ttl = Duration::from_secs(config.coordination.lease_ttl_secs.max(3));
        let statement_timeout = config
            .coordination
            .statement_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| {
                (lease_ttl / 6).clamp(Duration::from_millis(250), Duration::from_secs(5))
            });
        let leases = config.coordination.enabled.then(|| {
            LeaseStore::new(db.clone(), config.tables.leases.clone())
                .with_statement_timeout(statement_timeout)
        });
        // Runtime settings live in tables of the same migrations: kept whenever the scheduler
        // has tables at all, in memory only otherwise.
        let persistent = record_history || leases.is_some();
        if record_history {
            store.migrate().await?;
        } else if persistent {
            // Leases migrate themselves (below); without history nothing else but the
            // runtime settings is needed.
            store.migrate_control_only().await?;
        }
        let settings = persistent.then(|| SettingsStore::new(db.clone(), &config.tables));
        // Read before the settings, so a change written in between is reloaded, not missed.
        let (settings_version, stored) = match &settings {
            Some(s) => (s.version().await?, s.load().await?),
            None => (0, BTreeMap::new()),
        };
        let names: Vec<&str> = slots.keys().map(String::as_str).collect();
        if let Some(leases) = &leases {
            // The lease table is its own: created even if the history's migrations recorded
            // an older lease-table name, or run without history.
            leases.migrate().await?;
            leases.ensure_rows(&names).await?;
        }
        if record_history {
            // First-seen dates: ticks before a job was first seen never make it overdue.
            // Not fatal: health treats a job without a date as seen just now.
            if let Err(e) = store.register_jobs(&names, clock.now()).await {
                tracing::warn!(error = %e, "could not record the jobs' first-seen dates");
            }
        }

        let instance = config
            .coordination
            .instance
            .clone()
            .unwrap_or_else(default_instance);
        let shared = Arc::new(Shared {
            slots,
            store,
            settings,
            timers: TimerGroups::default(),
            leases,
            lease_ttl,
            cancel_grace: Duration::from_secs(config.cancel_grace_secs),
            skew: Mutex::new(SkewState::default()),
            skew_us: AtomicI64::new(NO_SKEW),
            warn_skew: chrono::Duration::seconds(
                i64::try_from(config.clock.warn_skew_secs).unwrap_or(i64::MAX / 1000),
            ),
            db,
            clock,
            holder: lease_holder(&instance),
            instance,
            stop_firing: CancellationToken::new(),
            cancel_runs: CancellationToken::new(),
            tracker: TaskTracker::new(),
            record_history,
            capture_run_logs: config.capture_run_logs,
            local_ids: AtomicI64::new(0),
            observers: Observers::new({
                if let Some(observer) = alerting.observer {
                    observers.push(Arc::new(observer));
                }
                observers
            }),
            alerts: alerting.events,
            time_source: match config.clock.cutoffs {
                CutoffClock::Database => TimeSource::Database {
                    max_skew: Duration::from_secs(config.clock.max_skew_secs),
                },
                CutoffClock::App => TimeSource::App,
            },
        });

        // Measured before anything is claimed, so the first ticks already fire by the
        // database's clock; claims measure it again.
        match tokio::time::timeout(
            statement_timeout,
            shared.db.clock_skew(shared.clock.as_ref()),
        )
        .await
        {
            Ok(Ok(skew)) => shared.observe_skew(skew),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not read the database's clock"),
            Err(_) => tracing::warn!("could not read the database's clock: timed out"),
        }
        // Before catch-up, so a job paused before a restart is not caught up either; the
        // timers are placed below.
        for (name, runtime) in stored {
            if let Some(slot) = shared.slots.get(&name) {
                slot.apply(runtime);
            }
        }
        if record_history {
            recovery::close_stale_runs(&shared).await;
            recovery::catch_up(&shared).await;
        }
        // One timer per distinct schedule: jobs that share a cron expression (and zone) wake
        // together, and the next fire time is computed once for all of them.
        for slot in shared.slots.values() {
            timers::place(&shared, slot);
            // A backfill left in progress by a fleet that stopped goes on.
            backfill::advance(&shared, slot);
        }
        shared
            .tracker
            .spawn(takeover::takeover_loop(shared.clone()));
        if record_history {
            let started_at = shared.clock.now();
            shared
                .tracker
                .spawn(heartbeat::heartbeat_loop(shared.clone(), started_at));
        }
        shared.tracker.spawn(runtime::watch_loop(
            shared.clone(),
            settings_version,
            Duration::from_millis(config.runtime_settings.poll_interval_ms.max(1000)),
        ));
        // `keep_days = 0` is how a file says "keep everything" (it cannot say None).
        if let (true, Some(days @ 1..)) = (record_history, config.retention.keep_days) {
            shared.tracker.spawn(retention::retention_loop(
                shared.clone(),
                days,
                config.retention.clone(),
            ));
        }
        if let Some((rx, task)) = alerting.task {
            shared
                .tracker
                .spawn(alerts::alert_loop(shared.clone(), rx, task));
        }
        if let Some((rx, client)) = alerting.pings {
            shared
                .tracker
                .spawn(alerts::ping_loop(shared.clone(), rx, client));
        }
        tracing::info!(
            instance = %shared.instance,
            lease_holder = %shared.holder,
            jobs = shared.slots.len(),
            coordination = shared.leases.is_some(),
            "scheduler started"
        );
        Ok(SchedulerHandle { shared })
    }
}
