//! Runtime settings and the audit log: what operators change while the fleet runs.
//!
//! # Runtime settings
//! An operator may pause, resume, reschedule (cron, time zone, timeout) and reset a job at
//! run time ([`SchedulerHandle::pause`](crate::SchedulerHandle::pause) and its siblings, or
//! the admin API). The changes are rows of the settings table (`job_settings` by default,
//! [`TableNames::settings`]), one per job with an override, naming who changed it and when.
//! A setting applies field by field with this precedence:
//!
//! **runtime setting > host configuration ([`JobConfig`](crate::JobConfig)) > the job's
//! default.**
//!
//! - `schedule` and `time_zone` replace the host's (or the job's own) expression and zone;
//!   a zone alone keeps the expression in force and evaluates it in the new zone.
//! - `timeout_secs` replaces the host's `timeout_secs` (or `default_timeout_secs`).
//! - `paused = true` stops scheduled runs on every replica; `resume` writes `paused = false`,
//!   which also outranks a host's `enabled = false`. A paused job can still be triggered by
//!   hand, as a disabled one can.
//! - `reset` sets every override of the job's row to NULL (the row keeps who reset it and
//!   when): host configuration and defaults apply again.
//!
//! # Propagation
//! Every write also increments the revision of one version row (job name `*`, which no job
//! can have). Each scheduler reads that one row by primary key once a second
//! ([`RuntimeConfig::poll_interval_ms`](crate::scheduler::RuntimeConfig)), and reloads the
//! settings only when it changed, so a change is in force on every replica within about a
//! second of being written (2 s is the promise), without any restart. The writing replica
//! applies it at once. The settings are also reloaded in full every minute, a safety net for
//! a version bump lost to a crash between the two statements of a write.
//!
//! # Audit log
//! Every admin mutation (trigger, dry run, pause, resume, reschedule, reset) is one row of the
//! audit table (`job_audit`, [`TableNames::audit`]) with the actor the authorization named,
//! also when it was refused. It is purged with the execution history
//! ([`RetentionConfig::keep_days`](crate::RetentionConfig)).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use barycenter_jobs_core::{async_trait, Database, Job, JobContext, JobError, JobOutput,
//!     Registry, Scheduler};
//! use barycenter_jobs_core::settings::{AuditQuery, RescheduleRequest};
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
//! let handle = Scheduler::builder(Registry::builder().register(Hello).build()?, db).start().await?;
//!
//! let job = handle.pause("hello", "alice").await?;
//! assert!(job.paused && job.next_run_at.is_none());
//! let job = handle
//!     .reschedule("hello", RescheduleRequest::new().schedule("0 */5 * * * *").time_zone("Europe/Berlin"), "alice")
//!     .await?;
//! assert_eq!(job.schedule.expression(), "0 */5 * * * *");
//! assert_eq!(job.default_schedule.expression(), "0 0 * * * *");
//! // Refused, and nothing changes.
//! assert!(handle.reschedule("hello", RescheduleRequest::new().schedule("61 * * * * *"), "alice").await.is_err());
//! let job = handle.reset("hello", "bob").await?;
//! assert!(!job.paused && job.schedule.expression() == "0 0 * * * *");
//!
//! let log = handle.audit_log(&AuditQuery::new().job("hello")).await?;
//! let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
//! assert_eq!(actions, ["reset", "reschedule", "reschedule", "pause"]);
//! # handle.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use sea_query::{Cond, Expr, ExprTrait, Order, Query, SelectStatement};

use crate::db::{Database, DbRow};
use crate::error::Result;
use crate::ident::Identifier;
use crate::scheduler::{MisfirePolicy, OverlapPolicy};
use crate::store::TableNames;
use crate::store::migrations::settings::ensure_version_row;
use crate::store::schema::{Audit, Settings, VERSION_ROW};

/// Largest `limit` [`SettingsStore::audit_log`] accepts.
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// One job's runtime overrides, as stored. `None` fields defer to host configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeSettings {
    /// `Some(true)`: paused by an operator; `Some(false)`: resumed (outranks the host's
    /// `enabled = false`); `None`: as configured.
    pub paused: Option<bool>,
    /// Cron expression replacing the configured one.
    pub schedule: Option<String>,
    /// IANA zone replacing the configured one.
    pub time_zone: Option<String>,
    /// Timeout in seconds replacing the configured one.
    pub timeout_secs: Option<u64>,
    /// What to do about missed ticks, replacing the configured policy.
    pub misfire: Option<MisfirePolicy>,
    /// What a tick that comes due while the job runs does, replacing the configured policy.
    pub overlap: Option<OverlapPolicy>,
    /// Missed ticks older than this many seconds are never caught up (replacing the
    /// configured window).
    pub catch_up_window_secs: Option<u64>,
    /// A scheduled tick starts up to this many seconds after the tick (replacing the
    /// configured jitter).
    pub jitter_secs: Option<u64>,
    /// The job is paused by the system after this many consecutive failed ticks; 0 never
    /// (replacing the configured count).
    pub pause_after_failures: Option<u32>,
    /// Extra attempts at a failed tick (replacing the configured count).
    pub retry_attempts: Option<u32>,
    /// The first retry's delay in seconds (replacing the configured one).
    pub retry_backoff_secs: Option<u64>,
    /// Why the job is paused, as its pauser wrote it (with `paused = Some(true)`).
    pub pause_note: Option<String>,
    /// When the pause ends by itself.
    pub paused_until: Option<DateTime<Utc>>,
    /// Who paused the job (`system` for a pause after failures).
    pub paused_by: Option<String>,
    /// A backfill in progress (cleared when it is done, cancelled, or the job is paused or
    /// reset).
    pub backfill: Option<Backfill>,
    /// Who made the last change.
    pub changed_by: Option<String>,
    /// When (by the database's clock).
    pub changed_at: Option<DateTime<Utc>>,
}

impl RuntimeSettings {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.paused.is_none()
            && self.schedule.is_none()
            && self.time_zone.is_none()
            && self.timeout_secs.is_none()
            && self.misfire.is_none()
            && self.overlap.is_none()
            && self.catch_up_window_secs.is_none()
            && self.jitter_secs.is_none()
            && self.pause_after_failures.is_none()
            && self.retry_attempts.is_none()
            && self.retry_backoff_secs.is_none()
            && self.backfill.is_none()
    }
}

/// A backfill an operator asked for
/// ([`SchedulerHandle::backfill`](crate::SchedulerHandle::backfill)): every tick of the
/// job's schedule in force within `[from, to]` runs once, oldest first, one at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backfill {
    /// The range's start (whole seconds).
    pub from: DateTime<Utc>,
    /// The range's end, included (whole seconds).
    pub to: DateTime<Utc>,
    /// Who asked for it.
    pub requested_by: String,
}

/// What [`SchedulerHandle::reschedule`](crate::SchedulerHandle::reschedule) changes; a
/// `None` field keeps the setting in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RescheduleRequest {
    /// New cron expression (five or six fields).
    pub schedule: Option<String>,
    /// New IANA time zone (`Europe/Berlin`, `UTC`).
    pub time_zone: Option<String>,
    /// New timeout in seconds (at least 1).
    pub timeout_secs: Option<u64>,
}

impl RescheduleRequest {
    /// A request that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the cron expression.
    pub fn schedule(mut self, expression: impl Into<String>) -> Self {
        self.schedule = Some(expression.into());
        self
    }

    /// Set the time zone.
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = Some(zone.into());
        self
    }

    /// Set the timeout, in seconds.
    pub fn timeout_secs(mut self, secs: u64) -> Self {
        self.timeout_secs = Some(secs);
        self
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.schedule.is_none() && self.time_zone.is_none() && self.timeout_secs.is_none()
    }
}

/// What [`SchedulerHandle::pause_with`](crate::SchedulerHandle::pause_with) says about a
/// pause besides that it happens: why, and until when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PauseRequest {
    /// Why, for the next operator (at most
    /// [`MAX_PAUSE_NOTE_CHARS`](crate::scheduler::bounds::MAX_PAUSE_NOTE_CHARS) characters).
    pub note: Option<String>,
    /// When the job resumes by itself (in the future, at most
    /// [`MAX_PAUSE_SECS`](crate::scheduler::bounds::MAX_PAUSE_SECS) away); `None`: until
    /// somebody resumes it.
    pub until: Option<DateTime<Utc>>,
}

impl PauseRequest {
    /// A pause with neither note nor end.
    pub fn new() -> Self {
        Self::default()
    }

    /// Say why.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Resume by itself at `until`.
    pub fn until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }
}

/// What [`SchedulerHandle::set_policy`](crate::SchedulerHandle::set_policy) changes; a
/// `None` field keeps the policy in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicyRequest {
    /// What to do about missed ticks.
    pub misfire: Option<MisfirePolicy>,
    /// What a tick that comes due while the job runs does.
    pub overlap: Option<OverlapPolicy>,
    /// Missed ticks older than this many seconds are never caught up.
    pub catch_up_window_secs: Option<u64>,
    /// A scheduled tick starts up to this many seconds after the tick.
    pub jitter_secs: Option<u64>,
    /// Paused by the system after this many consecutive failed scheduled runs (0: never).
    pub pause_after_failures: Option<u32>,
    /// Extra attempts at a tick whose run failed or timed out.
    pub retry_attempts: Option<u32>,
    /// The first retry's delay, in seconds (1 to 3600).
    pub retry_backoff_secs: Option<u64>,
}

impl PolicyRequest {
    /// A request that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the misfire policy.
    pub fn misfire(mut self, misfire: MisfirePolicy) -> Self {
        self.misfire = Some(misfire);
        self
    }

    /// Set the overlap policy.
    pub fn overlap(mut self, overlap: OverlapPolicy) -> Self {
        self.overlap = Some(overlap);
        self
    }

    /// Set the number of retries of a failed tick.
    pub fn retry_attempts(mut self, attempts: u32) -> Self {
        self.retry_attempts = Some(attempts);
        self
    }

    /// Set the first retry's delay, in seconds.
    pub fn retry_backoff_secs(mut self, secs: u64) -> Self {
        self.retry_backoff_secs = Some(secs);
        self
    }

    /// Set the catch-up window, in seconds.
    pub fn catch_up_window_secs(mut self, secs: u64) -> Self {
        self.catch_up_window_secs = Some(secs);
        self
    }

    /// Set the jitter, in seconds.
    pub fn jitter_secs(mut self, secs: u64) -> Self {
        self.jitter_secs = Some(secs);
        self
    }

    /// Set the number of consecutive failures that pause the job (0: never).
    pub fn pause_after_failures(mut self, failures: u32) -> Self {
        self.pause_after_failures = Some(failures);
        self
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.misfire.is_none()
            && self.overlap.is_none()
            && self.catch_up_window_secs.is_none()
            && self.jitter_secs.is_none()
            && self.pause_after_failures.is_none()
            && self.retry_attempts.is_none()
            && self.retry_backoff_secs.is_none()
    }
}

/// The kinds of admin mutations the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A manual run.
    Trigger,
    /// A dry run (counts, changes nothing).
    DryRun,
    /// Scheduled runs stopped.
    Pause,
    /// Scheduled runs started again.
    Resume,
    /// Schedule, zone or timeout changed.
    Reschedule,
    /// Runtime settings dropped.
    Reset,
    /// Scheduling policy changed (retries, overlap, misfire, catch-up window, jitter, pause
    /// after failures).
    Policy,
    /// A backfill asked for, cancelled, or finished.
    Backfill,
    /// A running run cancelled.
    Cancel,
    /// An alert delivered to the webhook, or given up (by the actor `system`).
    Alert,
}

impl AuditAction {
    /// The label stored in the `action` column: `trigger`, `dry_run`, `pause`, `resume`,
    /// `reschedule`, `reset`, `policy`, `backfill`, `cancel`, `alert`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuditAction::Trigger => "trigger",
            AuditAction::DryRun => "dry_run",
            AuditAction::Pause => "pause",
            AuditAction::Resume => "resume",
            AuditAction::Reschedule => "reschedule",
            AuditAction::Reset => "reset",
            AuditAction::Policy => "policy",
            AuditAction::Backfill => "backfill",
            AuditAction::Cancel => "cancel",
            AuditAction::Alert => "alert",
        }
    }
}

/// An audit entry to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Who asked (the principal's name).
    pub actor: String,
    /// What was asked.
    pub action: AuditAction,
    /// Of which job (as given, even when unknown).
    pub job_name: String,
    /// What came of it: the change, the execution id, or why it was refused.
    pub detail: Option<String>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Auto-increment id; newer entries have larger ids.
    pub id: i64,
    /// When it was recorded (the database's clock, millisecond precision).
    pub at: DateTime<Utc>,
    /// Who asked.
    pub actor: String,
    /// `trigger`, `dry_run`, `pause`, `resume`, `reschedule` or `reset`.
    pub action: String,
    /// Of which job.
    pub job_name: String,
    /// What came of it.
    pub detail: Option<String>,
}

/// Filters for [`SettingsStore::audit_log`]; newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries of this job.
    pub job_name: Option<String>,
    /// At most this many (clamped to 1..=[`MAX_AUDIT_LIMIT`]; default 50).
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            job_name: None,
            limit: 50,
        }
    }
}

impl AuditQuery {
    /// The 50 newest entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only entries of `name`.
    pub fn job(mut self, name: impl Into<String>) -> Self {
        self.job_name = Some(name.into());
        self
    }

    /// At most `limit` entries.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}

/// Reads and writes the settings and audit tables. The scheduler owns one; hosts reach it
/// through the [`SchedulerHandle`](crate::SchedulerHandle) methods.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    db: Database,
    settings: Identifier,
    audit: Identifier,
}

/// A column of the settings table to set, and its value.
pub(crate) type Assignment = (Settings, Expr);

/// At most `max` characters of `s` (MySQL in strict mode refuses longer values).
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl SettingsStore {
    /// A store over `db` using the settings and audit tables named in `tables` (created by
    /// [`ExecutionStore::migrate`](crate::ExecutionStore::migrate)).
    pub fn new(db: Database, tables: &TableNames) -> Self {
        Self {
            db,
            settings: tables.settings.clone(),
            audit: tables.audit.clone(),
        }
    }

    /// The revision of the version row: it grows with every write, so a reader reloads only
    /// when it changed. One primary-key read.
    pub async fn version(&self) -> Result<i64> {
        let row = self
            .db
            .fetch_optional(
                Query::select()
                    .column(Settings::Revision)
                    .from(self.settings.clone())
                    .and_where(Expr::col(Settings::JobName).eq(VERSION_ROW)),
            )
            .await?;
        match row {
            Some(row) => row.i64("revision"),
            None => Ok(0),
        }
    }

    /// Every job's overrides, by job name.
    pub async fn load(&self) -> Result<BTreeMap<String, RuntimeSettings>> {
        let mut q = self.select();
        q.and_where(Expr::col(Settings::JobName).ne(VERSION_ROW));
        let mut out = BTreeMap::new();
        for row in self.db.fetch_all(&q).await? {
            let name = row.opt_string("job_name")?.unwrap_or_default();
            out.insert(name, decode(&row)?);
        }
        Ok(out)
    }

    /// One job's overrides (empty when it has none).
    pub async fn get(&self, job_name: &str) -> Result<RuntimeSettings> {
        let mut q = self.select();
        q.and_where(Expr::col(Settings::JobName).eq(job_name));
        match self.db.fetch_optional(&q).await? {
            Some(row) => decode(&row),
            None => Ok(RuntimeSettings::default()),
        }
    }

    /// Set these columns of `job_name`'s row (creating it), naming `actor`, then bump the
    /// version. Only the columns given are written, so two operators changing different
    /// settings of one job at once do not undo each other.
    pub(crate) async fn set(&self, job_name: &str, actor: &str, set: &[Assignment]) -> Result<()> {
        let actor = clip(actor, 255);
        let update = || {
            let mut u = Query::update();
            u.table(self.settings.clone())
                .value(Settings::ChangedBy, actor.clone())
                .value(Settings::ChangedAtMs, self.db.now_ms_expr())
                .value(Settings::Revision, Expr::col(Settings::Revision).add(1));
            for (col, value) in set {
                u.value(*col, value.clone());
            }
            u.and_where(Expr::col(Settings::JobName).eq(job_name));
            u
        };
        // The revision changes with every update, so MySQL counts the row as affected too.
        if self.db.execute(&update()).await? == 0 {
            let mut columns = vec![
                Settings::JobName,
                Settings::ChangedBy,
                Settings::ChangedAtMs,
                Settings::Revision,
            ];
            let mut values: Vec<Expr> = vec![
                job_name.into(),
                actor.clone().into(),
                self.db.now_ms_expr(),
                1i64.into(),
            ];
            for (col, value) in set {
                columns.push(*col);
                values.push(value.clone());
            }
            let insert = Query::insert()
                .into_table(self.settings.clone())
                .columns(columns)
                .values_panic(values)
                .to_owned();
            if let Err(e) = self.db.execute(&insert).await {
                // Another writer created the row meanwhile: update it instead.
                if self.db.execute(&update()).await? == 0 {
                    return Err(e);
                }
            }
        }
        self.bump().await
    }

    /// End `job_name`'s pause if it was paused until a time that has passed by the
    /// database's clock, naming `actor`; true when this call ended it. The condition is in
    /// the statement, so of all the replicas that notice the end at once exactly one ends
    /// the pause (and records it).
    pub async fn resume_expired(&self, job_name: &str, actor: &str) -> Result<bool> {
        let null_int = Expr::val(Option::<i64>::None);
        let null_text = Expr::val(Option::<String>::None);
        let stmt = Query::update()
            .table(self.settings.clone())
            .value(Settings::Paused, 0i64)
            .value(Settings::PauseNote, null_text.clone())
            .value(Settings::PausedUntilMs, null_int)
            .value(Settings::PausedBy, null_text)
            .value(Settings::ChangedBy, clip(actor, 255))
            .value(Settings::ChangedAtMs, self.db.now_ms_expr())
            .value(Settings::Revision, Expr::col(Settings::Revision).add(1))
            .and_where(Expr::col(Settings::JobName).eq(job_name))
            .and_where(Expr::col(Settings::Paused).eq(1))
            .and_where(Expr::col(Settings::PausedUntilMs).lte(self.db.now_ms_expr()))
            .to_owned();
        if self.db.execute(&stmt).await? == 0 {
            return Ok(false);
        }
        self.bump().await?;
        Ok(true)
    }

    /// End `job_name`'s backfill of `[from, to]`, its last tick run, as the actor `system`;
    /// true when this call ended it. Conditional on that very range, so a newer backfill
    /// asked meanwhile stays, and of replicas that finish at once exactly one records it.
    pub async fn finish_backfill(
        &self,
        job_name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let stmt = Query::update()
            .table(self.settings.clone())
            .value(Settings::BackfillFrom, Expr::val(Option::<i64>::None))
            .value(Settings::BackfillTo, Expr::val(Option::<i64>::None))
            .value(Settings::BackfillBy, Expr::val(Option::<String>::None))
            .value(Settings::Revision, Expr::col(Settings::Revision).add(1))
            .and_where(Expr::col(Settings::JobName).eq(job_name))
            .and_where(Expr::col(Settings::BackfillFrom).eq(from.timestamp()))
            .and_where(Expr::col(Settings::BackfillTo).eq(to.timestamp()))
            .to_owned();
        if self.db.execute(&stmt).await? == 0 {
            return Ok(false);
        }
        self.bump().await?;
        Ok(true)
    }

    /// Pause `job_name` as `actor` with `note`, unless it is paused already; true when this
    /// call paused it. The condition is in the statement (and a row created by a racer makes
    /// this one's insert fail), so of replicas that decide at once to pause a job exactly one
    /// does (and records it).
    pub async fn pause_unless_paused(
        &self,
        job_name: &str,
        actor: &str,
        note: &str,
    ) -> Result<bool> {
        let actor = clip(actor, 255);
        let note = clip(note, 500);
        let stmt = Query::update()
            .table(self.settings.clone())
            .value(Settings::Paused, 1i64)
            .value(Settings::PauseNote, note.clone())
            .value(Settings::PausedUntilMs, Expr::val(Option::<i64>::None))
            .value(Settings::PausedBy, actor.clone())
            // A pause stops a backfill in progress.
            .value(Settings::BackfillFrom, Expr::val(Option::<i64>::None))
            .value(Settings::BackfillTo, Expr::val(Option::<i64>::None))
            .value(Settings::BackfillBy, Expr::val(Option::<String>::None))
            .value(Settings::ChangedBy, actor.clone())
            .value(Settings::ChangedAtMs, self.db.now_ms_expr())
            .value(Settings::Revision, Expr::col(Settings::Revision).add(1))
            .and_where(Expr::col(Settings::JobName).eq(job_name))
            .cond_where(
                Cond::any()
                    .add(Expr::col(Settings::Paused).is_null())
                    .add(Expr::col(Settings::Paused).eq(0)),
            )
            .to_owned();
        if self.db.execute(&stmt).await? == 0 {
            // No row (nothing overridden yet), or paused already: only the first holds.
            let insert = Query::insert()
                .into_table(self.settings.clone())
                .columns([
                    Settings::JobName,
                    Settings::Paused,
                    Settings::PauseNote,
                    Settings::PausedBy,
                    Settings::ChangedBy,
                    Settings::ChangedAtMs,
                    Settings::Revision,
                ])
                .values_panic([
                    job_name.into(),
                    1i64.into(),
                    note.into(),
                    actor.clone().into(),
                    actor.into(),
                    self.db.now_ms_expr(),
                    1i64.into(),
                ])
                .to_owned();
            if self.db.execute(&insert).await.is_err() {
                return Ok(false);
            }
        }
        self.bump().await?;
        Ok(true)
    }

    /// Tell every reader that something changed. Comes after the change itself, so a reader
    /// that sees the new revision also sees the change.
    async fn bump(&self) -> Result<()> {
        let bump = Query::update()
            .table(self.settings.clone())
            .value(Settings::Revision, Expr::col(Settings::Revision).add(1))
            .and_where(Expr::col(Settings::JobName).eq(VERSION_ROW))
            .to_owned();
        if self.db.execute(&bump).await? == 0 {
            ensure_version_row(&self.db, &self.settings).await?;
            self.db.execute(&bump).await?;
        }
        Ok(())
    }

    /// Record one audit entry; returns its id.
    pub async fn record_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        let stmt = Query::insert()
            .into_table(self.audit.clone())
            .columns([
                Audit::AtMs,
                Audit::Actor,
                Audit::Action,
                Audit::JobName,
                Audit::Detail,
            ])
            .values_panic([
                self.db.now_ms_expr(),
                clip(&entry.actor, 255).into(),
                entry.action.as_str().into(),
                clip(&entry.job_name, 191).into(),
                entry.detail.clone().into(),
            ])
            .to_owned();
        self.db.insert_returning_id(&stmt, "id").await
    }

    /// Replace the detail of audit entry `id` (an entry written before its change, completed
    /// with the outcome once the change is made).
    pub async fn complete_audit(&self, id: i64, detail: &str) -> Result<()> {
        let stmt = Query::update()
            .table(self.audit.clone())
            .value(Audit::Detail, detail)
            .and_where(Expr::col(Audit::Id).eq(id))
            .to_owned();
        self.db.execute(&stmt).await?;
        Ok(())
    }

    /// Audit entries matching `query`, newest first.
    pub async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut q = Query::select();
        q.columns([
            Audit::Id,
            Audit::AtMs,
            Audit::Actor,
            Audit::Action,
            Audit::JobName,
            Audit::Detail,
        ])
        .from(self.audit.clone());
        if let Some(name) = &query.job_name {
            q.and_where(Expr::col(Audit::JobName).eq(name.as_str()));
        }
        q.order_by(Audit::Id, Order::Desc)
            .limit(u64::from(query.limit.clamp(1, MAX_AUDIT_LIMIT)));
        self.db
            .fetch_all(&q)
            .await?
            .iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.i64("id")?,
                    at: from_ms(row.i64("at_ms")?),
                    actor: row.opt_string("actor")?.unwrap_or_default(),
                    action: row.opt_string("action")?.unwrap_or_default(),
                    job_name: row.opt_string("job_name")?.unwrap_or_default(),
                    detail: row.opt_string("detail")?,
                })
            })
            .collect()
    }

    /// Delete up to `batch` audit entries older than `cutoff`; returns how many. Call
    /// repeatedly until it returns less than `batch`.
    pub async fn purge_audit_batch(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        let before = Cond::all().add(Expr::col(Audit::AtMs).lt(cutoff.timestamp_millis()));
        self.db
            .delete_oldest(&self.audit, Audit::Id, before, batch)
            .await
    }

    fn select(&self) -> SelectStatement {
        // Qualified: on SQLite a connection of the pool whose schema predates a column
        // added by a migration would read an unqualified double-quoted name as a string
        // literal (SQLite's legacy quoting), and the row would lack that column; a qualified
        // unknown column is an error, on which SQLite reloads the schema and prepares again.
        Query::select()
            .columns(
                [
                    Settings::JobName,
                    Settings::Paused,
                    Settings::Schedule,
                    Settings::TimeZone,
                    Settings::TimeoutSecs,
                    Settings::Misfire,
                    Settings::Overlap,
                    Settings::CatchUpWindowSecs,
                    Settings::JitterSecs,
                    Settings::PauseAfterFailures,
                    Settings::RetryAttempts,
                    Settings::RetryBackoffSecs,
                    Settings::PauseNote,
                    Settings::PausedUntilMs,
                    Settings::PausedBy,
                    Settings::BackfillFrom,
                    Settings::BackfillTo,
                    Settings::BackfillBy,
                    Settings::ChangedBy,
                    Settings::ChangedAtMs,
                ]
                .map(|col| (self.settings.clone(), col)),
            )
            .from(self.settings.clone())
            .to_owned()
    }
}

fn decode(row: &DbRow) -> Result<RuntimeSettings> {
    let changed_at = row.opt_i64("changed_at_ms")?.filter(|ms| *ms > 0);
    // A negative count (written by hand) reads as none; a policy name this version does not
    // know (written by a newer one) as "as configured".
    let count = |col: &str| -> Result<Option<u64>> {
        Ok(row.opt_i64(col)?.and_then(|n| u64::try_from(n).ok()))
    };
    Ok(RuntimeSettings {
        paused: row.opt_i64("paused")?.map(|p| p != 0),
        schedule: row.opt_string("schedule")?,
        time_zone: row.opt_string("time_zone")?,
        timeout_secs: row
            .opt_i64("timeout_secs")?
            .map(|s| u64::try_from(s).unwrap_or(1)),
        misfire: row
            .opt_string("misfire")?
            .and_then(|m| MisfirePolicy::parse(&m)),
        overlap: row
            .opt_string("overlap")?
            .and_then(|m| OverlapPolicy::parse(&m)),
        catch_up_window_secs: count("catch_up_window_secs")?,
        jitter_secs: count("jitter_secs")?,
        pause_after_failures: count("pause_after_failures")?
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        retry_attempts: count("retry_attempts")?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        retry_backoff_secs: count("retry_backoff_secs")?,
        pause_note: row.opt_string("pause_note")?,
        paused_until: row.opt_i64("paused_until_ms")?.map(from_ms),
        paused_by: row.opt_string("paused_by")?,
        backfill: match (row.opt_i64("backfill_from")?, row.opt_i64("backfill_to")?) {
            (Some(from), Some(to)) => Some(Backfill {
                from: from_ms(from.saturating_mul(1000)),
                to: from_ms(to.saturating_mul(1000)),
                requested_by: row.opt_string("backfill_by")?.unwrap_or_default(),
            }),
            _ => None,
        },
        changed_by: row.opt_string("changed_by")?,
        changed_at: changed_at.map(from_ms),
    })
}
