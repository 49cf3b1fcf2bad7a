//! Host configuration of the scheduler, deserialisable from TOML (or anything serde reads).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::TableNames;

/// Everything a host can set without recompiling.
///
/// ```
/// use barycenter_jobs_core::SchedulerConfig;
///
/// let cfg: SchedulerConfig = serde_json::from_str(r#"{
///     "jobs": { "cleanup_expired_sessions": { "schedule": "0 */10 * * * *", "timeout_secs": 120 },
///               "cleanup_expired_device_codes": { "enabled": false } },
///     "retention": { "keep_days": 7 }
/// }"#).unwrap();
/// assert_eq!(cfg.retention.keep_days, Some(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Per-job overrides, keyed by job name. A name that is not registered is an error at
    /// start-up, so a typo does not go unnoticed.
    pub jobs: BTreeMap<String, JobConfig>,
    /// Timeout of jobs that set none (seconds). Default: 3600.
    pub default_timeout_secs: u64,
    /// Cross-replica coordination.
    pub coordination: CoordinationConfig,
    /// How long the history is kept.
    pub retention: RetentionConfig,
    /// Table names of the history and the leases.
    pub tables: TableNames,
    /// Which clock cut-offs come from, and how much skew is tolerated.
    pub clock: ClockConfig,
    /// How long a cancelled run (shutdown past its grace, timeout) gets to notice its token
    /// before its future is dropped, in seconds (default 5). Never longer than its lease.
    pub cancel_grace_secs: u64,
    /// How operators' runtime settings reach this scheduler (see [`crate::settings`]).
    pub runtime_settings: RuntimeConfig,
    /// Whether each run's tracing events at `info` and above are kept with its execution
    /// (default true): at most 200 lines and 64 KiB per run, read with
    /// [`ExecutionStore::run_log`](crate::ExecutionStore::run_log). The host's own logging
    /// is the same either way; off, a run's log is empty. Without history nothing is kept.
    pub capture_run_logs: bool,
    /// Where alerts go (see [`crate::alert`]); off unless `webhook_url` is set.
    pub alerts: AlertsConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            jobs: BTreeMap::new(),
            default_timeout_secs: 3600,
            coordination: CoordinationConfig::default(),
            retention: RetentionConfig::default(),
            tables: TableNames::default(),
            clock: ClockConfig::default(),
            cancel_grace_secs: 5,
            runtime_settings: RuntimeConfig::default(),
            capture_run_logs: true,
            alerts: AlertsConfig::default(),
        }
    }
}

impl SchedulerConfig {
    /// Override one job.
    pub fn job(mut self, name: impl Into<String>, config: JobConfig) -> Self {
        self.jobs.insert(name.into(), config);
        self
    }

    /// Single-process mode: no lease rows are written (see [`CoordinationConfig::enabled`]).
    pub fn without_coordination(mut self) -> Self {
        self.coordination.enabled = false;
        self
    }
}

/// Overrides for one job. Unset fields keep the job's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobConfig {
    /// Cron expression replacing the job's own.
    pub schedule: Option<String>,
    /// IANA time zone the schedule is evaluated in (default UTC).
    pub time_zone: Option<String>,
    /// `false` stops scheduled runs; the job can still be triggered by hand.
    pub enabled: Option<bool>,
    /// Cancel a run after this many seconds and record it as failed.
    pub timeout_secs: Option<u64>,
    /// What to do at start-up about a tick missed while no scheduler was up.
    pub misfire: Option<MisfirePolicy>,
    /// What a tick that comes due while the job runs does (default `skip`).
    pub overlap: Option<OverlapPolicy>,
    /// A missed tick older than this many seconds is never caught up (default: no limit).
    pub catch_up_window_secs: Option<u64>,
    /// A scheduled tick starts at the tick plus an offset in `[0, jitter_secs)` drawn from
    /// the job's name and the tick, the same on every replica (default 0: at the tick).
    pub jitter_secs: Option<u64>,
    /// After this many consecutive failed scheduled runs the job is paused by the actor
    /// `system`, with a note saying why (default 0: never).
    pub pause_after_failures: Option<u32>,
    /// Extra attempts at a tick whose scheduled, catch-up or retried run failed or timed out
    /// (never after a cancel or a manual trigger); default 0.
    pub retry_attempts: Option<u32>,
    /// The first retry's delay in seconds, doubled for each attempt after it and capped at
    /// an hour; an attempt that would start at or after the job's next tick is not made
    /// (default 30).
    pub retry_backoff_secs: Option<u64>,
    /// The job is overdue once a tick came due this many seconds ago with no successful run
    /// since (see [`SchedulerHandle::health`](crate::SchedulerHandle::health)). Default: the
    /// smaller of the schedule's interval and one hour, at least 60 s.
    pub overdue_after_secs: Option<u64>,
    /// A `failure` alert is sent from this many consecutive failed ticks on (default 1: for
    /// every failed run); see [`crate::alert`].
    pub alert_after_failures: Option<u32>,
    /// A Healthchecks-style ping URL: `{url}/start` when a run starts, `{url}` when it
    /// succeeds, `{url}/fail` when it fails or times out (best effort, off the run path).
    pub ping_url: Option<String>,
}

impl JobConfig {
    /// A config that only sets the schedule.
    pub fn schedule(expr: impl Into<String>) -> Self {
        Self {
            schedule: Some(expr.into()),
            ..Self::default()
        }
    }

    /// Set the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_secs = Some(timeout.as_secs().max(1));
        self
    }

    /// Enable or disable scheduled runs.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Set the misfire policy.
    pub fn with_misfire(mut self, misfire: MisfirePolicy) -> Self {
        self.misfire = Some(misfire);
        self
    }

    /// Set how long past a tick with no successful run the job counts as overdue.
    pub fn with_overdue_after(mut self, grace: Duration) -> Self {
        self.overdue_after_secs = Some(grace.as_secs());
        self
    }
}

/// Policy for ticks missed while no scheduler was running (`misfire`), bounded by the
/// job's catch-up window (`catch_up_window_secs`: a missed tick older than it is never
/// caught up). A job that never ran is not caught up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MisfirePolicy {
    /// Run once at start-up if the most recent tick is newer than the job's last recorded
    /// run (however many ticks were missed: no burst).
    #[default]
    RunOnce,
    /// Do nothing; wait for the next tick.
    Skip,
    /// Run every missed tick, oldest first, one at a time, at most
    /// [`MAX_CATCH_UP_TICKS`](crate::scheduler::bounds::MAX_CATCH_UP_TICKS) of them (the
    /// newest).
    RunAll,
}

impl MisfirePolicy {
    /// The policy's name, as configuration and the admin API spell it: `skip`, `run_once`,
    /// `run_all`.
    pub fn as_str(&self) -> &'static str {
        match self {
            MisfirePolicy::RunOnce => "run_once",
            MisfirePolicy::Skip => "skip",
            MisfirePolicy::RunAll => "run_all",
        }
    }

    /// The policy named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Skip, Self::RunOnce, Self::RunAll]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// What a tick that comes due while a run of the job is going on (on any replica) does
/// (`overlap`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Nothing: the tick is not run.
    #[default]
    Skip,
    /// The tick runs once right after the running run ends; further ticks that come due
    /// meanwhile are dropped (the newest one is kept).
    BufferOne,
    /// The running run is cancelled, whichever replica runs it, and the tick runs once it
    /// has stopped.
    CancelRunning,
}

impl OverlapPolicy {
    /// The policy's name, as configuration and the admin API spell it: `skip`,
    /// `buffer_one`, `cancel_running`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OverlapPolicy::Skip => "skip",
            OverlapPolicy::BufferOne => "buffer_one",
            OverlapPolicy::CancelRunning => "cancel_running",
        }
    }

    /// The policy named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Skip, Self::BufferOne, Self::CancelRunning]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Alerts (`[alerts]`): one JSON POST per event per fleet; see [`crate::alert`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The webhook the events are POSTed to (`http://` or, with the `alerts-https` feature,
    /// `https://`); a Slack or Mattermost incoming webhook shows the payload's `text`. Unset
    /// (the default): no alerts. Only its host is ever logged: such URLs carry a secret.
    pub webhook_url: Option<String>,
}

impl AlertsConfig {
    /// Alerts to `url`.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self {
            webhook_url: Some(url.into()),
        }
    }
}

/// Cross-replica coordination through lease rows in the shared database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinationConfig {
    /// Claim a lease in the database before each run (default `true`). Turn it off for a
    /// single process that wants no extra writes; several processes sharing a database with
    /// coordination off each run every tick.
    pub enabled: bool,
    /// Lease time-to-live in seconds (default 30); renewed every third of it while running.
    pub lease_ttl_secs: u64,
    /// This scheduler's label in the history, logs and metrics; default `HOST:PID` (and
    /// `HOST:PID/N` for the Nth scheduler of one process). It need not be unique: every lease
    /// decision uses the label plus a random value drawn at start
    /// ([`SchedulerHandle::lease_holder`](crate::SchedulerHandle::lease_holder)), so replicas
    /// that share one configuration file never take each other's claims. Nor does the
    /// start-up sweep of coordination-off schedulers trust it: it closes a run left open by
    /// a crash once the run has outlived its job's timeout (or at once when its label is a
    /// default `HOST:PID` of a process gone from this host).
    pub instance: Option<String>,
    /// Time bound of one lease statement (claim, renewal, release) in milliseconds. Default:
    /// a sixth of the TTL, between 250 and 5,000. A statement that takes longer is abandoned:
    /// a claim counts as lost, a renewal is retried, a release is left to the TTL.
    pub statement_timeout_ms: Option<u64>,
}

impl Default for CoordinationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_ttl_secs: 30,
            instance: None,
            statement_timeout_ms: None,
        }
    }
}

/// Where the instants that decide what a cleanup deletes come from.
///
/// Leases and claims always use the database's clock. Cut-offs ("expired before now") do by
/// default too, so a replica whose clock runs ahead cannot delete rows that are still live:
/// see [`TimeSource`](crate::TimeSource).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// `database` (default) or `app`: the clock runs take their cut-offs from. `app` trusts
    /// the application server's clock, as Barycenter's own cleanups do; choose it when the
    /// host writes expiry times with a clock it trusts more than the database's.
    pub cutoffs: CutoffClock,
    /// With `cutoffs = "database"`, a run is refused (recorded as failed, with the measured
    /// skew in its message) when the application clock differs from the database's by more
    /// than this many seconds (default 30).
    pub max_skew_secs: u64,
    /// The scheduler logs a warning when the skew it measures (at start and at each claim)
    /// exceeds this many seconds (default 5).
    pub warn_skew_secs: u64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            cutoffs: CutoffClock::Database,
            max_skew_secs: 30,
            warn_skew_secs: 5,
        }
    }
}

/// See [`ClockConfig::cutoffs`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutoffClock {
    /// The database's clock.
    #[default]
    Database,
    /// The application server's clock (the scheduler's [`Clock`](crate::Clock)).
    App,
}

/// History retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delete finished runs older than this many days (default 30); `None`, or `0` (the way to
    /// say it in a configuration file), keeps everything.
    pub keep_days: Option<u32>,
    /// How often the purge runs, in seconds (default 3600).
    pub interval_secs: u64,
    /// Rows per DELETE (default 1000), so a purge never holds a long lock.
    pub batch_size: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            keep_days: Some(30),
            interval_secs: 3600,
            batch_size: 1000,
        }
    }
}

/// Propagation of runtime settings (pause, reschedule, ...; see [`crate::settings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// How often the settings' version row is read, in milliseconds (default and minimum
    /// 1000): a change written by any replica is in force here within this interval plus
    /// one read. One primary-key read per interval; the settings themselves are read only
    /// when the version changed (and once a minute in full).
    pub poll_interval_ms: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
        }
    }
}
