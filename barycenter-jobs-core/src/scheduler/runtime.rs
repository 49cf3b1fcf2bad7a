//! Runtime settings in the scheduler: the effective settings of a job (runtime setting >
//! host configuration > the job's default), derived in one place, applied to its slot and
//! its timer group, and kept in step with the settings table by one task.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_query::Expr;

use super::timers::GroupKey;
use super::{Shared, Slot};
use crate::error::{Error, Result};
use crate::schedule::Schedule;
use crate::settings::{
    AuditAction, NewAuditEntry, RescheduleRequest, RuntimeSettings, SettingsColumn,
};

/// How often the settings are reloaded in full even when the version row did not change.
const FULL_RELOAD: Duration = Duration::from_secs(60);

/// What a job is before any runtime setting: host configuration over the job's defaults.
/// Fixed at start.
#[derive(Debug, Clone)]
pub(super) struct Base {
    /// The job's own schedule.
    pub(super) default_schedule: Schedule,
    /// The host's expression, or the job's.
    pub(super) expression: String,
    /// The host's zone (`None`: UTC).
    pub(super) time_zone: Option<String>,
    /// The host's `enabled` (default true).
    pub(super) enabled: bool,
    /// The host's timeout, or the configured default.
    pub(super) timeout: Duration,
}

/// The settings in force for one job, and the timer group it is in.
#[derive(Debug, Clone)]
pub(super) struct SlotState {
    pub(super) runtime: RuntimeSettings,
    pub(super) schedule: Schedule,
    /// Whether ticks start runs.
    pub(super) fires: bool,
    /// Paused by an operator: ticks come due and are skipped.
    pub(super) paused: bool,
    pub(super) timeout: Duration,
    /// The timer group the slot is in now (maintained by `Timers::place`).
    pub(super) group: Option<GroupKey>,
}

impl SlotState {
    /// Derive the effective settings from `base` and `runtime`: the one place that applies
    /// the precedence. Fails on an invalid cron expression or zone.
    pub(super) fn derive(base: &Base, runtime: RuntimeSettings) -> Result<Self> {
        let expression = runtime.schedule.as_deref().unwrap_or(&base.expression);
        let mut schedule = Schedule::parse(expression)?;
        if let Some(tz) = runtime.time_zone.as_deref().or(base.time_zone.as_deref()) {
            schedule = schedule.with_time_zone(tz)?;
        }
        let paused = runtime.paused == Some(true);
        Ok(Self {
            fires: runtime.paused.map_or(base.enabled, |p| !p),
            paused,
            // A stored value past the bound (written by hand or by another version) is
            // clamped: the run path's arithmetic never sees an unbounded timeout.
            timeout: runtime
                .timeout_secs
                .map(|s| Duration::from_secs(s.clamp(1, super::bounds::MAX_TIMEOUT_SECS)))
                .unwrap_or(base.timeout),
            schedule,
            runtime,
            group: None,
        })
    }

    /// [`derive`](Self::derive), falling back to the host's schedule when a stored
    /// expression or zone is not valid (written by hand, or by a newer version).
    pub(super) fn derive_lenient(base: &Base, job: &str, runtime: RuntimeSettings) -> Self {
        match Self::derive(base, runtime.clone()) {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(job, error = %e, "ignoring an invalid stored schedule setting");
                let kept = RuntimeSettings {
                    schedule: None,
                    time_zone: None,
                    ..runtime
                };
                Self::derive(base, kept).unwrap_or_else(|_| Self {
                    runtime: RuntimeSettings::default(),
                    schedule: base.default_schedule.clone(),
                    fires: base.enabled,
                    paused: false,
                    timeout: base.timeout,
                    group: None,
                })
            }
        }
    }

    /// The timer group this state belongs in: jobs that fire, and paused jobs (whose ticks
    /// come due and are counted as skipped); none for a job disabled by configuration.
    pub(super) fn timer_key(&self) -> Option<GroupKey> {
        (self.fires || self.paused).then(|| {
            (
                self.schedule.expression().to_owned(),
                self.schedule.time_zone().map(|tz| tz.name()),
            )
        })
    }
}

impl Slot {
    /// The runtime settings in force with `change` applied to them.
    fn runtime_after(&self, change: &Change) -> RuntimeSettings {
        let mut runtime = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .runtime
            .clone();
        change.apply_to(&mut runtime);
        runtime
    }
}

impl Shared {
    /// Make `runtime` the slot's runtime settings: derive, store, re-group its timer.
    pub(super) fn apply(self: &Arc<Self>, slot: &Arc<Slot>, runtime: RuntimeSettings) {
        let derived = SlotState::derive_lenient(&slot.base, slot.job.name(), runtime);
        {
            let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            let group = state.group.take();
            slot.set_state(&mut state, SlotState { group, ..derived });
        }
        self.timers.place(self, slot);
    }

    /// Apply every job's stored settings (jobs absent from `all` have none).
    pub(super) fn apply_all(self: &Arc<Self>, mut all: BTreeMap<String, RuntimeSettings>) {
        for (name, slot) in &self.slots {
            let wanted = all.remove(name).unwrap_or_default();
            let current = slot
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .runtime
                .clone();
            if current != wanted {
                tracing::info!(job = %name, settings = ?wanted, "runtime settings changed");
                self.apply(slot, wanted);
            }
        }
    }

    fn slot(&self, name: &str) -> Result<&Arc<Slot>> {
        self.slots
            .get(name)
            .ok_or_else(|| Error::UnknownJob(name.to_owned()))
    }

    /// Write a change of `name`'s settings, then apply what the table now holds here at
    /// once (other replicas follow within a poll interval).
    async fn write(self: &Arc<Self>, name: &str, actor: &str, change: Change) -> Result<Arc<Slot>> {
        let slot = self.slot(name)?.clone();
        let Some(store) = &self.settings else {
            // No database tables (history and coordination off): in this process only.
            let runtime = slot.runtime_after(&change);
            self.apply(&slot, runtime);
            return Ok(slot);
        };
        match &change {
            Change::Reschedule(req) if req.is_empty() => return Ok(slot),
            other => store.set(name, actor, &other.assignments()).await?,
        }
        // The change is stored: from here on it is reported as applied. A failed re-read
        // applies it here as this process computes it; the settings watch reloads the
        // stored row within a poll interval.
        match store.get(name).await {
            Ok(stored) => self.apply(&slot, stored),
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "change stored, re-read failed; applied as computed here until the next reload");
                let runtime = slot.runtime_after(&change);
                self.apply(&slot, runtime);
            }
        }
        Ok(slot)
    }

    /// Pause, resume, reschedule or reset `name`, and record it in the audit log whatever
    /// the outcome.
    ///
    /// No change without its audit entry: the entry is written *before* the change (its
    /// detail says `pending: ...`) and completed with the outcome after it, and the whole
    /// sequence runs in a task of its own, so a request dropped half-way (the client reset
    /// the connection, a tower timeout fired) cannot stop a change between its write and
    /// its audit row. Only a crash in between leaves an entry reading `pending`.
    pub(super) async fn change(
        self: &Arc<Self>,
        name: &str,
        actor: &str,
        change: Change,
    ) -> Result<Arc<Slot>> {
        let (shared, name, actor) = (self.clone(), name.to_owned(), actor.to_owned());
        match tokio::spawn(async move { shared.change_audited(&name, &actor, change).await }).await
        {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::ShutDown), // the runtime is shutting down
        }
    }

    async fn change_audited(
        self: &Arc<Self>,
        name: &str,
        actor: &str,
        change: Change,
    ) -> Result<Arc<Slot>> {
        let entry = |detail: String| NewAuditEntry {
            actor: actor.to_owned(),
            action: change.action(),
            job_name: name.to_owned(),
            detail: Some(detail),
        };
        if let Err(e) = self.validate(name, &change) {
            // Refused before anything is written: the entry is final at once.
            let detail = if e.is_invalid_input() {
                format!("refused: {e}")
            } else {
                "failed: internal error".to_owned()
            };
            self.audit(entry(detail)).await;
            return Err(e);
        }
        let pending = match &self.settings {
            Some(store) => match store
                .record_audit(&entry(format!("pending: {}", change.describe())))
                .await
            {
                Ok(id) => Some(id),
                Err(e) => {
                    // Without its audit entry, the change is not made.
                    tracing::error!(error = %e, %actor, job = %name, "could not write the audit log; change not made");
                    return Err(e);
                }
            },
            None => None,
        };
        let result = self.write(name, actor, change.clone()).await;
        let detail = match &result {
            Ok(_) => change.describe(),
            Err(e) if e.is_invalid_input() => format!("refused: {e}"),
            Err(_) => "failed: internal error".to_owned(),
        };
        if let (Some(store), Some(id)) = (&self.settings, pending)
            && let Err(e) = store.complete_audit(id, &detail).await
        {
            tracing::error!(error = %e, audit_id = id, %detail, "could not complete the audit entry; it reads 'pending'");
        }
        result
    }

    /// Refuse a reschedule whose result would not be a valid schedule, before anything is
    /// written.
    fn validate(&self, name: &str, change: &Change) -> Result<()> {
        let slot = self.slot(name)?;
        if let Change::Reschedule(req) = change {
            if let Some(secs) = req.timeout_secs {
                super::bounds::check_timeout("timeout_secs", secs)?;
            }
            let runtime = slot.runtime_after(change);
            if let Some(expr) = &req.schedule {
                // The settings column holds 255 characters: refuse a longer (valid) cron
                // expression here, with its reason, not as a database error later.
                if expr.trim().chars().count() > MAX_STORED_SCHEDULE_CHARS {
                    return Err(Error::InvalidCron {
                        expression: expr.clone(),
                        reason: format!(
                            "longer than {MAX_STORED_SCHEDULE_CHARS} characters, the most a runtime schedule can store"
                        ),
                    });
                }
                Schedule::parse(expr)?;
            }
            if let Some(tz) = &req.time_zone {
                Schedule::parse("0 0 * * * *")?.with_time_zone(tz)?;
            }
            SlotState::derive(&slot.base, runtime)?;
        }
        Ok(())
    }

    /// Record an audit entry; a failure is logged, never the caller's error (the change it
    /// describes has happened, or been refused, either way).
    pub(super) async fn audit(&self, entry: NewAuditEntry) {
        let Some(store) = &self.settings else { return };
        if let Err(e) = store.record_audit(&entry).await {
            tracing::error!(error = %e, actor = %entry.actor, action = entry.action.as_str(), job = %entry.job_name, "could not write the audit log");
        }
    }
}

/// The longest cron expression a runtime setting stores (the settings column's size).
const MAX_STORED_SCHEDULE_CHARS: usize = 255;

/// A change of one job's runtime settings.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Pause,
    Resume,
    Reschedule(RescheduleRequest),
    Reset,
}

impl Change {
    fn action(&self) -> AuditAction {
        match self {
            Change::Pause => AuditAction::Pause,
            Change::Resume => AuditAction::Resume,
            Change::Reschedule(_) => AuditAction::Reschedule,
            Change::Reset => AuditAction::Reset,
        }
    }

    fn assignments(&self) -> Vec<(SettingsColumn, Expr)> {
        match self {
            Change::Pause => vec![(SettingsColumn::Paused, 1i64.into())],
            Change::Resume => vec![(SettingsColumn::Paused, 0i64.into())],
            Change::Reschedule(req) => {
                let mut set = Vec::new();
                if let Some(expr) = &req.schedule {
                    set.push((SettingsColumn::Schedule, expr.trim().into()));
                }
                if let Some(tz) = &req.time_zone {
                    set.push((SettingsColumn::TimeZone, tz.trim().into()));
                }
                if let Some(secs) = req.timeout_secs {
                    let secs = i64::try_from(secs.max(1)).unwrap_or(i64::MAX);
                    set.push((SettingsColumn::TimeoutSecs, secs.into()));
                }
                set
            }
            // Every override NULL rather than the row deleted: the row keeps who reset the
            // job and when, and health judges the job from that change on.
            Change::Reset => vec![
                (SettingsColumn::Paused, Expr::val(Option::<i64>::None)),
                (SettingsColumn::Schedule, Expr::val(Option::<String>::None)),
                (SettingsColumn::TimeZone, Expr::val(Option::<String>::None)),
                (SettingsColumn::TimeoutSecs, Expr::val(Option::<i64>::None)),
            ],
        }
    }

    fn apply_to(&self, runtime: &mut RuntimeSettings) {
        match self {
            Change::Pause => runtime.paused = Some(true),
            Change::Resume => runtime.paused = Some(false),
            Change::Reschedule(req) => {
                if let Some(expr) = &req.schedule {
                    runtime.schedule = Some(expr.trim().to_owned());
                }
                if let Some(tz) = &req.time_zone {
                    runtime.time_zone = Some(tz.trim().to_owned());
                }
                if let Some(secs) = req.timeout_secs {
                    runtime.timeout_secs = Some(secs.max(1));
                }
            }
            Change::Reset => *runtime = RuntimeSettings::default(),
        }
    }

    /// The audit detail of a change that was made.
    fn describe(&self) -> String {
        match self {
            Change::Pause => "paused".to_owned(),
            Change::Resume => "resumed".to_owned(),
            Change::Reset => "runtime settings dropped".to_owned(),
            Change::Reschedule(req) => {
                let mut parts = Vec::new();
                if let Some(expr) = &req.schedule {
                    parts.push(format!("schedule={:?}", expr.trim()));
                }
                if let Some(tz) = &req.time_zone {
                    parts.push(format!("time_zone={:?}", tz.trim()));
                }
                if let Some(secs) = req.timeout_secs {
                    parts.push(format!("timeout_secs={}", secs.max(1)));
                }
                if parts.is_empty() {
                    "nothing to change".to_owned()
                } else {
                    parts.join(" ")
                }
            }
        }
    }
}

/// Keep this scheduler's settings in step with the table: read the version row every
/// `interval`, reload when it moved (and every minute regardless), until shutdown.
pub(super) async fn watch_loop(shared: Arc<Shared>, mut seen: i64, interval: Duration) {
    let Some(store) = shared.settings.clone() else {
        return;
    };
    let mut loaded_at = Instant::now();
    loop {
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let version = match store.version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the runtime settings version");
                continue;
            }
        };
        if version == seen && loaded_at.elapsed() < FULL_RELOAD {
            continue;
        }
        match store.load().await {
            Ok(all) => {
                shared.apply_all(all);
                seen = version;
                loaded_at = Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "could not reload the runtime settings"),
        }
    }
}
