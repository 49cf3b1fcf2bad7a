//! The settings in force for a job: host configuration over the job's defaults
//! ([`Base`], fixed at start), and runtime settings over both, derived in one place.

use std::time::Duration;

use super::bounds::{
    MAX_CATCH_UP_WINDOW_SECS, MAX_JITTER_SECS, MAX_PAUSE_AFTER_FAILURES, MAX_RETRY_ATTEMPTS,
    MAX_RETRY_BACKOFF_SECS, MAX_TIMEOUT_SECS,
};
use super::info::JobPolicy;
use crate::error::Result;
use crate::schedule::Schedule;
use crate::settings::RuntimeSettings;

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
    /// The host's policies, or the defaults.
    pub(super) policy: JobPolicy,
}

/// The policies `runtime` sets over the host's, field by field; a stored value past its
/// bound (written by hand or by another version) is clamped.
fn policy(host: &JobPolicy, runtime: &RuntimeSettings) -> JobPolicy {
    let secs = |s: u64, max: u64| Duration::from_secs(s.min(max));
    JobPolicy {
        misfire: runtime.misfire.unwrap_or(host.misfire),
        overlap: runtime.overlap.unwrap_or(host.overlap),
        catch_up_window: match runtime.catch_up_window_secs {
            Some(s) => Some(secs(s, MAX_CATCH_UP_WINDOW_SECS)),
            None => host.catch_up_window,
        },
        jitter: runtime
            .jitter_secs
            .map_or(host.jitter, |s| secs(s, MAX_JITTER_SECS)),
        pause_after_failures: runtime
            .pause_after_failures
            .map_or(host.pause_after_failures, |n| {
                n.min(MAX_PAUSE_AFTER_FAILURES)
            }),
        retry_attempts: runtime
            .retry_attempts
            .map_or(host.retry_attempts, |n| n.min(MAX_RETRY_ATTEMPTS)),
        retry_backoff: runtime.retry_backoff_secs.map_or(host.retry_backoff, |s| {
            secs(s.max(1), MAX_RETRY_BACKOFF_SECS)
        }),
    }
}

/// A timer group's identity: the cron expression and its zone.
pub(super) type GroupKey = (String, Option<&'static str>);

/// The settings in force for one job.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) runtime: RuntimeSettings,
    pub(super) schedule: Schedule,
    /// Whether ticks start runs.
    pub(super) fires: bool,
    /// Paused by an operator: ticks come due and are skipped.
    pub(super) paused: bool,
    pub(super) timeout: Duration,
    pub(super) policy: JobPolicy,
}

impl Settings {
    /// Derive the effective settings from `base` and `runtime`: the one place that applies
    /// the precedence (runtime setting > host configuration > the job's default). Fails on
    /// an invalid cron expression or zone.
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
                .map(|s| Duration::from_secs(s.clamp(1, MAX_TIMEOUT_SECS)))
                .unwrap_or(base.timeout),
            policy: policy(&base.policy, &runtime),
            schedule,
            runtime,
        })
    }

    /// [`derive`](Self::derive), falling back to the host's schedule when a stored
    /// expression or zone is not valid (written by hand, or by a newer version).
    pub(super) fn derive_lenient(base: &Base, job: &str, runtime: RuntimeSettings) -> Self {
        match Self::derive(base, runtime.clone()) {
            Ok(settings) => settings,
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
                    policy: base.policy.clone(),
                })
            }
        }
    }

    /// The timer group these settings belong in: jobs that fire, and paused jobs (whose
    /// ticks come due and are counted as skipped); none for a job disabled by configuration.
    pub(super) fn timer_key(&self) -> Option<GroupKey> {
        (self.fires || self.paused).then(|| {
            (
                self.schedule.expression().to_owned(),
                self.schedule.time_zone().map(|tz| tz.name()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::scheduler::bounds::MAX_TIMEOUT_SECS;
    use crate::scheduler::slot::tests::slot;
    use crate::settings::RuntimeSettings;
    use std::time::Duration;

    #[test]
    fn runtime_settings_outrank_the_host_and_fall_back_when_invalid() {
        let s = slot(false);
        assert!(!s.fires() && !s.is_paused());
        s.apply(RuntimeSettings {
            paused: Some(false),
            schedule: Some("*/5 * * * * *".into()),
            timeout_secs: Some(u64::MAX),
            ..Default::default()
        });
        // A resume outranks `enabled = false`; a stored timeout past the bound is clamped.
        assert!(s.fires());
        assert_eq!(s.settings().schedule.expression(), "*/5 * * * * *");
        assert_eq!(s.timeout(), Duration::from_secs(MAX_TIMEOUT_SECS));
        s.apply(RuntimeSettings {
            paused: Some(true),
            schedule: Some("not cron".into()),
            ..Default::default()
        });
        assert!(s.is_paused() && !s.fires());
        assert_eq!(s.settings().schedule.expression(), "0 0 * * * *");
        assert!(!s.info(true).fires_on_schedule);
    }
}
