//! What a running scheduler gives its host: job information, manual triggers, shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::Shared;
use crate::error::{Error, Result};
use crate::job::Trigger;
use crate::schedule::Schedule;
use crate::store::{Execution, ExecutionStore};

/// A handle on a started [`Scheduler`](super::Scheduler). Cheap to clone; every clone
/// controls the same scheduler.
#[derive(Clone)]
pub struct SchedulerHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerHandle")
            .field("instance", &self.shared.instance)
            .field("jobs", &self.shared.slots.len())
            .finish()
    }
}

/// A job as the scheduler runs it: its schedule after host overrides, and its state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobInfo {
    /// Name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// The schedule in force (the job's default or the host's override).
    pub schedule: Schedule,
    /// Whether scheduled runs happen (manual triggers always work).
    pub enabled: bool,
    /// Whether a run is in progress in this process.
    pub running: bool,
    /// The next scheduled fire time; `None` when disabled or shut down.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Run timeout.
    pub timeout: Duration,
}

/// A run started by [`SchedulerHandle::trigger`].
#[derive(Debug)]
pub struct TriggeredRun {
    /// The id of its row in the history.
    pub execution_id: i64,
    /// The runner sends the run's end here once it is recorded.
    pub(super) done: oneshot::Receiver<Execution>,
    /// `None` when the scheduler keeps no history.
    pub(super) store: Option<ExecutionStore>,
}

impl TriggeredRun {
    /// Wait until the run has finished and been recorded; returns its row as the history
    /// has it, or (without history, or when the row cannot be read back) as the runner
    /// recorded it. [`Error::ShutDown`] if the run was dropped without an end (its runtime
    /// went away).
    pub async fn wait(self) -> Result<Execution> {
        // Sent only after the row was written (or writing it was given up).
        let ended = self.done.await.map_err(|_| Error::ShutDown)?;
        let Some(store) = self.store else {
            return Ok(ended);
        };
        match store.get(self.execution_id).await {
            Ok(Some(row)) => Ok(row),
            Ok(None) => Err(Error::ExecutionNotFound(self.execution_id)),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the run back; answering with what the runner recorded");
                Ok(ended)
            }
        }
    }
}

impl SchedulerHandle {
    /// Every job, sorted by name.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.shared
            .slots
            .values()
            .map(|s| s.info(&self.shared))
            .collect()
    }

    /// One job.
    pub fn job(&self, name: &str) -> Option<JobInfo> {
        self.shared.slots.get(name).map(|s| s.info(&self.shared))
    }

    /// The execution history.
    pub fn store(&self) -> &ExecutionStore {
        &self.shared.store
    }

    /// How far this host's clock is ahead of the database's (negative: behind), as last
    /// measured (at start-up and at each claim); `None` before the first measurement
    /// succeeded. Ticks fire and leases run by the database's clock.
    pub fn clock_skew(&self) -> Option<chrono::Duration> {
        self.shared.clock_skew()
    }

    /// This scheduler's instance identity.
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Start a run of `name` now and return at once with its execution id.
    ///
    /// Errors: [`Error::UnknownJob`]; [`Error::AlreadyRunning`] when a run is in progress here
    /// or, with coordination on, on another replica; [`Error::ShutDown`] after
    /// [`shutdown`](Self::shutdown) began; [`Error::Database`] when the run could not be
    /// recorded.
    pub async fn trigger(&self, name: &str) -> Result<TriggeredRun> {
        let slot = self
            .shared
            .slots
            .get(name)
            .ok_or_else(|| Error::UnknownJob(name.to_owned()))?;
        super::run::start(&self.shared, slot, Trigger::Manual).await
    }

    /// Stop firing, let running jobs finish for up to `grace`, then cancel what is left and
    /// record it as cancelled. Returns once every run has been recorded. Calling it again
    /// (from any clone) waits for the same shutdown.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        let shared = &self.shared;
        shared.stop_firing.cancel();
        shared.tracker.close();
        if tokio::time::timeout(grace, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "grace period over: cancelling running jobs");
            shared.cancel_runs.cancel();
            shared.tracker.wait().await;
        }
        Ok(())
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shared.stop_firing.is_cancelled()
    }
}
