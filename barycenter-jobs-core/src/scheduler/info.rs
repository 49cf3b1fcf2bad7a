//! What the scheduler tells its host about a job.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
    /// The operators' overrides (empty when none), with who changed them and when.
    pub runtime_settings: RuntimeSettings,
}

impl JobInfo {
    /// The next `count` fire times of the schedule in force after `after`, evaluated in the
    /// schedule's zone (at most [`MAX_UPCOMING`] of them).
    pub fn upcoming_runs(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        self.schedule.upcoming(after, count.min(MAX_UPCOMING))
    }
}

/// The most fire times [`JobInfo::upcoming_runs`] computes.
pub const MAX_UPCOMING: usize = 100;
