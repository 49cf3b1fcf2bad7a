//! What the history holds: a run's row, the start and end the runner reports, and the
//! filters of a listing.

use chrono::{DateTime, Utc};

use crate::job::Trigger;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutionStatus {
    /// Started, not finished.
    Running,
    /// Finished with `success = 1`.
    Succeeded,
    /// Finished with an error (including a timeout or a panic).
    Failed,
    /// Stopped by a shutdown past its grace deadline.
    Cancelled,
    /// Left open by a process that died; closed by another one.
    Abandoned,
}

impl ExecutionStatus {
    /// The label stored in the `status` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Abandoned => "abandoned",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => ExecutionStatus::Running,
            "succeeded" => ExecutionStatus::Succeeded,
            "failed" => ExecutionStatus::Failed,
            "cancelled" => ExecutionStatus::Cancelled,
            "abandoned" => ExecutionStatus::Abandoned,
            _ => return None,
        })
    }
}

/// One row of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Execution {
    /// Auto-increment id.
    pub id: i64,
    /// The job's name.
    pub job_name: String,
    /// When the run started (second precision, as Barycenter stores it).
    pub started_at: DateTime<Utc>,
    /// When it finished; `None` while running.
    pub completed_at: Option<DateTime<Utc>>,
    /// `None` while running, then whether it succeeded.
    pub success: Option<bool>,
    /// Error text of a failed, cancelled or abandoned run.
    pub error_message: Option<String>,
    /// What the job reported: its own count for a successful run; for a failed, timed-out or
    /// cancelled run, the progress it reported before it stopped (`None` if it reported none).
    pub records_processed: Option<u64>,
    /// Status; derived from `success` for rows written without a `status` (Barycenter's).
    pub status: ExecutionStatus,
    /// `scheduled`, `catch_up` or `manual`; `None` for Barycenter's rows.
    pub trigger: Option<String>,
    /// The scheduler instance that ran it.
    pub instance: Option<String>,
    /// Run time in milliseconds.
    pub duration_ms: Option<i64>,
    /// The tick a scheduled run belongs to.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Which attempt at its tick the run was: 1, or more for a retry (rows written before
    /// retries existed read 1).
    pub attempt: u32,
}

/// The start of a run, as [`ExecutionStore::start`](super::ExecutionStore::start) records it.
#[derive(Debug, Clone)]
pub struct NewExecution {
    /// The job's name.
    pub job_name: String,
    /// When the run starts.
    pub started_at: DateTime<Utc>,
    /// What started it.
    pub trigger: Trigger,
    /// Which scheduler instance runs it.
    pub instance: Option<String>,
}

impl NewExecution {
    /// A manual run of `job_name` starting at `started_at`, with no instance recorded.
    pub fn manual(job_name: impl Into<String>, started_at: DateTime<Utc>) -> Self {
        Self {
            job_name: job_name.into(),
            started_at,
            trigger: Trigger::Manual,
            instance: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It worked.
    Succeeded {
        /// What the job reported.
        records_processed: u64,
    },
    /// It returned an error, panicked or timed out.
    Failed {
        /// Why.
        message: String,
    },
    /// Shutdown cancelled it.
    Cancelled {
        /// Why.
        message: String,
    },
    /// Its process died; another one closed it.
    Abandoned {
        /// Why.
        message: String,
    },
}

impl Outcome {
    /// The status this outcome records.
    pub fn status(&self) -> ExecutionStatus {
        match self {
            Outcome::Succeeded { .. } => ExecutionStatus::Succeeded,
            Outcome::Failed { .. } => ExecutionStatus::Failed,
            Outcome::Cancelled { .. } => ExecutionStatus::Cancelled,
            Outcome::Abandoned { .. } => ExecutionStatus::Abandoned,
        }
    }
}

/// Filters for [`ExecutionStore::list`](super::ExecutionStore::list). Results are newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionQuery {
    /// Only this job.
    pub job_name: Option<String>,
    /// Only runs with `success = 0` (failed, cancelled, abandoned).
    pub only_failures: bool,
    /// At most this many rows (clamped to 1..=[`MAX_LIST_LIMIT`](super::MAX_LIST_LIMIT)).
    pub limit: u32,
}

impl Default for ExecutionQuery {
    fn default() -> Self {
        Self {
            job_name: None,
            only_failures: false,
            limit: 100,
        }
    }
}

impl ExecutionQuery {
    /// The 100 newest runs of every job.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only runs of `name`.
    pub fn job(mut self, name: impl Into<String>) -> Self {
        self.job_name = Some(name.into());
        self
    }

    /// Only failures.
    pub fn failures(mut self) -> Self {
        self.only_failures = true;
        self
    }

    /// At most `limit` rows.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }
}
