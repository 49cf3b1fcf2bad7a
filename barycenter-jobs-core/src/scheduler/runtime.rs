//! Runtime settings in the scheduler: a change is audited, written, applied to its slot
//! and its timer group, and every replica is kept in step with the settings table by one
//! task. (What a change is and its rules: [`super::change`]; the precedence of settings:
//! [`super::slot::Settings::derive`].)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::change::Change;
use super::shared::Shared;
use super::slot::Slot;
use super::timers;
use crate::error::{Error, Result};
use crate::settings::{NewAuditEntry, RuntimeSettings};

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
            self.apply(&slot, runtime_after(&slot, &change));
            return Ok(slot);
        };
        if change.is_empty() {
            return Ok(slot);
        }
        store.set(name, actor, &change.assignments()).await?;
        // The change is stored: from here on it is reported as applied. A failed re-read
        // applies it here as this process computes it; the settings watch reloads the
        // stored row within a poll interval.
        match store.get(name).await {
            Ok(stored) => self.apply(&slot, stored),
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "change stored, re-read failed; applied as computed here until the next reload");
                self.apply(&slot, runtime_after(&slot, &change));
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
        if let Err(e) = self.slot(name).and_then(|slot| change.validate(slot)) {
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

/// The runtime settings of `slot` with `change` applied to them.
fn runtime_after(slot: &Slot, change: &Change) -> RuntimeSettings {
    let mut runtime = slot.runtime();
    change.apply_to(&mut runtime);
    runtime
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
