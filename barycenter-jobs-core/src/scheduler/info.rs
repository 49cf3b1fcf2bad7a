//! What the scheduler tells its host about a job.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::config::{MisfirePolicy, OverlapPolicy};
use crate::schedule::Schedule;
use crate::settings::RuntimeSettings;

/// A job as the scheduler runs it: its schedule after host overrides, and its state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobInfo {
    /// Name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The schedule in force: a runtime setting, else the host's override, else the job's
    /// own (see [`crate::settings`] for the precedence).
    pub schedule: Schedule,
    /// The job's own schedule, as its code declares it.
    pub default_schedule: Schedule,
    /// Whether the job fires on its schedule (manual triggers always work): false when
    /// disabled by configuration (`[jobs.NAME] enabled = false`) or paused.
    pub fires_on_schedule: bool,
    /// The same as [`fires_on_schedule`](Self::fires_on_schedule), under its old name, which
    /// read as the host's `enabled` setting although it is also false for a paused job.
    #[deprecated(note = "renamed to `fires_on_schedule`, which says what it means")]
    pub enabled: bool,
    /// Paused by an operator (a runtime setting): no replica fires it until it is resumed or
    /// reset; manual triggers still run.
    pub paused: bool,
    /// Whether a run is in progress in this process.
    pub running: bool,
    /// The next scheduled fire time; `None` when disabled or shut down.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Run timeout in force.
    pub timeout: Duration,
    /// The scheduling policies in force (runtime setting > host configuration > default).
    pub policy: JobPolicy,
    /// The operators' overrides (empty when none), with who changed them and when, and the
    /// note, end and author of a pause.
    pub runtime_settings: RuntimeSettings,
}

/// The scheduling policies of a job: what happens to missed ticks, and when a tick starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobPolicy {
    /// What to do about ticks missed while no scheduler ran.
    pub misfire: MisfirePolicy,
    /// What a tick that comes due while the job runs does.
    pub overlap: OverlapPolicy,
    /// A missed tick older than this is never caught up; `None`: no limit.
    pub catch_up_window: Option<Duration>,
    /// A scheduled tick starts at the tick plus an offset in `[0, jitter)` (see
    /// [`jitter_offset`]); zero: at the tick.
    pub jitter: Duration,
    /// Paused by the system after this many consecutive failed scheduled runs; 0: never.
    pub pause_after_failures: u32,
    /// Extra attempts at a tick whose run failed or timed out; 0: none.
    pub retry_attempts: u32,
    /// The first retry's delay; doubled for each later attempt, capped at an hour.
    pub retry_backoff: Duration,
}

impl Default for JobPolicy {
    fn default() -> Self {
        Self {
            misfire: MisfirePolicy::default(),
            overlap: OverlapPolicy::default(),
            catch_up_window: None,
            jitter: Duration::ZERO,
            pause_after_failures: 0,
            retry_attempts: 0,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
        }
    }
}

/// The first retry's delay unless configured: 30 s.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(30);

/// The longest delay between two attempts at a tick: an hour.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

impl JobPolicy {
    /// How long after a failed `attempt` (1 for the tick's first run) the next one waits:
    /// the backoff, doubled for each attempt after the first, at most [`MAX_RETRY_DELAY`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use barycenter_jobs_core::JobPolicy;
    ///
    /// let mut policy = JobPolicy::default();
    /// policy.retry_backoff = Duration::from_secs(30);
    /// assert_eq!(policy.retry_delay(1), Duration::from_secs(30));
    /// assert_eq!(policy.retry_delay(3), Duration::from_secs(120));
    /// assert_eq!(policy.retry_delay(20), Duration::from_secs(3600));
    /// ```
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.retry_backoff
            .saturating_mul(1u32 << doublings)
            .min(MAX_RETRY_DELAY)
    }
}

/// The offset from `tick` at which job `job` starts it under `jitter`: drawn from the job's
/// name and the tick alone (FNV-1a, not a per-process random), so every replica, and every
/// version of this crate, computes the same one; zero without jitter.
///
/// ```
/// use std::time::Duration;
/// use barycenter_jobs_core::scheduler::jitter_offset;
/// use chrono::{TimeZone, Utc};
///
/// let tick = Utc.with_ymd_and_hms(2026, 12, 7, 3, 0, 0).unwrap();
/// let offset = jitter_offset("cleanup_expired_sessions", tick, Duration::from_secs(300));
/// assert!(offset < Duration::from_secs(300));
/// assert_eq!(offset, jitter_offset("cleanup_expired_sessions", tick, Duration::from_secs(300)));
/// assert_eq!(jitter_offset("cleanup_expired_sessions", tick, Duration::ZERO), Duration::ZERO);
/// ```
pub fn jitter_offset(job: &str, tick: DateTime<Utc>, jitter: Duration) -> Duration {
    let span = u64::try_from(jitter.as_millis()).unwrap_or(u64::MAX);
    if span == 0 {
        return Duration::ZERO;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let tick_ms = tick.timestamp_millis().to_le_bytes();
    for byte in job.bytes().chain([0]).chain(tick_ms) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_millis(hash % span)
}

impl JobInfo {
    /// When the next `count` scheduled runs start after `after`: the schedule's fire times
    /// in its zone, each plus its [jitter offset](jitter_offset) (at most [`MAX_UPCOMING`]).
    pub fn upcoming_runs(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        self.schedule
            .upcoming(after, count.min(MAX_UPCOMING))
            .into_iter()
            .map(|tick| self.start_of(tick))
            .collect()
    }

    /// When the run of `tick` starts: the tick plus its jitter offset.
    pub fn start_of(&self, tick: DateTime<Utc>) -> DateTime<Utc> {
        let offset = jitter_offset(&self.name, tick, self.policy.jitter);
        tick + chrono::Duration::from_std(offset).unwrap_or_default()
    }
}

/// The most fire times [`JobInfo::upcoming_runs`] computes.
pub const MAX_UPCOMING: usize = 100;
