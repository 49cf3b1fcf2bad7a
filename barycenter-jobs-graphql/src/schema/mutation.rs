//! Mutations: manual triggers.

use async_graphql::{Context, ID, Object};
use barycenter_jobs_core::Error;

use super::types::TriggerResult;
use super::{AdminState, INTERNAL_ERROR};

/// The mutation root. Built by [`builder`](super::builder), which supplies its data.
#[derive(Debug)]
pub struct MutationRoot {
    _private: (),
}

impl MutationRoot {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }
}

/// Operations that change state.
#[Object]
impl MutationRoot {
    /// Start a run of `jobName` now and return at once (the run goes on in the background;
    /// follow it with `jobExecution(id: executionId)`).
    ///
    /// Refusals are reported in the result, not as errors: an unknown name gives
    /// `success: false` and `Unknown job: NAME`; a job with a run in progress gives
    /// `success: false` and `job NAME is already running`.
    async fn trigger_job(&self, ctx: &Context<'_>, job_name: String) -> TriggerResult {
        let state = ctx.data_unchecked::<AdminState>();
        let refused = |message: String, job_name: String| TriggerResult {
            success: false,
            message,
            job_name,
            execution_id: None,
        };
        match state.handle.trigger(&job_name).await {
            // Dropping the `TriggeredRun` does not stop the run; it only stops waiting for it.
            Ok(run) => TriggerResult {
                success: true,
                message: format!("Job {job_name} triggered"),
                execution_id: Some(ID(run.execution_id.to_string())),
                job_name,
            },
            Err(e @ (Error::UnknownJob(_) | Error::AlreadyRunning(_) | Error::ShutDown)) => {
                refused(e.to_string(), job_name)
            }
            Err(e) => {
                tracing::error!(job = %job_name, error = %e, "admin triggerJob failed");
                refused(INTERNAL_ERROR.to_owned(), job_name)
            }
        }
    }
}
