//! A change of one job's runtime settings, as an operator asks for it: its rules (what is
//! trimmed, what is refused), the columns it writes, what it does to the settings in
//! force, and how the audit log describes it, each written once.

mod audit;
mod columns;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use super::bounds::{MAX_PAUSE_NOTE_CHARS, MAX_PAUSE_SECS, check_policy, check_timeout};
use super::slot::Slot;
use crate::error::{Error, Result};
use crate::schedule::Schedule;
use crate::settings::{Backfill, PauseRequest, PolicyRequest, RescheduleRequest, RuntimeSettings};

/// The longest cron expression a runtime setting stores (the settings column's size).
const MAX_STORED_SCHEDULE_CHARS: usize = 255;

/// A change of one job's runtime settings.
#[derive(Debug, Clone)]
pub(super) enum Change {
    Pause(PauseRequest),
    Resume,
    Reschedule(RescheduleRequest),
    Policy(PolicyRequest),
    Reset,
    /// Run the ticks within a past range (see [`super::backfill`]).
    Backfill(Backfill),
    /// Stop the backfill in progress.
    CancelBackfill,
}

impl Change {
    /// The change as it is stored, applied and described: its rules, in one place. An
    /// expression, a zone and a note are trimmed (an empty note is none); a timeout is at
    /// least a second (a validated change has one already: see [`validate`](Self::validate)).
    pub(super) fn normalized(self) -> Self {
        match self {
            Change::Pause(req) => Change::Pause(PauseRequest {
                note: req
                    .note
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                until: req.until,
            }),
            Change::Reschedule(req) => Change::Reschedule(RescheduleRequest {
                schedule: req.schedule.map(|s| s.trim().to_owned()),
                time_zone: req.time_zone.map(|tz| tz.trim().to_owned()),
                timeout_secs: req.timeout_secs.map(|secs| secs.max(1)),
            }),
            Change::Backfill(req) => {
                // Stored in whole seconds, as ticks are.
                let whole =
                    |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t);
                Change::Backfill(Backfill {
                    from: whole(req.from),
                    to: whole(req.to),
                    ..req
                })
            }
            other => other,
        }
    }

    /// Refuse a change of `slot` that could not be applied as asked, before anything is
    /// written: a reschedule whose result would not be a valid schedule, a policy past its
    /// bounds, a pause that would end in the past (by `now`) or whose note is too long.
    /// Errors name the values as the operator gave them.
    pub(super) fn validate(&self, slot: &Slot, now: DateTime<Utc>) -> Result<()> {
        let req = match self {
            Change::Reschedule(req) => req,
            Change::Policy(req) => {
                return check_policy(
                    "",
                    req.catch_up_window_secs,
                    req.jitter_secs,
                    req.pause_after_failures,
                    (req.retry_attempts, req.retry_backoff_secs),
                );
            }
            Change::Pause(req) => return validate_pause(req, now),
            Change::Backfill(req) => {
                return super::backfill::validate(slot, req.from, req.to, now).map(|_| ());
            }
            Change::CancelBackfill => {
                return match slot.runtime().backfill {
                    Some(_) => Ok(()),
                    None => Err(Error::InvalidSetting {
                        key: "backfill".to_owned(),
                        reason: "no backfill is in progress".to_owned(),
                    }),
                };
            }
            Change::Resume | Change::Reset => return Ok(()),
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
        self.clone().normalized().apply_to(&mut runtime, "");
        slot.derive(runtime)?;
        Ok(())
    }

    /// Whether storing the change would write nothing.
    pub(super) fn is_empty(&self) -> bool {
        match self {
            Change::Reschedule(req) => req.is_empty(),
            Change::Policy(req) => req.is_empty(),
            _ => false,
        }
    }

    /// Apply it, made by `actor`, to `runtime`, as storing it would (of a normalized change).
    pub(super) fn apply_to(&self, runtime: &mut RuntimeSettings, actor: &str) {
        match self {
            Change::Pause(req) => {
                runtime.paused = Some(true);
                runtime.pause_note = req.note.clone();
                runtime.paused_until = req.until;
                runtime.paused_by = Some(actor.to_owned());
                runtime.backfill = None;
            }
            Change::Backfill(req) => {
                runtime.backfill = Some(Backfill {
                    requested_by: actor.to_owned(),
                    ..req.clone()
                });
            }
            Change::CancelBackfill => runtime.backfill = None,
            Change::Resume => {
                runtime.paused = Some(false);
                runtime.pause_note = None;
                runtime.paused_until = None;
                runtime.paused_by = None;
            }
            Change::Policy(req) => {
                if req.misfire.is_some() {
                    runtime.misfire = req.misfire;
                }
                if req.overlap.is_some() {
                    runtime.overlap = req.overlap;
                }
                if req.catch_up_window_secs.is_some() {
                    runtime.catch_up_window_secs = req.catch_up_window_secs;
                }
                if req.jitter_secs.is_some() {
                    runtime.jitter_secs = req.jitter_secs;
                }
                if req.pause_after_failures.is_some() {
                    runtime.pause_after_failures = req.pause_after_failures;
                }
                if req.retry_attempts.is_some() {
                    runtime.retry_attempts = req.retry_attempts;
                }
                if req.retry_backoff_secs.is_some() {
                    runtime.retry_backoff_secs = req.retry_backoff_secs;
                }
            }
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
}

/// A pause ends in the future and within its bound; its note fits its column.
fn validate_pause(req: &PauseRequest, now: DateTime<Utc>) -> Result<()> {
    let refuse = |key: &str, reason: String| {
        Err(Error::InvalidSetting {
            key: key.to_owned(),
            reason,
        })
    };
    if let Some(note) = &req.note
        && note.trim().chars().count() > MAX_PAUSE_NOTE_CHARS
    {
        return refuse(
            "note",
            format!("longer than {MAX_PAUSE_NOTE_CHARS} characters"),
        );
    }
    if let Some(until) = req.until {
        if until <= now {
            return refuse(
                "until",
                format!("{} is not in the future", until.to_rfc3339()),
            );
        }
        let secs = i64::try_from(MAX_PAUSE_SECS).unwrap_or(i64::MAX);
        if until > now + chrono::Duration::seconds(secs) {
            return refuse(
                "until",
                format!(
                    "{} is more than {} days away",
                    until.to_rfc3339(),
                    MAX_PAUSE_SECS / 86_400
                ),
            );
        }
    }
    Ok(())
}
