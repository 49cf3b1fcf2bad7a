//! The tasks beside a running run, each spawned when the run does not end in its first poll
//! and aborted when it ends: the cancel watch (a cancel asked through the database) and the
//! progress writer (the run's count on its row while it lasts). The lease's renewal is the
//! third (see [`super::renew`]).

use std::sync::Arc;
use std::time::Duration;

use super::shared::Shared;
use super::stop::StopSignal;
use crate::job::Progress;
use crate::lease::Lease;

/// Aborts a task beside a run (its renewal, cancel watch, progress writer) when the run is
/// over, however it ends.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a run that holds a lease looks for a cancel asked through the database (by an
/// operator, or by a tick on another replica under `overlap = cancel_running`): one
/// primary-key read a second, only while a run lasts, so a cancel lands within about a
/// second wherever it was asked.
const CANCEL_POLL: Duration = Duration::from_secs(1);

/// Look for a cancel asked of the run holding `lease` every [`CANCEL_POLL`], and stop it.
pub(super) async fn cancel_watch(shared: Arc<Shared>, lease: Lease, stop: Arc<StopSignal>) {
    let Some(leases) = &shared.leases else { return };
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        match leases.cancel_requested(&lease).await {
            Ok(Some(by)) => return stop.stop(by),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(job = %lease.job_name, error = %e, "could not look for a cancel")
            }
        }
    }
}

/// How often a running run's reported progress is written to its row (when it changed):
/// `jobLogs` and the dashboard show a growing count. Written by a task of its own, never on
/// the job's path; a run shorter than this writes none.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Write the progress of run `execution_id` to its row every [`PROGRESS_EVERY`], when it
/// changed.
pub(super) async fn progress_writer(
    shared: Arc<Shared>,
    execution_id: i64,
    progress: Arc<Progress>,
) {
    let mut written = None;
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let Some(done) = progress.get().filter(|n| Some(*n) != written) else {
            continue;
        };
        match shared.store.record_progress(execution_id, done).await {
            Ok(()) => written = Some(done),
            Err(e) => {
                tracing::debug!(execution_id, error = %e, "could not write the run's progress")
            }
        }
    }
}
