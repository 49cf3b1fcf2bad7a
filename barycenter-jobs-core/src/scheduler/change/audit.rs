//! How the audit log records a change: its action and its detail.

use super::Change;
use crate::settings::AuditAction;

impl Change {
    /// Its action in the audit log.
    pub(in crate::scheduler) fn action(&self) -> AuditAction {
        match self {
            Change::Pause(_) => AuditAction::Pause,
            Change::Resume => AuditAction::Resume,
            Change::Reschedule(_) => AuditAction::Reschedule,
            Change::Policy(_) => AuditAction::Policy,
            Change::Reset => AuditAction::Reset,
            Change::Backfill(_) | Change::CancelBackfill => AuditAction::Backfill,
        }
    }

    /// The audit detail of a change that was made (of a normalized change).
    pub(in crate::scheduler) fn describe(&self) -> String {
        match self {
            Change::Pause(req) => {
                let mut out = "paused".to_owned();
                if let Some(until) = req.until {
                    out.push_str(&format!(" until {}", until.to_rfc3339()));
                }
                if let Some(note) = &req.note {
                    out.push_str(&format!(": {note:?}"));
                }
                out
            }
            Change::Resume => "resumed".to_owned(),
            Change::Policy(req) => {
                let mut parts = Vec::new();
                if let Some(misfire) = req.misfire {
                    parts.push(format!("misfire={}", misfire.as_str()));
                }
                if let Some(overlap) = req.overlap {
                    parts.push(format!("overlap={}", overlap.as_str()));
                }
                if let Some(secs) = req.catch_up_window_secs {
                    parts.push(format!("catch_up_window_secs={secs}"));
                }
                if let Some(secs) = req.jitter_secs {
                    parts.push(format!("jitter_secs={secs}"));
                }
                if let Some(n) = req.pause_after_failures {
                    parts.push(format!("pause_after_failures={n}"));
                }
                if let Some(n) = req.retry_attempts {
                    parts.push(format!("retry_attempts={n}"));
                }
                if let Some(secs) = req.retry_backoff_secs {
                    parts.push(format!("retry_backoff_secs={secs}"));
                }
                if parts.is_empty() {
                    "nothing to change".to_owned()
                } else {
                    parts.join(" ")
                }
            }
            Change::Reset => "runtime settings dropped".to_owned(),
            Change::Backfill(req) => format!(
                "backfill from {} to {}",
                req.from.to_rfc3339(),
                req.to.to_rfc3339()
            ),
            Change::CancelBackfill => "backfill cancelled".to_owned(),
            Change::Reschedule(req) => {
                let mut parts = Vec::new();
                if let Some(expr) = &req.schedule {
                    parts.push(format!("schedule={expr:?}"));
                }
                if let Some(tz) = &req.time_zone {
                    parts.push(format!("time_zone={tz:?}"));
                }
                if let Some(secs) = req.timeout_secs {
                    parts.push(format!("timeout_secs={secs}"));
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
