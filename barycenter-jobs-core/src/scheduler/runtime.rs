//! Runtime settings in the scheduler: a change is audited, written, applied to its slot
//! and its timer group, and every replica is kept in step with the settings table by one
//! task. (What a change is and its rules: [`super::change`]; the precedence of settings:
//! [`super::effective::Settings::derive`].)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bounds::MAX_PAUSE_NOTE_CHARS;
use super::change::Change;
use super::identity::SYSTEM;
use super::shared::Shared;
use super::slot::Slot;
use super::timers;
use crate::error::{Error, Result};
use crate::settings::{AuditAction, NewAuditEntry, PauseRequest, RuntimeSettings};
use crate::store::ExecutionStatus;

/// How often the settings are reloaded in full even when the version row did not change.
const FULL_RELOAD: Duration = Duration::from_secs(60);

impl Shared {
    /// Make `runtime` the slot's runtime settings: derive, store, re-group its timer.
    pub(super) fn apply(self: &Arc<Self>, slot: &Arc<Slot>, runtime: RuntimeSettings) {
        slot.apply(runtime);
        timers::place(self, slot);
    }

    /// Apply every job's stored settings (jobs absent from `all` have none).
    pub(super) fn apply_all(self: &Arc<Self>, mut all: BTreeMap<String, RuntimeSettings>) {
        for (name, slot) in &self.slots {
            let wanted = all.remove(name).unwrap_or_default();
            if slot.runtime() != wanted {
                tracing::info!(job = %name, settings = ?wanted, "runtime settings changed");
                self.apply(slot, wanted);
            }
        }
    }

    /// Write a change of `name`'s settings, then apply what the table now holds here at
    /// once (other replicas follow within a poll interval).
    async fn write(self: &Arc<Self>, name: &str, actor: &str, change: Change) -> Result<Arc<Slot>> {
        let slot = self.slot(name)?.clone();
        let Some(store) = &self.settings else {
            // No database tables (history and coordination off): in this process only.
            self.apply(&slot, runtime_after(&slot, &change, actor));
            return Ok(slot);
        };
        if change.is_empty() {
            return Ok(slot);
        }
        store.set(name, actor, &change.assignments(actor)).await?;
        // The change is stored: from here on it is reported as applied. A failed re-read
        // applies it here as this process computes it; the settings watch reloads the
        // stored row within a poll interval.
        match store.get(name).await {
            Ok(stored) => self.apply(&slot, stored),
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "change stored, re-read failed; applied as computed here until the next reload");
                self.apply(&slot, runtime_after(&slot, &change, actor));
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
        let action = change.action();
        let entry = |detail: String| NewAuditEntry {
            actor: actor.to_owned(),
            action,
            job_name: name.to_owned(),
            detail: Some(detail),
        };
        let now = self.clock.now();
        if let Err(e) = self.slot(name).and_then(|slot| change.validate(slot, now)) {
            // Refused before anything is written: the entry is final at once.
            let detail = if e.is_invalid_input() {
                format!("refused: {e}")
            } else {
                "failed: internal error".to_owned()
            };
            self.audit(entry(detail)).await;
            return Err(e);
        }
        let change = change.normalized();
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

    /// Record an audit entry; a failure is logged, never the caller's error (the change it
    /// describes has happened, or been refused, either way).
    pub(super) async fn audit(&self, entry: NewAuditEntry) {
        let Some(store) = &self.settings else { return };
        if let Err(e) = store.record_audit(&entry).await {
            tracing::error!(error = %e, actor = %entry.actor, action = entry.action.as_str(), job = %entry.job_name, "could not write the audit log");
        }
    }
}

impl Shared {
    /// End every pause whose end has come (by this host's clock, corrected by the measured
    /// skew to the database's), as the actor `system`: with tables, through a conditional
    /// write that only one replica's matches, and only that replica records it.
    pub(super) async fn resume_expired_pauses(self: &Arc<Self>) {
        let db_now = self.clock.now() - self.clock_skew().unwrap_or_default();
        for (name, slot) in &self.slots {
            let runtime = slot.runtime();
            let Some(until) = runtime
                .paused_until
                .filter(|_| runtime.paused == Some(true))
            else {
                continue;
            };
            if until > db_now {
                continue;
            }
            let ended = match &self.settings {
                None => {
                    self.apply(slot, runtime_after(slot, &Change::Resume, SYSTEM));
                    true
                }
                Some(store) => match store.resume_expired(name, SYSTEM).await {
                    Ok(ended) => ended,
                    Err(e) => {
                        tracing::warn!(job = %name, error = %e, "could not end an expired pause; retrying");
                        false
                    }
                },
            };
            if ended {
                tracing::info!(job = %name, %until, "pause over: job resumed");
                self.audit(NewAuditEntry {
                    actor: SYSTEM.to_owned(),
                    action: AuditAction::Resume,
                    job_name: name.clone(),
                    detail: Some(format!(
                        "resumed: the pause until {} is over",
                        until.to_rfc3339()
                    )),
                })
                .await;
            }
        }
    }

    /// After a failed scheduled run of `slot`'s job whose retries are over: pause it as the
    /// actor `system` when its newest `after` ticks up to that run (`execution_id`) all
    /// failed (each by its last attempt). Counted up to that run, not to the newest row: the
    /// next tick may already have started, and its open row would hide the streak. Reads the
    /// history only on failure, so a successful tick costs nothing more.
    pub(super) async fn pause_after_failures(
        self: &Arc<Self>,
        slot: &Slot,
        execution_id: i64,
        after: u32,
        last_error: &str,
    ) {
        // Judged from the history, which holds the runs of every replica.
        if after == 0 || !self.record_history || slot.is_paused() {
            return;
        }
        let name = slot.job.name();
        let attempts = slot.policy().retry_attempts.saturating_add(1);
        let statuses = match self
            .store
            .tick_statuses_up_to(name, after, attempts, Some(execution_id))
            .await
        {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "could not count consecutive failures");
                return;
            }
        };
        let failed = statuses
            .iter()
            .filter(|s| matches!(s, ExecutionStatus::Failed))
            .count();
        if statuses.len() < after as usize || failed < after as usize {
            return;
        }
        let note: String = format!(
            "paused by the system after {after} consecutive failed runs; the last: {last_error}"
        )
        .chars()
        .take(MAX_PAUSE_NOTE_CHARS)
        .collect();
        let Some(store) = &self.settings else { return };
        let Some(slot) = self.slots.get(name) else {
            return;
        };
        // One conditional write: a replica that ran a later failure and decided the same at
        // once pauses nothing and records nothing.
        match store.pause_unless_paused(name, SYSTEM, &note).await {
            Ok(true) => {
                tracing::error!(job = %name, failures = after, "job paused after consecutive failures");
                self.alert_paused(name, &note);
                let pause = Change::Pause(PauseRequest::new().note(note));
                // Recorded before it is applied here: whoever sees the pause finds its entry.
                self.audit(NewAuditEntry {
                    actor: SYSTEM.to_owned(),
                    action: AuditAction::Pause,
                    job_name: name.to_owned(),
                    detail: Some(pause.describe()),
                })
                .await;
                match store.get(name).await {
                    Ok(stored) => self.apply(slot, stored),
                    Err(_) => self.apply(slot, runtime_after(slot, &pause, SYSTEM)),
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(job = %name, error = %e, "could not pause the job after consecutive failures");
            }
        }
    }
}

/// The runtime settings of `slot` with `change` applied to them.
fn runtime_after(slot: &Slot, change: &Change, actor: &str) -> RuntimeSettings {
    let mut runtime = slot.runtime();
    change.apply_to(&mut runtime, actor);
    runtime
}

/// Keep this scheduler's settings in step with the table: read the version row every
/// `interval`, reload when it moved (and every minute regardless), until shutdown.
pub(super) async fn watch_loop(shared: Arc<Shared>, mut seen: i64, interval: Duration) {
    let store = shared.settings.clone();
    let mut loaded_at = Instant::now();
    loop {
        tokio::select! {
            _ = shared.stop_firing.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        // Before the version is read, so an end written here is reloaded at once.
        shared.resume_expired_pauses().await;
        let Some(store) = &store else { continue };
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
