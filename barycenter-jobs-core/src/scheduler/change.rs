//! A change of one job's runtime settings, as an operator asks for it: its rules (what is
//! trimmed, what is refused), the columns it writes, what it does to the settings in
//! force, and how the audit log describes it, each written once.

use sea_query::Expr;

use super::bounds::check_timeout;
use super::slot::Slot;
use crate::error::{Error, Result};
use crate::schedule::Schedule;
use crate::settings::{AuditAction, RescheduleRequest, RuntimeSettings, SettingsColumn};

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
    /// The change as it is stored, applied and described: the rules of a reschedule, in one
    /// place. An expression and a zone are trimmed; a timeout is at least a second (a
    /// validated change has one already: see [`validate`](Self::validate)).
    pub(super) fn normalized(self) -> Self {
        match self {
            Change::Reschedule(req) => Change::Reschedule(RescheduleRequest {
                schedule: req.schedule.map(|s| s.trim().to_owned()),
                time_zone: req.time_zone.map(|tz| tz.trim().to_owned()),
                timeout_secs: req.timeout_secs.map(|secs| secs.max(1)),
            }),
            other => other,
        }
    }

    /// Refuse a reschedule of `slot` whose result would not be a valid schedule, before
    /// anything is written. Errors name the values as the operator gave them.
    pub(super) fn validate(&self, slot: &Slot) -> Result<()> {
        let Change::Reschedule(req) = self else {
            return Ok(());
        };
        if let Some(secs) = req.timeout_secs {
            check_timeout("timeout_secs", secs)?;
        }
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
        let mut runtime = slot.runtime();
        self.clone().normalized().apply_to(&mut runtime);
        slot.derive(runtime)?;
        Ok(())
    }

    /// Whether storing the change would write nothing.
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Change::Reschedule(req) if req.is_empty())
    }

    /// Its action in the audit log.
    pub(super) fn action(&self) -> AuditAction {
        match self {
            Change::Pause => AuditAction::Pause,
            Change::Resume => AuditAction::Resume,
            Change::Reschedule(_) => AuditAction::Reschedule,
            Change::Reset => AuditAction::Reset,
        }
    }

    /// The settings columns it writes, with their values (of a [normalized](Self::normalized)
    /// change).
    pub(super) fn assignments(&self) -> Vec<(SettingsColumn, Expr)> {
        match self {
            Change::Pause => vec![(SettingsColumn::Paused, 1i64.into())],
            Change::Resume => vec![(SettingsColumn::Paused, 0i64.into())],
            Change::Reschedule(req) => {
                let mut set = Vec::new();
                if let Some(expr) = &req.schedule {
                    set.push((SettingsColumn::Schedule, expr.as_str().into()));
                }
                if let Some(tz) = &req.time_zone {
                    set.push((SettingsColumn::TimeZone, tz.as_str().into()));
                }
                if let Some(secs) = req.timeout_secs {
                    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
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

    /// Apply it to `runtime`, as storing it would (of a normalized change).
    pub(super) fn apply_to(&self, runtime: &mut RuntimeSettings) {
        match self {
            Change::Pause => runtime.paused = Some(true),
            Change::Resume => runtime.paused = Some(false),
            Change::Reschedule(req) => {
                if let Some(expr) = &req.schedule {
                    runtime.schedule = Some(expr.clone());
                }
                if let Some(tz) = &req.time_zone {
                    runtime.time_zone = Some(tz.clone());
                }
                if let Some(secs) = req.timeout_secs {
                    runtime.timeout_secs = Some(secs);
                }
            }
            Change::Reset => *runtime = RuntimeSettings::default(),
        }
    }

    /// The audit detail of a change that was made (of a normalized change).
    pub(super) fn describe(&self) -> String {
        match self {
            Change::Pause => "paused".to_owned(),
            Change::Resume => "resumed".to_owned(),
            Change::Reset => "runtime settings dropped".to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reschedule(schedule: &str, tz: &str, secs: u64) -> Change {
        Change::Reschedule(RescheduleRequest {
            schedule: Some(schedule.into()),
            time_zone: Some(tz.into()),
            timeout_secs: Some(secs),
        })
    }

    #[test]
    fn normalized_once_then_stored_applied_and_described_alike() {
        let change = reschedule("  */5 * * * * * ", " UTC ", 30).normalized();
        let mut runtime = RuntimeSettings::default();
        change.apply_to(&mut runtime);
        assert_eq!(runtime.schedule.as_deref(), Some("*/5 * * * * *"));
        assert_eq!(runtime.time_zone.as_deref(), Some("UTC"));
        assert_eq!(runtime.timeout_secs, Some(30));
        assert_eq!(
            change.describe(),
            r#"schedule="*/5 * * * * *" time_zone="UTC" timeout_secs=30"#
        );
        assert_eq!(change.assignments().len(), 3);
        assert!(!change.is_empty());
        assert!(Change::Reschedule(RescheduleRequest::default()).is_empty());
        assert_eq!(
            Change::Reschedule(RescheduleRequest::default()).describe(),
            "nothing to change"
        );
    }

    #[test]
    fn reset_clears_every_override_and_keeps_the_row() {
        let mut runtime = RuntimeSettings {
            paused: Some(true),
            schedule: Some("* * * * * *".into()),
            ..Default::default()
        };
        Change::Reset.apply_to(&mut runtime);
        assert_eq!(runtime, RuntimeSettings::default());
        // Four columns set to NULL: an UPDATE, not a DELETE.
        assert_eq!(Change::Reset.assignments().len(), 4);
    }
}
