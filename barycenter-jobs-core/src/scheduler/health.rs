//! Fleet health: which jobs are overdue, computed from the store so that every replica gives
//! the same answer.
//!
//! # Overdue
//! A job is *overdue* when a tick of its schedule in force came due more than its grace
//! (`[jobs.NAME] overdue_after_secs`; default [`default_overdue_after`]) ago and no run of it
//! has succeeded since that tick. Only ticks after the job was first seen by this database
//! count (the scheduler records that date at start-up), so a fresh install or a newly added
//! job is not overdue before its first tick plus the grace. Failing, timed-out, cancelled and
//! abandoned runs do not count as successes, so a job that keeps failing becomes overdue. A
//! disabled or paused job is never overdue, and ticks that came due while an operator had it
//! paused or under another schedule never count: after a runtime change (pause, resume,
//! reschedule, reset; `changed_at` of its settings row, by the database's clock) the job is
//! judged from that change on, so a resume does not turn every replica's health red.
//!
//! In terms of the store: with `base` the latest of the first-seen date, the completion of
//! the newest successful run and the last runtime change, the job is overdue from `next tick
//! after base + grace` on.
//! That takes one statement for the whole fleet, each "newest success" an index probe
//! (see [`ExecutionStore::job_summaries`](crate::ExecutionStore::job_summaries)).
//!
//! "Now" is the scheduler's clock, the one the history's timestamps are written with;
//! replicas agree up to their clock skew (measured against the database and warned about
//! past `[clock] warn_skew_secs`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::handle::SchedulerHandle;
use super::info::JobInfo;
use crate::error::Result;
use crate::schedule::Schedule;
use crate::store::JobSummary;

/// The grace past which a missed tick makes a job overdue, when its configuration sets none:
/// the schedule's interval (between the first two ticks after `around`), at most one hour
/// and at least 60 s.
///
/// ```
/// use std::time::Duration;
/// use barycenter_jobs_core::{Schedule, scheduler::default_overdue_after};
/// use chrono::Utc;
///
/// let every_5_min = Schedule::parse("0 */5 * * * *").unwrap();
/// assert_eq!(default_overdue_after(&every_5_min, Utc::now()), Duration::from_secs(300));
/// let daily = Schedule::parse("0 0 3 * * *").unwrap();
/// assert_eq!(default_overdue_after(&daily, Utc::now()), Duration::from_secs(3600));
/// let every_second = Schedule::parse("* * * * * *").unwrap();
/// assert_eq!(default_overdue_after(&every_second, Utc::now()), Duration::from_secs(60));
/// ```
pub fn default_overdue_after(schedule: &Schedule, around: DateTime<Utc>) -> Duration {
    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(3600);
    let interval = schedule.next_after(around).and_then(|first| {
        let second = schedule.next_after(first)?;
        (second - first).to_std().ok()
    });
    interval.unwrap_or(MAX).clamp(MIN, MAX)
}

/// `ok` or `overdue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthStatus {
    /// No job is overdue.
    Ok,
    /// At least one job is overdue.
    Overdue,
}

impl HealthStatus {
    /// `ok` or `overdue`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Overdue => "overdue",
        }
    }
}

/// One job's health.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobHealth {
    /// The job's name.
    pub name: String,
    /// Whether scheduled runs happen (not disabled, not paused).
    pub active: bool,
    /// When this database first saw the job; `None` if it was never recorded (no history).
    pub first_seen_at: Option<DateTime<Utc>>,
    /// When its newest successful run completed.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When its newest unsuccessful run completed.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// The grace in force (configured or [`default_overdue_after`]).
    pub overdue_after: Duration,
    /// The first tick that no successful run followed, when it is more than the grace ago.
    pub missed_tick: Option<DateTime<Utc>>,
    /// Since when the job is overdue (`missed_tick` + grace); `None`: not overdue.
    pub overdue_since: Option<DateTime<Utc>>,
}

impl JobHealth {
    /// Whether the job is overdue.
    pub fn is_overdue(&self) -> bool {
        self.overdue_since.is_some()
    }

    /// The verdict for one job at `now`, by the overdue rule of
    /// [`SchedulerHandle::health`](crate::SchedulerHandle::health); `changed_at` is when an
    /// operator last changed the job's runtime settings (ticks before it never count).
    pub fn evaluate(
        name: impl Into<String>,
        schedule: &Schedule,
        active: bool,
        summary: Option<&JobSummary>,
        overdue_after: Option<Duration>,
        changed_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let first_seen_at = summary.map(|s| s.first_seen_at);
        let last_success_at = summary.and_then(|s| s.last_success_at);
        // No first-seen date (it could not be written): count from now, never from a past
        // we know nothing about.
        let base = first_seen_at
            .unwrap_or(now)
            .max(last_success_at.unwrap_or(DateTime::<Utc>::MIN_UTC))
            .max(changed_at.unwrap_or(DateTime::<Utc>::MIN_UTC));
        let unanswered = schedule.next_after(base);
        let grace = overdue_after
            .unwrap_or_else(|| default_overdue_after(schedule, unanswered.unwrap_or(now)));
        let since = unanswered
            .filter(|_| active)
            .and_then(|tick| Some((tick, tick + chrono::Duration::from_std(grace).ok()?)))
            .filter(|(_, since)| *since < now);
        Self {
            name: name.into(),
            active,
            first_seen_at,
            last_success_at,
            last_failure_at: summary.and_then(|s| s.last_failure_at),
            overdue_after: grace,
            missed_tick: since.map(|(tick, _)| tick),
            overdue_since: since.map(|(_, since)| since),
        }
    }
}

/// The health of every job of a scheduler; see [`SchedulerHandle::health`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FleetHealth {
    /// `Overdue` when any job is.
    pub status: HealthStatus,
    /// The "now" the verdicts are for (the scheduler's clock).
    pub checked_at: DateTime<Utc>,
    /// This host's clock minus the database's, as last measured.
    pub clock_skew: Option<chrono::Duration>,
    /// Every job, sorted by name.
    pub jobs: Vec<JobHealth>,
}

impl FleetHealth {
    /// The overdue jobs, sorted by name.
    pub fn overdue_jobs(&self) -> impl Iterator<Item = &JobHealth> {
        self.jobs.iter().filter(|j| j.is_overdue())
    }

    /// One job.
    pub fn job(&self, name: &str) -> Option<&JobHealth> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// Whether scheduled runs of the job happen: the one place that decides which jobs can be
/// overdue. `JobInfo::enabled` is the schedule's firing state in force, false for a job the
/// host disabled and for one an operator paused at run time.
fn is_active(info: &JobInfo) -> bool {
    info.fires_on_schedule
}

impl SchedulerHandle {
    /// Which jobs are overdue, from the store: every replica of the fleet gives the same
    /// answer (up to clock skew). One statement, whatever the history's size. Without
    /// history ([`without_history`](crate::SchedulerBuilder::without_history)) nothing is
    /// known and no job is overdue.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use barycenter_jobs_core::{async_trait, Database, HealthStatus, Job, JobContext, JobError,
    ///     JobOutput, Registry, Scheduler};
    ///
    /// struct Hourly;
    /// #[async_trait]
    /// impl Job for Hourly {
    ///     fn name(&self) -> &str { "hourly" }
    ///     fn description(&self) -> &str { "Once an hour" }
    ///     fn schedule(&self) -> &str { "0 0 * * * *" }
    ///     async fn run(&self, _ctx: JobContext) -> Result<JobOutput, JobError> {
    ///         Ok(JobOutput::processed(0))
    ///     }
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Database::connect(&format!("sqlite://{}", dir.path().join("j.db").display())).await?;
    /// let handle = Scheduler::builder(Registry::builder().register(Hourly).build()?, db).start().await?;
    /// // Just installed: no tick has come due since the job was first seen.
    /// let health = handle.health().await?;
    /// assert_eq!(health.status, HealthStatus::Ok);
    /// assert!(health.job("hourly").unwrap().first_seen_at.is_some());
    /// handle.shutdown(std::time::Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn health(&self) -> Result<FleetHealth> {
        self.health_of(None).await
    }

    /// The health of one job; `None` for an unknown name.
    pub async fn job_health(&self, name: &str) -> Result<Option<JobHealth>> {
        if !self.shared.slots.contains_key(name) {
            return Ok(None);
        }
        Ok(self.health_of(Some(name)).await?.jobs.into_iter().next())
    }

    async fn health_of(&self, only: Option<&str>) -> Result<FleetHealth> {
        let shared = &self.shared;
        let summaries = if shared.record_history {
            shared.store.job_summaries(only).await?
        } else {
            Vec::new()
        };
        let now = shared.clock.now();
        let jobs: Vec<JobHealth> = shared
            .slots
            .iter()
            .filter(|(name, _)| only.is_none_or(|o| o == name.as_str()))
            .map(|(name, slot)| {
                let info = shared.job_info(slot);
                // A jittered tick starts up to its jitter late: that much more grace.
                let jitter = info.policy.jitter;
                let overdue_after = match slot.overdue_after {
                    _ if jitter.is_zero() => slot.overdue_after,
                    Some(grace) => Some(grace + jitter),
                    None => Some(default_overdue_after(&info.schedule, now) + jitter),
                };
                JobHealth::evaluate(
                    name.clone(),
                    &info.schedule,
                    is_active(&info),
                    summaries.iter().find(|s| &s.job_name == name),
                    overdue_after,
                    info.runtime_settings.changed_at,
                    now,
                )
            })
            .collect();
        Ok(FleetHealth {
            status: if jobs.iter().any(JobHealth::is_overdue) {
                HealthStatus::Overdue
            } else {
                HealthStatus::Ok
            },
            checked_at: now,
            clock_skew: shared.clock_skew(),
            jobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, h, m, s).unwrap()
    }

    fn summary(first_seen: DateTime<Utc>, success: Option<DateTime<Utc>>) -> JobSummary {
        JobSummary {
            job_name: "j".into(),
            first_seen_at: first_seen,
            last_success_at: success,
            last_failure_at: None,
        }
    }

    #[test]
    fn overdue_rule() {
        let hourly = Schedule::parse("0 0 * * * *").unwrap();
        let seen = summary(at(0, 0, 10), None);
        let eval = |s: &JobSummary, active: bool, now| {
            JobHealth::evaluate("j", &hourly, active, Some(s), None, None, now)
        };
        // First tick after first seen is 01:00, grace 1 h: overdue strictly after 02:00.
        assert!(!eval(&seen, true, at(2, 0, 0)).is_overdue());
        let late = eval(&seen, true, at(2, 0, 1));
        assert_eq!(late.missed_tick, Some(at(1, 0, 0)));
        assert_eq!(late.overdue_since, Some(at(2, 0, 0)));
        // Inactive: never.
        assert!(!eval(&seen, false, at(9, 0, 0)).is_overdue());
        // A success at 01:00:00 (same second as the tick) answers it; the next one is 02:00.
        let ok = summary(at(0, 0, 10), Some(at(1, 0, 0)));
        assert!(!eval(&ok, true, at(3, 0, 0)).is_overdue());
        assert_eq!(
            eval(&ok, true, at(3, 0, 1)).overdue_since,
            Some(at(3, 0, 0))
        );
        // No first-seen date: counted from now, so not overdue.
        let none = JobHealth::evaluate("j", &hourly, true, None, None, None, at(9, 0, 0));
        assert!(!none.is_overdue());
        // A configured grace wins.
        let short = JobHealth::evaluate(
            "j",
            &hourly,
            true,
            Some(&seen),
            Some(Duration::from_secs(30)),
            None,
            at(1, 0, 31),
        );
        assert_eq!(short.overdue_since, Some(at(1, 0, 30)));
        // A runtime change at 05:10 (a resume): judged from it, the next tick is 06:00.
        let resumed = |now| {
            JobHealth::evaluate(
                "j",
                &hourly,
                true,
                Some(&seen),
                None,
                Some(at(5, 10, 0)),
                now,
            )
        };
        assert!(!resumed(at(7, 0, 0)).is_overdue());
        assert_eq!(resumed(at(7, 0, 1)).missed_tick, Some(at(6, 0, 0)));
    }
}
