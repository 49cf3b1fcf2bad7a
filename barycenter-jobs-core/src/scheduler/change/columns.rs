//! The settings columns a change writes, with their values.

use sea_query::Expr;

use super::Change;
use crate::store::schema::Settings;

impl Change {
    /// The settings columns it writes, with their values (of a [normalized](Self::normalized)
    /// change made by `actor`).
    pub(in crate::scheduler) fn assignments(&self, actor: &str) -> Vec<(Settings, Expr)> {
        let null_int = || Expr::val(Option::<i64>::None);
        let null_text = || Expr::val(Option::<String>::None);
        let int = |n: u64| Expr::val(i64::try_from(n).unwrap_or(i64::MAX));
        let no_backfill = || {
            vec![
                (Settings::BackfillFrom, null_int()),
                (Settings::BackfillTo, null_int()),
                (Settings::BackfillBy, null_text()),
            ]
        };
        match self {
            Change::Backfill(req) => vec![
                (Settings::BackfillFrom, req.from.timestamp().into()),
                (Settings::BackfillTo, req.to.timestamp().into()),
                (
                    Settings::BackfillBy,
                    actor.chars().take(255).collect::<String>().into(),
                ),
            ],
            Change::CancelBackfill => no_backfill(),
            Change::Pause(req) => [
                (Settings::Paused, 1i64.into()),
                (Settings::PauseNote, Expr::val(req.note.clone())),
                (
                    Settings::PausedUntilMs,
                    Expr::val(req.until.map(|t| t.timestamp_millis())),
                ),
                (
                    Settings::PausedBy,
                    actor.chars().take(255).collect::<String>().into(),
                ),
            ]
            .into_iter()
            // A pause stops a backfill in progress.
            .chain(no_backfill())
            .collect(),
            Change::Resume => vec![
                (Settings::Paused, 0i64.into()),
                (Settings::PauseNote, null_text()),
                (Settings::PausedUntilMs, null_int()),
                (Settings::PausedBy, null_text()),
            ],
            Change::Policy(req) => {
                let mut set = Vec::new();
                if let Some(misfire) = req.misfire {
                    set.push((Settings::Misfire, misfire.as_str().into()));
                }
                if let Some(overlap) = req.overlap {
                    set.push((Settings::Overlap, overlap.as_str().into()));
                }
                if let Some(secs) = req.catch_up_window_secs {
                    set.push((Settings::CatchUpWindowSecs, int(secs)));
                }
                if let Some(secs) = req.jitter_secs {
                    set.push((Settings::JitterSecs, int(secs)));
                }
                if let Some(n) = req.pause_after_failures {
                    set.push((Settings::PauseAfterFailures, int(u64::from(n))));
                }
                if let Some(n) = req.retry_attempts {
                    set.push((Settings::RetryAttempts, int(u64::from(n))));
                }
                if let Some(secs) = req.retry_backoff_secs {
                    set.push((Settings::RetryBackoffSecs, int(secs)));
                }
                set
            }
            Change::Reschedule(req) => {
                let mut set = Vec::new();
                if let Some(expr) = &req.schedule {
                    set.push((Settings::Schedule, expr.as_str().into()));
                }
                if let Some(tz) = &req.time_zone {
                    set.push((Settings::TimeZone, tz.as_str().into()));
                }
                if let Some(secs) = req.timeout_secs {
                    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
                    set.push((Settings::TimeoutSecs, secs.into()));
                }
                set
            }
            // Every override NULL rather than the row deleted: the row keeps who reset the
            // job and when, and health judges the job from that change on.
            Change::Reset => [
                (Settings::Paused, null_int()),
                (Settings::Overlap, null_text()),
                (Settings::Schedule, null_text()),
                (Settings::TimeZone, null_text()),
                (Settings::TimeoutSecs, null_int()),
                (Settings::Misfire, null_text()),
                (Settings::CatchUpWindowSecs, null_int()),
                (Settings::JitterSecs, null_int()),
                (Settings::PauseAfterFailures, null_int()),
                (Settings::RetryAttempts, null_int()),
                (Settings::RetryBackoffSecs, null_int()),
                (Settings::PauseNote, null_text()),
                (Settings::PausedUntilMs, null_int()),
                (Settings::PausedBy, null_text()),
            ]
            .into_iter()
            .chain(no_backfill())
            .collect(),
        }
    }
}
