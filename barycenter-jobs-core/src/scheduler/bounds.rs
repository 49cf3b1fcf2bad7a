//! The bounds of every duration and size the scheduler accepts, checked when the value is
//! given (host configuration at [`start`](crate::SchedulerBuilder::start), a
//! [`RescheduleRequest`](crate::RescheduleRequest) at
//! [`reschedule`](crate::SchedulerHandle::reschedule)), so that no value can make the
//! scheduler's time arithmetic overflow (and panic) later, on the run path.
//!
//! | key | bounds |
//! |---|---|
//! | `default_timeout_secs`, `jobs.NAME.timeout_secs`, a reschedule's `timeout_secs` | 1 ..= 31,536,000 (365 days) |
//! | `jobs.NAME.overdue_after_secs` | 0 ..= 31,536,000 |
//! | `cancel_grace_secs` | 0 ..= 3,600 |
//! | `coordination.lease_ttl_secs` | 0 ..= 86,400 (below 3 counts as 3) |
//! | `coordination.statement_timeout_ms` | 1 ..= 3,600,000 |
//! | `clock.max_skew_secs`, `clock.warn_skew_secs` | 0 ..= 31,536,000 |
//! | `retention.keep_days` | 0 ..= 36,500 (0: keep everything) |
//! | `retention.interval_secs` | 1 ..= 2,592,000 (30 days) |
//! | `retention.batch_size` | 1 ..= 10,000 (a bound every backend's bind-parameter limit takes) |
//! | `runtime_settings.poll_interval_ms` | 0 ..= 3,600,000 (below 1,000 counts as 1,000) |
//! | `jobs.NAME.alert_after_failures` | 1 ..= 1,000 |
//!
//! ```
//! use barycenter_jobs_core::{Error, SchedulerConfig};
//!
//! let mut config = SchedulerConfig::default();
//! config.retention.batch_size = 0;
//! let err = config.validate().unwrap_err();
//! assert!(matches!(err, Error::OutOfBounds { ref key, .. } if key == "retention.batch_size"));
//! assert_eq!(err.to_string(), "invalid retention.batch_size = 0: must be between 1 and 10000");
//! ```

use std::time::Duration;

use tokio::time::Instant;

use super::config::SchedulerConfig;
use crate::error::{Error, Result};

/// Longest timeout of a run: a year.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;
/// Longest overdue grace.
pub const MAX_OVERDUE_AFTER_SECS: u64 = MAX_TIMEOUT_SECS;
/// Longest grace a cancelled run gets to return.
pub const MAX_CANCEL_GRACE_SECS: u64 = 3600;
/// Longest lease.
pub const MAX_LEASE_TTL_SECS: u64 = 24 * 3600;
/// Longest bound of one lease statement.
pub const MAX_STATEMENT_TIMEOUT_MS: u64 = 3_600_000;
/// Largest clock-skew bound.
pub const MAX_SKEW_SECS: u64 = MAX_TIMEOUT_SECS;
/// Longest retention of the history.
pub const MAX_KEEP_DAYS: u32 = 36_500;
/// Longest pause between two purges.
pub const MAX_RETENTION_INTERVAL_SECS: u64 = 30 * 24 * 3600;
/// Most rows one purge statement deletes.
pub const MAX_BATCH_SIZE: u32 = 10_000;
/// Longest interval between two reads of the settings' version.
pub const MAX_POLL_INTERVAL_MS: u64 = 3_600_000;
/// Longest jitter of a scheduled tick: an hour.
pub const MAX_JITTER_SECS: u64 = 3600;
/// Longest catch-up window: a year.
pub const MAX_CATCH_UP_WINDOW_SECS: u64 = MAX_TIMEOUT_SECS;
/// Most consecutive failures before an automatic pause.
pub const MAX_PAUSE_AFTER_FAILURES: u32 = 1000;
/// Largest `alert_after_failures` (the history read that counts them stays small).
pub const MAX_ALERT_AFTER_FAILURES: u32 = 1000;
/// Most missed ticks [`MisfirePolicy::RunAll`](super::MisfirePolicy::RunAll) runs (the
/// newest of them).
pub const MAX_CATCH_UP_TICKS: usize = 100;
/// Longest note of a pause, in characters (the settings column's size).
pub const MAX_PAUSE_NOTE_CHARS: usize = 500;
/// Farthest end of a pause: a year from now.
pub const MAX_PAUSE_SECS: u64 = MAX_TIMEOUT_SECS;
/// Most extra attempts at a tick.
pub const MAX_RETRY_ATTEMPTS: u32 = 100;
/// Longest first delay of a retry: an hour (every delay is capped there too).
pub const MAX_RETRY_BACKOFF_SECS: u64 = 3600;
/// Most ticks one backfill runs.
pub const MAX_BACKFILL_TICKS: usize = 1000;

/// Check the policies of one job (host configuration or a runtime change); `prefix` names
/// where they come from in errors (`jobs.NAME.` for configuration, empty at run time).
pub(crate) fn check_policy(
    prefix: &str,
    catch_up_window_secs: Option<u64>,
    jitter_secs: Option<u64>,
    pause_after_failures: Option<u32>,
    retry: (Option<u32>, Option<u64>),
) -> Result<()> {
    let (retry_attempts, retry_backoff_secs) = retry;
    if let Some(n) = retry_attempts {
        check(
            format!("{prefix}retry_attempts"),
            u64::from(n),
            0,
            u64::from(MAX_RETRY_ATTEMPTS),
        )?;
    }
    if let Some(secs) = retry_backoff_secs {
        check(
            format!("{prefix}retry_backoff_secs"),
            secs,
            1,
            MAX_RETRY_BACKOFF_SECS,
        )?;
    }
    if let Some(secs) = catch_up_window_secs {
        check(
            format!("{prefix}catch_up_window_secs"),
            secs,
            0,
            MAX_CATCH_UP_WINDOW_SECS,
        )?;
    }
    if let Some(secs) = jitter_secs {
        check(format!("{prefix}jitter_secs"), secs, 0, MAX_JITTER_SECS)?;
    }
    if let Some(n) = pause_after_failures {
        check(
            format!("{prefix}pause_after_failures"),
            u64::from(n),
            0,
            u64::from(MAX_PAUSE_AFTER_FAILURES),
        )?;
    }
    Ok(())
}

/// `Ok` when `min <= value <= max`, else [`Error::OutOfBounds`] naming `key`: the one check
/// every bounded setting goes through (the builtin crate's batching too).
pub fn check(key: impl Into<String>, value: u64, min: u64, max: u64) -> Result<()> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(Error::OutOfBounds {
        key: key.into(),
        value,
        bound: if min == 0 {
            format!("must be at most {max}")
        } else {
            format!("must be between {min} and {max}")
        },
    })
}

/// The timeout of a run, in seconds, as configured or rescheduled.
pub(crate) fn check_timeout(key: impl Into<String>, secs: u64) -> Result<()> {
    check(key, secs, 1, MAX_TIMEOUT_SECS)
}

impl SchedulerConfig {
    /// Check every duration and size against its bound (see [`crate::scheduler::bounds`]);
    /// [`SchedulerBuilder::start`](crate::SchedulerBuilder::start) calls it first.
    pub fn validate(&self) -> Result<()> {
        check_timeout("default_timeout_secs", self.default_timeout_secs)?;
        for (name, job) in &self.jobs {
            if let Some(secs) = job.timeout_secs {
                check_timeout(format!("jobs.{name}.timeout_secs"), secs)?;
            }
            if let Some(secs) = job.overdue_after_secs {
                check(
                    format!("jobs.{name}.overdue_after_secs"),
                    secs,
                    0,
                    MAX_OVERDUE_AFTER_SECS,
                )?;
            }
            if let Some(n) = job.alert_after_failures {
                check(
                    format!("jobs.{name}.alert_after_failures"),
                    u64::from(n),
                    1,
                    u64::from(MAX_ALERT_AFTER_FAILURES),
                )?;
            }
            if let Some(url) = &job.ping_url {
                crate::alert::check_url(&format!("jobs.{name}.ping_url"), url)?;
            }
            check_policy(
                &format!("jobs.{name}."),
                job.catch_up_window_secs,
                job.jitter_secs,
                job.pause_after_failures,
                (job.retry_attempts, job.retry_backoff_secs),
            )?;
        }
        if let Some(url) = &self.alerts.webhook_url {
            crate::alert::check_url("alerts.webhook_url", url)?;
        }
        check(
            "cancel_grace_secs",
            self.cancel_grace_secs,
            0,
            MAX_CANCEL_GRACE_SECS,
        )?;
        let c = &self.coordination;
        check(
            "coordination.lease_ttl_secs",
            c.lease_ttl_secs,
            0,
            MAX_LEASE_TTL_SECS,
        )?;
        if let Some(ms) = c.statement_timeout_ms {
            check(
                "coordination.statement_timeout_ms",
                ms,
                1,
                MAX_STATEMENT_TIMEOUT_MS,
            )?;
        }
        check(
            "clock.max_skew_secs",
            self.clock.max_skew_secs,
            0,
            MAX_SKEW_SECS,
        )?;
        check(
            "clock.warn_skew_secs",
            self.clock.warn_skew_secs,
            0,
            MAX_SKEW_SECS,
        )?;
        let r = &self.retention;
        if let Some(days) = r.keep_days {
            check("retention.keep_days", days.into(), 0, MAX_KEEP_DAYS.into())?;
        }
        check(
            "retention.interval_secs",
            r.interval_secs,
            1,
            MAX_RETENTION_INTERVAL_SECS,
        )?;
        check(
            "retention.batch_size",
            r.batch_size.into(),
            1,
            MAX_BATCH_SIZE.into(),
        )?;
        check(
            "runtime_settings.poll_interval_ms",
            self.runtime_settings.poll_interval_ms,
            0,
            MAX_POLL_INTERVAL_MS,
        )
    }
}

/// `now + d`, or a point far in the future when that is past what an `Instant` can hold:
/// a deadline that never comes rather than an overflow panic on the run path.
pub(crate) fn instant_after(from: Instant, d: Duration) -> Instant {
    // About thirty years, as tokio's own "far future".
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    from.checked_add(d)
        .or_else(|| from.checked_add(FAR))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bound_names_its_key() {
        let mut c = SchedulerConfig::default();
        assert!(c.validate().is_ok());
        c.retention.keep_days = Some(u32::MAX);
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "invalid retention.keep_days = {}: must be at most 36500",
                u32::MAX
            )
        );
        c.retention.keep_days = Some(0);
        c.jobs.insert(
            "j".into(),
            crate::JobConfig {
                timeout_secs: Some(u64::MAX),
                ..Default::default()
            },
        );
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("invalid jobs.j.timeout_secs")
        );
    }

    #[test]
    fn instant_after_never_overflows() {
        let now = Instant::now();
        assert!(instant_after(now, Duration::MAX) > now);
        assert_eq!(
            instant_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
